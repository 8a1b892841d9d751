"""pgax SAC vs Stable-Baselines3 SAC on Gymnasium Hopper-v5 through the host driver, side by side on this
machine (runs interleaved, each in its own process).

    bash benchmarks/peers/setup_peers.sh                  # once: benchmarks/.venv-peers (SB3, CPU torch)
    .venv/bin/python benchmarks/sac_hopper.py [--steps 6000] [--learning-starts 1000] [--repeats 2]
    .venv/bin/python benchmarks/sac_hopper.py --one       # the pgax measurement alone (one JSON line)

Matched settings (benchmarks/peers/sb3_sac_hopper.py has SB3's side, whose defaults these are but for
the buffer warm-up): 1 env, 1 seed, 256×256 relu MLPs, minibatches of 256, a 1,000,000-transition
buffer, uniform random actions until --learning-starts transitions are stored (SB3 does the same),
then one gradient step per env step, Adam 3e-4 for actor, critics and α (initial α 1), τ 0.005,
γ 0.99. Steps/s count all --steps env steps (warm-up included, on both sides); pgax's exclude
compilation (reported apart), SB3 has none. torch runs with 1 thread (OMP_NUM_THREADS=1), as pgax's
env stepping leaves the other core to XLA; the order of the two alternates between repeats, since
this machine's speed drifts by about ±15%. Target (issue 16): pgax ≥ 3× SB3.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"


def measure(steps: int, learning_starts: int, seed: int = 0) -> dict:
    """pgax SAC on Hopper-v5: {steps_per_second, compile_seconds, train_seconds}."""
    from pgax.algorithms.offpolicy import SACConfig, make_sac
    from pgax.envs.gymnasium_env import make_gymnasium
    from pgax.train import train

    env = make_gymnasium("Hopper-v5")
    config = SACConfig(hidden_sizes=(256, 256), minibatch_size=256, buffer_size=1_000_000,
                       learning_starts=learning_starts, actor_lr=3e-4, critic_lr=3e-4, alpha_lr=3e-4, alpha=1.0,
                       tau=0.005, gamma=0.99)
    config.validate()
    agent = make_sac(config, env, steps)
    result = train(agent, env, num_envs=1, num_steps=1, num_iterations=steps, seeds=[seed],
                   on_chunk=lambda done, metrics: None)
    return {"library": "pgax", "steps_per_second": round(steps / result.train_seconds),
            "compile_seconds": round(result.compile_seconds, 2), "train_seconds": round(result.train_seconds, 2)}


def run_one(library: str, steps: int, learning_starts: int) -> dict:
    if library == "pgax":
        args = [sys.executable, str(HERE / "sac_hopper.py"), "--one"]
    else:
        args = [str(PEERS_PYTHON), str(HERE / "peers" / "sb3_sac_hopper.py")]
    args += ["--steps", str(steps), "--learning-starts", str(learning_starts)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result.setdefault("library", library)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6_000)
    parser.add_argument("--learning-starts", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--one", action="store_true", help="measure pgax once in this process and print JSON")
    args = parser.parse_args()
    if args.learning_starts >= args.steps:
        sys.exit("sac_hopper: --learning-starts must be below --steps, or no update is timed")
    if args.one:
        print(json.dumps(measure(args.steps, args.learning_starts)))
        return
    if not PEERS_PYTHON.exists():
        sys.exit("sac_hopper: benchmarks/.venv-peers is missing; run `bash benchmarks/peers/setup_peers.sh` first")
    runs: dict[str, list[dict]] = {"pgax": [], "sb3": []}
    for repeat in range(args.repeats):
        for library in (("pgax", "sb3") if repeat % 2 == 0 else ("sb3", "pgax")):
            r = run_one(library, args.steps, args.learning_starts)
            runs[library].append(r)
            extra = f" (compile {r['compile_seconds']} s)" if library == "pgax" else f" (cpu {r['cpu_seconds']} s)"
            print(f"{library:4s} repeat {repeat}: {r['steps_per_second']:,} steps/s{extra}", flush=True)
    median = {k: statistics.median(r["steps_per_second"] for r in v) for k, v in runs.items()}
    ratios = [p["steps_per_second"] / q["steps_per_second"] for p, q in zip(runs["pgax"], runs["sb3"])]
    print(f"median steps/s: pgax {median['pgax']:,.0f}, SB3 {median['sb3']:,.0f}; ratio of medians "
          f"{median['pgax'] / median['sb3']:.2f}, per repeat {', '.join(f'{x:.2f}' for x in ratios)}", flush=True)
    print(json.dumps({"benchmark": "sac_hopper", "steps": args.steps, "learning_starts": args.learning_starts,
                      "runs": runs, "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
                      "date": dt.date.today().isoformat()}))


if __name__ == "__main__":
    main()
