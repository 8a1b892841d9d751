"""The replay learn step with the insert first or last, by rows and buffer size (SAC, Pendulum-v1).

    .venv/bin/python benchmarks/replay_insert_order.py [--rows 1 5] [--capacities 10000 1000000] [--repeats 2]

`replay_learn` (pgax/algorithms/offpolicy.py) inserts first and then samples when its vmap over
`ROWS_AXIS` has several rows, and otherwise samples through `sample_after_add` and inserts last.
This times both orders in every case: a jitted, donated scan of 1,000 learn calls on a fixed batch
(64×64 networks, minibatch 128, updating from the first call), best of 5 scans, each case in its own
process, the orders interleaved. It also counts the buffer-sized copies in the compiled learn step.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def measure(order: str, rows: int, capacity: int) -> dict:
    import time

    import jax
    import jax.numpy as jnp

    from pgax import envs
    from pgax.algorithms import PRESETS, offpolicy
    from pgax.batch import ROWS_AXIS, Batch

    offpolicy.rows_in_program = (lambda: 2) if order == "first" else (lambda: 1)
    env = envs.make("Pendulum-v1")
    config = PRESETS["sac"].config_type(buffer_size=capacity, learning_starts=0, hidden_sizes=(64, 64),
                                        minibatch_size=128)
    agent = PRESETS["sac"].make_agent(config, env, 10)
    obs = jnp.zeros(env.observation_space.shape)
    state = jax.vmap(agent.init, in_axes=(0, None))(jax.random.split(jax.random.key(0), rows), obs)
    state = jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), state)  # no shared buffers to donate
    shape = (rows, 1, 1)
    batch = Batch(obs=jnp.ones(shape + obs.shape), action=jnp.zeros(shape + env.action_space.shape),
                  reward=jnp.zeros(shape), terminated=jnp.zeros(shape, bool), truncated=jnp.zeros(shape, bool),
                  next_obs=jnp.ones(shape + obs.shape), log_prob=jnp.zeros(shape))
    learn = jax.vmap(agent.learn, axis_name=ROWS_AXIS)
    text = jax.jit(learn, donate_argnums=(0,)).lower(state, batch, jax.random.split(jax.random.key(1), rows)) \
        .compile().as_text()
    copies = sum(1 for line in text.splitlines() if " copy(" in line and f",{capacity}" in line.replace(" ", ""))

    def body(s, k):
        s, m = learn(s, batch, jax.random.split(k, rows))
        return s, m["buffer_size"]

    run = jax.jit(lambda s, k: jax.lax.scan(body, s, jax.random.split(k, 1000)), donate_argnums=(0,))
    state, _ = run(state, jax.random.key(1))
    jax.block_until_ready(state)
    best = float("inf")
    for r in range(5):
        start = time.perf_counter()
        state, _ = run(state, jax.random.key(2 + r))
        jax.block_until_ready(state)
        best = min(best, time.perf_counter() - start)
    return {"order": order, "rows": rows, "capacity": capacity, "learn_steps_per_second": round(1000 / best),
            "buffer_copies": copies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--capacities", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--one", nargs=3, metavar=("ORDER", "ROWS", "CAPACITY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), int(args.one[2]))))
        return
    for rows in args.rows:
        for capacity in args.capacities:
            for repeat in range(args.repeats):
                for order in (("first", "last") if repeat % 2 == 0 else ("last", "first")):
                    out = subprocess.run([sys.executable, __file__, "--one", order, str(rows), str(capacity)],
                                         capture_output=True, text=True, check=True)
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    print(f"rows {rows} capacity {capacity:>9,} insert {order:5s}: "
                          f"{r['learn_steps_per_second']:>5,} learn steps/s, {r['buffer_copies']} buffer copies",
                          flush=True)


if __name__ == "__main__":
    main()
