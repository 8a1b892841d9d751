"""Benchmark: PPO on gymnax CartPole-v1, throughput excluding compilation, 1 seed and 8 vmapped seeds.

Configuration (the issue's, matching the well-known jitted JAX PPO baseline): 500k steps per seed,
4 envs × 128 steps, 4 epochs, 4 minibatches, 64×64 tanh MLPs, default PPOConfig otherwise.

    .venv/bin/python benchmarks/ppo_cartpole.py [--steps 500000] [--repeats 3] [--seeds 1 8]

Prints one line per seed count: median steps/s over repeats (aggregate over seeds, excluding
compilation) and compile seconds, plus a JSON line for RESULTS.md. Timing is done here, never in
unit tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import datetime as dt

import jax

from pgax import envs
from pgax.algorithms import PPOConfig, make_ppo
from pgax.train import train


def measure(num_seeds: int, steps: int) -> tuple[float, float, float]:
    """(aggregate steps/s excluding compilation, compile seconds, train seconds) for one run."""
    env = envs.make("CartPole-v1")
    cfg = PPOConfig(num_envs=4, num_steps=128, epochs=4, minibatches=4, hidden_sizes=(64, 64), activation="tanh")
    iterations = steps // cfg.batch_size
    agent = make_ppo(cfg, env, iterations)
    result = train(agent, env, num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=iterations,
                   seeds=list(range(num_seeds)), on_chunk=lambda done, metrics: None)
    total = iterations * cfg.batch_size * num_seeds
    return total / result.train_seconds, result.compile_seconds, result.train_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()
    results = {}
    for num_seeds in args.seeds:
        runs = [measure(num_seeds, args.steps) for _ in range(args.repeats)]
        sps = statistics.median(r[0] for r in runs)
        compile_s = statistics.median(r[1] for r in runs)
        results[num_seeds] = {"steps_per_second": round(sps), "compile_seconds": round(compile_s, 2),
                              "all_steps_per_second": [round(r[0]) for r in runs]}
        print(f"pgax PPO CartPole-v1, {num_seeds} seed(s): {sps:,.0f} steps/s (median of {args.repeats}; "
              f"runs {', '.join(f'{r[0]:,.0f}' for r in runs)}), compile {compile_s:.1f} s", flush=True)
    print(json.dumps({"benchmark": "ppo_cartpole", "steps_per_seed": args.steps, "results": results,
                      "jax": jax.__version__, "device": str(jax.devices()[0]), "cpus": os.cpu_count(),
                      "machine": platform.processor() or platform.machine(),
                      "date": dt.date.today().isoformat()}))


if __name__ == "__main__":
    main()
