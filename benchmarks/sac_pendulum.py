"""pgax SAC vs rejax SAC on gymnax Pendulum-v1, side by side on this machine (runs interleaved).

    bash benchmarks/peers/setup_rejax.sh                  # once: benchmarks/.venv-rejax (rejax 0.1.3)
    .venv/bin/python benchmarks/sac_pendulum.py [--steps 10000] [--seeds 5] [--repeats 3]
    .venv/bin/python benchmarks/sac_pendulum.py --one     # the pgax measurement alone (one JSON line)

Matched settings (benchmarks/peers/rejax_sac_pendulum.py has rejax's side): 1 env, 64×64 relu MLPs,
minibatches of 128, a 10,000-transition buffer, updates once 1,000 transitions are stored, one update
per step, Adam 3e-4 for actor, critics and α (initial α 1), τ 0.005, γ 0.99; all seeds vmapped in one
jitted program on both sides. Steps/s count every seed's env steps and exclude compilation. Known
differences: pgax acts uniformly at random until learning starts (rejax acts with its initial
policy); pgax's return is its deterministic evaluation, rejax's its own `evaluate` (sampled
actions), 10 episodes per seed each. Each measurement runs in its own process; the order of the two
alternates between repeats, since this machine's speed drifts by about ±15%.
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
REJAX_PYTHON = HERE / ".venv-rejax" / "bin" / "python"


def measure(steps: int, num_seeds: int, seed: int = 0) -> dict:
    """pgax SAC: {steps_per_second, compile_seconds, train_seconds, eval_return_per_seed}."""
    import numpy as np

    from pgax import envs
    from pgax.algorithms.offpolicy import SACConfig, make_sac
    from pgax.train import evaluate, train

    env = envs.make("Pendulum-v1")
    config = SACConfig(hidden_sizes=(64, 64), minibatch_size=128, buffer_size=10_000, learning_starts=1_000,
                       actor_lr=3e-4, critic_lr=3e-4, alpha_lr=3e-4, alpha=1.0, tau=0.005, gamma=0.99)
    agent = make_sac(config, env, steps)
    seeds = list(range(seed, seed + num_seeds))
    result = train(agent, env, num_envs=1, num_steps=1, num_iterations=steps, seeds=seeds,
                   on_chunk=lambda done, metrics: None)
    returns = evaluate(agent, env, result.state.agent.params, seeds, 10)
    return {"library": "pgax", "steps_per_second": round(steps * num_seeds / result.train_seconds),
            "compile_seconds": round(result.compile_seconds, 2), "train_seconds": round(result.train_seconds, 2),
            "eval_return_per_seed": [round(float(r), 1) for r in np.mean(returns, axis=1)]}


def run_one(library: str, steps: int, num_seeds: int) -> dict:
    python = sys.executable if library == "pgax" else str(REJAX_PYTHON)
    script = HERE / ("sac_pendulum.py" if library == "pgax" else "peers/rejax_sac_pendulum.py")
    args = [python, str(script), "--steps", str(steps), "--seeds", str(num_seeds)] + (["--one"] if library == "pgax"
                                                                                      else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", action="store_true", help="measure pgax once in this process and print JSON")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.steps, args.seeds)))
        return
    if not REJAX_PYTHON.exists():
        sys.exit("sac_pendulum: benchmarks/.venv-rejax is missing; run `bash benchmarks/peers/setup_rejax.sh` first")
    runs: dict[str, list[dict]] = {"pgax": [], "rejax": []}
    for repeat in range(args.repeats):
        for library in (("pgax", "rejax") if repeat % 2 == 0 else ("rejax", "pgax")):
            r = run_one(library, args.steps, args.seeds)
            runs[library].append(r)
            print(f"{library:5s} repeat {repeat}: {r['steps_per_second']:,} steps/s (compile {r['compile_seconds']} s), "
                  f"returns {r['eval_return_per_seed']}", flush=True)
    median = {k: statistics.median(r["steps_per_second"] for r in v) for k, v in runs.items()}
    ratios = [p["steps_per_second"] / q["steps_per_second"] for p, q in zip(runs["pgax"], runs["rejax"])]
    print(f"median steps/s: pgax {median['pgax']:,.0f}, rejax {median['rejax']:,.0f}; ratio of medians "
          f"{median['pgax'] / median['rejax']:.2f}, per repeat {', '.join(f'{x:.2f}' for x in ratios)}", flush=True)
    print(json.dumps({"benchmark": "sac_pendulum", "steps_per_seed": args.steps, "seeds": args.seeds, "runs": runs,
                      "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
                      "date": dt.date.today().isoformat()}))


if __name__ == "__main__":
    main()
