"""Stress check for the CPU runtime hang: alternate 1-seed and 8-seed PPO runs in one process.

    timeout 400 .venv/bin/python benchmarks/stress_seeds.py [--runs 15] [--steps 60000]

Prints one line per run and "done" at the end; a run that never returns (the process idles at 0%
CPU) is the hang described in benchmarks/RESULTS.md. Use with `timeout` and check for "done".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ppo_cartpole import measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--steps", type=int, default=60_000)
    args = parser.parse_args()
    for i in range(args.runs):
        seeds = 1 if i % 3 == 0 else 8
        sps, _, _ = measure(seeds, args.steps)
        print(i, seeds, round(sps), flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
