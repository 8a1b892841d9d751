"""Return and advantage estimators over one stream of experience.

Layer 0 (math). Every function takes arrays of one stream of length T (the time axis first) and is
pure, so `jax.vmap` batches it over environments, seeds or sampled trajectories. Names follow rlax:

    r_t         [T] reward received after acting at step t
    discount_t  [T] γ, or 0 where the episode *terminated* at step t (no value after a terminal)
    v_tm1       [T] V(s_t), the value of the state acted in
    v_t         [T] V(s_{t+1}), the value of the true successor: at an episode end this is the
                    value of the final observation, not of the next episode's first one
    truncated_t [T] 1 where the episode was cut by a time limit (or the stream ends) after step t:
                    the estimate bootstraps from v_t there and does not look further ahead

Termination and truncation are kept apart: a terminated episode contributes no value after its
last reward (discount_t = 0), while a truncated one bootstraps from V(final observation), because
the environment would have continued. The last step of the stream is always treated as
truncated when values are given, since nothing after it is in the stream.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _cut_points(r_t: jax.Array, truncated_t: jax.Array | None) -> jax.Array:
    """[T] float: 1 where the recursion restarts from a bootstrap value (truncation, stream end)."""
    cut = jnp.zeros_like(r_t) if truncated_t is None else jnp.asarray(truncated_t, r_t.dtype)
    return cut.at[-1].set(1.0)


def td_errors(r_t: jax.Array, discount_t: jax.Array, v_tm1: jax.Array, v_t: jax.Array) -> jax.Array:
    """[T] one-step TD errors δ_t = r_t + discount_t · V(s_{t+1}) − V(s_t)."""
    return r_t + discount_t * v_t - v_tm1


def discounted_returns(
    r_t: jax.Array,
    discount_t: jax.Array,
    v_t: jax.Array | None = None,
    truncated_t: jax.Array | None = None,
) -> jax.Array:
    """[T] discounted returns G_t = r_t + discount_t · G_{t+1}, computed backwards.

    Without `v_t` the stream is taken to be whole episodes (G_T = 0, the Monte Carlo return of
    REINFORCE). With `v_t`, the recursion bootstraps where an episode was truncated and at the end
    of the stream: G_t = r_t + discount_t · ((1 − c_t) G_{t+1} + c_t V(s_{t+1})), c_t = truncated_t.

    Args:
        r_t: [T] rewards.
        discount_t: [T] γ, 0 at termination.
        v_t: optional [T] successor values V(s_{t+1}) for bootstrapping.
        truncated_t: optional [T] truncation flags (needs `v_t`).
    """
    if v_t is None:
        if truncated_t is not None:
            raise ValueError("discounted_returns: truncated_t needs v_t to bootstrap from; pass v_t.")
        cut = jnp.zeros_like(r_t)
        v_t = jnp.zeros_like(r_t)
    else:
        cut = _cut_points(r_t, truncated_t)

    def step(g_next, xs):
        r, d, v, c = xs
        g = r + d * ((1.0 - c) * g_next + c * v)
        return g, g

    _, returns = jax.lax.scan(step, jnp.zeros((), r_t.dtype), (r_t, discount_t, v_t, cut), reverse=True)
    return returns


def gae(
    r_t: jax.Array,
    discount_t: jax.Array,
    v_tm1: jax.Array,
    v_t: jax.Array,
    lambda_: float | jax.Array,
    truncated_t: jax.Array | None = None,
) -> jax.Array:
    """[T] generalised advantage estimates (Schulman et al. 2016), computed backwards:

        A_t = δ_t + discount_t · λ · (1 − c_t) · A_{t+1},   δ_t = r_t + discount_t V(s_{t+1}) − V(s_t)

    where c_t marks truncation and the stream end. λ = 0 gives the TD errors δ_t; λ = 1 gives the
    bootstrapped return minus the value, G_t − V(s_t). The λ-return target for the critic is
    A_t + V(s_t).

    Args:
        r_t, discount_t, v_tm1, v_t: [T] as in the module docstring.
        lambda_: scalar or [T] trace parameter λ ∈ [0, 1].
        truncated_t: optional [T] truncation flags.
    """
    delta = td_errors(r_t, discount_t, v_tm1, v_t)
    trace = discount_t * lambda_ * (1.0 - _cut_points(r_t, truncated_t))

    def step(a_next, xs):
        d, k = xs
        a = d + k * a_next
        return a, a

    _, advantages = jax.lax.scan(step, jnp.zeros((), r_t.dtype), (delta, trace), reverse=True)
    return advantages
