"""What checkpoints and loggers cost: PPO CartPole-v1 training steps/s of the experiment core at its
defaults against the same run with them off, and against the bare library loop, interleaved.

    python benchmarks/experiment_overhead.py [--steps 500000] [--seeds 3] [--reps 5]

Variants (each rep runs all three, in a rotating order, so machine drift hits them alike):
- `library`: `pgax.train.train` (no run folder, no sinks, about 20 fixed chunks);
- `off`: `run_experiment` with --no-tensorboard and --checkpoint-every 0 (metrics.csv only; the final
  checkpoint is written after the timed training);
- `defaults`: `run_experiment` as `pgax train` runs it (TensorBoard, checkpoints every 10 minutes,
  chunks adapted to 5 s).
Steps/s counts training only (compilation and the final evaluation excluded), as summary.json does.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import platform
import statistics
import tempfile

import jax

from pgax import envs
from pgax.algorithms import PPOConfig, get_preset, make_ppo
from pgax.experiment import Reporter, RunOptions, run_experiment
from pgax.train import train


def library(steps: int, seeds: int) -> float:
    env, cfg = envs.make("CartPole-v1"), PPOConfig()
    iterations = steps // cfg.batch_size
    result = train(make_ppo(cfg, env, iterations), env, num_envs=cfg.num_envs, num_steps=cfg.num_steps,
                   num_iterations=iterations, seeds=list(range(seeds)))
    return iterations * cfg.batch_size * seeds / result.train_seconds


def experiment(steps: int, seeds: int, defaults: bool) -> float:
    run = RunOptions(env="CartPole-v1", steps=steps, seeds=seeds, eval_episodes=0, progress=False,
                     out=tempfile.mkdtemp(prefix="pgax-overhead-"))
    if not defaults:
        run = dataclasses.replace(run, tensorboard=False, checkpoint_every="0")
    summary = run_experiment(get_preset("ppo"), run, PPOConfig(), reporter=Reporter(say=lambda line: None))
    return summary["steps_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    variants = {"library": lambda: library(args.steps, args.seeds),
                "off": lambda: experiment(args.steps, args.seeds, False),
                "defaults": lambda: experiment(args.steps, args.seeds, True)}
    names = list(variants)
    results: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(args.reps):
        for name in names[rep % 3:] + names[:rep % 3]:
            results[name].append(variants[name]())
            print(f"rep {rep} {name}: {results[name][-1]:,.0f} steps/s", flush=True)
    median = {n: statistics.median(v) for n, v in results.items()}
    print(json.dumps({"date": dt.date.today().isoformat(), "machine": platform.processor() or platform.machine(),
                      "device": str(jax.devices()[0]), "steps": args.steps, "seeds": args.seeds,
                      "median_steps_per_second": median,
                      "defaults_vs_off": median["defaults"] / median["off"],
                      "defaults_vs_library": median["defaults"] / median["library"]}, indent=2))


if __name__ == "__main__":
    main()
