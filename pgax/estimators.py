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


# ---------------------------------------------------------------------------------------------
# Episode bookkeeping, Monte Carlo returns, n-step and λ-returns, eligibility traces, Q-critic
# targets, and the policy-gradient estimators that weight ∇log π by them.
#
# Policy-gradient estimators are written as per-step weights Ψ_t, so that the estimate is
#     ĝ = Σ_t Ψ_t ∇_θ log π_θ(a_t | s_t)            (lecture 000, "Policy Gradient Summary")
# computed either from explicit scores (`policy_gradient_estimate`) or as the gradient of
# `score_function_surrogate`. With `discount_weighting=True` (the default) Ψ_t carries the factor
# γ^{t − t0} from the episode start t0 that the policy gradient theorem puts on step t, which makes
# E[ĝ] = ∇J(θ) exactly; False drops it, the common (biased) practice of deep-RL code.
#
# Monte Carlo estimators need whole episodes: an episode ends where discount_t = 0 (terminated) or
# truncated_t = 1 (cut, not bootstrapped here), and a new one starts at the next step. With γ = 0
# every step would read as an episode end; pass discount_t > 0 for continuing streams.
# ---------------------------------------------------------------------------------------------


def episode_starts(discount_t: jax.Array, truncated_t: jax.Array | None = None) -> jax.Array:
    """[T] bool, True where s_t is the first state of an episode: t = 0, or step t − 1 ended the
    episode (discount_{t−1} = 0, i.e. terminated, or truncated_{t−1})."""
    ended = discount_t == 0
    if truncated_t is not None:
        ended = ended | jnp.asarray(truncated_t, bool)
    return jnp.concatenate([jnp.ones((1,), bool), ended[:-1]])


def episode_ids(discount_t: jax.Array, truncated_t: jax.Array | None = None) -> jax.Array:
    """[T] int32 index of the episode (segment of the stream) containing step t: 0 for the first,
    + 1 at every `episode_starts`."""
    return jnp.cumsum(episode_starts(discount_t, truncated_t).astype(jnp.int32)) - 1


def discount_from_episode_start(discount_t: jax.Array, truncated_t: jax.Array | None = None) -> jax.Array:
    """[T] w_t = Π_{k=t0}^{t−1} discount_k = γ^{t − t0}, the discount accumulated since the start t0 of
    the episode containing step t (w = 1 at every episode start).

    This is the γ^t that the policy gradient theorem attaches to step t (lecture 000,
    ∇J = Σ_h γ^h E_{P_h}[∇ log π · Q]; lecture 002, "Σ γ^t ∇ log π Q over t and paths").
    """
    starts = episode_starts(discount_t, truncated_t)
    previous_discount = jnp.concatenate([jnp.ones((1,), discount_t.dtype), discount_t[:-1]])

    def step(w_prev, xs):
        start, d_prev = xs
        w = jnp.where(start, jnp.ones((), discount_t.dtype), w_prev * d_prev)
        return w, w

    _, weights = jax.lax.scan(step, jnp.ones((), discount_t.dtype), (starts, previous_discount))
    return weights


def reward_to_go(r_t: jax.Array, discount_t: jax.Array, truncated_t: jax.Array | None = None) -> jax.Array:
    """[T] Monte Carlo return G_t = Σ_{k ≥ t} (Π_{j=t}^{k−1} discount_j) r_k up to the end of the episode
    (the reward-to-go of (11.26), cited in chapter 12; REINFORCE's G_t in lecture 000).

    Computed backwards as G_t = r_t + discount_t (1 − truncated_t) G_{t+1}: no bootstrapping, so a
    truncated episode (and the stream end) contributes its truncated return. G_t is an unbiased
    estimate of Q^π(s_t, a_t) for whole episodes (lecture 000, "use the return G as an unbiased
    estimate of Q (MC)").
    """
    return discounted_returns(r_t, discount_t, jnp.zeros_like(r_t), truncated_t)


def episode_returns(r_t: jax.Array, discount_t: jax.Array, truncated_t: jax.Array | None = None) -> jax.Array:
    """[T] the whole discounted return G_{t0} = Σ_k γ^{k − t0} r_k of the episode containing step t,
    from its start t0 (the same value at every step of an episode): REINFORCE's weight without
    causality, ∇J = E[(Σ_t ∇ log π(a_t|s_t)) · G_0] (likelihood-ratio form, lecture 000)."""
    returns = reward_to_go(r_t, discount_t, truncated_t)
    starts = episode_starts(discount_t, truncated_t)

    def step(g_prev, xs):
        start, g = xs
        g0 = jnp.where(start, g, g_prev)
        return g0, g0

    _, totals = jax.lax.scan(step, returns[0], (starts, returns))
    return totals


def baselined_returns(r_t: jax.Array, discount_t: jax.Array, baseline_t: jax.Array,
                      truncated_t: jax.Array | None = None) -> jax.Array:
    """[T] baseline-subtracted Monte Carlo return Â_t = G_t − b(s_t) (lecture 000, "REINFORCE with
    Baseline"; b = V^π gives an estimate of the advantage A^π(s_t, a_t)).

    Args:
        baseline_t: [T] b(s_t), any function of the state only (an action-dependent b biases ĝ).
    """
    return reward_to_go(r_t, discount_t, truncated_t) - baseline_t


def n_step_returns(r_t: jax.Array, discount_t: jax.Array, v_t: jax.Array, n: int,
                   truncated_t: jax.Array | None = None) -> jax.Array:
    """[T] n-step bootstrapped returns (lecture 003, the A_N family behind GAE):

        G_t^{(n)} = r_t + γ r_{t+1} + … + γ^{n−1} r_{t+n−1} + γ^n V(s_{t+n}),

    with each γ the stream's discount_t (so termination stops the sum) and, where the episode is
    truncated or the stream ends before n steps, the bootstrap taken from V(s_{k+1}) = v_t[k] at
    that cut. Computed as G^{(1)} = r_t + discount_t v_t and
    G_t^{(m)} = r_t + discount_t ((1 − c_t) G_{t+1}^{(m−1)} + c_t v_t). n = 1 is the TD target;
    n ≥ T gives `discounted_returns(r_t, discount_t, v_t, truncated_t)`.

    Args:
        r_t, discount_t, v_t: [T] as in the module docstring.
        n: static number of steps, n ≥ 1.
        truncated_t: optional [T] truncation flags.
    """
    if n < 1:
        raise ValueError(f"n_step_returns: n must be at least 1, got {n}")
    cut = _cut_points(r_t, truncated_t)
    returns = r_t + discount_t * v_t
    for _ in range(min(n, r_t.shape[0]) - 1):
        following = jnp.concatenate([returns[1:], jnp.zeros((1,), returns.dtype)])
        returns = r_t + discount_t * ((1.0 - cut) * following + cut * v_t)
    return returns


def n_step_advantages(r_t: jax.Array, discount_t: jax.Array, v_tm1: jax.Array, v_t: jax.Array, n: int,
                      truncated_t: jax.Array | None = None) -> jax.Array:
    """[T] n-step advantage estimates Â_t^{(n)} = G_t^{(n)} − V(s_t) (lecture 003, A_n^θ(s_t, a_t));
    n = 1 is the TD error δ_t. With the true V^π each is an unbiased estimate of A^π(s_t, a_t)."""
    return n_step_returns(r_t, discount_t, v_t, n, truncated_t) - v_tm1


def lambda_returns(r_t: jax.Array, discount_t: jax.Array, v_tm1: jax.Array, v_t: jax.Array,
                   lambda_: float | jax.Array, truncated_t: jax.Array | None = None) -> jax.Array:
    """[T] λ-returns, the forward view of TD(λ) (lecture 000 "TD-lambda with forward/backward view"):

        G_t^λ = r_t + discount_t ((1 − λ) V(s_{t+1}) + λ G_{t+1}^λ) = (1 − λ) Σ_{n≥1} λ^{n−1} G_t^{(n)},

    bootstrapping at truncation and at the stream end. Equal to GAE(λ) + V(s_t) (so λ = 0 is the
    TD target r_t + γV(s_{t+1}) and λ = 1 the bootstrapped Monte Carlo return); the critic's
    regression target in actor-critic methods.
    """
    return gae(r_t, discount_t, v_tm1, v_t, lambda_, truncated_t) + v_tm1


def eligibility_traces(features_t: jax.Array, discount_t: jax.Array, lambda_: float | jax.Array,
                       truncated_t: jax.Array | None = None) -> jax.Array:
    """[T, ...] accumulating eligibility traces, the backward view of TD(λ) (lecture 000):

        e_t = φ_t + discount_{t−1} · λ · (1 − truncated_{t−1}) · e_{t−1},   e_{−1} = 0,

    so a trace resets after a termination (discount 0) or truncation. For a linear critic φ_t is
    ∇_w V(s_t) = the state features; for the TD(λ) actor it is the (discount-weighted) score.

    Args:
        features_t: [T, ...] φ_t, any trailing shape.
        discount_t: [T]; lambda_: scalar or [T]; truncated_t: optional [T].
    """
    keep = discount_t * lambda_
    if truncated_t is not None:
        keep = keep * (1.0 - jnp.asarray(truncated_t, discount_t.dtype))
    previous_keep = jnp.concatenate([jnp.zeros((1,), keep.dtype), keep[:-1]])

    def step(e_prev, xs):
        phi, k = xs
        e = phi + k * e_prev
        return e, e

    _, traces = jax.lax.scan(step, jnp.zeros_like(features_t[0]), (features_t, previous_keep))
    return traces


def td_lambda_update(features_t: jax.Array, r_t: jax.Array, discount_t: jax.Array, v_tm1: jax.Array,
                     v_t: jax.Array, lambda_: float | jax.Array, truncated_t: jax.Array | None = None) -> jax.Array:
    """[...] the offline TD(λ) update direction Σ_t δ_t e_t for a linear critic (backward view;
    the critic step is w ← w + α Σ_t δ_t e_t with the weights held fixed over the stream).

    δ_t = r_t + discount_t V(s_{t+1}) − V(s_t) (`td_errors`) and e_t = `eligibility_traces`. It
    equals the forward view Σ_t (G_t^λ − V(s_t)) φ_t = Σ_t GAE_t(λ) φ_t exactly. With Q-features
    φ(s_t, a_t) and q_tm1 = Q(s_t, a_t), q_t = Q(s_{t+1}, a_{t+1}) in place of the values it is
    SARSA(λ); λ = 0 gives the linear-TD(0) step w ← w + β δ φ(s, a) of QAC (lecture 000).

    Args:
        features_t: [T, ...] φ_t = ∇_w V_w(s_t).
        r_t, discount_t, v_tm1, v_t: [T]; lambda_: scalar or [T]; truncated_t: optional [T].
    """
    delta = td_errors(r_t, discount_t, v_tm1, v_t)
    traces = eligibility_traces(features_t, discount_t, lambda_, truncated_t)
    return jnp.tensordot(delta, traces, axes=(0, 0))


def sarsa_targets(r_t: jax.Array, discount_t: jax.Array, q_t: jax.Array) -> jax.Array:
    """[T] one-step Q-critic targets r_t + discount_t · Q(s_{t+1}, a_{t+1}) (QAC's critic, lecture 000).

    With the true Q^π and a_{t+1} ~ π(·|s_{t+1}) this is an unbiased estimate of Q^π(s_t, a_t).

    Args:
        q_t: [T] Q(s_{t+1}, a_{t+1}) at the next state and next action.
    """
    return r_t + discount_t * q_t


def expected_sarsa_targets(r_t: jax.Array, discount_t: jax.Array, q_next_t: jax.Array,
                           pi_next_t: jax.Array) -> jax.Array:
    """[T] r_t + discount_t · Σ_a π(a|s_{t+1}) Q(s_{t+1}, a) = r_t + discount_t V(s_{t+1}): the Q-critic
    target with the next action averaged out (needs no next action, so it also works at the stream end).

    Args:
        q_next_t: [T, A] Q(s_{t+1}, ·).  pi_next_t: [T, A] π(·|s_{t+1}).
    """
    return r_t + discount_t * jnp.sum(pi_next_t * q_next_t, axis=-1)


def q_td_errors(r_t: jax.Array, discount_t: jax.Array, q_tm1: jax.Array, q_t: jax.Array) -> jax.Array:
    """[T] the Q-critic's TD errors δ_t = r_t + discount_t Q(s_{t+1}, a_{t+1}) − Q(s_t, a_t) (QAC, lecture 000).

    Args:
        q_tm1: [T] Q(s_t, a_t).  q_t: [T] Q(s_{t+1}, a_{t+1}).
    """
    return sarsa_targets(r_t, discount_t, q_t) - q_tm1


# ------------------------------------------------------------------ policy-gradient estimators


def reinforce_weights(r_t: jax.Array, discount_t: jax.Array, truncated_t: jax.Array | None = None,
                      causal: bool = True, discount_weighting: bool = True) -> jax.Array:
    """[T] REINFORCE's per-step weights Ψ_t on ∇ log π(a_t|s_t) (lecture 000, "REINFORCE"):

        causal=True  (reward-to-go): Ψ_t = γ^{t − t0} G_t   — rewards before t do not count,
        causal=False (whole return): Ψ_t = G_{t0}           — every step weighted by the episode return.

    Both are unbiased for ∇J(θ) from whole episodes started at μ0; causality only removes variance.
    `discount_weighting=False` drops γ^{t − t0} from the causal form (biased, common practice).
    """
    if not causal:
        return episode_returns(r_t, discount_t, truncated_t)
    return actor_critic_weights(reward_to_go(r_t, discount_t, truncated_t), discount_t, truncated_t,
                                discount_weighting)


def reinforce_with_baseline_weights(r_t: jax.Array, discount_t: jax.Array, baseline_t: jax.Array,
                                    truncated_t: jax.Array | None = None,
                                    discount_weighting: bool = True) -> jax.Array:
    """[T] Ψ_t = γ^{t − t0} (G_t − b(s_t)) (lecture 000, "Baseline": E[∇ log π · b(s)] = 0, so the mean
    is unchanged while, for b ≈ V^π, the variance drops)."""
    return actor_critic_weights(baselined_returns(r_t, discount_t, baseline_t, truncated_t), discount_t,
                                truncated_t, discount_weighting)


def actor_critic_weights(estimate_t: jax.Array, discount_t: jax.Array, truncated_t: jax.Array | None = None,
                         discount_weighting: bool = True) -> jax.Array:
    """[T] Ψ_t = γ^{t − t0} · X_t for a critic-based estimate X_t (lecture 000, "Policy Gradient Summary"):

        X_t = Q_w(s_t, a_t)                      Q actor-critic
        X_t = Â_t (`gae`, `n_step_advantages`)   advantage actor-critic
        X_t = δ_t (`td_errors`)                   TD actor-critic (δ is unbiased for A^π given V^π)
    """
    if not discount_weighting:
        return estimate_t
    return discount_from_episode_start(discount_t, truncated_t) * estimate_t


def policy_gradient_estimate(score_t: jax.Array, weight_t: jax.Array) -> jax.Array:
    """[...] ĝ = Σ_t Ψ_t ∇_θ log π_θ(a_t|s_t) from explicit scores (lecture 000, "Policy Gradient Summary").

    Args:
        score_t: [T, ...] ∇_θ log π_θ(a_t|s_t) (any trailing parameter shape).
        weight_t: [T] Ψ_t from one of the weight functions above.
    """
    return jnp.tensordot(weight_t, score_t, axes=(0, 0))


def score_function_surrogate(log_prob_t: jax.Array, weight_t: jax.Array) -> jax.Array:
    """Scalar Σ_t log π_θ(a_t|s_t) · stop_gradient(Ψ_t), whose gradient in θ is the estimate ĝ:
    ∇_θ surrogate = Σ_t Ψ_t ∇_θ log π_θ(a_t|s_t) (the likelihood-ratio trick, lecture 000).

    Args:
        log_prob_t: [T] log π_θ(a_t|s_t) as a function of θ.  weight_t: [T] Ψ_t.
    """
    return jnp.sum(log_prob_t * jax.lax.stop_gradient(weight_t))


def td_lambda_actor_gradient(score_t: jax.Array, r_t: jax.Array, discount_t: jax.Array, v_tm1: jax.Array,
                             v_t: jax.Array, lambda_: float | jax.Array, truncated_t: jax.Array | None = None,
                             discount_weighting: bool = True) -> jax.Array:
    """[...] the TD(λ) actor-critic's offline actor step Σ_t δ_t e^θ_t (lecture 000, "∇ log π · δ e"):

        e^θ_t = eligibility trace of γ^{t − t0} ∇ log π(a_t|s_t),   δ_t = r_t + discount_t V(s_{t+1}) − V(s_t).

    By the forward/backward equivalence it equals Σ_t γ^{t − t0} GAE_t(λ) ∇ log π(a_t|s_t), the
    advantage actor-critic with GAE; with the true V^π it is unbiased for ∇J for every λ.

    Args:
        score_t: [T, ...] ∇_θ log π_θ(a_t|s_t).  The rest as in `td_lambda_update`.
    """
    weight = (discount_from_episode_start(discount_t, truncated_t) if discount_weighting
              else jnp.ones_like(discount_t))
    weighted_scores = weight.reshape((-1,) + (1,) * (score_t.ndim - 1)) * score_t
    return td_lambda_update(weighted_scores, r_t, discount_t, v_tm1, v_t, lambda_, truncated_t)


def episode_end_seen(discount_t: jax.Array, truncated_t: jax.Array | None = None) -> jax.Array:
    """[T] bool, True where the episode containing step t ends inside the stream: some k ≥ t has
    discount_k = 0 (terminated) or truncated_k. Exactly there the Monte Carlo return G_t of
    `reward_to_go` is complete; after the stream's last episode end it is cut short by the window
    (REINFORCE has no critic to bootstrap from, so such samples must be dropped)."""
    ended = discount_t == 0
    if truncated_t is not None:
        ended = ended | jnp.asarray(truncated_t, bool)
    return jax.lax.cummax(ended.astype(jnp.int32), reverse=True).astype(bool)


def episode_start_seen(discount_t: jax.Array, truncated_t: jax.Array | None = None,
                       first_is_start: bool | jax.Array = False) -> jax.Array:
    """[T] bool, True where the episode containing step t starts inside the stream: some step
    j < t ended an episode (discount_j = 0 or truncated_j), or t belongs to the stream's first
    episode and `first_is_start` says that step 0 is an episode's first step (e.g. right after a
    reset). Where False the episode began before the stream, so its whole return G_{t0} is unknown.

    `episode_end_seen(...) & episode_start_seen(...)` marks the steps of the episodes that lie whole
    inside the stream (those `episode_returns` gets exactly).
    """
    ended = discount_t == 0
    if truncated_t is not None:
        ended = ended | jnp.asarray(truncated_t, bool)
    ended_before = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.cumsum(ended[:-1].astype(jnp.int32))]) > 0
    return ended_before | jnp.asarray(first_is_start, bool)
