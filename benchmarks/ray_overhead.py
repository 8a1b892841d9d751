"""What Ray costs a sweep: start-up, an empty task's round trip, and the extra wall time per program.

    .venv/bin/python benchmarks/ray_overhead.py --programs 4 --steps 20000 --repeats 2

1. In this process: `ray.init` of a local instance, the first empty task (a worker process starts),
   then the mean round trip of 50 empty tasks one after another.
2. The same sweep (PPO on CartPole-v1, a grid over `epochs`, so --programs separate programs) three
   ways, each a `pgax sweep` command in its own process with an empty compilation cache, interleaved
   over --repeats: `--backend local`; `--backend ray --task-cpus 2` (one task at a time on a 2-core
   machine, so the work is as sequential as local and the difference is Ray's); `--backend ray
   --task-cpus 1` (two tasks at once). Overhead per program = (ray one-at-a-time − local) / programs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from sweep_ppo_cartpole import PGAX, timed  # benchmarks/ is the script's folder, first on sys.path


def task_latency() -> dict:
    import ray

    t = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    init_s = time.perf_counter() - t

    @ray.remote
    def noop():
        return 0

    t = time.perf_counter()
    ray.get(noop.remote())
    first_s = time.perf_counter() - t
    times = []
    for _ in range(50):
        t = time.perf_counter()
        ray.get(noop.remote())
        times.append(time.perf_counter() - t)
    ray.shutdown()
    return {"ray_init_s": init_s, "first_task_s": first_s, "empty_task_round_trip_ms": 1e3 * statistics.mean(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(json.dumps(task_latency()), flush=True)
    epochs = ",".join(str(e) for e in range(1, args.programs + 1))
    sweep = [PGAX, "sweep", "ppo", "--env", "CartPole-v1", "--steps", str(args.steps), "--seeds", "4",
             "--eval-episodes", "10", "--no-tensorboard", "--no-progress", "--grid", f"epochs={epochs}"]
    ways = {"local": [], "ray_one_at_a_time": ["--backend", "ray", "--task-cpus", "2"],
            "ray_two_at_once": ["--backend", "ray", "--task-cpus", "1"]}
    walls: dict[str, list[float]] = {name: [] for name in ways}
    for repeat in range(args.repeats):
        for name, extra in ways.items():
            out = tempfile.mkdtemp(prefix="pgax-bench-ray-")
            walls[name].append(timed(sweep + ["--out", out] + extra))
        row = {name: round(w[-1], 2) for name, w in walls.items()}
        row["overhead_per_program_s"] = round((row["ray_one_at_a_time"] - row["local"]) / args.programs, 2)
        print(json.dumps({"repeat": repeat, **row}), flush=True)
    mean = {name: statistics.mean(w) for name, w in walls.items()}
    print(json.dumps({"mean_wall_s": {k: round(v, 2) for k, v in mean.items()},
                      "overhead_per_program_s": round((mean["ray_one_at_a_time"] - mean["local"]) / args.programs, 2),
                      "programs": args.programs, "steps": args.steps}), flush=True)


if __name__ == "__main__":
    main()
