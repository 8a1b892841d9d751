"""Rollout drivers: turn (policy, environment) into a `Batch`.

Layer 3. `scan_rollout` is the JAX-native driver: `num_envs` environments vmapped, `num_steps`
steps in a `lax.scan`, jittable end to end. `make_host_driver` is the host driver for Gymnasium
environments: a numpy vector env stepped on the host, the policy one jitted call per vector step,
the same `Batch` out (with a leading seed axis).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from pgax.batch import Batch
from pgax.envs.core import JaxEnv


def vector_reset(env: JaxEnv, key: jax.Array, num_envs: int):
    """Reset `num_envs` environments: returns (obs [N, obs_dim], env_state with leading axis N)."""
    return jax.vmap(env.reset)(jax.random.split(key, num_envs))


def scan_rollout(act: Callable, params: Any, env: JaxEnv, env_state: Any, obs: jax.Array, key: jax.Array,
                 num_steps: int, record_env_state: bool = False) -> tuple[Batch, Any, jax.Array, dict]:
    """Run `num_steps` steps of the policy in N vmapped environments.

    Args:
        act: `act(params, obs [N, obs_dim], key) -> (action [N, ...], log_prob [N])`.
        env_state, obs: current states and observations of the N environments.
        record_env_state: also return the state acted in at each step as `batch.env_state` ([T, N] leading axes).
    Returns:
        (batch with leaves [T, N, ...], final env_state, final obs [N, obs_dim], info [T, N] dict).
    """
    batch, env_state, obs, info, _ = normalized_scan_rollout(act, params, env, env_state, obs, None, key, num_steps,
                                                             record_env_state)
    return batch, env_state, obs, info


def normalized_scan_rollout(act: Callable, params: Any, env: JaxEnv, env_state: Any, obs: jax.Array, obs_stats: Any,
                            key: jax.Array, num_steps: int, record_env_state: bool = False, clip: float = 10.0):
    """`scan_rollout` with running observation normalisation (`pgax.envs.normalize`); `obs_stats`
    None is plain `scan_rollout`.

    `obs` [N, obs_dim] is already normalised (with `obs_stats`). Per step t the policy acts on obs_t;
    the env returns raw o_{t+1} and raw final observations f_t; then stats_{t+1} = update(stats_t,
    o_{t+1}) over the N envs, obs_{t+1} = clip((o_{t+1} − μ) / σ) and next_obs_t the same map of f_t,
    both with stats_{t+1} (so next_obs_t = obs_{t+1} wherever the episode goes on). This is the host
    driver's order, so both drivers normalise alike.
    Returns (batch [T, N, ...], env_state, obs [N, obs_dim], info [T, N], obs_stats).
    """
    from pgax.envs.normalize import normalize_obs, update_stats

    num_envs = obs.shape[0]
    vector_step = jax.vmap(env.step)

    def step(carry, step_key):
        env_state, obs, stats = carry
        act_key, env_key = jax.random.split(step_key)
        action, log_prob = act(params, obs, act_key)
        t = vector_step(jax.random.split(env_key, num_envs), env_state, action)
        next_obs, final_obs = t.obs, t.final_obs
        if stats is not None:
            stats = update_stats(stats, next_obs)
            next_obs, final_obs = normalize_obs(stats, next_obs, clip), normalize_obs(stats, final_obs, clip)
        record = Batch(obs=obs, action=action, reward=t.reward, terminated=t.terminated, truncated=t.truncated,
                       next_obs=final_obs, log_prob=log_prob, env_state=env_state if record_env_state else None)
        return (t.state, next_obs, stats), (record, t.info)

    (env_state, obs, obs_stats), (batch, info) = jax.lax.scan(step, (env_state, obs, obs_stats),
                                                              jax.random.split(key, num_steps))
    if "episode_length" in info:  # `episode_statistics`: the length includes step t, so it is 1 + t's step
        batch = batch.replace(episode_step=(info["episode_length"] - 1).astype(jnp.int32))
    return batch, env_state, obs, info, obs_stats


# ---------------------------------------------------------------------------------------------
# The host driver: Gymnasium vector envs stepped in numpy, the policy one jitted call per step.
# ---------------------------------------------------------------------------------------------


@struct.dataclass
class HostEpisodeStats:
    """Undiscounted episode statistics per environment ([S, N] leaves, S seeds × N envs), with the
    meaning of `pgax.envs.episode_statistics`: running_* for the episode so far, last_* for the most
    recent completed episode (NaN / 0 before the first one ends). Rewards are the raw ones."""

    running_return: jax.Array
    running_length: jax.Array
    last_return: jax.Array
    last_length: jax.Array


@struct.dataclass
class HostRolloutState:
    """What the host driver carries from one rollout to the next (the Gymnasium vector env itself
    is the one mutable part and lives beside it).

    obs:          [S, N, obs_dim] the observations to act on next, normalised when obs_stats is set.
    obs_stats:    RunningMeanStd with leading axis [S] (None: no observation normalisation).
    reward_scale: RewardScaleState with leading axis [S] (None: raw rewards).
    episodes:     HostEpisodeStats [S, N].
    """

    obs: jax.Array
    obs_stats: Any
    reward_scale: Any
    episodes: HostEpisodeStats


class HostDriver(NamedTuple):
    """The host rollout driver for S seeds × N envs of one Gymnasium env (see `make_host_driver`).

    reset(vector_env, env_seeds) -> HostRolloutState
    rollout(params, state, vector_env, key [S], num_steps) -> (Batch [S, T, N, ...], state)
    """

    reset: Callable
    rollout: Callable
    num_seeds: int
    num_envs: int


def _update_episode_stats(stats: HostEpisodeStats, reward: jax.Array, done: jax.Array) -> HostEpisodeStats:
    """Fold a rollout's raw rewards and episode ends [T, N] into one seed's statistics [N]."""

    def step(s: HostEpisodeStats, xs):
        r, d = xs
        ret, length = s.running_return + r, s.running_length + 1
        return HostEpisodeStats(jnp.where(d, 0.0, ret), jnp.where(d, 0, length),
                                jnp.where(d, ret, s.last_return), jnp.where(d, length, s.last_length)), None

    return jax.lax.scan(step, stats, (reward, done))[0]


def make_host_driver(act: Callable, env, num_seeds: int, num_envs: int, *, normalize_obs: bool = False,
                     normalize_reward: bool = False, gamma: float = 0.99, clip: float = 10.0) -> HostDriver:
    """The host rollout driver: a Gymnasium vector env of S × N copies of `env` (a
    `pgax.envs.gymnasium_env.GymnasiumEnv`; copies s·N … s·N+N−1 belong to seed s), stepped in
    numpy, with the policy evaluated for all S × N envs by one jitted call per vector step.

    Per step t: one jitted call normalises the observations the step returned (updating the
    running statistics with the ones the policy will act on, `pgax.envs.normalize`) and samples
    the next actions with `act(params [per seed], obs [N, obs_dim], key)` vmapped over seeds; the
    vector env then steps the actions (Box actions clipped to the bounds, Batch keeps the sampled
    ones). After the rollout one jitted call scales the rewards by the running std of the
    discounted return (when `normalize_reward`) and updates the episode statistics.

    The per-step call is kept cheap to dispatch: the parameters are raveled into one buffer once
    per rollout, the per-step keys are split for the whole rollout at once (key [S] → [T, S]), and
    the call's outputs are packed into one float32 array (normalised obs, final obs, action,
    log-prob), so each step moves a handful of buffers instead of one per parameter leaf.
    Keys are raw uint32 keys (`jax.random.PRNGKey`), as the trainers use.

    The Batch is the jitted driver's, per seed: obs, action, reward (scaled if asked),
    terminated, truncated (False where terminated), next_obs (the true successor: the episode's
    final observation where it ended, from same-step autoreset; normalised with the same
    statistics as obs[t+1], so next_obs[t] == obs[t+1] wherever the episode goes on), log_prob;
    leaves [S, T, N, ...].
    """
    from jax.flatten_util import ravel_pytree

    from pgax.envs.gymnasium_env import step_observations
    from pgax.envs.normalize import (RunningMeanStd, init_reward_scale, init_stats, normalize_obs as _normalize,
                                     scale_rewards, update_stats)

    S, N = num_seeds, num_envs
    d = env.observation_space.dim

    def observe(obs_stats, raw_next, raw_final):  # one seed: [N, d] each
        if obs_stats is None:
            return None, jnp.asarray(raw_next, jnp.float32), jnp.asarray(raw_final, jnp.float32)
        obs_stats = update_stats(obs_stats, raw_next)
        return obs_stats, _normalize(obs_stats, raw_next, clip), _normalize(obs_stats, raw_final, clip)

    def pack_stats(stats):  # RunningMeanStd [S] -> [S, 2d + 1]
        return None if stats is None else jnp.concatenate([stats.mean, stats.var, stats.count[:, None]], axis=1)

    def unpack_stats(packed):
        return None if packed is None else RunningMeanStd(packed[:, :d], packed[:, d:2 * d], packed[:, 2 * d])

    def observe_all(packed_stats, raw2):  # raw2 [S, N, 2, d]: next and final observations
        stats, obs, final = jax.vmap(observe)(unpack_stats(packed_stats), raw2[:, :, 0], raw2[:, :, 1])
        return pack_stats(stats), obs, final

    step_fns: dict = {}  # per parameter structure: (act_first, step, observe_last)

    def fns_for(params):
        flat, unravel = ravel_pytree(params)
        key = jax.tree_util.tree_structure(params), tuple(x.shape for x in jax.tree_util.tree_leaves(params))
        if key not in step_fns:
            def act_all(flat, obs, keys):  # -> [S, N, action_width + 1] float32: action, log-prob
                action, log_prob = jax.vmap(act)(unravel(flat), obs, keys)
                return jnp.concatenate([action.astype(jnp.float32).reshape(S, N, -1), log_prob[..., None]], axis=-1)

            def step(flat, packed_stats, raw2, keys):  # -> stats, [S, N, 2d + action_width + 1]
                packed_stats, obs, final = observe_all(packed_stats, raw2)
                return packed_stats, jnp.concatenate([obs, final, act_all(flat, obs, keys)], axis=-1)

            def observe_last(packed_stats, raw2):
                packed_stats, obs, final = observe_all(packed_stats, raw2)
                return packed_stats, jnp.concatenate([obs, final], axis=-1)

            probe = jax.eval_shape(lambda p, o, k: jax.vmap(act)(p, o, k), params,
                                   jax.ShapeDtypeStruct((S, N, d), jnp.float32), jax.ShapeDtypeStruct((S, 2), jnp.uint32))
            step_fns[key] = (jax.jit(act_all), jax.jit(step), jax.jit(observe_last), probe[0])
        return flat, step_fns[key]

    def finish(reward_scale, episodes, reward, terminated, truncated):  # one seed: [T, N]
        done = terminated | truncated
        episodes = _update_episode_stats(episodes, reward, done)
        if reward_scale is not None:
            reward_scale, reward = scale_rewards(reward_scale, reward, done, gamma, clip)
        return reward_scale, episodes, reward

    finish_j = jax.jit(jax.vmap(finish))
    observe_j = jax.jit(observe_all)
    split_keys = jax.jit(lambda key, T: jnp.swapaxes(jax.vmap(lambda k: jax.random.split(k, T))(key), 0, 1),
                         static_argnums=1)

    def split(x):  # [S·N, ...] -> [S, N, ...]
        return x.reshape((S, N) + x.shape[1:])

    def reset(vector_env, env_seeds, keep: HostRolloutState | None = None) -> HostRolloutState:
        """Reset the vector env (copy i seeded with env_seeds[i]) and the episode statistics. The
        normalisation statistics start afresh, or from `keep`'s (a resumed run: its observation
        statistics, and its return statistics with the running returns of the new episodes at 0)."""
        raw, _ = vector_env.reset(seed=[int(s) for s in env_seeds])
        raw = split(env.obs_to_array(raw))
        obs_stats = pack_stats(jax.vmap(lambda _: init_stats((d,)))(jnp.arange(S))) if normalize_obs else None
        reward_scale = jax.vmap(lambda _: init_reward_scale(N))(jnp.arange(S)) if normalize_reward else None
        if keep is not None:
            obs_stats = pack_stats(keep.obs_stats) if normalize_obs else None
            if normalize_reward:
                reward_scale = keep.reward_scale.replace(returns=jnp.zeros_like(keep.reward_scale.returns))
        obs_stats, obs, _ = observe_j(obs_stats, np.stack([raw, raw], axis=2))
        episodes = HostEpisodeStats(jnp.zeros((S, N), jnp.float32), jnp.zeros((S, N), jnp.int32),
                                    jnp.full((S, N), jnp.nan, jnp.float32), jnp.zeros((S, N), jnp.int32))
        return HostRolloutState(jnp.asarray(obs), unpack_stats(obs_stats), reward_scale, episodes)

    def rollout(params, state: HostRolloutState, vector_env, key, num_steps: int):
        """T = num_steps vector steps; returns (Batch with leaves [S, T, N, ...], new state)."""
        T = num_steps
        flat, (act_first, step, observe_last, action_shape) = fns_for(params)
        action_tail, action_dtype = action_shape.shape[2:], np.dtype(action_shape.dtype)
        width = int(np.prod(action_tail)) if action_tail else 1
        keys = np.asarray(split_keys(key, T))  # [T, S, 2]
        obs_buf = np.empty((T, S, N, d), np.float32)
        next_buf = np.empty((T, S, N, d), np.float32)
        act_buf = np.empty((T, S, N, width + 1), np.float32)  # action, log-prob
        reward_buf = np.empty((T, S * N), np.float32)
        term_buf = np.empty((T, S * N), bool)
        trunc_buf = np.empty((T, S * N), bool)
        raw2 = np.empty((S, N, 2, d), np.float32)
        packed_stats = pack_stats(state.obs_stats)
        obs_buf[0] = state.obs
        act_buf[0] = act_first(flat, obs_buf[0], keys[0])
        for t in range(T):
            action = act_buf[t, ..., :width].reshape((S * N,) + action_tail).astype(action_dtype)
            raw, reward, terminated, truncated, info = vector_env.step(env.to_env_action(action))
            reward_buf[t], term_buf[t], trunc_buf[t] = reward, terminated, truncated
            raw_next, raw_final = step_observations(env, raw, info)
            raw2[:, :, 0], raw2[:, :, 1] = split(raw_next), split(raw_final)
            if t < T - 1:
                packed_stats, out = step(flat, packed_stats, raw2, keys[t + 1])
                out = np.asarray(out)
                obs_buf[t + 1], next_buf[t], act_buf[t + 1] = out[..., :d], out[..., d:2 * d], out[..., 2 * d:]
            else:
                packed_stats, out = observe_last(packed_stats, raw2)
                out = np.asarray(out)
                last_obs, next_buf[t] = out[..., :d], out[..., d:]
        trunc_buf &= ~term_buf

        def per_seed(x):  # [T, S·N] or [T, S, N, ...] -> [S, T, N, ...]
            return np.swapaxes(x.reshape((T, S, N) + x.shape[(2 if x.ndim == 2 else 3):]), 0, 1)

        terminated, truncated = per_seed(term_buf), per_seed(trunc_buf)
        reward_scale, episodes, reward = finish_j(state.reward_scale, state.episodes, per_seed(reward_buf),
                                                  terminated, truncated)
        actions = per_seed(act_buf[..., :width]).reshape((S, T, N) + action_tail).astype(action_dtype)
        episode_step = np.empty((S, T, N), np.int32)
        steps_so_far = np.asarray(state.episodes.running_length, np.int32)
        done = np.asarray(terminated) | np.asarray(truncated)
        for t in range(T):
            episode_step[:, t] = steps_so_far
            steps_so_far = np.where(done[:, t], 0, steps_so_far + 1)
        batch = Batch(obs=per_seed(obs_buf), action=actions, reward=reward, terminated=terminated,
                      truncated=truncated, next_obs=per_seed(next_buf), log_prob=per_seed(act_buf[..., width]),
                      episode_step=episode_step)
        batch = jax.tree_util.tree_map(jnp.asarray, batch)
        return batch, HostRolloutState(jnp.asarray(last_obs), unpack_stats(packed_stats), reward_scale, episodes)

    return HostDriver(reset, rollout, S, N)
