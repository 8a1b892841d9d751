"""The training loop for JAX-native environments.

Layer 3. One training iteration (rollout of num_envs × num_steps, then the agent's `learn`) is a
pure function of a `TrainState`. `chunk_iterations` of them run as one `lax.scan`, seeds are a
`vmap` axis of that scan, and the whole chunk is compiled once (ahead of time, so compilation is
timed apart from training). A thin Python loop calls the compiled chunk until the budget is spent
and hands each chunk's metrics to a callback (progress bar, CSV), so an interrupted run keeps
every completed chunk.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pgax.algorithms import Agent, AgentState
from pgax.envs import JaxEnv, episode_statistics
from pgax.rollout import scan_rollout, vector_reset


@struct.dataclass
class TrainState:
    """Everything one seed's run carries from iteration to iteration."""

    agent: AgentState
    env_state: Any
    obs: jax.Array
    key: jax.Array


def make_iteration(agent: Agent, env: JaxEnv, num_envs: int, num_steps: int):
    """Build `init(key) -> TrainState` and `iteration(state) -> (state, metrics)` for one seed.

    `env` is wrapped with episode statistics; metrics are the agent's learn metrics plus
    `episode_return_mean` (mean over envs of the most recent completed episode's return, NaN before
    any episode has ended) and `episode_length_mean`.
    """
    env = episode_statistics(env)

    def init(key: jax.Array) -> TrainState:
        agent_key, env_key, run_key = jax.random.split(key, 3)
        obs, env_state = vector_reset(env, env_key, num_envs)
        return TrainState(agent.init(agent_key, obs[0]), env_state, obs, run_key)

    def iteration(state: TrainState):
        key, rollout_key, learn_key = jax.random.split(state.key, 3)
        batch, env_state, obs, info = scan_rollout(agent.act, state.agent.params, env, state.env_state,
                                                   state.obs, rollout_key, num_steps, agent.record_env_state)
        if agent.record_env_state:  # the agent sees the states of the env it was built for, not the wrapper's
            batch = batch.replace(env_state=batch.env_state.inner)
        agent_state, metrics = agent.learn(state.agent, batch, learn_key)
        last_length = jnp.where(info["last_length"][-1] > 0, info["last_length"][-1], jnp.nan)
        metrics = {"episode_return_mean": jnp.nanmean(info["last_return"][-1]),
                   "episode_length_mean": jnp.nanmean(last_length),
                   **metrics}
        return TrainState(agent_state, env_state, obs, key), metrics

    return init, iteration


@dataclass
class TrainResult:
    """What a run produced: final states (leading seed axis), timings and whether it finished."""

    state: TrainState
    iterations_done: int
    compile_seconds: float
    train_seconds: float
    interrupted: bool


def default_chunk_iterations(num_iterations: int, target_chunks: int = 20) -> int:
    """Iterations per compiled chunk: about `target_chunks` chunks per run, preferring a divisor of
    `num_iterations` (then no iteration of the last chunk is masked off)."""
    target = max(1, math.ceil(num_iterations / target_chunks))
    divisors = [d for d in range(max(1, target // 2), 2 * target + 1) if num_iterations % d == 0]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else target


def train(agent: Agent, env: JaxEnv, *, num_envs: int, num_steps: int, num_iterations: int,
          seeds: Sequence[int], chunk_iterations: int | None = None,
          on_chunk: Callable[[int, dict[str, np.ndarray]], None] | None = None) -> TrainResult:
    """Train one agent per seed, all seeds vmapped in one compiled program.

    Args:
        num_iterations: rollout-update iterations per seed (each num_envs × num_steps env steps).
        seeds: integer seeds; seed s starts from `jax.random.PRNGKey(s)`.
        chunk_iterations: iterations per compiled `lax.scan` chunk (default: ~50 chunks per run).
        on_chunk: called after each chunk with (iterations done so far, metrics as numpy arrays of
            shape [num_seeds, iterations in the chunk]).
    Returns:
        TrainResult; on KeyboardInterrupt the result holds the last completed chunk's state.
    """
    init, iteration = make_iteration(agent, env, num_envs, num_steps)
    chunk = chunk_iterations or default_chunk_iterations(num_iterations)

    t0 = time.perf_counter()
    # Each seed is initialised by the same single-seed program and the states are stacked. A
    # vmapped init (batched QR of the orthogonal initialiser through LAPACK) intermittently wedged
    # XLA's CPU thread pool here (jaxlib 0.10.2: every worker idle, the call never returning).
    init_one = jax.jit(init)
    per_seed = [init_one(jax.random.PRNGKey(int(s))) for s in seeds]
    state = jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *per_seed)
    metrics_shape = jax.eval_shape(iteration, jax.tree_util.tree_map(lambda x: x[0], state))[1]

    def skip(s):
        return s, jax.tree_util.tree_map(lambda m: jnp.full(m.shape, jnp.nan, m.dtype), metrics_shape)

    def run_chunk(s, start):
        if num_iterations % chunk == 0:
            return jax.lax.scan(lambda s, _: iteration(s), s, None, length=chunk)

        def body(s, i):
            # Masks the iterations past the budget in the last chunk. `start + i` is the same for
            # every seed, so under vmap this stays a real branch, not a select.
            return jax.lax.cond(start + i < num_iterations, iteration, skip, s)

        return jax.lax.scan(body, s, jnp.arange(chunk))

    compiled = jax.jit(jax.vmap(run_chunk, in_axes=(0, None))).lower(state, 0).compile()
    jax.block_until_ready(state)
    compile_seconds = time.perf_counter() - t0

    # Each chunk is dispatched (asynchronously) before the previous chunk's metrics are fetched and
    # handed to `on_chunk`, so host-side logging overlaps with training wherever dispatch is
    # asynchronous (GPU; on the CPU pgax turns async dispatch off, see pgax/__init__.py). `completed_state` is the
    # state after the last chunk whose metrics were delivered: what an interrupted run keeps.
    completed_state, completed, done, in_flight, interrupted = state, 0, 0, None, False
    t_start = time.perf_counter()
    try:
        while True:
            launched = None
            if done < num_iterations:
                count = min(chunk, num_iterations - done)
                state, metrics = compiled(state, done)
                done += count
                launched = (state, metrics, done, count)
            if in_flight is not None:
                chunk_state, metrics, chunk_done, count = in_flight
                metrics = jax.device_get(metrics)
                completed_state, completed = chunk_state, chunk_done
                if on_chunk is not None:
                    on_chunk(chunk_done, {k: np.asarray(v)[:, :count] for k, v in metrics.items()})
            if launched is None:
                break
            in_flight = launched
    except KeyboardInterrupt:
        interrupted = True
    train_seconds = time.perf_counter() - t_start
    return TrainResult(completed_state, completed, compile_seconds, train_seconds, interrupted)


def evaluate(agent: Agent, env: JaxEnv, params: Any, key: jax.Array, episodes: int) -> np.ndarray:
    """Deterministic evaluation: returns [num_seeds, episodes] undiscounted episode returns.

    `params` has a leading seed axis. Each of `episodes` environments per seed runs one episode
    with the mode of the policy, for at most `env.max_episode_steps` steps.
    """

    def one_seed(params, key):
        reset_key, step_key = jax.random.split(key)
        obs, env_state = vector_reset(env, reset_key, episodes)

        def step(carry, k):
            env_state, obs, total, finished = carry
            action = agent.act_deterministic(params, obs)
            t = jax.vmap(env.step)(jax.random.split(k, episodes), env_state, action)
            total = total + jnp.where(finished, 0.0, t.reward)
            finished = finished | t.terminated | t.truncated
            return (t.state, t.obs, total, finished), None

        init = (env_state, obs, jnp.zeros(episodes), jnp.zeros(episodes, bool))
        (_, _, total, _), _ = jax.lax.scan(step, init, jax.random.split(step_key, env.max_episode_steps))
        return total

    num_seeds = jax.tree_util.tree_leaves(params)[0].shape[0]
    returns = jax.jit(jax.vmap(one_seed))(params, jax.random.split(key, num_seeds))
    return np.asarray(returns)


# ---------------------------------------------------------------------------------------------
# The host training loop: Gymnasium environments through the host rollout driver.
# ---------------------------------------------------------------------------------------------


@struct.dataclass
class HostTrainState:
    """What `train_host` carries per seed (every leaf has a leading seed axis [S]).

    agent: AgentState; rollout: HostRolloutState (current observations, normalisation statistics,
    episode statistics); key: PRNG key. `rollout.obs_stats` / `rollout.reward_scale` are the saved
    normalisation statistics (None when off); evaluation uses obs_stats frozen."""

    agent: AgentState
    rollout: Any
    key: jax.Array


def host_env_seeds(seeds: Sequence[int], num_envs: int, offset: int = 0) -> list[int]:
    """Gymnasium reset seeds of the S × N env copies: copy i of seed s gets offset + s·N + i, so a seed's
    envs are the same whichever other seeds run beside it."""
    return [offset + int(s) * num_envs + i for s in seeds for i in range(num_envs)]


def train_host(agent: Agent, env, *, num_envs: int, num_steps: int, num_iterations: int, seeds: Sequence[int],
               chunk_iterations: int | None = None,
               on_chunk: Callable[[int, dict[str, np.ndarray]], None] | None = None,
               asynchronous: bool = False, num_workers: int | None = None, normalize_obs: bool = False,
               normalize_reward: bool = False, gamma: float = 0.99) -> TrainResult:
    """Train one agent per seed on a Gymnasium env (`pgax.envs.gymnasium_env.GymnasiumEnv`) with
    the host rollout driver; the counterpart of `train` for environments that are not JAX.

    All seeds share one Gymnasium vector env of S × N copies (S = len(seeds), N = num_envs; seed
    s owns N of them, reset with seeds s·N + i), so each vector step is one jitted policy call for
    every seed, and one iteration is the host rollout of num_steps steps followed by the agent's
    jitted `learn` vmapped over seeds (each seed learns from its own [T, N] batch only, exactly as
    in `train`). Per-seed results do not depend on which other seeds run beside it.

    Args (as `train`, plus):
        asynchronous: step the copies in this process and `num_workers` worker processes at once
            (`pgax.envs.workers.WorkerVectorEnv`; num_workers = S × N: a worker per copy, this
            process only runs the policy; default `pgax.envs.workers.default_num_workers`).
        normalize_obs, normalize_reward: running observation normalisation and reward scaling
            (`pgax.envs.normalize`, clip 10); the statistics are in `result.state.rollout`.
        gamma: discount of the return whose running std scales the rewards.
    Metrics per iteration: the agent's, plus `episode_return_mean` / `episode_length_mean` (mean
    over a seed's envs of the last completed episode's raw return / length; NaN before one ends).
    `on_chunk(iterations done, metrics [S, k])` is called every `chunk_iterations` iterations.
    Returns TrainResult; compile_seconds covers resetting the envs and compiling the jitted parts,
    train_seconds the iterations. On KeyboardInterrupt the result holds the state after the last
    completed iteration (whose metrics were all handed to `on_chunk`).
    """
    from pgax.envs.gymnasium_env import make_vector
    from pgax.errors import ConfigError
    from pgax.rollout import make_host_driver

    if agent.record_env_state:
        raise ConfigError("this algorithm restarts rollouts from recorded JAX env states, which a Gymnasium env "
                          "cannot provide; use a JAX-native env (pgax list) with --driver jax")
    seeds = [int(s) for s in seeds]
    S = len(seeds)
    chunk = chunk_iterations or default_chunk_iterations(num_iterations)

    t0 = time.perf_counter()
    driver = make_host_driver(agent.act, env, S, num_envs, normalize_obs=normalize_obs,
                              normalize_reward=normalize_reward, gamma=gamma)
    vector_env = make_vector(env, S * num_envs, asynchronous, num_workers)
    try:
        rollout_state = driver.reset(vector_env, host_env_seeds(seeds, num_envs))
        init_one = jax.jit(lambda key, obs: _host_init(agent, key, obs))
        per_seed = [init_one(jax.random.PRNGKey(s), rollout_state.obs[i, 0]) for i, s in enumerate(seeds)]
        agent_state, keys = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *per_seed)
        state = HostTrainState(agent_state, rollout_state, keys)

        split3 = jax.jit(jax.vmap(lambda k: tuple(jax.random.split(k, 3))))

        def learn_one(agent_state, batch, key, last_return, last_length):
            agent_state, metrics = agent.learn(agent_state, batch, key)
            metrics = {"episode_return_mean": jnp.nanmean(last_return),
                       "episode_length_mean": jnp.nanmean(jnp.where(last_length > 0, last_length, jnp.nan)),
                       **metrics}
            return agent_state, metrics

        learn_all = jax.jit(jax.vmap(learn_one))
        # Compile everything ahead of the timed loop: one rollout (its statistics are discarded,
        # the env continues from where it got to) and the learn step on its batch's shapes.
        _, rollout_key, _ = split3(keys)
        batch, _ = driver.rollout(agent_state.params, rollout_state, vector_env, rollout_key, num_steps)
        episodes = rollout_state.episodes
        learn_all = learn_all.lower(agent_state, batch, keys, episodes.last_return, episodes.last_length).compile()
        # The warm-up rollout moved the vector env on: re-reset it so that a run is reproducible.
        state = state.replace(rollout=driver.reset(vector_env, host_env_seeds(seeds, num_envs)))
        compile_seconds = time.perf_counter() - t0

        completed_state, completed, interrupted = state, 0, False
        pending: list[dict[str, np.ndarray]] = []

        def deliver():
            chunk_metrics = list(pending)
            pending.clear()  # each iteration's metrics are handed over once, even if on_chunk raises
            if chunk_metrics and on_chunk is not None:
                on_chunk(completed, {k: np.stack([m[k] for m in chunk_metrics], axis=1) for k in chunk_metrics[0]})

        t_start = time.perf_counter()
        try:
            for it in range(num_iterations):
                keys, rollout_key, learn_key = split3(state.key)
                batch, rollout_state = driver.rollout(state.agent.params, state.rollout, vector_env, rollout_key,
                                                      num_steps)
                agent_state, metrics = learn_all(state.agent, batch, learn_key, rollout_state.episodes.last_return,
                                                 rollout_state.episodes.last_length)
                state = HostTrainState(agent_state, rollout_state, keys)
                pending.append({k: np.asarray(v) for k, v in jax.device_get(metrics).items()})
                completed_state, completed = state, it + 1
                if completed % chunk == 0 or completed == num_iterations:
                    deliver()
        except KeyboardInterrupt:
            interrupted = True
            deliver()
        train_seconds = time.perf_counter() - t_start
    finally:
        _close_quietly(vector_env)
    return TrainResult(completed_state, completed, compile_seconds, train_seconds, interrupted)


def _close_quietly(vector_env) -> None:
    """Close a vector env; after Ctrl-C an async env's workers may already be gone, which is fine."""
    try:
        vector_env.close()
    except Exception:  # noqa: BLE001 - nothing left to save in a closing env
        pass


def _host_init(agent: Agent, key: jax.Array, obs: jax.Array):
    agent_key, _, run_key = jax.random.split(key, 3)  # the same split as `train`'s init
    return agent.init(agent_key, obs), run_key


def evaluate_host(agent: Agent, env, params: Any, obs_stats: Any, seeds: Sequence[int], episodes: int,
                  asynchronous: bool = False, max_steps: int | None = None,
                  num_workers: int | None = None) -> np.ndarray:
    """Deterministic evaluation on a Gymnasium env: returns [num_seeds, episodes] undiscounted returns.

    `params` and `obs_stats` (None: no normalisation) have a leading seed axis; the statistics are
    used frozen. Each seed runs `episodes` env copies (reset seeds 1_000_000 + s·episodes + i, apart
    from training's) for one episode each with the mode of the policy, for at most `max_steps`
    steps (default: the env's time limit, or 10,000 when it has none).
    """
    from pgax.envs.gymnasium_env import make_vector
    from pgax.envs.normalize import normalize_obs

    seeds = [int(s) for s in seeds]
    S, E = len(seeds), episodes
    limit = max_steps or env.max_episode_steps or 10_000

    def act_one(params, stats, obs):
        return agent.act_deterministic(params, obs if stats is None else normalize_obs(stats, obs))

    act_all = jax.jit(jax.vmap(act_one))
    workers = None if num_workers is None else min(num_workers, S * E)  # fewer copies than in training: fewer workers
    vector_env = make_vector(env, S * E, asynchronous, workers)
    try:
        raw, _ = vector_env.reset(seed=host_env_seeds(seeds, E, offset=1_000_000))
        total = np.zeros(S * E)
        finished = np.zeros(S * E, bool)
        for _ in range(limit):
            obs = env.obs_to_array(raw).reshape(S, E, -1)
            action = np.asarray(act_all(params, obs_stats, obs))
            raw, reward, terminated, truncated, _ = vector_env.step(
                env.to_env_action(action.reshape((S * E,) + action.shape[2:])))
            total += np.where(finished, 0.0, reward)
            finished |= terminated | truncated
            if finished.all():
                break
    finally:
        _close_quietly(vector_env)
    return total.reshape(S, E)
