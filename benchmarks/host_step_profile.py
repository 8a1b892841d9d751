"""Profile: what one host-driver step costs on Hopper-v5 with 1 env, and why a worker process helps.

Times, in microseconds per step (mean over `--steps` steps after a warm-up):
  1. the simulator alone: `make_vector(env, 1)` stepped with random actions in a tight loop;
  2. the policy call alone: PPO's jitted act (`configs/ppo-mujoco.yaml`'s 64×64 Gaussian policy:
     forward pass and sampling) on one observation, its output fetched to numpy, in a tight loop;
  3. both alternating in this process (the `gymnasium` driver's layout), each timed on its own;
  4. both alternating with the copy in a worker process (`make_vector(env, 1, True, 1)`, the
     `gymnasium-async` driver's default layout for 1 env on a machine with 2+ cores).
On one core the two evict each other from the caches, so each is slower alternating (3) than
alone (1, 2); in (4) each keeps a core and its caches, and the step pays only the hand-over.
(1) is also measured with the copy in a worker, with the default spinning waits and with waits
that sleep at once (`WorkerVectorEnv(..., spin=False)`): the difference is the cost of waking a
sleeping process, twice per step.

    .venv/bin/python benchmarks/host_step_profile.py [--steps 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np
import yaml

from pgax.algorithms import PPOConfig, make_ppo
from pgax.envs.gymnasium_env import make_gymnasium, make_vector
from pgax.envs.workers import WorkerVectorEnv

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "ppo-mujoco.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    args = parser.parse_args()
    T = args.steps

    file = yaml.safe_load(CONFIG.read_text())
    fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in file.items()
              if k in PPOConfig.__dataclass_fields__}
    env = make_gymnasium("Hopper-v5")
    agent = make_ppo(PPOConfig(**fields), env, 1)
    obs0 = np.zeros((1, env.observation_space.dim), np.float32)
    params = agent.init(jax.random.PRNGKey(0), obs0[0]).params
    act = jax.jit(agent.act)
    keys = np.asarray(jax.random.split(jax.random.PRNGKey(1), T + 100))
    actions = np.random.default_rng(0).uniform(-1, 1, (T + 100, 1, 3)).astype(np.float32)

    def policy(obs, t):
        action, log_prob = act(params, obs, keys[t])
        return np.asarray(action), np.asarray(log_prob)

    def simulator_alone(vector_env) -> float:
        vector_env.reset(seed=[0])
        for t in range(100):
            vector_env.step(actions[t])
        start = time.perf_counter()
        for t in range(100, T + 100):
            vector_env.step(actions[t])
        return (time.perf_counter() - start) / T * 1e6

    def policy_alone() -> float:
        for t in range(100):
            policy(obs0, t)
        start = time.perf_counter()
        for t in range(100, T + 100):
            policy(obs0, t)
        return (time.perf_counter() - start) / T * 1e6

    def alternating(vector_env) -> tuple[float, float]:
        obs, _ = vector_env.reset(seed=[0])
        step_s = policy_s = 0.0
        for t in range(T + 100):
            t0 = time.perf_counter()
            obs = vector_env.step(actions[t])[0].astype(np.float32)
            t1 = time.perf_counter()
            policy(obs, t)
            t2 = time.perf_counter()
            if t >= 100:
                step_s, policy_s = step_s + t1 - t0, policy_s + t2 - t1
        return step_s / T * 1e6, policy_s / T * 1e6

    here = make_vector(env, 1)
    worker = make_vector(env, 1, asynchronous=True, num_workers=1)
    sleeping = WorkerVectorEnv([env.make_env], 1, spin=False)
    try:
        rows = {"simulator alone (this process)": (simulator_alone(here), None),
                "simulator alone (worker process)": (simulator_alone(worker), None),
                "simulator alone (worker, sleeping waits)": (simulator_alone(sleeping), None),
                "policy call alone": (None, policy_alone()),
                "alternating, simulator in this process": alternating(here),
                "alternating, simulator in a worker": alternating(worker)}
    finally:
        here.close()
        worker.close()
        sleeping.close()
    print(f"{'':<42}{'step µs':>10}{'policy µs':>11}{'sum µs':>9}")
    for name, (step_us, policy_us) in rows.items():
        cells = [f"{x:>10.1f}" if x is not None else f"{'':>10}" for x in (step_us, policy_us)]
        total = f"{step_us + policy_us:>9.1f}" if step_us is not None and policy_us is not None else ""
        print(f"{name:<42}{cells[0]}{cells[1]} {total}")
    print(json.dumps({"benchmark": "host_step_profile", "steps": T, "cpus": os.cpu_count(),
                      "machine": platform.processor() or platform.machine(), "jax": jax.__version__,
                      "rows": {k: [None if x is None else round(x, 1) for x in v] for k, v in rows.items()}}))


if __name__ == "__main__":
    main()
