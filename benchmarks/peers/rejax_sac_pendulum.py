"""rejax SAC on gymnax Pendulum-v1, seeds vmapped in one jitted program (run in benchmarks/.venv-rejax).

    benchmarks/.venv-rejax/bin/python benchmarks/peers/rejax_sac_pendulum.py --steps 10000 --seeds 5

Settings match benchmarks/sac_pendulum.py: 1 env, 64×64 relu MLPs, minibatches of 128, a 10,000-
transition buffer, updates from step 1,000, one update per step, Adam 3e-4 for actor, critics and
α (initial α 1), τ 0.005, γ 0.99. Training is timed without compilation and without evaluation (the
callback is a no-op during training); afterwards the trained policies are evaluated with rejax's own
`evaluate` (its stochastic `act`, 10 episodes per seed). Prints one JSON line.
"""

from __future__ import annotations

import argparse

import rejax
from rejax_common import train_and_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    algo = rejax.SAC.create(env="Pendulum-v1", total_timesteps=args.steps, eval_freq=args.steps,
                            skip_initial_evaluation=True, num_envs=1, buffer_size=10_000, fill_buffer=1_000,
                            batch_size=128, learning_rate=3e-4, polyak=0.995, gamma=0.99, num_epochs=1,
                            agent_kwargs={"hidden_layer_sizes": (64, 64), "activation": "relu"})
    train_and_report(algo, args.steps, args.seeds, args.seed, decimals=1)


if __name__ == "__main__":
    main()
