"""Benchmark: PPO on a gymnax MinAtar game, throughput excluding compilation, MLP and CNN torsos.

    .venv/bin/python benchmarks/ppo_minatar.py [--env Breakout-MinAtar] [--steps 262144] [--seeds 1]
        [--networks mlp cnn] [--repeats 1] [--epochs 4]

Settings (those of benchmarks/peers/rejax_ppo_minatar.py, so the two can run side by side): 64 envs ×
128 steps, 4 epochs, 8 minibatches, one hidden layer of 256 ReLU units, Adam 5e-4 (constant) with the
gradient norm clipped at 0.5, γ 0.99, λ 0.95, clip 0.2, entropy 0.01. `mlp` reads the 10 × 10 × C
grid as 100·C features; `cnn` puts the MinAtar convolution (16 filters of 3 × 3) in front of the hidden
layer. After training, the deterministic policy is evaluated for 10 episodes per seed. Prints one line per run and a JSON line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform

import jax
import numpy as np

from pgax import envs
from pgax.algorithms import PPOConfig, make_ppo
from pgax.train import evaluate, train


def config(network: str, epochs: int = 4) -> PPOConfig:
    return PPOConfig(num_envs=64, num_steps=128, epochs=epochs, minibatches=8, hidden_sizes=(256,), activation="relu",
                     lr=5e-4, anneal_lr=False, max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95, clip_eps=0.2, ent_coef=0.01, network=network)


def measure(env_id: str, network: str, steps: int, num_seeds: int, epochs: int = 4) -> dict:
    env = envs.make(env_id)
    cfg = config(network, epochs)
    iterations = steps // cfg.batch_size
    agent = make_ppo(cfg, env, iterations)
    seeds = list(range(num_seeds))
    result = train(agent, env, num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=iterations,
                   seeds=seeds, on_chunk=lambda done, metrics: None)
    returns = evaluate(agent, env, result.state.agent.params, seeds, episodes=10).mean(axis=1)
    total = iterations * cfg.batch_size * num_seeds
    return {"network": network, "steps_per_second": round(total / result.train_seconds),
            "compile_seconds": round(result.compile_seconds, 2), "eval_return": [round(float(r), 2) for r in returns]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Breakout-MinAtar")
    parser.add_argument("--steps", type=int, default=262_144)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--networks", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeats):
        for network in args.networks:
            run = measure(args.env, network, args.steps, args.seeds, args.epochs)
            runs.append(run)
            print(f"pgax PPO {args.env} {network}, {args.seeds} seed(s) × {args.steps:,} steps: "
                  f"{run['steps_per_second']:,} steps/s, compile {run['compile_seconds']:.1f} s, "
                  f"evaluation {np.mean(run['eval_return']):.2f}", flush=True)
    print(json.dumps({"benchmark": "ppo_minatar", "env": args.env, "steps_per_seed": args.steps, "seeds": args.seeds,
                      "epochs": args.epochs,
                      "runs": runs, "jax": jax.__version__, "device": str(jax.devices()[0]), "cpus": os.cpu_count(),
                      "machine": platform.processor() or platform.machine(), "date": dt.date.today().isoformat()}))


if __name__ == "__main__":
    main()
