"""rejax PPO on a gymnax MinAtar game, seeds vmapped in one jitted program (run in benchmarks/.venv-rejax).

    benchmarks/.venv-rejax/bin/python benchmarks/peers/rejax_ppo_minatar.py --env Breakout-MinAtar --steps 262144 [--epochs 4]

Settings match benchmarks/ppo_minatar.py with `--network mlp` (rejax's PPO has MLP torsos only, on the
flattened grid): 64 envs × 128 steps, 4 epochs, 8 minibatches, one hidden layer of 256 ReLU units,
Adam 5e-4 with the gradient norm clipped at 0.5, γ 0.99, λ 0.95, clip 0.2, entropy 0.01, value
coefficient 0.5, a constant step size. Training is timed without compilation and without evaluation (the callback is a no-op); the
trained policies are then evaluated with rejax's own `evaluate` (its stochastic `act`, 10 episodes per
seed). Prints one JSON line.
"""

from __future__ import annotations

import argparse

import rejax
from rejax_common import train_and_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Breakout-MinAtar")
    parser.add_argument("--steps", type=int, default=262_144)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    algo = rejax.PPO.create(env=args.env, total_timesteps=args.steps, eval_freq=args.steps,
                            skip_initial_evaluation=True, num_envs=64, num_steps=128, num_epochs=args.epochs,
                            num_minibatches=8, learning_rate=5e-4, max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95,
                            clip_eps=0.2, ent_coef=0.01, vf_coef=0.5,
                            agent_kwargs={"hidden_layer_sizes": (256,), "activation": "relu"})
    train_and_report(algo, args.steps, args.seeds, args.seed, decimals=2, env=args.env)


if __name__ == "__main__":
    main()
