"""The one `Batch` pytree that flows from a rollout driver to an algorithm's update.

Layer 0 (data only). Both drivers (the jitted `lax.scan` driver and, later, the host Gymnasium
driver) produce it; estimators read it; update rules consume it.
"""

from __future__ import annotations

from typing import Any

import jax
from flax import struct


ROWS_AXIS = "rows"
"""The `vmap` axis name of a training program's rows (seeds, or a sweep's configurations × seeds)."""


def rows_in_program() -> int:
    """How many rows the enclosing `vmap` over `ROWS_AXIS` runs (1 outside one), read at trace time."""
    try:
        return int(jax.lax.axis_size(ROWS_AXIS))
    except NameError:
        return 1


@struct.dataclass
class Batch:
    """A rollout of T steps in N environments. Leaves have leading axes [T, N].

    Environment facts:
        obs:        [T, N, obs_dim] observation acted on, s_t.
        action:     [T, N, ...] action taken, as sampled (before clipping to a Box's bounds).
        reward:     [T, N] reward r_t.
        terminated: [T, N] bool, the episode reached a terminal state after step t (no bootstrap).
        truncated:  [T, N] bool, the episode was cut by a time limit after step t (bootstrap).
        next_obs:   [T, N, obs_dim] the true successor s_{t+1}: the final observation of an episode
                    that ended at t, not the first observation of the next one.
    Behaviour-policy facts:
        log_prob:   [T, N] log π_behaviour(a_t | s_t) at sampling time.
    Filled by an algorithm's estimator before the update rule sees the batch (None until then):
        advantage:  [T, N] advantage estimate Â_t.
        target:     [T, N] critic regression target (e.g. the λ-return Â_t + V(s_t)).
        value:      [T, N] critic's V(s_t) before the update (for value clipping, diagnostics).
        sample_weight: [T, N] non-negative weight of each sample in the estimate (None: uniform).
                    Zero leaves a sample out (e.g. a REINFORCE sample whose episode has not ended yet,
                    held for a later window); d(s)π(a|s) turns an enumeration of all (s, a) into an
                    exact expectation.
    Optional driver output:
        env_state:  environment states at s_t, leading axes [T, N] (JAX-native envs, recorded only
                    for agents with `record_env_state`, e.g. vine's branch rollouts).
        episode_step: [T, N] int32, the number of steps of s_t's episode before s_t (0 at an
                    episode's first state), also for episodes that began before the rollout; both
                    drivers fill it (None from a rollout of an env without episode statistics).
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: jax.Array
    log_prob: jax.Array
    advantage: jax.Array | None = None
    target: jax.Array | None = None
    value: jax.Array | None = None
    sample_weight: jax.Array | None = None
    env_state: Any = None
    episode_step: jax.Array | None = None

    @property
    def done(self) -> jax.Array:
        """[T, N] the episode ended after step t, by termination or truncation."""
        return self.terminated | self.truncated


def flatten_time_and_envs(tree):
    """Merge the leading [T, N] axes of every leaf into one sample axis [T·N]."""
    return jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), tree)
