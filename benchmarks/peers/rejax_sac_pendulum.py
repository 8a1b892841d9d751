"""rejax SAC on gymnax Pendulum-v1, seeds vmapped in one jitted program (run in benchmarks/.venv-rejax).

    benchmarks/.venv-rejax/bin/python benchmarks/peers/rejax_sac_pendulum.py --steps 10000 --seeds 5

Settings match benchmarks/sac_pendulum.py: 1 env, 64×64 relu MLPs, minibatches of 128, a 10,000-
transition buffer, updates from step 1,000, one update per step, Adam 3e-4 for actor, critics and
α (initial α 1), τ 0.005, γ 0.99. Training is timed without compilation and without evaluation (the
callback is a no-op during training); afterwards the trained policies are evaluated with rejax's own
`evaluate` (its stochastic `act`, 10 episodes per seed). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time
from importlib.metadata import version

import jax
import jax.numpy as jnp
import numpy as np
import rejax
from rejax.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    algo = rejax.SAC.create(env="Pendulum-v1", total_timesteps=args.steps, eval_freq=args.steps,
                            skip_initial_evaluation=True, num_envs=1, buffer_size=10_000, fill_buffer=1_000,
                            batch_size=128, learning_rate=3e-4, polyak=0.995, gamma=0.99, num_epochs=1,
                            agent_kwargs={"hidden_layer_sizes": (64, 64), "activation": "relu"})
    algo = algo.replace(eval_callback=lambda algo, ts, rng: jnp.zeros(()))
    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.seeds)
    t0 = time.perf_counter()
    train = jax.jit(jax.vmap(algo.train)).lower(keys).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ts, _ = train(keys)
    jax.block_until_ready(ts)
    train_s = time.perf_counter() - t0
    returns = []
    for i in range(args.seeds):
        one = jax.tree.map(lambda x: x[i], ts)
        _, episode_returns = evaluate(algo.make_act(one), jax.random.PRNGKey(1000 + i), algo.env, algo.env_params,
                                      10, algo.env_params.max_steps_in_episode)
        returns.append(float(np.mean(episode_returns)))
    print(json.dumps({"library": "rejax", "version": version("rejax"),
                      "steps_per_second": round(args.steps * args.seeds / train_s), "compile_seconds": round(compile_s, 2),
                      "train_seconds": round(train_s, 2), "eval_return_per_seed": [round(r, 1) for r in returns]}))


if __name__ == "__main__":
    main()
