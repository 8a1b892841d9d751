"""A sweep as one program against the same work as sequential runs: PPO on CartPole-v1.

    .venv/bin/python benchmarks/sweep_ppo_cartpole.py --steps 50000 --seeds 4 --repeats 1

The grid is 4 learning rates × 4 clip ranges (16 configurations, both vmapped keys, so one compiled
program) × --seeds seeds. It runs `pgax sweep` once, then the 16 `pgax train` commands of the same
configurations one after another, interleaved over --repeats; each command in its own process with an
empty compilation cache of its own, so every wall time includes start-up and compilation as a user
sees them. Prints the wall times, their ratio and the best configuration's return of each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LRS = ["1e-4", "3e-4", "1e-3", "3e-3"]
CLIPS = ["0.1", "0.2", "0.3", "0.4"]
PGAX = str(Path(sys.executable).with_name("pgax"))


def timed(argv: list[str]) -> float:
    env = {**os.environ, "PGAX_CACHE_DIR": tempfile.mkdtemp(prefix="pgax-bench-cache-")}
    t = time.perf_counter()
    subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    common = ["--env", "CartPole-v1", "--steps", str(args.steps), "--seeds", str(args.seeds), "--eval-episodes", "10",
              "--no-tensorboard", "--no-progress"]
    results = []
    for repeat in range(args.repeats):
        out = Path(tempfile.mkdtemp(prefix="pgax-bench-sweep-"))
        sweep_s = timed([PGAX, "sweep", "ppo", *common, "--out", str(out / "sweep"),
                         "--grid", "lr=" + ",".join(LRS), "--grid", "clip_eps=" + ",".join(CLIPS)])
        record = json.loads(next((out / "sweep").glob("*/sweep.json")).read_text())
        sequential_s, best_train = 0.0, None
        for lr in LRS:
            for clip in CLIPS:
                sequential_s += timed([PGAX, "train", "ppo", *common, "--out", str(out / "train"),
                                       "--lr", lr, "--clip-eps", clip])
        for summary in (out / "train").glob("*/summary.json"):
            value = json.loads(summary.read_text())["final_return_mean"]
            best_train = value if best_train is None else max(best_train, value)
        results.append({"repeat": repeat, "sweep_wall_s": sweep_s, "sequential_wall_s": sequential_s,
                        "ratio": sequential_s / sweep_s, "sweep_best_return": record["best"]["final_return_mean"],
                        "sweep_best": record["best"]["label"], "train_best_return": best_train})
        print(json.dumps(results[-1]), flush=True)
    print(json.dumps({"steps": args.steps, "seeds": args.seeds, "configurations": len(LRS) * len(CLIPS),
                      "results": results}))


if __name__ == "__main__":
    main()
