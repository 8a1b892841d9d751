"""Benchmark: TRPO and NPG on gymnax CartPole-v1 side by side with PPO, throughput excluding compilation.

Configuration: the PPO benchmark's env settings (benchmarks/ppo_cartpole.py): 4 envs × 128 steps
per iteration, 64×64 tanh MLPs for actor and critic, 1 seed; every preset at its defaults otherwise
(PPO: 4 epochs × 4 minibatches of Adam; TRPO/NPG: 10 CG iterations on Fisher-vector products,
TRPO's line search of up to 10 backtracks, critic re-fit 5 epochs × 4 minibatches of Adam).

    .venv/bin/python benchmarks/trpo_npg_cartpole.py [--steps 200000] [--repeats 3] [--learn-calls 200]

1. Training throughput: `pgax.train.train` for each preset, the three presets interleaved in each
   repeat (so drift of the machine's speed hits them alike); steps/s exclude compilation (timed
   apart by the trainer, as in the PPO benchmark). Median over repeats, all runs listed.
2. Cost of one update: each preset's jitted `learn` alone, on the same rollout batch (512
   transitions from one CartPole rollout), median wall time per call over `--learn-calls` calls
   after a warm-up (the presets called in turn), and its ratio to PPO's.

Prints one line per measurement and a JSON line for RESULTS.md. Timing is done here, never in
unit tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time

import jax

from pgax import envs
from pgax.algorithms import NPGConfig, PPOConfig, TRPOConfig, make_npg, make_ppo, make_trpo
from pgax.rollout import scan_rollout, vector_reset
from pgax.train import train

ENV_SETTINGS = dict(num_envs=4, num_steps=128, hidden_sizes=(64, 64), activation="tanh")
PRESETS = {
    "ppo": (PPOConfig(**ENV_SETTINGS), make_ppo),
    "trpo": (TRPOConfig(**ENV_SETTINGS), make_trpo),
    "npg": (NPGConfig(**ENV_SETTINGS), make_npg),
}


def throughput(name: str, steps: int) -> tuple[float, float]:
    """(steps/s excluding compilation, compile seconds) of one 1-seed training run."""
    config, make = PRESETS[name]
    env = envs.make("CartPole-v1")
    iterations = steps // (config.num_envs * config.num_steps)
    agent = make(config, env, iterations)
    result = train(agent, env, num_envs=config.num_envs, num_steps=config.num_steps, num_iterations=iterations,
                   seeds=[0], on_chunk=lambda done, metrics: None)
    return iterations * config.num_envs * config.num_steps / result.train_seconds, result.compile_seconds


def learn_seconds(calls: int) -> dict[str, float]:
    """Median seconds of one jitted `learn` call per preset, all on the same rollout batch."""
    env = envs.make("CartPole-v1")
    key = jax.random.PRNGKey(0)
    obs, env_state = vector_reset(env, key, ENV_SETTINGS["num_envs"])
    ppo_config, make_ppo_agent = PRESETS["ppo"]
    ppo = make_ppo_agent(ppo_config, env, 1000)
    ppo_state = ppo.init(key, obs[0])
    batch, *_ = jax.jit(lambda p, s, o, k: scan_rollout(ppo.act, p, env, s, o, k, ENV_SETTINGS["num_steps"]))(
        ppo_state.params, env_state, obs, jax.random.PRNGKey(1))
    learners = {}
    for name, (config, make) in PRESETS.items():
        agent = make(config, env, 1000)
        state = agent.init(key, obs[0])
        learn = jax.jit(agent.learn)
        jax.block_until_ready(learn(state, batch, key))  # compile and warm up
        learners[name] = (learn, state)
    times: dict[str, list[float]] = {name: [] for name in PRESETS}
    for i in range(calls):  # round robin, so that drift in the machine's speed hits every preset alike
        k = jax.random.PRNGKey(i)
        for name, (learn, state) in learners.items():
            t0 = time.perf_counter()
            jax.block_until_ready(learn(state, batch, k))
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--learn-calls", type=int, default=200)
    args = parser.parse_args()

    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in PRESETS}
    for _ in range(args.repeats):
        for name in PRESETS:
            runs[name].append(throughput(name, args.steps))
    results = {}
    for name, measured in runs.items():
        sps = statistics.median(r[0] for r in measured)
        results[name] = {"steps_per_second": round(sps), "all_steps_per_second": [round(r[0]) for r in measured],
                         "compile_seconds": round(statistics.median(r[1] for r in measured), 2)}
        print(f"{name:5s} CartPole-v1, 1 seed: {sps:,.0f} steps/s (median of {args.repeats}; runs "
              f"{', '.join(f'{r[0]:,.0f}' for r in measured)}), compile {results[name]['compile_seconds']:.1f} s",
              flush=True)
    ppo_sps = results["ppo"]["steps_per_second"]
    for name in ("trpo", "npg"):
        ratios = [r[0] / p[0] for r, p in zip(runs[name], runs["ppo"])]
        results[name]["throughput_vs_ppo"] = round(results[name]["steps_per_second"] / ppo_sps, 3)
        results[name]["throughput_vs_ppo_per_repeat"] = [round(x, 3) for x in ratios]
        print(f"{name} / ppo throughput: {results[name]['throughput_vs_ppo']:.2f} (per repeat "
              f"{', '.join(f'{x:.2f}' for x in ratios)}; target for trpo >= 0.50)", flush=True)

    seconds = learn_seconds(args.learn_calls)
    for name, s in seconds.items():
        results[name]["learn_ms"] = round(1e3 * s, 3)
        results[name]["learn_cost_vs_ppo"] = round(s / seconds["ppo"], 2)
        print(f"{name:5s} one update (jitted learn on the same 512-transition batch): {1e3 * s:.2f} ms "
              f"= {s / seconds['ppo']:.2f} × PPO's (median of {args.learn_calls})", flush=True)

    print(json.dumps({"benchmark": "trpo_npg_cartpole", "steps_per_seed": args.steps, "repeats": args.repeats,
                      "results": results, "jax": jax.__version__, "device": str(jax.devices()[0]),
                      "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
                      "date": dt.date.today().isoformat()}))


if __name__ == "__main__":
    main()
