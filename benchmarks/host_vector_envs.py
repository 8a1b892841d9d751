"""Benchmark: raw Hopper-v5 steps/s of the host driver's three vector envs, one jitted policy call per
step, interleaved (two runs each): envpool (`--driver envpool`), WorkerVectorEnv in this process
(`gymnasium`) and with worker processes (`gymnasium-async`), for 1-16 env copies.

    .venv/bin/python benchmarks/host_vector_envs.py
"""

import time

import jax
import jax.numpy as jnp
import numpy as np

from pgax.envs.envpool_env import make_envpool
from pgax.envs.gymnasium_env import make_gymnasium, make_vector


def main():
    policy = jax.jit(lambda x: jnp.tanh(x[:, :3] * 0.1))
    pooled, gym = make_envpool("Hopper-v5"), make_gymnasium("Hopper-v5")
    for n in (1, 2, 4, 8, 16):
        rates = {}
        for _ in range(2):
            for name, env, asynchronous in (("envpool", pooled, False), ("gymnasium", gym, False),
                                            ("gymnasium-async", gym, True)):
                vector_env = make_vector(env, n, asynchronous)
                obs, _ = vector_env.reset(seed=list(range(n)))
                steps = max(4000 // n, 300)
                for t in range(50 + steps):
                    if t == 50:
                        start = time.perf_counter()
                    action = np.asarray(policy(np.asarray(obs, np.float32)))
                    obs, *_ = vector_env.step(env.to_env_action(action))
                rates.setdefault(name, []).append(steps * n / (time.perf_counter() - start))
                vector_env.close()
        print(f"Hopper-v5, {n} copies: " + ", ".join(f"{k} {min(v):,.0f}-{max(v):,.0f}" for k, v in rates.items()),
              flush=True)


if __name__ == "__main__":
    main()
