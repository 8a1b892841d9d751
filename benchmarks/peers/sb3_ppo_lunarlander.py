"""Peer benchmark: Stable-Baselines3 PPO on Gymnasium LunarLander-v3 with RL Zoo's hyperparameters.

The settings of configs/ppo-lunarlander.yaml (RL Zoo's hyperparams/ppo.yml for LunarLander): 16 envs
(DummyVecEnv via make_vec_env) × 1024 steps, minibatches of 64, 4 epochs, γ 0.999, λ 0.98, entropy
0.01, and SB3's defaults otherwise (lr 3e-4 constant, clip 0.2, no value clipping, value 0.5, grad
norm 0.5, Adam ε 1e-5, separate 64 × 64 tanh MLPs), CPU. Times model.learn() only; SB3 runs whole
16,384-step rollouts, so the step count reported is --steps rounded up to a multiple of 16,384.

    bash benchmarks/peers/setup_peers.sh
    OMP_NUM_THREADS=1 benchmarks/.venv-peers/bin/python benchmarks/peers/sb3_ppo_lunarlander.py --steps 65536

Prints one JSON line (see sb3_common.time_learn).
"""

from __future__ import annotations

import argparse

import torch
from sb3_common import time_learn
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=65_536)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env = make_vec_env("LunarLander-v3", n_envs=16, seed=args.seed)
    model = PPO("MlpPolicy", env, n_steps=1024, batch_size=64, n_epochs=4, gamma=0.999, gae_lambda=0.98,
                ent_coef=0.01, policy_kwargs=dict(net_arch=dict(pi=[64, 64], vf=[64, 64]), activation_fn=torch.nn.Tanh),
                seed=args.seed, device="cpu", verbose=0)
    time_learn(model, env, args.steps, seed=args.seed)


if __name__ == "__main__":
    main()
