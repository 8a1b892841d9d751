"""The training loop: one loop over one driver protocol.

Layer 3. A `Driver` turns an agent and an environment into training iterations (a rollout of
num_envs × num_steps per seed, then the agent's `learn`), for every seed at once:

    init()                         -> state, every leaf with a leading seed axis [S]
    compile(state)                 ahead-of-time compilation for these shapes (timed apart)
    run(state, start, count, stop) -> (state, metrics {name: [S, k]}, k)   k ≤ count iterations
    restart(state, done)           a state restored from a checkpoint -> the state to continue from
    evaluate(state, episodes)      -> [S, episodes] returns of the deterministic policy
    close()

Two drivers implement it. `jax_driver` (JAX-native envs): an iteration is a pure function of a
`TrainState`; `run` is one compiled program, a `lax.scan` of the iteration over at most
`chunk_iterations` steps whose trip count is an argument (iterations past it are skipped by a
`lax.cond` whose predicate all seeds share), seeds a `vmap` axis; so any split of a run into
chunks gives bit-identical results, which is what exact resume needs. `host_driver` (Gymnasium
envs): all seeds × envs in one Gymnasium vector env stepped on the host, the agent's jitted
`learn` vmapped over seeds. `train_loop` runs a driver for a budget of iterations: it hands each
chunk's metrics to a callback, checks every chunk for non-finite parameters, losses and env
outputs (`NonFinite`), stops at a chunk boundary when asked (`stop()`: signals) and keeps the last
completed chunk on Ctrl-C or an error. `train` and `evaluate` are the library calls on top.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pgax.algorithms import Agent, AgentState
from pgax.batch import ROWS_AXIS
from pgax.envs import JaxEnv, episode_statistics
from pgax.rollout import normalized_scan_rollout, vector_reset

HEALTH = "_nonfinite"
"""The per-iteration metric (int32 bit set, not written to metrics.csv) that marks non-finite values."""
NONFINITE_PARAMS, NONFINITE_LOSS, NONFINITE_ENV = 1, 2, 4
EVAL_STREAM = 0x65766131
"""Evaluation keys are `fold_in(PRNGKey(seed), EVAL_STREAM)`: each seed's own, apart from training's."""
NORMALIZE_CLIP = 10.0


@struct.dataclass
class TrainState:
    """Everything one seed's run carries from iteration to iteration (JAX-native driver).

    obs are the observations to act on next (normalised when obs_stats is set); obs_stats
    (RunningMeanStd) and reward_scale (RewardScaleState) are None when normalisation is off."""

    agent: AgentState
    env_state: Any
    obs: jax.Array
    key: jax.Array
    obs_stats: Any = None
    reward_scale: Any = None


def nonfinite_code(params: Any, metrics: dict, batch) -> jax.Array:
    """int32: NONFINITE_PARAMS | NONFINITE_LOSS | NONFINITE_ENV for whichever of the parameters after
    learning, the metrics named *loss, and the rollout's observations and rewards hold a NaN or ±inf."""

    def all_finite(leaves):
        checks = [jnp.all(jnp.isfinite(x)) for x in leaves if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
        return jnp.all(jnp.stack(checks)) if checks else jnp.asarray(True)

    params_ok = all_finite(jax.tree_util.tree_leaves(params))
    loss_ok = all_finite([v for k, v in metrics.items() if k.endswith("loss")])
    env_ok = all_finite([batch.obs, batch.next_obs, batch.reward])
    return ((~params_ok).astype(jnp.int32) * NONFINITE_PARAMS + (~loss_ok).astype(jnp.int32) * NONFINITE_LOSS
            + (~env_ok).astype(jnp.int32) * NONFINITE_ENV)


def make_iteration(agent: Agent, env: JaxEnv, num_envs: int, num_steps: int, *, normalize_obs: bool = False,
                   normalize_reward: bool = False, gamma: float = 0.99):
    """Build `init(key) -> TrainState` and `iteration(state) -> (state, metrics)` for one seed.

    `env` is wrapped with episode statistics; metrics are the agent's learn metrics plus
    `episode_return_mean` (mean over envs of the most recent completed episode's raw return, NaN
    before any episode has ended), `episode_length_mean` and HEALTH. normalize_obs / normalize_reward:
    running observation normalisation and reward scaling by the running std of the γ-discounted
    return (`pgax.envs.normalize`, clip 10), as the host driver does them.
    """
    from pgax.envs.normalize import init_reward_scale, init_stats, normalize_obs as normalize, scale_rewards, update_stats

    env = episode_statistics(env)

    def init(key: jax.Array) -> TrainState:
        agent_key, env_key, run_key = jax.random.split(key, 3)
        obs, env_state = vector_reset(env, env_key, num_envs)
        obs_stats = reward_scale = None
        if normalize_obs:
            obs_stats = update_stats(init_stats(obs.shape[1:]), obs)
            obs = normalize(obs_stats, obs, NORMALIZE_CLIP)
        if normalize_reward:
            reward_scale = init_reward_scale(num_envs)
        return TrainState(agent.init(agent_key, obs[0]), env_state, obs, run_key, obs_stats, reward_scale)

    def iteration(state: TrainState):
        key, rollout_key, learn_key = jax.random.split(state.key, 3)
        batch, env_state, obs, info, obs_stats = normalized_scan_rollout(
            agent.act, state.agent.params, env, state.env_state, state.obs, state.obs_stats, rollout_key, num_steps,
            agent.record_env_state, NORMALIZE_CLIP)
        reward_scale = state.reward_scale
        if reward_scale is not None:
            reward_scale, scaled = scale_rewards(reward_scale, batch.reward, batch.terminated | batch.truncated, gamma,
                                                 NORMALIZE_CLIP)
            batch = batch.replace(reward=scaled)
        if agent.record_env_state:  # the agent sees the states of the env it was built for, not the wrapper's
            batch = batch.replace(env_state=batch.env_state.inner)
        agent_state, metrics = agent.learn(state.agent, batch, learn_key)
        last_length = jnp.where(info["last_length"][-1] > 0, info["last_length"][-1], jnp.nan)
        metrics = {"episode_return_mean": jnp.nanmean(info["last_return"][-1]),
                   "episode_length_mean": jnp.nanmean(last_length),
                   **metrics,
                   HEALTH: nonfinite_code(agent_state.params, metrics, batch)}
        return TrainState(agent_state, env_state, obs, key, obs_stats, reward_scale), metrics

    return init, iteration


class Driver(NamedTuple):
    """A rollout backend for all seeds of a run (see the module docstring for each function)."""

    init: Callable[[], Any]
    compile: Callable[[Any], None]
    run: Callable[[Any, int, int, Callable[[], bool]], tuple[Any, dict, int]]
    restart: Callable[[Any, int], Any]
    evaluate: Callable[[Any, int], np.ndarray]
    policy: Callable[[Any], tuple[Any, Any]]
    """state -> (params [S], obs_stats [S] or None): what acting needs."""
    close: Callable[[], None]
    seeds: tuple[int, ...]
    jittable: bool


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """The seeds as ints; each must lie in [0, 2³²) (a PRNG seed is 32 bits: 2³² would equal 0)."""
    from pgax.errors import ConfigError

    out = [int(s) for s in seeds]
    bad = [s for s in out if not 0 <= s < 2 ** 32]
    if bad:
        raise ConfigError(f"seed {bad[0]} is outside [0, 2^32); seeds are 32-bit, choose seeds in that range")
    return out


def stack_seeds(per_seed: Sequence[Any]) -> Any:
    """Stack S pytrees of the same structure leaf by leaf into one with a leading seed axis [S, ...].

    The stacking is done on the host: an eager `jnp.stack` would compile one small program per leaf shape.
    """
    return jax.tree_util.tree_map(lambda *leaves: jnp.asarray(np.stack([np.asarray(x) for x in leaves])), *per_seed)


def eval_keys(seeds: Sequence[int]) -> jax.Array:
    """[S, 2] evaluation keys, each derived from its seed alone."""
    return stack_seeds([jax.random.fold_in(jax.random.PRNGKey(s), EVAL_STREAM) for s in seeds])


def jax_driver(agent: Agent | Callable[[dict], Agent], env: JaxEnv, *, num_envs: int, num_steps: int,
               seeds: Sequence[int], chunk_iterations: int, normalize_obs: bool = False, normalize_reward: bool = False,
               gamma: Any = 0.99, hyper: dict[str, np.ndarray] | None = None, devices: int = 1) -> Driver:
    """The driver of JAX-native envs: the chunk of up to `chunk_iterations` iterations is one
    compiled program for every seed (state leaves [S, ...]); `run(state, start, count)` runs the
    first `count` of them.

    hyper: per-row hyperparameters {name: [S]} (a sweep's configurations × seeds, `pgax.sweep`); then
    `agent` is a function `h -> Agent` of one row's values {name: scalar}, called inside the traced
    programs, so rows with different values share one compiled program; `gamma` may be such a name.

    devices: how many of `jax.devices()` the rows (seeds) are split over (`row_devices`; 0: all). Each
    device runs its block of rows; rows never interact, so the results equal the one-device ones.
    """
    seeds = tuple(check_seeds(seeds))
    K = int(chunk_iterations)
    programs: dict = {}
    sharding, replicated = row_shardings(row_devices(len(seeds), devices))
    rows = None if hyper is None else place({k: jnp.asarray(v, jnp.float32) for k, v in hyper.items()}, sharding)

    def functions(h):
        one_agent = agent if h is None else agent(h)
        g = h[gamma] if h is not None and isinstance(gamma, str) else gamma
        return make_iteration(one_agent, env, num_envs, num_steps, normalize_obs=normalize_obs,
                              normalize_reward=normalize_reward, gamma=g)

    def init():
        # Each seed is initialised by the same single-seed program and the states are stacked. A
        # vmapped init (batched QR of the orthogonal initialiser through LAPACK) intermittently wedged
        # XLA's CPU thread pool (every worker idle, the call never returning).
        if rows is None:
            one = jax.jit(functions(None)[0])
            return place(stack_seeds([one(jax.random.PRNGKey(s)) for s in seeds]), sharding)
        one = jax.jit(lambda key, h: functions(h)[0](key))
        host_rows = {k: np.asarray(v) for k, v in rows.items()}
        return place(stack_seeds([one(jax.random.PRNGKey(s), {k: v[i] for k, v in host_rows.items()})
                                  for i, s in enumerate(seeds)]), sharding)

    def chunk_program(state):
        one_seed = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), state)
        one_h = None if rows is None else {k: jax.ShapeDtypeStruct((), v.dtype) for k, v in rows.items()}
        metrics_shape = jax.eval_shape(lambda s, h: functions(h)[1](s), one_seed, one_h)[1]

        def skip(s):
            return s, jax.tree_util.tree_map(
                lambda m: jnp.full(m.shape, jnp.nan if jnp.issubdtype(m.dtype, jnp.floating) else 0, m.dtype),
                metrics_shape)

        def run_chunk(s, h, count):
            iteration = functions(h)[1]
            # `i < count` is the same for every seed, so under vmap this stays a real branch.
            return jax.lax.scan(lambda s, i: jax.lax.cond(i < count, iteration, skip, s), s, jnp.arange(K))

        split = {} if sharding is None else {"out_shardings": sharding}
        if rows is None:
            if sharding is not None:
                split["in_shardings"] = (sharding, replicated)
            program = jax.jit(jax.vmap(lambda s, count: run_chunk(s, None, count), in_axes=(0, None),
                                       axis_name=ROWS_AXIS), **split)
            return program.lower(state, jnp.int32(K)).compile()
        if sharding is not None:
            split["in_shardings"] = (sharding, sharding, replicated)
        program = jax.jit(jax.vmap(run_chunk, in_axes=(0, 0, None), axis_name=ROWS_AXIS), **split)
        compiled = program.lower(state, rows, jnp.int32(K)).compile()
        return lambda s, count: compiled(s, rows, count)

    def compile(state):
        if "chunk" not in programs:
            programs["chunk"] = chunk_program(state)

    def run(state, start, count, stop):
        state = place(state, sharding)  # a restored checkpoint comes back on one device
        compile(state)
        count = max(1, min(int(count), K))
        state, metrics = programs["chunk"](state, jnp.int32(count))
        return state, {k: np.asarray(v)[:, :count] for k, v in metrics.items()}, count

    def evaluate_(state, episodes):
        state = place(state, sharding)
        if rows is None:
            return evaluate(agent, env, state.agent.params, seeds, episodes, obs_stats=state.obs_stats)
        name = ("evaluate", int(episodes))
        if name not in programs:
            programs[name] = jax.jit(jax.vmap(lambda p, st, key, h: evaluation_rollout(
                agent(h), env, int(episodes), True, p, st, key)))
        return np.asarray(programs[name](state.agent.params, state.obs_stats, eval_keys(seeds), rows))

    return Driver(init, compile, run, lambda state, done: state, evaluate_,
                  lambda state: (state.agent.params, state.obs_stats), lambda: None, seeds, True)


def row_devices(rows: int, requested: int = 0) -> list:
    """The devices `rows` rows are split over: the first n of `jax.devices()`, n the largest number not above
    `requested` (0: every device) that divides `rows`, so every device holds the same number of rows."""
    from pgax.errors import ConfigError

    available = jax.devices()
    if requested < 0 or requested > len(available):
        raise ConfigError(f"--devices {requested}: JAX sees {len(available)} device(s) "
                          f"({available[0].platform}); give a number from 1 to {len(available)}, or 0 for all")
    n = len(available) if requested == 0 else requested
    while rows % n:
        n -= 1
    return available[:n]


def row_shardings(devices: list) -> tuple[Any, Any]:
    """(the sharding of arrays whose leading axis is the rows, split in blocks over `devices`; the
    replicated sharding), or (None, None) for one device."""
    if len(devices) == 1:
        return None, None
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(devices), ("rows",))
    return NamedSharding(mesh, PartitionSpec("rows")), NamedSharding(mesh, PartitionSpec())


def place(tree: Any, sharding: Any) -> Any:
    """`tree` (leaves [R, ...]) split over the devices of `sharding`; unchanged for None."""
    return tree if sharding is None else jax.device_put(tree, sharding)


def evaluate(agent: Agent, env, params: Any, seeds: Sequence[int], episodes: int, obs_stats: Any = None,
             deterministic: bool = True, **host_options) -> np.ndarray:
    """Evaluation: returns [S, episodes] undiscounted episode returns, S = len(seeds).

    `params` (and `obs_stats`, the normalisation statistics used frozen; None: raw observations) have
    a leading seed axis. Each of `episodes` env copies per seed runs one episode with the mode of the
    policy (`deterministic`), or sampling from it. JAX-native env: at most `env.max_episode_steps` steps, the copies reset and stepped with
    keys from `fold_in(PRNGKey(seed), EVAL_STREAM)`, so a seed's evaluation does not depend on the
    other seeds of its run. Gymnasium env: see `evaluate_gymnasium` (`host_options` go there).
    """
    seeds = check_seeds(seeds)
    if not isinstance(env, JaxEnv):
        return evaluate_gymnasium(agent, env, params, obs_stats, seeds, episodes, deterministic=deterministic,
                                  **host_options)
    program = _evaluation_program(agent, env, int(episodes), bool(deterministic))
    return np.asarray(program(params, obs_stats, eval_keys(seeds)))


@functools.lru_cache(maxsize=16)
def _evaluation_program(agent: Agent, env: JaxEnv, episodes: int, deterministic: bool):
    """The jitted, seed-vmapped evaluation `(params [S], obs_stats [S] | None, keys [S]) -> returns [S, E]`,
    built once per (agent, env, episodes) so that periodic evaluations reuse one program."""
    return jax.jit(jax.vmap(functools.partial(evaluation_rollout, agent, env, episodes, deterministic)))


def evaluation_rollout(agent: Agent, env: JaxEnv, episodes: int, deterministic: bool, params: Any, stats: Any,
                       key: jax.Array) -> jax.Array:
    """One seed's evaluation: [episodes] undiscounted returns of `episodes` env copies, each run for one
    episode (at most env.max_episode_steps steps) with the policy's mode (`deterministic`) or samples."""
    from pgax.envs.normalize import normalize_obs

    reset_key, step_key = jax.random.split(key)
    obs, env_state = vector_reset(env, reset_key, episodes)

    def step(carry, k):
        env_state, obs, total, finished = carry
        seen = obs if stats is None else normalize_obs(stats, obs, NORMALIZE_CLIP)
        act_key, env_key = jax.random.split(k)
        action = agent.act_deterministic(params, seen) if deterministic else agent.act(params, seen, act_key)[0]
        t = jax.vmap(env.step)(jax.random.split(env_key, episodes), env_state, action)
        total = total + jnp.where(finished, 0.0, t.reward)
        finished = finished | t.terminated | t.truncated
        return (t.state, t.obs, total, finished), None

    init = (env_state, obs, jnp.zeros(episodes), jnp.zeros(episodes, bool))
    (_, _, total, _), _ = jax.lax.scan(step, init, jax.random.split(step_key, env.max_episode_steps))
    return total


@dataclass
class TrainResult:
    """What a run produced: final states (leading seed axis), counts, timings and how it ended.

    state: the state after the last completed chunk (the last finite one when `nonfinite` is set).
    nonfinite: None, or NonFinite describing the first chunk with a non-finite value.
    error: None, or the exception that stopped the run (the completed chunks are kept).
    stopped: the run was asked to stop (`stop()` returned True) before its budget was spent.
    """

    state: Any
    iterations_done: int
    compile_seconds: float
    train_seconds: float
    interrupted: bool
    nonfinite: NonFinite | None = None
    error: BaseException | None = None
    stopped: bool = False
    seeds: tuple[int, ...] = ()


@dataclass(frozen=True)
class NonFinite:
    """The first iteration (1-based, counted from the run's start) with a non-finite value, the seeds
    that had one, and what: a subset of ("parameters", "losses", "env outputs")."""

    iteration: int
    seeds: tuple[int, ...]
    what: tuple[str, ...]

    def describe(self) -> str:
        return f"non-finite {' and '.join(self.what)} at iteration {self.iteration} (seed {', '.join(map(str, self.seeds))})"


def find_nonfinite(health: np.ndarray, seeds: Sequence[int], first_iteration: int) -> NonFinite | None:
    """health [S, k] HEALTH codes of the iterations first_iteration … first_iteration + k − 1."""
    health = np.asarray(health)
    bad = np.flatnonzero(health.any(axis=0))
    if bad.size == 0:
        return None
    j = int(bad[0])
    column = health[:, j]
    what = tuple(name for bit, name in ((NONFINITE_PARAMS, "parameters"), (NONFINITE_LOSS, "losses"),
                                        (NONFINITE_ENV, "env outputs")) if np.any(column & bit))
    return NonFinite(first_iteration + j, tuple(int(s) for s, c in zip(seeds, column) if c), what)


def default_chunk_iterations(num_iterations: int, target_chunks: int = 20) -> int:
    """Iterations per compiled chunk: about `target_chunks` chunks per run, preferring a divisor of
    `num_iterations` (then every chunk is full)."""
    target = max(1, math.ceil(num_iterations / target_chunks))
    divisors = [d for d in range(max(1, target // 2), 2 * target + 1) if num_iterations % d == 0]
    return min(divisors, key=lambda d: abs(d - target)) if divisors else target


def train_loop(driver: Driver, state: Any, *, start: int, num_iterations: int, chunk_iterations: int,
               chunk_seconds: float | None = None,
               on_chunk: Callable[[int, dict[str, np.ndarray], Any], None] | None = None,
               stop: Callable[[], bool] | None = None, align: Sequence[int] = ()) -> TrainResult:
    """Run `driver` from `state` (after `start` iterations) until `num_iterations` are done.

    Chunks hold `chunk_iterations` iterations; with `chunk_seconds` the chunk size adapts so that a
    chunk takes about that long (starting from one iteration), so a stop request is answered
    within about that time. Each chunk is dispatched before the previous chunk's metrics are
    fetched, so host-side work overlaps training wherever dispatch is asynchronous (GPU).
    `on_chunk(iterations done, metrics {name: [S, k]} without HEALTH, state after the chunk)` is
    called once per completed chunk. A chunk with a non-finite value is still handed to on_chunk,
    then the run stops with `nonfinite` set and the state before that chunk. KeyboardInterrupt and
    exceptions (in the driver or in on_chunk) stop the run keeping the last completed chunk.
    `align`: periods (in iterations) whose multiples every chunk ends on rather than crosses
    (periodic evaluation and checkpoints see the state at exactly those iterations). on_chunk is
    called with state None for a chunk with a non-finite value.
    """
    t_start = time.perf_counter()
    completed_state, completed = state, start
    done, in_flight = start, None
    count = 1 if chunk_seconds else chunk_iterations
    last_delivery = time.perf_counter()
    result = dict(interrupted=False, nonfinite=None, error=None, stopped=False)
    try:
        while True:
            launched, launch_failure = None, None
            if done < num_iterations and not result["stopped"]:
                if stop is not None and stop():
                    result["stopped"] = True
                else:
                    want = min([count, num_iterations - done, chunk_iterations]
                               + [p - done % p for p in align if p > 0])
                    try:
                        state, metrics, k = driver.run(state, done, want, stop or (lambda: False))
                        launched = (state, metrics, done + k, k)
                        done += k
                    except (Exception, KeyboardInterrupt) as e:  # the chunk in flight is still delivered
                        launch_failure = e
            if in_flight is not None:
                chunk_state, metrics, chunk_done, k = in_flight
                metrics = {name: np.asarray(v) for name, v in jax.device_get(metrics).items()}
                health = metrics.pop(HEALTH, None)
                bad = None if health is None else find_nonfinite(health, driver.seeds, chunk_done - k + 1)
                if bad is None:  # a delivered chunk is kept, even if on_chunk then raises
                    completed_state, completed = chunk_state, chunk_done
                if on_chunk is not None:
                    on_chunk(chunk_done, metrics, chunk_state if bad is None else None)
                if bad is not None:
                    result["nonfinite"] = bad
                    break
                now = time.perf_counter()
                if chunk_seconds:
                    elapsed, last_delivery = now - last_delivery, now
                    if elapsed > chunk_seconds:
                        count = max(1, int(k * chunk_seconds / elapsed))
                    elif elapsed < chunk_seconds / 4:
                        count = min(chunk_iterations, 2 * max(count, k))
            if launch_failure is not None:
                raise launch_failure
            if launched is None:
                break
            in_flight = launched
    except KeyboardInterrupt:
        result["interrupted"] = True
    except Exception as e:  # noqa: BLE001 - handed to the caller with the completed chunks
        result["error"] = e
    return TrainResult(completed_state, completed, 0.0, time.perf_counter() - t_start, **result, seeds=driver.seeds)


def make_driver(agent: Agent, env, *, num_envs: int, num_steps: int, seeds: Sequence[int], chunk_iterations: int,
                normalize_obs: bool = False, normalize_reward: bool = False, gamma: float = 0.99,
                asynchronous: bool = False, num_workers: int | None = None, devices: int = 1) -> Driver:
    """`jax_driver` for a `JaxEnv`, `host_driver` for a Gymnasium env (`asynchronous`, `num_workers`:
    its vector env, see `pgax.envs.gymnasium_env.make_vector`; `devices`: the jax driver's row split)."""
    if isinstance(env, JaxEnv):
        return jax_driver(agent, env, num_envs=num_envs, num_steps=num_steps, seeds=seeds,
                          chunk_iterations=chunk_iterations, normalize_obs=normalize_obs,
                          normalize_reward=normalize_reward, gamma=gamma, devices=devices)
    return host_driver(agent, env, num_envs=num_envs, num_steps=num_steps, seeds=seeds,
                       normalize_obs=normalize_obs, normalize_reward=normalize_reward, gamma=gamma,
                       asynchronous=asynchronous, num_workers=num_workers)


def train(agent: Agent, env, *, num_envs: int, num_steps: int, num_iterations: int, seeds: Sequence[int],
          chunk_iterations: int | None = None,
          on_chunk: Callable[[int, dict[str, np.ndarray]], None] | None = None,
          normalize_obs: bool = False, normalize_reward: bool = False, gamma: float = 0.99,
          asynchronous: bool = False, num_workers: int | None = None) -> TrainResult:
    """Train one agent per seed, all seeds together: a `JaxEnv` through `jax_driver` (one compiled,
    seed-vmapped program), a Gymnasium env (`pgax.envs.gymnasium_env.GymnasiumEnv`) through
    `host_driver`.

    Args:
        num_iterations: rollout-update iterations per seed (each num_envs × num_steps env steps).
        seeds: integer seeds in [0, 2³²); seed s starts from `jax.random.PRNGKey(s)`; a seed's run
            does not depend on which other seeds run beside it.
        chunk_iterations: iterations per chunk (default: about 20 chunks per run).
        on_chunk: called after each chunk with (iterations done so far, metrics as numpy arrays of
            shape [num_seeds, iterations in the chunk]).
        normalize_obs, normalize_reward, gamma: running observation normalisation and reward
            scaling by the std of the γ-discounted return (`pgax.envs.normalize`, clip 10); the
            statistics are in the final state (`obs_stats`, `reward_scale`; for Gymnasium envs
            `state.rollout.obs_stats` / `.reward_scale`).
        asynchronous, num_workers: the Gymnasium vector env (`pgax.envs.gymnasium_env.make_vector`).
    Returns:
        TrainResult; on KeyboardInterrupt the result holds the last completed chunk's state.
        An exception in the driver is re-raised (after closing the envs).
    """
    chunk = chunk_iterations or default_chunk_iterations(num_iterations)
    t0 = time.perf_counter()
    driver = make_driver(agent, env, num_envs=num_envs, num_steps=num_steps, seeds=seeds, chunk_iterations=chunk,
                         normalize_obs=normalize_obs, normalize_reward=normalize_reward, gamma=gamma,
                         asynchronous=asynchronous, num_workers=num_workers)
    try:
        state = driver.init()
        driver.compile(state)
        jax.block_until_ready(state)
        compile_seconds = time.perf_counter() - t0
        result = train_loop(driver, state, start=0, num_iterations=num_iterations, chunk_iterations=chunk,
                            on_chunk=None if on_chunk is None else (lambda done, m, _: on_chunk(done, m)))
    finally:
        driver.close()
    if result.error is not None:
        raise result.error
    result.compile_seconds = compile_seconds
    return result


# ---------------------------------------------------------------------------------------------
# The host driver: Gymnasium environments through the host rollout driver.
# ---------------------------------------------------------------------------------------------


@struct.dataclass
class HostTrainState:
    """What the host driver carries per seed (every leaf has a leading seed axis [S]).

    agent: AgentState; rollout: HostRolloutState (current observations, normalisation statistics,
    episode statistics); key: PRNG key. `rollout.obs_stats` / `rollout.reward_scale` are the
    normalisation statistics (None when off); evaluation uses obs_stats frozen."""

    agent: AgentState
    rollout: Any
    key: jax.Array


def host_env_seeds(seeds: Sequence[int], num_envs: int, offset: int = 0) -> list[int]:
    """Gymnasium reset seeds of the S × N env copies: copy i of seed s gets offset + s·N + i, so a seed's
    envs are the same whichever other seeds run beside it."""
    return [offset + int(s) * num_envs + i for s in seeds for i in range(num_envs)]


RESTART_SEED_OFFSET = 2_000_000
"""A resumed Gymnasium run resets its envs with seeds RESTART_SEED_OFFSET + iterations done + s·N + i."""


def host_driver(agent: Agent, env, *, num_envs: int, num_steps: int, seeds: Sequence[int],
                normalize_obs: bool = False, normalize_reward: bool = False, gamma: float = 0.99,
                asynchronous: bool = False, num_workers: int | None = None, devices: int = 1) -> Driver:
    """The driver of Gymnasium envs (`pgax.envs.gymnasium_env.GymnasiumEnv`).

    All seeds share one Gymnasium vector env of S × N copies (S = len(seeds), N = num_envs; seed s
    owns N of them, reset with seeds s·N + i), so each vector step is one jitted policy call for
    every seed (`pgax.rollout.make_host_driver`), and one iteration is the host rollout of
    num_steps steps followed by the agent's jitted `learn` vmapped over seeds (each seed learns
    from its own [T, N] batch only, as with `jax_driver`). `run` checks `stop()` between iterations.
    `restart` resets the envs afresh (a Gymnasium env's state cannot be saved) keeping the agent,
    its key and the normalisation statistics.
    """
    from pgax.envs.gymnasium_env import make_vector
    from pgax.errors import ConfigError
    from pgax.rollout import make_host_driver

    if agent.record_env_state:
        raise ConfigError("this algorithm restarts rollouts from recorded JAX env states, which a Gymnasium env "
                          "cannot provide; use a JAX-native env (pgax list) with --driver jax")
    seeds = tuple(check_seeds(seeds))
    S = len(seeds)
    rollout_driver = make_host_driver(agent.act, env, S, num_envs, normalize_obs=normalize_obs,
                                      normalize_reward=normalize_reward, gamma=gamma)
    holder: dict = {}
    split3 = jax.jit(jax.vmap(lambda k: tuple(jax.random.split(k, 3))))

    def learn_one(agent_state, batch, key, last_return, last_length):
        agent_state, metrics = agent.learn(agent_state, batch, key)
        return agent_state, {"episode_return_mean": jnp.nanmean(last_return),
                             "episode_length_mean": jnp.nanmean(jnp.where(last_length > 0, last_length, jnp.nan)),
                             **metrics, HEALTH: nonfinite_code(agent_state.params, metrics, batch)}

    # The agent state is donated, so a replay buffer is updated in place rather than copied each
    # iteration; `run` donates a copy of the chunk's first state, which the train loop keeps.
    learn_all = jax.jit(jax.vmap(learn_one, axis_name=ROWS_AXIS), donate_argnums=(0,))
    copy_tree = jax.jit(lambda tree: jax.tree_util.tree_map(jnp.copy, tree))

    def vector_env():
        if "env" not in holder:
            holder["env"] = make_vector(env, S * num_envs, asynchronous, num_workers)
        return holder["env"]

    def init():
        rollout_state = rollout_driver.reset(vector_env(), host_env_seeds(seeds, num_envs))
        init_one = jax.jit(lambda key, obs: _host_init(agent, key, obs))
        per_seed = [init_one(jax.random.PRNGKey(s), rollout_state.obs[i, 0]) for i, s in enumerate(seeds)]
        agent_state, keys = stack_seeds(per_seed)
        return HostTrainState(agent_state, rollout_state, keys)

    def compile(state):
        if "learn" in holder:
            return
        # One rollout compiles the per-step calls and gives the batch's shapes for the learn step;
        # its statistics are discarded and the envs are reset again, so a run is reproducible.
        _, rollout_key, _ = split3(state.key)
        batch, _ = rollout_driver.rollout(state.agent.params, state.rollout, vector_env(), rollout_key, num_steps)
        episodes = state.rollout.episodes
        holder["learn"] = learn_all.lower(state.agent, batch, state.key, episodes.last_return,
                                          episodes.last_length).compile()
        holder["reset_needed"] = True

    def fresh(state, offset, keep_statistics):
        keep = state.rollout if keep_statistics and (normalize_obs or normalize_reward) else None
        return state.replace(rollout=rollout_driver.reset(vector_env(), host_env_seeds(seeds, num_envs, offset), keep))

    def run(state, start, count, stop):
        compile(state)
        if holder.pop("reset_needed", False):
            state = fresh(state, 0, False) if start == 0 else fresh(state, RESTART_SEED_OFFSET + start, True)
        collected = []
        state = state.replace(agent=copy_tree(state.agent))
        for _ in range(count):
            keys, rollout_key, learn_key = split3(state.key)
            batch, rollout_state = rollout_driver.rollout(state.agent.params, state.rollout, vector_env(), rollout_key,
                                                          num_steps)
            agent_state, metrics = holder["learn"](state.agent, batch, learn_key, rollout_state.episodes.last_return,
                                                   rollout_state.episodes.last_length)
            state = HostTrainState(agent_state, rollout_state, keys)
            collected.append({k: np.asarray(v) for k, v in jax.device_get(metrics).items()})
            if stop():
                break
        return state, {k: np.stack([m[k] for m in collected], axis=1) for k in collected[0]}, len(collected)

    def restart(state, done):
        compile(state)
        holder.pop("reset_needed", None)
        return fresh(state, RESTART_SEED_OFFSET + done, True)

    def evaluate_(state, episodes):
        return evaluate_gymnasium(agent, env, state.agent.params, state.rollout.obs_stats, seeds, episodes,
                                  asynchronous=asynchronous,
                                  num_workers=None if num_workers is None else min(num_workers, S * episodes))

    def close():
        if "env" in holder:
            _close_quietly(holder.pop("env"))

    return Driver(init, compile, run, restart, evaluate_, lambda state: (state.agent.params, state.rollout.obs_stats),
                  close, seeds, False)


def _close_quietly(vector_env) -> None:
    """Close a vector env; after Ctrl-C an async env's workers may already be gone, which is fine."""
    try:
        vector_env.close()
    except Exception:  # noqa: BLE001 - nothing left to save in a closing env
        pass


def _host_init(agent: Agent, key: jax.Array, obs: jax.Array):
    agent_key, _, run_key = jax.random.split(key, 3)  # the same split as the JAX driver's init
    return agent.init(agent_key, obs), run_key


def evaluate_gymnasium(agent: Agent, env, params: Any, obs_stats: Any, seeds: Sequence[int], episodes: int,
                       asynchronous: bool = False, max_steps: int | None = None,
                       num_workers: int | None = None, deterministic: bool = True) -> np.ndarray:
    """Evaluation on a Gymnasium env: returns [num_seeds, episodes] undiscounted returns.

    `params` and `obs_stats` (None: no normalisation) have a leading seed axis; the statistics are
    used frozen. Each seed runs `episodes` env copies (reset seeds 1_000_000 + s·episodes + i, apart
    from training's) for one episode each with the mode of the policy (or sampling from it, keys
    from each seed's evaluation key, when not `deterministic`), for at most `max_steps` steps
    (default: the env's time limit, or 10,000 when it has none).
    """
    from pgax.envs.gymnasium_env import make_vector
    from pgax.envs.normalize import normalize_obs

    seeds = [int(s) for s in seeds]
    S, E = len(seeds), episodes
    limit = max_steps or env.max_episode_steps or 10_000

    def act_one(params, stats, obs, key, t):
        seen = obs if stats is None else normalize_obs(stats, obs)
        if deterministic:
            return agent.act_deterministic(params, seen)
        return agent.act(params, seen, jax.random.fold_in(key, t))[0]

    act_all = jax.jit(jax.vmap(act_one, in_axes=(0, 0, 0, 0, None)))
    keys = eval_keys(seeds)
    workers = None if num_workers is None else min(num_workers, S * E)  # fewer copies than in training: fewer workers
    vector_env = make_vector(env, S * E, asynchronous, workers)
    try:
        raw, _ = vector_env.reset(seed=host_env_seeds(seeds, E, offset=1_000_000))
        total = np.zeros(S * E)
        finished = np.zeros(S * E, bool)
        for t in range(limit):
            obs = env.obs_to_array(raw).reshape(S, E, -1)
            action = np.asarray(act_all(params, obs_stats, obs, keys, t))
            raw, reward, terminated, truncated, _ = vector_env.step(
                env.to_env_action(action.reshape((S * E,) + action.shape[2:])))
            total += np.where(finished, 0.0, reward)
            finished |= terminated | truncated
            if finished.all():
                break
    finally:
        _close_quietly(vector_env)
    return total.reshape(S, E)
