"""Exact ground truth for tabular MDPs: the oracle every estimator and update rule is tested against.

Layer 0 (math). A tabular MDP is a pytree `TabularMDP(P[s, a, s'], R[s, a], μ0[s], γ)`. For a policy
table π[s, a] (given directly, or the softmax of logits θ) this module computes, by linear algebra:

    P_π(s, s')  = Σ_a π(a|s) P(s'|s, a)                          policy transition matrix
    r_π(s)      = Σ_a π(a|s) R(s, a)                             policy reward
    V^π         = (I − γ P_π)^{-1} r_π                           Bellman equation, solved
    Q^π(s, a)   = R(s, a) + γ Σ_s' P(s'|s, a) V^π(s')
    A^π         = Q^π − V^π
    ρ_μ^π       = μ0ᵀ (I − γ P_π)^{-1} = Σ_t γ^t Pr(s_t = · | μ0, π)       (lecture 002, unnormalised)
    d_μ^π       = (1 − γ) ρ_μ^π                                  (lecture 000, normalised)
    J(θ)        = Σ_s μ0(s) V^π(s) = E[Σ_t γ^t r_t]
    Q^(n)_V, Q^λ_V                                               expected n-step / λ-returns that
                                                                 bootstrap from any table V

and from them the exact policy gradient (policy gradient theorem), the exact Fisher matrix and
natural gradient, the compatible critic, the performance difference, the trust-region surrogate
L_π(π') and the mean / max KL.

Terminal states. `TabularMDP.terminal` (optional, [S] bool) marks states whose *entry* ends the
episode: the reward of the entering transition is received, and nothing after it counts (the
rlax convention discount_t = 0). The exact math uses the continuation kernel
P_c(s'|s, a) = (1 − terminal(s)) P(s'|s, a) (1 − terminal(s')) and zeroes R in terminal states,
so V, Q and A are 0 there and P_π is sub-stochastic; every identity below holds unchanged, and
ρ, d count only states in which an action is actually taken (d sums to less than 1). Without
terminal states P_c = P.

Precision. Every public function runs in float64 in a scoped `jax.enable_x64(True)` context and
casts its floating inputs to float64, so an eager call returns float64 NumPy arrays whatever the
global `jax_enable_x64` flag is (the flag is restored on exit). To differentiate the float64
computation end to end (e.g. `jax.grad(objective)`), call the transformation itself inside
`with jax.enable_x64(True):` — outside it JAX hands back float32 cotangents. Each public function
is `jax.jit`-compiled once per input shape and per static argument (`log_policy_fn`, `normalized`):
reuse one `log_policy_fn` object rather than a fresh lambda per call to reuse the compilation.

Parameterisations. Functions of θ take an optional `log_policy_fn: θ -> log π [S, A]`; the
default is the tabular softmax, θ = logits[S, A]. Any other differentiable parameterisation
(e.g. a log-linear policy over features) works the same way: gradients come back shaped like θ
and Fisher matrices are [k, k] with k = θ.size.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

LogPolicyFn = Callable[[jax.Array], jax.Array]


@struct.dataclass
class TabularMDP:
    """A finite discounted MDP as a pytree (stack several along a leading axis to vmap over them).

    Attributes:
        transitions: [S, A, S] P(s' | s, a); each row sums to 1.
        rewards: [S, A] expected reward R(s, a) of acting a in s.
        initial_distribution: [S] μ0(s).
        discount: scalar γ ∈ [0, 1).
        terminal: optional [S] bool, entering the state ends the episode (see module docstring).
    """

    transitions: jax.Array
    rewards: jax.Array
    initial_distribution: jax.Array
    discount: jax.Array
    terminal: jax.Array | None = None

    @property
    def num_states(self) -> int:
        return int(self.transitions.shape[-1])

    @property
    def num_actions(self) -> int:
        return int(self.transitions.shape[-2])


def check_tabular_mdp(mdp: TabularMDP, atol: float = 1e-8) -> None:
    """Raise ValueError naming the problem if `mdp` (concrete arrays, one MDP) is malformed."""
    P, R = np.asarray(mdp.transitions), np.asarray(mdp.rewards)
    mu0, gamma = np.asarray(mdp.initial_distribution), float(np.asarray(mdp.discount))
    if P.ndim != 3 or P.shape[0] != P.shape[2]:
        raise ValueError(f"TabularMDP.transitions must be [S, A, S], got shape {P.shape}")
    S, A = P.shape[0], P.shape[1]
    if R.shape != (S, A):
        raise ValueError(f"TabularMDP.rewards must be [S, A] = [{S}, {A}], got shape {R.shape}")
    if mu0.shape != (S,):
        raise ValueError(f"TabularMDP.initial_distribution must be [S] = [{S}], got shape {mu0.shape}")
    if (P < -atol).any() or not np.allclose(P.sum(-1), 1.0, atol=atol):
        raise ValueError("TabularMDP.transitions: every P(·|s, a) must be a probability vector")
    if (mu0 < -atol).any() or abs(mu0.sum() - 1.0) > atol:
        raise ValueError("TabularMDP.initial_distribution must be a probability vector")
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"TabularMDP.discount must lie in [0, 1) for the exact solution, got {gamma}")
    if mdp.terminal is not None:
        terminal = np.asarray(mdp.terminal, bool)
        if terminal.shape != (S,):
            raise ValueError(f"TabularMDP.terminal must be [S] = [{S}], got shape {terminal.shape}")
        if mu0[terminal].sum() > atol:
            raise ValueError("TabularMDP: the initial distribution puts mass on a terminal state")


def _to_float64(x):
    if isinstance(x, (jax.Array, np.ndarray, np.generic)) and jnp.issubdtype(x.dtype, jnp.floating):
        return jnp.asarray(x, jnp.float64)
    return x


def _to_numpy_if_concrete(x):
    """Concrete results leave as NumPy float64 (safe to mix with float32 JAX code); tracers stay."""
    return x if isinstance(x, jax.core.Tracer) else np.asarray(x)


def _float64(fn=None, *, static_argnames: tuple[str, ...] = ()):
    """Compile `fn` with `jax.jit` and run it with 64-bit types enabled (scoped), its floating array
    inputs cast to float64.

    Python scalars are left alone (they enter computations as weakly typed float64 constants);
    `static_argnames` (flags, `log_policy_fn`) are compile-time constants. Concrete
    results are returned as NumPy float64 arrays: a float64 `jax.Array` would be truncated, with a
    warning, by the first jnp operation outside the x64 context. Under a JAX transformation (jit,
    grad, vmap) the traced results are returned as they are.
    """
    if fn is None:
        return functools.partial(_float64, static_argnames=static_argnames)
    compiled = jax.jit(fn, static_argnames=static_argnames)

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with jax.enable_x64(True):
            args, kwargs = jax.tree_util.tree_map(_to_float64, (args, kwargs))
            return jax.tree_util.tree_map(_to_numpy_if_concrete, compiled(*args, **kwargs))

    return wrapped


def tabular_softmax_log_policy(logits: jax.Array) -> jax.Array:
    """[S, A] log π(a|s) = logits[s, a] − log Σ_b exp(logits[s, b]) (the default parameterisation)."""
    return jax.nn.log_softmax(logits, axis=-1)


# ----------------------------------------------------------------------------- policy evaluation


@_float64
def softmax_policy(logits: jax.Array) -> jax.Array:
    """[S, A] π(a|s) = softmax(θ[s])_a for a logits table θ [S, A]."""
    return jax.nn.softmax(logits, axis=-1)


def _live(mdp: TabularMDP) -> jax.Array:
    """[S] 1 for states an episode can act in, 0 for terminal ones."""
    return 1.0 - jnp.asarray(mdp.terminal).astype(jnp.asarray(mdp.transitions).dtype)


def _continuation(mdp: TabularMDP) -> jax.Array:
    """[S, A, S] P_c(s'|s, a) = (1 − terminal(s)) P(s'|s, a) (1 − terminal(s')): transitions that
    continue an episode (none out of or into a terminal state)."""
    if mdp.terminal is None:
        return mdp.transitions
    live = _live(mdp)
    return live[:, None, None] * mdp.transitions * live


def _live_rewards(mdp: TabularMDP) -> jax.Array:
    """[S, A] R(s, a), zeroed in terminal states (never acted in; their value is 0)."""
    return mdp.rewards if mdp.terminal is None else mdp.rewards * _live(mdp)[:, None]


class PolicySolution(NamedTuple):
    """Exact facts about a policy π on a tabular MDP, in the dtype of π (see `solve_policy`)."""

    value: jax.Array
    """[S] V^π."""
    action_value: jax.Array
    """[S, A] Q^π."""
    advantage: jax.Array
    """[S, A] A^π = Q^π − V^π."""
    visitation: jax.Array
    """[S] normalised discounted visitation d^π = (1 − γ) ρ^π."""
    visitation_measure: jax.Array
    """[S] discounted visitation measure ρ^π = μ0ᵀ (I − γ P_π)⁻¹."""
    expected_return: jax.Array
    """Scalar J(π) = μ0ᵀ V^π."""


def solve_policy(mdp: TabularMDP, policy: jax.Array) -> PolicySolution:
    """V^π, Q^π, A^π, d^π, ρ^π and J(π) for a policy table π [S, A], by two S × S solves:

        V = (I − γ P_π)⁻¹ r_π,   Q = R + γ P_c V,   A = Q − V,
        ρ = μ0ᵀ (I − γ P_π)⁻¹,   d = (1 − γ) ρ,   J = μ0ᵀ V

    (the Bellman equation and the discounted visitation of lectures 000 / 002; P_c and R as in
    `_continuation` and `_live_rewards`). Computed in π's dtype: float64 under this module's public
    functions, float32 inside an algorithm's jitted `learn`. Jittable.
    """
    dtype = policy.dtype
    transitions = jnp.asarray(_continuation(mdp), dtype)
    rewards = jnp.asarray(_live_rewards(mdp), dtype)
    gamma = jnp.asarray(mdp.discount, dtype)
    mu0 = jnp.asarray(mdp.initial_distribution, dtype)
    system = jnp.eye(transitions.shape[0], dtype=dtype) - gamma * jnp.einsum("sa,sat->st", policy, transitions)
    value = jnp.linalg.solve(system, jnp.sum(policy * rewards, axis=-1))
    q = rewards + gamma * jnp.einsum("sat,t->sa", transitions, value)
    rho = jnp.linalg.solve(system.T, mu0)
    return PolicySolution(value, q, q - value[:, None], (1.0 - gamma) * rho, rho, jnp.dot(mu0, value))


@_float64
def policy_transition_matrix(mdp: TabularMDP, policy: jax.Array) -> jax.Array:
    """[S, S] P_π(s, s') = Σ_a π(a|s) P_c(s'|s, a) (sub-stochastic where episodes can terminate)."""
    return jnp.einsum("sa,sat->st", policy, _continuation(mdp))


@_float64
def policy_rewards(mdp: TabularMDP, policy: jax.Array) -> jax.Array:
    """[S] r_π(s) = Σ_a π(a|s) R(s, a) (0 in terminal states)."""
    return jnp.sum(policy * _live_rewards(mdp), axis=-1)


@_float64
def state_values(mdp: TabularMDP, policy: jax.Array) -> jax.Array:
    """[S] V^π = (I − γ P_π)^{-1} r_π, the solution of the Bellman equation V = r_π + γ P_π V."""
    return solve_policy(mdp, policy).value


@_float64
def action_values(mdp: TabularMDP, policy: jax.Array) -> jax.Array:
    """[S, A] Q^π(s, a) = R(s, a) + γ Σ_s' P_c(s'|s, a) V^π(s')."""
    return solve_policy(mdp, policy).action_value


@_float64
def advantages(mdp: TabularMDP, policy: jax.Array) -> jax.Array:
    """[S, A] A^π(s, a) = Q^π(s, a) − V^π(s) (lecture 000, "Advantage Function"); Σ_a π A^π = 0."""
    return solve_policy(mdp, policy).advantage


@_float64(static_argnames=("normalized",))
def discounted_visitation(mdp: TabularMDP, policy: jax.Array, normalized: bool = True) -> jax.Array:
    """[S] discounted state visitation of π from μ0.

    normalized=False: ρ_μ^π(s) = Σ_t γ^t Pr(s_t = s | s_0 ~ μ0, π) = [μ0ᵀ (I − γ P_π)^{-1}](s),
        the "discounted state visitation measure" of lecture 002 (sums to 1/(1 − γ) without
        terminal states).
    normalized=True: d_μ^π = (1 − γ) ρ_μ^π, the distribution of lecture 000 (sums to 1 without
        terminal states), so that ∇J = 1/(1 − γ) E_{s,a ~ d}[...].
    """
    solution = solve_policy(mdp, policy)
    return solution.visitation if normalized else solution.visitation_measure


@_float64
def expected_return(mdp: TabularMDP, policy: jax.Array) -> jax.Array:
    """Scalar J(π) = V^π(μ0) = Σ_s μ0(s) V^π(s) = E[Σ_t γ^t r_t] (lecture 002, "Expected Returns")."""
    return solve_policy(mdp, policy).expected_return


# ------------------------------------------------------------------------- gradients and Fisher


@_float64(static_argnames=("log_policy_fn",))
def objective(mdp: TabularMDP, theta: jax.Array, log_policy_fn: LogPolicyFn = tabular_softmax_log_policy) -> jax.Array:
    """Scalar J(θ) = μ0ᵀ (I − γ P_{π_θ})^{-1} r_{π_θ}, differentiable in θ through the linear solve."""
    return expected_return(mdp, jnp.exp(log_policy_fn(theta)))


@_float64(static_argnames=("log_policy_fn",))
def score_table(theta: jax.Array, log_policy_fn: LogPolicyFn = tabular_softmax_log_policy) -> jax.Array:
    """[S, A, k] the score ∇_θ log π_θ(a|s) for every (s, a), with θ flattened to k = θ.size.

    For the tabular softmax, ∂ log π(a|s) / ∂θ[s', b] = 1[s = s'] (1[a = b] − π(b|s)).
    """
    jac = jax.jacobian(log_policy_fn)(theta)
    S, A = jac.shape[:2]
    return jac.reshape(S, A, -1)


@_float64(static_argnames=("log_policy_fn",))
def policy_gradient(mdp: TabularMDP, theta: jax.Array,
                    log_policy_fn: LogPolicyFn = tabular_softmax_log_policy) -> jax.Array:
    """∇_θ J from the policy gradient theorem (lecture 000 / lecture 002), shaped like θ:

        ∇_θ J(π_θ) = 1/(1 − γ) · E_{s ~ d_μ^π, a ~ π(·|s)}[∇_θ log π_θ(a|s) · Q^π(s, a)]
                   = Σ_s ρ_μ^π(s) Σ_a ∇_θ π_θ(a|s) Q^π(s, a).
    """
    policy = jnp.exp(log_policy_fn(theta))
    d = discounted_visitation(mdp, policy, normalized=True)
    q = action_values(mdp, policy)
    scores = score_table(theta, log_policy_fn)
    grad = jnp.einsum("s,sa,sak,sa->k", d, policy, scores, q) / (1.0 - mdp.discount)
    return grad.reshape(jnp.shape(theta))


@_float64(static_argnames=("log_policy_fn", "normalized"))
def fisher_matrix(mdp: TabularMDP, theta: jax.Array, log_policy_fn: LogPolicyFn = tabular_softmax_log_policy,
                  normalized: bool = True) -> jax.Array:
    """[k, k] exact Fisher information of the policy under the discounted visitation:

        normalized=True:  F = E_{s ~ d_μ^π, a ~ π}[∇ log π ∇ log πᵀ]   (lecture 000, "Trust-Region
                          Optimization: Constraint"; ½ Δθᵀ F Δθ ≈ mean KL under d, see `mean_kl`)
        normalized=False: F_ρ = E_{s ~ ρ_μ^π, a ~ π}[...] = F / (1 − γ)  (lecture 002, FIM_{ρ^π, π})

    F is symmetric positive semi-definite; for the tabular softmax it is singular along the
    all-ones direction of each state's logits (adding a constant to θ[s] leaves π unchanged).
    """
    policy = jnp.exp(log_policy_fn(theta))
    d = discounted_visitation(mdp, policy, normalized=normalized)
    scores = score_table(theta, log_policy_fn)
    return jnp.einsum("s,sa,sak,saj->kj", d, policy, scores, scores)


@_float64(static_argnames=("log_policy_fn", "normalized"))
def natural_gradient(mdp: TabularMDP, theta: jax.Array, log_policy_fn: LogPolicyFn = tabular_softmax_log_policy,
                     damping: float | jax.Array = 0.0, normalized: bool = True) -> jax.Array:
    """The natural gradient F⁺ ∇J (lecture 000, "Natural Policy Gradient"; (12.13)), shaped like θ.

    With F = U diag(σ) Uᵀ: damping = 0 gives the Moore-Penrose pseudo-inverse, 1/σ on the
    eigenvalues above a relative tolerance and 0 on the null space (the minimum-norm solution of
    F u = ∇J, which exists because ∇J lies in the range of F); damping = λ > 0 gives
    (F + λI)⁻¹ ∇J, 1/(σ + λ), the regularised form the lecture suggests for singular F.
    `normalized` picks the Fisher as in `fisher_matrix`: with normalized=False (F_ρ, lecture 002)
    the natural gradient equals the compatible critic's weights w exactly; with the default
    normalised F it is w / (1 − γ).
    """
    fisher = fisher_matrix(mdp, theta, log_policy_fn, normalized=normalized)
    grad = policy_gradient(mdp, theta, log_policy_fn).reshape(-1)
    eigenvalues, eigenvectors = jnp.linalg.eigh(fisher)
    tolerance = 10.0 * fisher.shape[0] * jnp.finfo(fisher.dtype).eps * jnp.max(jnp.abs(eigenvalues))
    safe = jnp.where(eigenvalues > tolerance, eigenvalues, 1.0)
    pseudo_inverse = jnp.where(eigenvalues > tolerance, 1.0 / safe, 0.0)
    damped_inverse = 1.0 / jnp.maximum(eigenvalues + damping, jnp.finfo(fisher.dtype).tiny)
    inverse = jnp.where(damping > 0, damped_inverse, pseudo_inverse)
    step = eigenvectors @ (inverse * (eigenvectors.T @ grad))
    return step.reshape(jnp.shape(theta))


@_float64(static_argnames=("log_policy_fn",))
def compatible_critic_weights(mdp: TabularMDP, theta: jax.Array,
                              log_policy_fn: LogPolicyFn = tabular_softmax_log_policy) -> jax.Array:
    """Weights w of the compatible linear critic Q_w(s, a) = ∇_θ log π_θ(a|s)ᵀ w, shaped like θ.

    w minimises ε(w) = Σ_s ρ^π(s) Σ_a π(a|s) (Q^π(s, a) − Q_w(s, a))² (lecture 002, "Compatible
    Function Approximation Theorem"), solved here as a weighted least-squares problem (minimum-norm
    solution when the score features are linearly dependent). The theorem then gives
    ∇J = Σ_s ρ Σ_a ∇π Q_w = F_ρ w, i.e. w is the natural gradient ("natural gradient = w").
    """
    policy = jnp.exp(log_policy_fn(theta))
    weights = discounted_visitation(mdp, policy, normalized=False)[:, None] * policy
    scores = score_table(theta, log_policy_fn)
    sqrt_w = jnp.sqrt(weights).reshape(-1)
    design = sqrt_w[:, None] * scores.reshape(-1, scores.shape[-1])
    target = sqrt_w * action_values(mdp, policy).reshape(-1)
    w, *_ = jnp.linalg.lstsq(design, target, rcond=None)
    return w.reshape(jnp.shape(theta))


# -------------------------------------------------------- policy comparison: PDL, surrogate, KL


@_float64
def performance_difference(mdp: TabularMDP, new_policy: jax.Array, old_policy: jax.Array) -> jax.Array:
    """Scalar right-hand side of the performance difference lemma (lecture 000; Kakade-Langford
    identity, lecture 001):

        V^{π'}(μ) − V^π(μ) = 1/(1 − γ) · E_{s ~ d_μ^{π'}}[E_{a ~ π'(·|s)} A^π(s, a)]

    with π' = `new_policy`, π = `old_policy`. Equals expected_return(new) − expected_return(old).
    """
    d_new = discounted_visitation(mdp, new_policy, normalized=True)
    advantage_old = advantages(mdp, old_policy)
    return jnp.sum(d_new[:, None] * new_policy * advantage_old) / (1.0 - mdp.discount)


@_float64
def surrogate_objective(mdp: TabularMDP, new_policy: jax.Array, old_policy: jax.Array) -> jax.Array:
    """Scalar trust-region surrogate (lecture 001, eq. (3); (12.17) with b_γ,θ in place of b_γ,θ'):

        L_π(π') = J(π) + Σ_s ρ_μ^π(s) Σ_a π'(a|s) A^π(s, a)
                = J(π) + 1/(1 − γ) · E_{s ~ d^π}[E_{a ~ π'} A^π(s, a)]

    i.e. the performance difference lemma with the new policy's visitation replaced by the old
    one's. L_π(π) = J(π) and ∇_θ' L_π(π_θ')|_{θ'=θ} = ∇J(θ) (first-order agreement).
    """
    d_old = discounted_visitation(mdp, old_policy, normalized=True)
    gain = jnp.sum(d_old[:, None] * new_policy * advantages(mdp, old_policy)) / (1.0 - mdp.discount)
    return expected_return(mdp, old_policy) + gain


def _kl_per_state(p: jax.Array, q: jax.Array) -> jax.Array:
    """[S] KL(p(·|s) ‖ q(·|s)) = Σ_a p log(p/q), with 0 log 0 = 0."""
    safe_p = jnp.where(p > 0, p, 1.0)
    return jnp.sum(jnp.where(p > 0, p * (jnp.log(safe_p) - jnp.log(q)), 0.0), axis=-1)


@_float64
def mean_kl(mdp: TabularMDP, old_policy: jax.Array, new_policy: jax.Array) -> jax.Array:
    """Scalar D̄_KL = E_{s ~ d_μ^{π_old}}[KL(π_old(·|s) ‖ π_new(·|s))] (lecture 001 "max-KL → mean-KL";
    (12.19)). The trajectory KL of lecture 000, KL(ρ_θt ‖ ρ_θ) = 1/(1 − γ)·D̄_KL. Its Hessian in the
    new policy's parameters, at new = old, is the normalised Fisher matrix F.
    """
    d_old = discounted_visitation(mdp, old_policy, normalized=True)
    return jnp.dot(d_old, _kl_per_state(old_policy, new_policy))


@_float64
def max_kl(old_policy: jax.Array, new_policy: jax.Array) -> jax.Array:
    """Scalar D_KL^max = max_s KL(π_old(·|s) ‖ π_new(·|s)) (lecture 001, TRPO's penalty term)."""
    return jnp.max(_kl_per_state(old_policy, new_policy))


@_float64
def max_total_variation(old_policy: jax.Array, new_policy: jax.Array) -> jax.Array:
    """Scalar D_TV^max = max_s ½ Σ_a |π_old(a|s) − π_new(a|s)| (lecture 001, eq. (7))."""
    return jnp.max(0.5 * jnp.sum(jnp.abs(old_policy - new_policy), axis=-1))


@_float64
def improvement_lower_bound(mdp: TabularMDP, new_policy: jax.Array, old_policy: jax.Array) -> jax.Array:
    """Scalar TRPO's Theorem 1 (lecture 001, eq. (8)), a lower bound on J(π_new):

        J(π_new) ≥ L_{π_old}(π_new) − 4 ε γ / (1 − γ)² · α²,
        α = D_TV^max(π_old, π_new),  ε = max_{s,a} |A^{π_old}(s, a)|.

    Since α² ≤ D_KL^max (Pinsker), L − C·D_KL^max with C = 4εγ/(1 − γ)² is a lower bound too.
    """
    gamma = mdp.discount
    eps = jnp.max(jnp.abs(advantages(mdp, old_policy)))
    alpha = max_total_variation(old_policy, new_policy)
    penalty = 4.0 * eps * gamma / (1.0 - gamma) ** 2 * alpha**2
    return surrogate_objective(mdp, new_policy, old_policy) - penalty


# ------------------------------------------------ multi-step returns that bootstrap from any V


def n_step_action_values(mdp: TabularMDP, policy: jax.Array, values: jax.Array, n: int) -> jax.Array:
    """[S, A] Q^(n)_V(s, a) = E[G_t^(n) | s_t = s, a_t = a], the expected n-step return
    G_t^(n) = r_t + γ r_{t+1} + … + γ^{n−1} r_{t+n−1} + γ^n V(s_{t+n}) bootstrapped from an
    arbitrary value table V (lecture 003, the A_n family), by the recursion in n:

        Q^(1)(s, a) = R(s, a) + γ Σ_s' P_c(s'|s, a) V(s')
        Q^(m)(s, a) = R(s, a) + γ Σ_s' P_c(s'|s, a) Σ_a' π(a'|s') Q^(m−1)(s', a')

    The expectation of `estimators.n_step_returns` (and, minus V(s), of `n_step_advantages`); an
    episode that terminates first stops the sum (P_c carries no mass into terminal states, so V
    there never counts). V = V^π gives Q^π for every n; V = 0 gives the expected Monte Carlo
    return cut n steps ahead (`estimators.reward_to_go` n − 1 steps before a truncation).

    Args:
        mdp: the MDP.  policy: [S, A] π(a|s).  values: [S] V(s), any table.
        n: number of steps, n ≥ 1 (a traced loop bound: one compilation serves every n).
    """
    if isinstance(n, (int, np.integer)) and n < 1:
        raise ValueError(f"n_step_action_values: n must be at least 1, got {n}")
    return _lambda_return_cut(mdp, policy, values, 1.0, n)


def lambda_return_action_values(mdp: TabularMDP, policy: jax.Array, values: jax.Array,
                                lambda_: float | jax.Array, horizon: int | None = None) -> jax.Array:
    """[S, A] Q^λ_V(s, a) = E[G_t^λ | s_t = s, a_t = a], the expected λ-return
    G_t^λ = r_t + γ((1 − λ) V(s_{t+1}) + λ G_{t+1}^λ) bootstrapped from an arbitrary value table V
    (lecture 000, TD(λ) forward view; GAE(λ) + V(s_t)). It solves

        Q^λ(s, a) = R(s, a) + γ Σ_s' P_c(s'|s, a) [(1 − λ) V(s') + λ Σ_a' π(a'|s') Q^λ(s', a')].

    horizon=None: the fixed point. On states, U = π · Q^λ solves U = r_π + γ P_π((1 − λ) V + λ U),
        so U = (I − γλ P_π)^{-1} (r_π + γ(1 − λ) P_π V) and Q^λ = R + γ P_c((1 − λ) V + λ U).
    horizon=m ≥ 1: the λ-return cut m steps ahead, bootstrapping from V(s_{t+m}) as
        `estimators.lambda_returns` does where the episode is truncated (or the stream ends) at
        step t + m − 1: m applications of the recursion from π · Q^λ_0 = V, so Q^λ_1 = R + γ P_c V.

    λ = 0 gives R + γ P_c V; λ = 1 gives Q^π (horizon None) or `n_step_action_values(…, m)`
    (horizon m); V = V^π gives Q^π for every λ and horizon.

    Args:
        mdp: the MDP.  policy: [S, A] π(a|s).  values: [S] V(s), any table.
        lambda_: scalar λ ∈ [0, 1].  horizon: None, or m ≥ 1 (a traced loop bound).
    """
    if horizon is None:
        return _lambda_return_fixed_point(mdp, policy, values, lambda_)
    if isinstance(horizon, (int, np.integer)) and horizon < 1:
        raise ValueError(f"lambda_return_action_values: horizon must be None or at least 1, got {horizon}")
    return _lambda_return_cut(mdp, policy, values, lambda_, horizon)


def _lambda_backup(mdp: TabularMDP, values: jax.Array, lambda_, next_policy_values: jax.Array) -> jax.Array:
    """[S, A] R + γ P_c((1 − λ) V + λ U) for U = `next_policy_values` [S]."""
    mixed = (1.0 - lambda_) * values + lambda_ * next_policy_values
    return _live_rewards(mdp) + mdp.discount * jnp.einsum("sat,t->sa", _continuation(mdp), mixed)


@_float64
def _lambda_return_fixed_point(mdp: TabularMDP, policy: jax.Array, values: jax.Array, lambda_) -> jax.Array:
    p_pi = policy_transition_matrix(mdp, policy)
    system = jnp.eye(mdp.num_states) - mdp.discount * lambda_ * p_pi
    u = jnp.linalg.solve(system, policy_rewards(mdp, policy) + mdp.discount * (1.0 - lambda_) * p_pi @ values)
    return _lambda_backup(mdp, values, lambda_, u)


@_float64
def _lambda_return_cut(mdp: TabularMDP, policy: jax.Array, values: jax.Array, lambda_, horizon) -> jax.Array:
    def step(_, q):
        return _lambda_backup(mdp, values, lambda_, jnp.sum(policy * q, axis=-1))

    return jax.lax.fori_loop(1, horizon, step, _lambda_backup(mdp, values, lambda_, values))
