"""Observation normalisation and reward scaling with explicit state pytrees.

Layer 3. The two normalisations of the PPO implementation-details study (Engstrom et al. 2020,
Andrychowicz et al. 2021; gym's `NormalizeObservation` / `NormalizeReward` wrappers):

- observations: o ↦ clip((o − μ) / √(σ² + 1e-8), −c, c), μ and σ² the running mean and variance of
  every observation the policy has acted on so far (c = 10);
- rewards: r_t ↦ clip(r_t / √(Var[R] + 1e-8), −c, c), where R_t = γ R_{t−1} (1 − done_{t−1}) + r_t
  is the running discounted return of each environment and Var[R] the running variance of all R_t
  seen so far (rewards are scaled, not centred, so their sign is kept).

Each statistic is a `RunningMeanStd` pytree updated by a pure function (jittable, vmappable), so
the statistics are part of a run's state: the host driver (`pgax.rollout.host_rollout`) threads
them through training, `pgax.train.train` returns them with the agent, and evaluation uses
them frozen (`normalize_obs` without `update_obs`). `save_stats` / `load_stats` write them to an
.npz file next to a run's other outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

EPS = 1e-8
"""Added to the variance before the square root."""
INITIAL_COUNT = 1e-4
"""Pseudo-count of the initial statistics (mean 0, variance 1), as in the reference wrappers."""


@struct.dataclass
class RunningMeanStd:
    """Running mean and (population) variance of a stream of vectors of shape `mean.shape`.

    count: pseudo-count of samples seen (starts at INITIAL_COUNT)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array


@struct.dataclass
class RewardScaleState:
    """returns: [N] running discounted return R of each environment; stats: RunningMeanStd of R."""

    returns: jax.Array
    stats: RunningMeanStd


def init_stats(shape: tuple[int, ...] = ()) -> RunningMeanStd:
    """Statistics before any sample: mean 0, variance 1, count INITIAL_COUNT."""
    return RunningMeanStd(jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32),
                          jnp.asarray(INITIAL_COUNT, jnp.float32))


def update_stats(stats: RunningMeanStd, x: jax.Array) -> RunningMeanStd:
    """Fold a batch x [B, *shape] into the statistics (Chan et al.'s parallel mean/variance update).

    With n = count, m = B, δ = mean_x − mean:  mean' = mean + δ m / (n + m),
    M2' = var n + var_x m + δ² n m / (n + m),  var' = M2' / (n + m).
    """
    x = jnp.asarray(x, jnp.float32)
    batch_mean, batch_var, m = jnp.mean(x, axis=0), jnp.var(x, axis=0), jnp.asarray(x.shape[0], jnp.float32)
    n = stats.count
    total = n + m
    delta = batch_mean - stats.mean
    mean = stats.mean + delta * m / total
    m2 = stats.var * n + batch_var * m + jnp.square(delta) * n * m / total
    return RunningMeanStd(mean, m2 / total, total)


def normalize_obs(stats: RunningMeanStd, obs: jax.Array, clip: float = 10.0) -> jax.Array:
    """clip((obs − mean) / √(var + 1e-8), −clip, clip); obs [..., *stats.mean.shape]."""
    return jnp.clip((jnp.asarray(obs, jnp.float32) - stats.mean) / jnp.sqrt(stats.var + EPS), -clip, clip)


def init_reward_scale(num_envs: int) -> RewardScaleState:
    return RewardScaleState(jnp.zeros(num_envs, jnp.float32), init_stats())


def scale_rewards(state: RewardScaleState, reward: jax.Array, done: jax.Array, gamma: float,
                  clip: float = 10.0) -> tuple[RewardScaleState, jax.Array]:
    """Scale a rollout's rewards [T, N] by the running std of the discounted return.

    At each step t (all N environments together, in order): R ← γ R + r_t; the statistics take the
    N values of R; r_t ↦ clip(r_t / √(Var[R] + 1e-8), −clip, clip); then R ← 0 where the episode
    ended (done_t = terminated or truncated). Step by step this is gym's `NormalizeReward` wrapper
    over a vector env, run over the whole rollout at once (the scaling never affects the actions,
    so it can be applied after the rollout).
    Returns (new state, scaled rewards [T, N] float32).
    """

    def step(carry: RewardScaleState, xs):
        r, d = xs
        returns = carry.returns * gamma + r
        stats = update_stats(carry.stats, returns)
        scaled = jnp.clip(r / jnp.sqrt(stats.var + EPS), -clip, clip)
        return RewardScaleState(jnp.where(d, 0.0, returns), stats), scaled

    return jax.lax.scan(step, state, (jnp.asarray(reward, jnp.float32), jnp.asarray(done, bool)))


def save_stats(path: str | Path, tree: Any) -> None:
    """Write a pytree of statistics (e.g. {"obs": RunningMeanStd, "reward": RewardScaleState}, leaves
    possibly with a leading seed axis) to an .npz file; `load_stats(path, like)` restores it."""
    leaves, _ = jax.tree_util.tree_flatten(tree)
    np.savez(path, **{f"leaf_{i}": np.asarray(x) for i, x in enumerate(leaves)})


def load_stats(path: str | Path, like: Any) -> Any:
    """The pytree saved by `save_stats`, with the structure of `like` (e.g. `init_stats(shape)`, or
    the state of a fresh run). Raises ValueError when the file does not match that structure."""
    _, treedef = jax.tree_util.tree_flatten(like)
    with np.load(path) as data:
        leaves = [jnp.asarray(data[f"leaf_{i}"]) for i in range(len(data.files))]
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"{path}: {len(leaves)} arrays saved, the structure needs {treedef.num_leaves}")
    return jax.tree_util.tree_unflatten(treedef, leaves)
