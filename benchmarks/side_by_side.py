"""pgax PPO vs Stable-Baselines3 PPO on CartPole-v1, measured back to back on this machine.

    bash benchmarks/peers/setup_peers.sh            # once: the peers venv (CPU torch, SB3)
    .venv/bin/python benchmarks/side_by_side.py [--pgax-steps 500000] [--sb3-steps 50000]

Same configuration for both (4 envs × 128 steps, 4 epochs, 4 minibatches of 128, 64×64 tanh MLPs,
annealed lr 2.5e-4, clip 0.2, value clipping). pgax is timed excluding compilation, 1 seed; SB3's
`learn()` is timed with torch at 1 and 2 threads. Prints each figure and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pgax-steps", type=int, default=500_000)
    parser.add_argument("--sb3-steps", type=int, default=50_000)
    args = parser.parse_args()
    if not PEERS_PYTHON.exists():
        sys.exit("side_by_side: the peers venv is missing; run `bash benchmarks/peers/setup_peers.sh` first")

    sys.path.insert(0, str(HERE))
    from ppo_cartpole import measure

    pgax_sps, compile_s, _ = measure(1, args.pgax_steps)
    print(f"pgax PPO, 1 seed: {pgax_sps:,.0f} steps/s (compile {compile_s:.1f} s)", flush=True)
    results = {"pgax_steps_per_second": round(pgax_sps)}
    for threads in (1, 2):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        out = subprocess.run([str(PEERS_PYTHON), str(HERE / "peers" / "sb3_ppo_cartpole.py"), "--steps",
                              str(args.sb3_steps)], capture_output=True, text=True, env=env, check=True)
        sb3 = json.loads(out.stdout.strip().splitlines()[-1])
        ratio = pgax_sps / sb3["steps_per_second"]
        results[f"sb3_{threads}_threads"] = sb3["steps_per_second"]
        print(f"SB3 {sb3['version']} PPO, torch {threads} thread(s): {sb3['steps_per_second']:,} steps/s "
              f"→ pgax is {ratio:.1f}×", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
