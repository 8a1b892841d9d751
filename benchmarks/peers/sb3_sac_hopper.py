"""Peer benchmark: Stable-Baselines3 SAC on Gymnasium Hopper-v5, training throughput only.

Same settings as pgax's side in benchmarks/sac_hopper.py: 1 env, separate 256×256 relu MLPs for the
actor and the twin Q critics, minibatches of 256, a 1,000,000-transition buffer, updates once
--learning-starts transitions are stored, one gradient step per env step, Adam 3e-4 for actor, critics
and α (initial α 1, target entropy −dim(A)), τ 0.005, γ 0.99, CPU. Times model.learn() only.

    benchmarks/.venv-peers/bin/python benchmarks/peers/sb3_sac_hopper.py [--steps 6000] [--learning-starts 1000]

Prints one JSON line (cpu_seconds far below seconds means other load took the CPU).
"""

from __future__ import annotations

import argparse

import gymnasium
import torch
from sb3_common import time_learn
from stable_baselines3 import SAC


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6_000)
    parser.add_argument("--learning-starts", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env = gymnasium.make("Hopper-v5")
    model = SAC("MlpPolicy", env, learning_rate=3e-4, buffer_size=1_000_000, learning_starts=args.learning_starts,
                batch_size=256, tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1, ent_coef="auto_1.0",
                policy_kwargs=dict(net_arch=[256, 256], activation_fn=torch.nn.ReLU), seed=args.seed,
                device="cpu", verbose=0)
    time_learn(model, env, args.steps, learning_starts=args.learning_starts, seed=args.seed)


if __name__ == "__main__":
    main()
