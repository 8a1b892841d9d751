"""Peer benchmark: Stable-Baselines3 PPO on Gymnasium Hopper-v5, training throughput only.

Same configuration as pgax's benchmarks/ppo_hopper.py (configs/ppo-mujoco.yaml): --envs N
(make_vec_env: DummyVecEnv, or SubprocVecEnv with --vec-env subproc) × 2048/N steps, 10 epochs,
minibatches of 64 (32 per 2048-sample batch), separate 64×64 tanh MLPs, lr 3e-4 annealed linearly
to 0, γ 0.99, GAE λ 0.95, clip 0.2 (also on the value function), entropy 0, value 0.5, grad norm
0.5, Adam ε 1e-5 (SB3's default), observation normalisation and reward scaling (VecNormalize, clip 10), CPU. Times model.learn() only.

    benchmarks/.venv-peers/bin/python benchmarks/peers/sb3_ppo_hopper.py [--steps 20480] [--envs 1]
        [--vec-env dummy|subproc]

Prints one JSON line (cpu_seconds far below seconds means other load took the CPU).
"""

from __future__ import annotations

import argparse

from sb3_common import make_ppo, time_learn
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

LR = 3e-4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_480)
    parser.add_argument("--envs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vec-env", choices=["dummy", "subproc"], default="dummy",
                        help="DummyVecEnv (one process) or SubprocVecEnv (one process per env)")
    args = parser.parse_args()

    vec_env_cls = SubprocVecEnv if args.vec_env == "subproc" else DummyVecEnv
    env = VecNormalize(make_vec_env("Hopper-v5", n_envs=args.envs, seed=args.seed, vec_env_cls=vec_env_cls),
                       gamma=0.99, clip_obs=10.0, clip_reward=10.0)
    model = make_ppo(env, lr=LR, n_steps=2048 // args.envs, batch_size=64, n_epochs=10, ent_coef=0.0, seed=args.seed)
    time_learn(model, env, args.steps, envs=args.envs, seed=args.seed, vec_env=args.vec_env)


if __name__ == "__main__":
    main()
