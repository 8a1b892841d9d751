"""Benchmark: PPO on Gymnasium Hopper-v5 through the host driver, side by side with the raw
simulator and Stable-Baselines3, measured back to back in one run.

For each env count N (default 1 and 8): first Gymnasium's own SyncVectorEnv under random actions
(for reference), then for each pgax driver (`sync`: the `gymnasium` driver, every copy in this
process; `async`: the `gymnasium-async` driver with its default workers: for N < cores a worker per
copy, this process only running the policy, else this process plus one worker per other core;
`envpool`: the `envpool` driver, one envpool pool of N envs stepped by its C++ threads), in this order:
  1. raw simulator: the same vector env of N Hopper-v5 copies that pgax uses (`make_vector`: a
     `WorkerVectorEnv`, or an `EnvpoolVectorEnv` for `envpool`, same-step autoreset), uniformly random
     actions drawn ahead of time, `--raw-steps` steps in all;
  2. pgax PPO (`configs/ppo-mujoco.yaml`: 2048 steps per iteration = N envs × 2048/N steps, 10 epochs,
     32 minibatches, obs normalisation and reward scaling), 1 seed, `--steps` steps, timed
     excluding compilation (TrainResult.train_seconds);
then SB3 PPO with the same settings (benchmarks/peers/sb3_ppo_hopper.py in benchmarks/.venv-peers,
torch 1 thread), `--sb3-steps` steps, if the peers venv exists: DummyVecEnv, and for N > 1 also
SubprocVecEnv (one process per env). pgax / SB3 is reported against SB3's faster vector env.

    bash benchmarks/peers/setup_peers.sh      # once, for the SB3 column
    .venv/bin/python benchmarks/ppo_hopper.py [--envs 1 8] [--drivers sync async envpool] [--steps 40960]
        [--sb3-steps 20480]

Prints one line per measurement and a JSON line for RESULTS.md. Targets: pgax ≥ 3× SB3 and ≥ 50% of
the raw simulator rate of the same vector env (issue 6); with envpool at 8+ copies, ≥ 70% of envpool's
raw rate and ≥ 6× SB3 (issue 18).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import jax
import numpy as np
import yaml
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from pgax.algorithms import PPOConfig, make_ppo
from pgax.envs.envpool_env import make_envpool
from pgax.envs.gymnasium_env import make_gymnasium, make_vector
from pgax.train import train

HERE = Path(__file__).resolve().parent
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"
CONFIG = HERE.parent / "configs" / "ppo-mujoco.yaml"


def hopper(driver: str | None):
    """Hopper-v5 as the `GymnasiumEnv` that `driver` (sync, async, envpool) steps."""
    return make_envpool("Hopper-v5") if driver == "envpool" else make_gymnasium("Hopper-v5")


def raw_simulator(num_envs: int, steps_per_env: int, driver: str | None) -> tuple[float, str]:
    """(steps/s of the vector env alone under random actions, all envs counted; its layout);
    driver None: Gymnasium's SyncVectorEnv instead of pgax's."""
    env = hopper(driver)
    if driver is None:
        vector_env = SyncVectorEnv([env.make_env] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)
    else:
        vector_env = make_vector(env, num_envs, driver == "async")
    vector_env.reset(seed=list(range(num_envs)))
    actions = np.random.default_rng(0).uniform(-1, 1, (steps_per_env, num_envs, 3)).astype(np.float32)
    start = time.perf_counter()
    for a in actions:
        vector_env.step(a)
    seconds = time.perf_counter() - start
    if driver is None:
        layout = "SyncVectorEnv"
    elif driver == "envpool":
        layout = "envpool"
    elif vector_env.num_workers == 0:
        layout = "every copy here"
    else:
        layout = (f"{vector_env.num_workers} worker(s), {len(vector_env.blocks[0])} copies here, "
                  f"{'spinning' if vector_env.spins else 'sleeping'} waits")
    vector_env.close()
    return steps_per_env * num_envs / seconds, layout


def pgax_ppo(num_envs: int, steps: int, driver: str) -> tuple[float, float]:
    """(steps/s excluding compilation, compile seconds) of PPO with configs/ppo-mujoco.yaml, 1 seed."""
    file = yaml.safe_load(CONFIG.read_text())
    fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in file.items()
              if k in PPOConfig.__dataclass_fields__}
    cfg = PPOConfig(**{**fields, "num_envs": num_envs, "num_steps": 2048 // num_envs})
    cfg.validate()
    env = hopper(driver)
    iterations = max(1, steps // cfg.batch_size)
    agent = make_ppo(cfg, env, iterations)
    result = train(agent, env, num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=iterations,
                        seeds=[0], asynchronous=driver == "async", normalize_obs=file["normalize_obs"], normalize_reward=file["normalize_reward"],
                        gamma=cfg.gamma)
    return iterations * cfg.batch_size / result.train_seconds, result.compile_seconds


def sb3_ppo(num_envs: int, steps: int, vec_env: str) -> dict | None:
    if not PEERS_PYTHON.exists():
        return None
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([str(PEERS_PYTHON), str(HERE / "peers" / "sb3_ppo_hopper.py"), "--steps", str(steps),
                          "--envs", str(num_envs), "--vec-env", vec_env], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--drivers", nargs="+", choices=["sync", "async", "envpool"], default=["sync", "async"],
                        help="pgax drivers to measure")
    parser.add_argument("--steps", type=int, default=40_960, help="pgax PPO steps (whole 2048-step iterations)")
    parser.add_argument("--sb3-steps", type=int, default=20_480)
    parser.add_argument("--raw-steps", type=int, default=20_000, help="raw simulator steps in total per env count")
    parser.add_argument("--skip-sb3", action="store_true", help="leave out the SB3 column")
    args = parser.parse_args()
    results = {}
    for n in args.envs:
        gym_sync, _ = raw_simulator(n, max(1, args.raw_steps // n), None)
        print(f"Hopper-v5, {n} env(s): raw simulator in Gymnasium's SyncVectorEnv {gym_sync:,.0f} steps/s", flush=True)
        row: dict = {"raw_gymnasium_sync_vector_env": round(gym_sync)}
        for driver in args.drivers:
            raw, layout = raw_simulator(n, max(1, args.raw_steps // n), driver)
            print(f"Hopper-v5, {n} env(s), {driver} ({layout}): raw simulator {raw:,.0f} steps/s", flush=True)
            sps, compile_s = pgax_ppo(n, args.steps, driver)
            print(f"Hopper-v5, {n} env(s), {driver}: pgax PPO {sps:,.0f} steps/s ({sps / raw:.0%} of raw; "
                  f"compile {compile_s:.1f} s)", flush=True)
            row[driver] = {"layout": layout, "raw_steps_per_second": round(raw), "pgax_steps_per_second": round(sps),
                           "pgax_fraction_of_raw": round(sps / raw, 3), "pgax_compile_seconds": round(compile_s, 1)}
        sb3_rates = {}
        for vec_env in ([] if args.skip_sb3 else ["dummy", "subproc"] if n > 1 else ["dummy"]):
            sb3 = sb3_ppo(n, args.sb3_steps, vec_env)
            if sb3 is None:
                break
            sb3_rates[vec_env] = sb3["steps_per_second"]
            row[f"sb3_{vec_env}"] = {"steps_per_second": sb3["steps_per_second"], "cpu_seconds": sb3["cpu_seconds"],
                                     "seconds": sb3["seconds"], "version": sb3["version"]}
            print(f"Hopper-v5, {n} env(s): SB3 {sb3['version']} PPO ({vec_env}) {sb3['steps_per_second']:,} steps/s",
                  flush=True)
        if sb3_rates:
            best = max(sb3_rates.values())
            for driver in args.drivers:
                if driver in row:
                    ratio = row[driver]["pgax_steps_per_second"] / best
                    row[driver]["pgax_over_best_sb3"] = round(ratio, 2)
                    print(f"Hopper-v5, {n} env(s), {driver}: pgax is {ratio:.2f}× SB3's faster vector env "
                          f"({best:,} steps/s)", flush=True)
        results[n] = row
    print(json.dumps({"benchmark": "ppo_hopper", "pgax_steps": args.steps, "sb3_steps": args.sb3_steps,
                      "results": results, "jax": jax.__version__, "cpus": os.cpu_count(),
                      "machine": platform.processor() or platform.machine(),
                      "date": dt.date.today().isoformat()}))


if __name__ == "__main__":
    main()
