"""Pool the final returns of several `pgax train` run folders per (algorithm, env) and print each
pool's mean with a 95% percentile-bootstrap confidence interval over seeds (`pgax.stats.bootstrap_ci`).

    .venv/bin/python benchmarks/summarize_runs.py RUN_DIR [RUN_DIR ...]

A RUN_DIR is a run folder (holding summary.json) or a folder of run folders. Each run contributes
its `final_return_per_seed` (deterministic evaluation) and its seed values; a seed that appears in
two runs of the same pool is an error, so no seed is counted twice. Prints one Markdown table row
per pool, for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from pgax.stats import bootstrap_ci


def find_summaries(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "summary.json").is_file():
            found.append(p / "summary.json")
        elif p.is_dir():
            found.extend(sorted(p.glob("*/summary.json")))
        else:
            sys.exit(f"error: {p} is neither a run folder nor a folder of run folders")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    pools: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for path in find_summaries(args.runs):
        summary = json.loads(path.read_text())
        if summary.get("interrupted"):
            print(f"skipping {path.parent} (interrupted run)", file=sys.stderr)
            continue
        pool = pools[(summary["algorithm"], summary["env"])]
        for seed, value in zip(summary["seed_values"], summary["final_return_per_seed"]):
            if seed in pool:
                sys.exit(f"error: seed {seed} of {summary['algorithm']} on {summary['env']} appears in two runs")
            pool[int(seed)] = float(value)
    print("| algorithm | env | seeds | per seed | mean [95% CI] |")
    print("| --- | --- | --- | --- | --- |")
    for (algorithm, env), pool in sorted(pools.items()):
        seeds = sorted(pool)
        values = np.array([pool[s] for s in seeds])
        low, high = bootstrap_ci(values)
        per_seed = ", ".join(f"{v:.1f}" for v in values)
        print(f"| {algorithm} | {env} | {', '.join(map(str, seeds))} | {per_seed} | "
              f"{values.mean():.1f} [{float(low):.1f}, {float(high):.1f}] |")


if __name__ == "__main__":
    main()
