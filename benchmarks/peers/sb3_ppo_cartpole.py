"""Peer benchmark: Stable-Baselines3 PPO on gymnasium CartPole-v1, training throughput only.

Same configuration as pgax's benchmarks/ppo_cartpole.py: 4 envs (DummyVecEnv via make_vec_env) × 128
steps, 4 epochs, 4 minibatches (batch_size 128 of the 512-sample batch), separate 64×64 tanh MLPs for
actor and critic, lr 2.5e-4 annealed linearly to 0, γ 0.99, GAE λ 0.95, clip 0.2 (also on the value
function, as pgax's clip_value_loss), entropy 0.01, value 0.5, grad norm 0.5, Adam ε 1e-5 (SB3's
default), CPU, torch's default thread count. Times model.learn() only (model construction excluded).
SB3 runs whole 512-step rollouts until it reaches --steps, so the step count reported is the number it
actually ran (--steps rounded up to a multiple of 512).

    bash benchmarks/peers/setup_peers.sh
    benchmarks/.venv-peers/bin/python benchmarks/peers/sb3_ppo_cartpole.py [--steps 100000] [--seed 0]

Prints one JSON line. cpu_seconds (process CPU time, all threads) far below seconds means other load
took the CPU. On the 2-core machine, torch's default of 2 intra-op threads was 10-25x slower than
one thread while other processes were busy (OpenMP threads waiting on each other for 64-wide matmuls).
To compare with one thread, run with OMP_NUM_THREADS=1 (the JSON's torch_threads records which).
"""

from __future__ import annotations

import argparse

from sb3_common import make_ppo, time_learn
from stable_baselines3.common.env_util import make_vec_env

LR = 2.5e-4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env = make_vec_env("CartPole-v1", n_envs=4, seed=args.seed)  # DummyVecEnv
    model = make_ppo(env, lr=LR, n_steps=128, batch_size=128, n_epochs=4, ent_coef=0.01, seed=args.seed)
    time_learn(model, env, args.steps, seed=args.seed)


if __name__ == "__main__":
    main()
