"""What the rejax peer benchmarks share: train a rejax algorithm with the seeds vmapped in one jitted
program, timed without compilation and without evaluation (the callback is a no-op), then evaluate each
seed's policy with rejax's own `evaluate` (its stochastic `act`, 10 episodes) and print one JSON line.
Runs in benchmarks/.venv-rejax (imported by the scripts beside it)."""

from __future__ import annotations

import json
import time
from importlib.metadata import version

import jax
import jax.numpy as jnp
import numpy as np
from rejax.evaluate import evaluate


def train_and_report(algo, steps: int, seeds: int, seed: int, decimals: int = 1, **extra) -> None:
    """Train `algo` (a rejax algorithm made for `steps` steps) on `seeds` seeds from PRNGKey(`seed`)."""
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    keys = jax.random.split(jax.random.PRNGKey(seed), seeds)
    t0 = time.perf_counter()
    train = jax.jit(jax.vmap(algo.train)).lower(keys).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ts, _ = train(keys)
    jax.block_until_ready(ts)
    train_s = time.perf_counter() - t0
    returns = []
    for i in range(seeds):
        one = jax.tree.map(lambda x: x[i], ts)
        _, episode_returns = evaluate(algo.make_act(one), jax.random.PRNGKey(1000 + i), algo.env, algo.env_params,
                                      10, algo.env_params.max_steps_in_episode)
        returns.append(float(np.mean(episode_returns)))
    print(json.dumps({"library": "rejax", "version": version("rejax"), **extra,
                      "steps_per_second": round(steps * seeds / train_s), "compile_seconds": round(compile_s, 2),
                      "train_seconds": round(train_s, 2), "eval_return_per_seed": [round(r, decimals) for r in returns]}))
