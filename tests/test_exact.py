"""pgax.exact: the tabular oracle checked against independent computations and the seeds' theorems.

Property-based over random Garnet MDPs (hypothesis, derandomised so the suite is deterministic),
plus hand-computed values and the episodic gridworld. Everything is float64: exact.py runs in a
scoped x64 context; tests that differentiate through it enter `jax.enable_x64(True)` themselves.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgax import exact
from pgax.envs.tabular import chain_mdp, garnet_mdp, gridworld_mdp, stack_mdps

PROPERTY = settings(max_examples=20, deadline=None, derandomize=True, database=None)


@st.composite
def random_problems(draw, num_policies=1):
    """(mdp, [logits, ...]): a Garnet MDP, 2×2 or 5×3, any branching, γ ∈ {0.5, 0.9, 0.99}."""
    seed = draw(st.integers(0, 2**31 - 1))
    # Two fixed shapes keep the number of XLA compilations (and the suite's runtime) small.
    num_states, num_actions = draw(st.sampled_from([(2, 2), (5, 3)]))
    branching = draw(st.integers(1, num_states))
    gamma = draw(st.sampled_from([0.5, 0.9, 0.99]))
    scale = draw(st.sampled_from([0.3, 1.0, 2.5]))
    mdp = garnet_mdp(seed, num_states, num_actions, branching, gamma)
    rng = np.random.default_rng(seed + 1)
    logits = [scale * rng.normal(size=(num_states, num_actions)) for _ in range(num_policies)]
    return mdp, logits


def in_float64(transformed):
    """Call a JAX-transformed function with x64 enabled; NumPy float64 out."""

    def call(*args):
        with jax.enable_x64(True):
            return np.asarray(transformed(*args))

    return call


# Compiled once per shape and reused by every hypothesis example (float64 inside the x64 context).
grad_objective = in_float64(jax.jit(jax.grad(exact.objective, argnums=1)))
grad_surrogate = in_float64(jax.jit(jax.grad(
    lambda mdp, logits, old: exact.surrogate_objective(mdp, jax.nn.softmax(logits, axis=-1), old), argnums=1)))
hessian_mean_kl = in_float64(jax.jit(jax.hessian(
    lambda mdp, old, logits: exact.mean_kl(mdp, old, jax.nn.softmax(logits, axis=-1)), argnums=2)))


def autodiff(fn, *args):
    """jax.grad of fn at args, computed in float64 (for one-off checks)."""
    with jax.enable_x64(True):
        return np.asarray(jax.grad(fn)(*(jnp.asarray(a, jnp.float64) for a in args)))


def geometric_sum(matrix, terms_log2=13):
    """Σ_{t < 2^k} Mᵗ = Π_j (I + M^{2^j}) by repeated squaring (an independent Neumann series)."""
    total, power = np.eye(len(matrix)), matrix.copy()
    for _ in range(terms_log2):
        total = total + total @ power
        power = power @ power
    return total


def numpy_scores(logits):
    """[S, A, S·A] closed-form tabular-softmax score 1[s = s'](1[a = b] − π(b|s)), by hand."""
    S, A = logits.shape
    pi = np.exp(logits - logits.max(1, keepdims=True))
    pi /= pi.sum(1, keepdims=True)
    scores = np.zeros((S, A, S, A))
    for s in range(S):
        for a in range(A):
            scores[s, a, s] = np.eye(A)[a] - pi[s]
    return scores.reshape(S, A, S * A)


# --------------------------------------------------------------------------------- evaluation


@PROPERTY
@given(random_problems())
def test_bellman_solution_matches_iterative_policy_evaluation(problem):
    mdp, (logits,) = problem
    P, R, mu0, gamma = mdp.transitions, mdp.rewards, mdp.initial_distribution, float(mdp.discount)
    pi = exact.softmax_policy(logits)
    v, q, adv = exact.state_values(mdp, pi), exact.action_values(mdp, pi), exact.advantages(mdp, pi)

    # Independent: the Neumann series Σ_t (γP_π)^t (8192 terms) instead of a linear solve.
    p_pi, r_pi = np.einsum("sa,sat->st", pi, P), (pi * R).sum(1)
    series = geometric_sum(gamma * p_pi)
    v_iter, rho = series @ r_pi, mu0 @ series
    np.testing.assert_allclose(v, v_iter, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(exact.policy_transition_matrix(mdp, pi), p_pi, atol=1e-15)
    np.testing.assert_allclose(q, R + gamma * P @ v, atol=1e-10)
    np.testing.assert_allclose((pi * adv).sum(1), 0.0, atol=1e-10)
    np.testing.assert_allclose(exact.discounted_visitation(mdp, pi, normalized=False), rho, rtol=1e-9)
    d = exact.discounted_visitation(mdp, pi)
    np.testing.assert_allclose(d, (1 - gamma) * rho, rtol=1e-9)
    np.testing.assert_allclose(d.sum(), 1.0, atol=1e-12)
    np.testing.assert_allclose(exact.expected_return(mdp, pi), mu0 @ v_iter, rtol=1e-9)
    # J = 1/(1-γ) E_{s~d, a~π} R(s, a): the visitation-measure form of the objective (lecture 002).
    np.testing.assert_allclose(exact.expected_return(mdp, pi), (d[:, None] * pi * R).sum() / (1 - gamma), rtol=1e-9)


def test_two_state_values_by_hand():
    # State 0 --(a0: r=1)--> 1 ; state 1 --(any: r=0)--> 0. Deterministic; γ = 0.5.
    P = np.zeros((2, 2, 2))
    P[0, :, 1] = 1.0
    P[1, :, 0] = 1.0
    R = np.array([[1.0, 0.0], [0.0, 0.0]])
    mdp = exact.TabularMDP(P, R, np.array([1.0, 0.0]), np.float64(0.5))
    pi = np.array([[0.5, 0.5], [1.0, 0.0]])
    # V0 = 0.5 + 0.5 V1, V1 = 0.5 V0  =>  V0 = 0.5 / 0.75 = 2/3, V1 = 1/3.
    np.testing.assert_allclose(exact.state_values(mdp, pi), [2 / 3, 1 / 3], rtol=1e-14)
    np.testing.assert_allclose(exact.action_values(mdp, pi), [[1 + 1 / 6, 1 / 6], [1 / 3, 1 / 3]], rtol=1e-14)
    # ρ(0) = 1 + γ² + γ⁴ + … = 4/3 ; ρ(1) = γ ρ(0) = 2/3.
    np.testing.assert_allclose(exact.discounted_visitation(mdp, pi, normalized=False), [4 / 3, 2 / 3], rtol=1e-14)


def test_gridworld_shortest_path_value_in_closed_form():
    # No slip, always move right then down: L = (h-1) + (w-1) steps of reward -1 until the goal.
    h, w, gamma = 3, 4, 0.9
    mdp = gridworld_mdp(h, w, discount=gamma, slip=0.0)
    pi = np.zeros((h * w, 4))
    for r in range(h):
        for c in range(w):
            pi[r * w + c, 1 if c < w - 1 else 2] = 1.0
    steps = (h - 1) + (w - 1)
    np.testing.assert_allclose(exact.expected_return(mdp, pi), -(1 - gamma**steps) / (1 - gamma), rtol=1e-13)
    d = exact.discounted_visitation(mdp, pi, normalized=False)
    # Each path cell is visited once, at time k: ρ = γ^k; the goal (terminal) is never acted in.
    path = [0, 1, 2, 3, 7]
    np.testing.assert_allclose(d[path], gamma ** np.arange(steps), rtol=1e-13)
    assert d[11] == pytest.approx(0.0, abs=1e-15)


def test_chain_optimal_direction_beats_myopic_policy():
    mdp = chain_mdp(6, discount=0.95)
    always_left, always_right = np.tile([1.0, 0.0], (6, 1)), np.tile([0.0, 1.0], (6, 1))
    # Always-left collects 0.05 per step forever from state 0.
    np.testing.assert_allclose(exact.expected_return(mdp, always_left), 0.05 / 0.05, rtol=1e-12)
    assert exact.expected_return(mdp, always_right) > exact.expected_return(mdp, always_left)


# -------------------------------------------------------------------------- policy gradient


@PROPERTY
@given(random_problems())
def test_policy_gradient_theorem_equals_autodiff_through_the_linear_solve(problem):
    mdp, (logits,) = problem
    theorem = exact.policy_gradient(mdp, logits)
    by_autodiff = grad_objective(mdp, logits)
    scale = max(1.0, np.abs(by_autodiff).max())
    np.testing.assert_allclose(theorem, by_autodiff, atol=1e-10 * scale)
    # The lecture-002 form Σ_s ρ(s) Σ_a ∇π(a|s) Q(s, a), with the score written out by hand.
    pi = exact.softmax_policy(logits)
    rho, q = exact.discounted_visitation(mdp, pi, normalized=False), exact.action_values(mdp, pi)
    by_hand = np.einsum("s,sa,sak,sa->k", rho, pi, numpy_scores(logits), q).reshape(logits.shape)
    np.testing.assert_allclose(theorem, by_hand, atol=1e-10 * scale)
    np.testing.assert_allclose(exact.score_table(logits), numpy_scores(logits), atol=1e-14)


def loglinear_policy(features):
    """log π(a|s) = log_softmax_a(φ(s, a)·θ), a non-tabular parameterisation with θ ∈ R^k."""
    return lambda theta: jax.nn.log_softmax(jnp.einsum("sak,k->sa", features, theta), axis=-1)


def test_policy_gradient_theorem_for_a_log_linear_policy():
    rng = np.random.default_rng(3)
    mdp = garnet_mdp(3, 5, 3, 2, 0.9)
    features, theta = rng.normal(size=(5, 3, 4)), rng.normal(size=4)
    log_policy = loglinear_policy(features)
    theorem = exact.policy_gradient(mdp, theta, log_policy)
    np.testing.assert_allclose(theorem, autodiff(lambda th: exact.objective(mdp, th, log_policy), theta), atol=1e-11)
    assert theorem.shape == (4,)


# ------------------------------------------------------------------- performance difference


@PROPERTY
@given(random_problems(num_policies=2))
def test_performance_difference_lemma(problem):
    mdp, (old_logits, new_logits) = problem
    old, new = exact.softmax_policy(old_logits), exact.softmax_policy(new_logits)
    difference = exact.expected_return(mdp, new) - exact.expected_return(mdp, old)
    assert abs(exact.performance_difference(mdp, new, old) - difference) <= 1e-10
    # Lecture 000's orientation: V^π − V^π' = 1/(1-γ) E_{d^π}[E_π A^π'].
    assert abs(exact.performance_difference(mdp, old, new) + difference) <= 1e-10


@PROPERTY
@given(random_problems())
def test_policy_iteration_step_improves_by_the_lemma(problem):
    mdp, (logits,) = problem
    old = exact.softmax_policy(logits)
    greedy = np.eye(mdp.num_actions)[exact.advantages(mdp, old).argmax(1)]
    gain = exact.performance_difference(mdp, greedy, old)
    assert gain >= -1e-12  # E_{π'} A^π ≥ 0 in every state, so the lemma makes the gain non-negative
    assert exact.expected_return(mdp, greedy) >= exact.expected_return(mdp, old) - 1e-12


# ------------------------------------------------------------------- Fisher and natural gradient


def null_directions(num_states, num_actions):
    """[S, S·A] the per-state all-ones directions e_s ⊗ 1 (shifting θ[s] by a constant)."""
    return np.kron(np.eye(num_states), np.ones((1, num_actions)))


@PROPERTY
@given(random_problems())
def test_fisher_is_symmetric_psd_and_singular_along_per_state_ones(problem):
    mdp, (logits,) = problem
    S, A, gamma = mdp.num_states, mdp.num_actions, float(mdp.discount)
    fisher = exact.fisher_matrix(mdp, logits)
    pi = exact.softmax_policy(logits)
    d = exact.discounted_visitation(mdp, pi)
    scores = numpy_scores(logits)
    np.testing.assert_allclose(fisher, np.einsum("s,sa,sak,saj->kj", d, pi, scores, scores), atol=1e-14)
    np.testing.assert_allclose(fisher, fisher.T, atol=1e-15)
    eigenvalues = np.linalg.eigvalsh(fisher)
    assert eigenvalues.min() >= -1e-12 * eigenvalues.max()
    np.testing.assert_allclose(fisher @ null_directions(S, A).T, 0.0, atol=1e-14)
    # Every state is visited (Garnet μ0 > 0), so the null space is exactly those S directions.
    assert np.linalg.matrix_rank(fisher, tol=1e-10 * eigenvalues.max()) == S * (A - 1)
    np.testing.assert_allclose(exact.fisher_matrix(mdp, logits, normalized=False), fisher / (1 - gamma), rtol=1e-10)


@PROPERTY
@given(random_problems())
def test_natural_gradient_by_pseudo_inverse_and_damping_is_stable(problem):
    mdp, (logits,) = problem
    S, A, gamma = mdp.num_states, mdp.num_actions, float(mdp.discount)
    fisher = exact.fisher_matrix(mdp, logits)
    grad = exact.policy_gradient(mdp, logits).reshape(-1)
    nulls = null_directions(S, A)
    np.testing.assert_allclose(nulls @ grad, 0.0, atol=1e-12 * max(1.0, np.abs(grad).max()))  # ∇J ∈ range(F)

    natural = exact.natural_gradient(mdp, logits).reshape(-1)
    assert np.all(np.isfinite(natural))
    np.testing.assert_allclose(fisher @ natural, grad, atol=1e-8 * max(1.0, np.abs(grad).max()))
    np.testing.assert_allclose(nulls @ natural, 0.0, atol=1e-8 * max(1.0, np.abs(natural).max()))  # minimum norm
    # Tabular softmax closed form (every state visited): F⁺∇J = (A^π − mean_a A^π) / (1 − γ).
    adv = exact.advantages(mdp, exact.softmax_policy(logits))
    centered = (adv - adv.mean(1, keepdims=True)) / (1 - gamma)
    np.testing.assert_allclose(natural.reshape(S, A), centered, atol=1e-6 * max(1.0, np.abs(centered).max()))

    # Damping converges to the pseudo-inverse: ‖(F + λI)⁻¹∇J − F⁺∇J‖ ≤ λ ‖F⁺F⁺∇J‖ off the null space.
    # Along the null space (θ[s] + c, which leaves π unchanged) λ only amplifies ∇J's round-off by 1/λ.
    curvature = np.linalg.norm(np.linalg.pinv(fisher, hermitian=True) @ natural)
    for damping in (1e-2, 1e-4, 1e-6):
        damped = exact.natural_gradient(mdp, logits, damping=damping)
        assert np.all(np.isfinite(damped))
        np.testing.assert_allclose(damped.reshape(-1), np.linalg.solve(fisher + damping * np.eye(S * A), grad),
                                   rtol=1e-6, atol=1e-12 / damping)
        policy_part = (damped - damped.mean(1, keepdims=True)).reshape(-1)
        bound = damping * curvature * (1 + 1e-6) + 1e-8 * np.linalg.norm(natural)
        assert np.linalg.norm(policy_part - natural) <= bound
        assert np.abs(damped.mean(1)).max() <= 1e-12 / damping * max(1.0, np.abs(grad).max() / (1 - gamma))


@PROPERTY
@given(random_problems())
def test_half_quadratic_fisher_form_is_the_second_order_mean_kl(problem):
    mdp, (logits,) = problem
    S, A = mdp.num_states, mdp.num_actions
    old = exact.softmax_policy(logits)
    fisher = exact.fisher_matrix(mdp, logits)
    # Exact second-order agreement: the Hessian of the mean KL in the new logits is F.
    hessian = hessian_mean_kl(mdp, old, logits)
    np.testing.assert_allclose(hessian.reshape(S * A, S * A), fisher, atol=1e-10)

    # Finite steps: KL(θ + εΔ) = ½ ε² ΔᵀFΔ + O(ε³), so the relative gap shrinks linearly with ε.
    direction = np.random.default_rng(S * 10 + A).normal(size=(S, A))
    direction -= direction.mean(1, keepdims=True)  # off the null space, so ΔᵀFΔ > 0
    quad = 0.5 * direction.reshape(-1) @ fisher @ direction.reshape(-1)

    def relative_gap(eps):
        kl = exact.mean_kl(mdp, old, exact.softmax_policy(logits + eps * direction))
        return abs(kl - eps**2 * quad) / (eps**2 * quad)

    coarse, fine = relative_gap(1e-2), relative_gap(1e-3)
    assert fine <= 0.2 * coarse + 1e-6
    assert fine <= 5e-2


@PROPERTY
@given(random_problems())
def test_compatible_critic_weights_are_the_natural_gradient(problem):
    mdp, (logits,) = problem
    gamma = float(mdp.discount)
    w = exact.compatible_critic_weights(mdp, logits)
    natural_rho = exact.natural_gradient(mdp, logits, normalized=False)
    scale = max(1.0, np.abs(w).max())
    np.testing.assert_allclose(w, natural_rho, atol=1e-7 * scale)  # lecture 002: ∇^nat J = w
    np.testing.assert_allclose(w, (1 - gamma) * exact.natural_gradient(mdp, logits), atol=1e-7 * scale)

    pi = exact.softmax_policy(logits)
    scores = exact.score_table(logits)
    q_w = scores @ w.reshape(-1)
    # The compatible critic reproduces the advantage (tabular softmax spans all π-centred Q's) ...
    np.testing.assert_allclose(q_w, exact.advantages(mdp, pi), atol=1e-7 * scale)
    # ... and plugging it into the theorem gives the exact gradient (compatible FA theorem).
    rho = exact.discounted_visitation(mdp, pi, normalized=False)
    with_critic = np.einsum("s,sa,sak,sa->k", rho, pi, scores, q_w)
    np.testing.assert_allclose(with_critic, exact.policy_gradient(mdp, logits).reshape(-1), atol=1e-7 * scale)


def test_compatible_critic_for_a_full_rank_log_linear_policy():
    rng = np.random.default_rng(7)
    mdp = garnet_mdp(11, 6, 3, 3, 0.9)
    features, theta = rng.normal(size=(6, 3, 5)), rng.normal(size=5)
    log_policy = loglinear_policy(features)
    fisher = exact.fisher_matrix(mdp, theta, log_policy, normalized=False)
    assert np.linalg.matrix_rank(fisher) == 5  # nonsingular: w is unique
    w = exact.compatible_critic_weights(mdp, theta, log_policy)
    np.testing.assert_allclose(w, np.linalg.solve(fisher, exact.policy_gradient(mdp, theta, log_policy)), rtol=1e-9)
    np.testing.assert_allclose(w, exact.natural_gradient(mdp, theta, log_policy, normalized=False), rtol=1e-9)


# ------------------------------------------------------------------ surrogate and trust region


@PROPERTY
@given(random_problems())
def test_surrogate_agrees_with_the_objective_to_first_order(problem):
    mdp, (logits,) = problem
    old = exact.softmax_policy(logits)
    np.testing.assert_allclose(exact.surrogate_objective(mdp, old, old), exact.expected_return(mdp, old), rtol=1e-12)
    surrogate_grad = grad_surrogate(mdp, logits, old)
    grad = exact.policy_gradient(mdp, logits)
    np.testing.assert_allclose(surrogate_grad, grad, atol=1e-10 * max(1.0, np.abs(grad).max()))


@PROPERTY
@given(random_problems(num_policies=2))
def test_surrogate_mean_kl_and_bound_match_their_formulas(problem):
    mdp, (old_logits, new_logits) = problem
    old, new = exact.softmax_policy(old_logits), exact.softmax_policy(new_logits)
    gamma, S = float(mdp.discount), mdp.num_states
    # Independent NumPy pieces: ρ_old by a dense solve, A_old from the Bellman equation.
    p_old = np.einsum("sa,sat->st", old, mdp.transitions)
    v_old = np.linalg.solve(np.eye(S) - gamma * p_old, (old * mdp.rewards).sum(1))
    a_old = mdp.rewards + gamma * mdp.transitions @ v_old - v_old[:, None]
    rho_old = np.linalg.solve((np.eye(S) - gamma * p_old).T, mdp.initial_distribution)
    surrogate = mdp.initial_distribution @ v_old + np.sum(rho_old[:, None] * new * a_old)  # lecture 001, eq. (3)
    np.testing.assert_allclose(exact.surrogate_objective(mdp, new, old), surrogate, rtol=1e-10)
    kl = np.sum(old * (np.log(old) - np.log(new)), axis=1)
    np.testing.assert_allclose(exact.mean_kl(mdp, old, new), (1 - gamma) * rho_old @ kl, rtol=1e-10)
    np.testing.assert_allclose(exact.max_kl(old, new), kl.max(), rtol=1e-12)
    alpha = 0.5 * np.abs(old - new).sum(1).max()
    np.testing.assert_allclose(exact.max_total_variation(old, new), alpha, rtol=1e-12)
    penalty = 4 * np.abs(a_old).max() * gamma / (1 - gamma) ** 2 * alpha**2
    np.testing.assert_allclose(exact.improvement_lower_bound(mdp, new, old), surrogate - penalty, rtol=1e-10,
                               atol=1e-10)


@PROPERTY
@given(random_problems(num_policies=2), st.sampled_from([1e-3, 1e-1, 1.0]))
def test_trpo_lower_bound_holds(problem, step):
    mdp, (old_logits, direction) = problem
    old, new = exact.softmax_policy(old_logits), exact.softmax_policy(old_logits + step * direction)
    j_new, gamma = exact.expected_return(mdp, new), float(mdp.discount)
    assert j_new >= exact.improvement_lower_bound(mdp, new, old) - 1e-10
    c = 4 * np.abs(exact.advantages(mdp, old)).max() * gamma / (1 - gamma) ** 2
    assert j_new >= exact.surrogate_objective(mdp, new, old) - c * exact.max_kl(old, new) - 1e-10
    assert exact.max_total_variation(old, new) ** 2 <= exact.max_kl(old, new) + 1e-15  # Pinsker: α² ≤ ½KL ≤ KL
    assert 0.0 <= exact.mean_kl(mdp, old, new) <= exact.max_kl(old, new) + 1e-15


# ----------------------------------------------------------------------- episodes, dtype, vmap


def test_episodic_gridworld_identities():
    mdp = gridworld_mdp(3, 4, discount=0.95, slip=0.2, walls=((1, 1),))
    rng = np.random.default_rng(0)
    old_logits, new_logits = rng.normal(size=(12, 4)), rng.normal(size=(12, 4))
    old, new = exact.softmax_policy(old_logits), exact.softmax_policy(new_logits)
    d = exact.discounted_visitation(mdp, old)
    goal, wall = 11, 5
    assert d[goal] == 0.0 and d[wall] == 0.0 and d.sum() < 1.0  # nothing is acted in after the goal
    np.testing.assert_allclose(exact.state_values(mdp, old)[goal], 0.0, atol=1e-15)
    np.testing.assert_allclose(exact.policy_gradient(mdp, old_logits), grad_objective(mdp, old_logits), atol=1e-10)
    difference = exact.expected_return(mdp, new) - exact.expected_return(mdp, old)
    assert abs(exact.performance_difference(mdp, new, old) - difference) <= 1e-10
    natural = exact.natural_gradient(mdp, old_logits, damping=1e-9)
    assert np.all(np.isfinite(natural))


def test_terminal_states_end_the_episode_by_hand():
    # 0 --a0, r=1--> 1 ; 0 --a1, r=2--> 2 (terminal) ; 1 --r=0--> 0 or 2 with prob ½ each.
    # The terminal state's own row (back to 0, reward 5) must never count.
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = P[0, 1, 2] = 1.0
    P[1, :, 0] = P[1, :, 2] = 0.5
    P[2, :, 0] = 1.0
    R = np.array([[1.0, 2.0], [0.0, 0.0], [5.0, 5.0]])
    gamma, p = 0.9, 0.5
    mdp = exact.TabularMDP(P, R, np.array([1.0, 0.0, 0.0]), np.float64(gamma), np.array([False, False, True]))
    exact.check_tabular_mdp(mdp)
    pi = np.array([[p, 1 - p], [0.5, 0.5], [0.5, 0.5]])
    # V0 = p (1 + γ V1) + (1 − p) 2, V1 = ½ γ V0  =>  V0 = (2 − p) / (1 − ½ p γ²).
    v0 = (2 - p) / (1 - 0.5 * p * gamma**2)
    np.testing.assert_allclose(exact.state_values(mdp, pi), [v0, 0.5 * gamma * v0, 0.0], rtol=1e-13)
    np.testing.assert_allclose(exact.action_values(mdp, pi)[2], 0.0, atol=1e-15)
    np.testing.assert_allclose(exact.discounted_visitation(mdp, pi, normalized=False)[2], 0.0, atol=1e-15)


def test_float64_results_without_global_x64():
    assert not jax.config.jax_enable_x64  # the suite runs in float32
    mdp = garnet_mdp(0, 4, 2, 2, 0.99)
    pi = exact.softmax_policy(np.zeros((4, 2)))
    v = exact.state_values(mdp, pi)
    assert isinstance(v, np.ndarray) and v.dtype == np.float64
    p_pi = np.einsum("sa,sat->st", pi, mdp.transitions)
    np.testing.assert_allclose(v, np.linalg.solve(np.eye(4) - 0.99 * p_pi, (pi * mdp.rewards).sum(1)), rtol=1e-12)
    assert not jax.config.jax_enable_x64  # the scoped context restored the flag


def test_vmaps_over_stacked_mdps():
    mdps = [garnet_mdp(seed, 4, 2, 2, 0.9) for seed in range(3)]
    policies = np.stack([exact.softmax_policy(np.full((4, 2), float(k))) for k in range(3)])
    with jax.enable_x64(True):
        batched = np.asarray(jax.vmap(exact.expected_return)(stack_mdps(mdps), policies))
    np.testing.assert_allclose(batched, [exact.expected_return(m, p) for m, p in zip(mdps, policies)], rtol=1e-12)


def test_malformed_mdps_are_rejected():
    good = garnet_mdp(0, 3, 2, 2, 0.9)
    with pytest.raises(ValueError, match="probability vector"):
        exact.check_tabular_mdp(good.replace(transitions=good.transitions * 0.5))
    with pytest.raises(ValueError, match="discount"):
        exact.check_tabular_mdp(good.replace(discount=np.float64(1.0)))
    with pytest.raises(ValueError, match=r"\[S, A\]"):
        exact.check_tabular_mdp(good.replace(rewards=np.zeros((3, 3))))
    with pytest.raises(ValueError, match="terminal"):
        exact.check_tabular_mdp(good.replace(terminal=np.array([True, False, False]),
                                             initial_distribution=np.array([0.5, 0.5, 0.0])))


# ------------------------------------------------- n-step and λ-returns from an arbitrary critic


@PROPERTY
@given(random_problems(), st.sampled_from([0.0, 0.4, 0.9]))
def test_lambda_and_n_step_action_values_limits(problem, lam):
    mdp, (logits,) = problem
    pi = exact.softmax_policy(logits)
    q_pi, v_pi = exact.action_values(mdp, pi), exact.state_values(mdp, pi)
    values = np.random.default_rng(0).normal(size=mdp.num_states)  # any critic, V ≠ V^π
    one_step = mdp.rewards + mdp.discount * np.einsum("sat,t->sa", mdp.transitions, values)
    # V = V^π: every multi-step return has mean Q^π.
    np.testing.assert_allclose(exact.lambda_return_action_values(mdp, pi, v_pi, lam), q_pi, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(exact.lambda_return_action_values(mdp, pi, v_pi, lam, horizon=4), q_pi,
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(exact.n_step_action_values(mdp, pi, v_pi, 3), q_pi, rtol=1e-10, atol=1e-10)
    # λ = 1 ignores V (the Monte Carlo return); λ = 0 and n = 1 are the TD target R + γPV.
    np.testing.assert_allclose(exact.lambda_return_action_values(mdp, pi, values, 1.0), q_pi, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(exact.lambda_return_action_values(mdp, pi, values, 0.0), one_step,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(exact.n_step_action_values(mdp, pi, values, 1), one_step, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(exact.lambda_return_action_values(mdp, pi, values, lam, horizon=1), one_step,
                               rtol=1e-12, atol=1e-12)
    # A λ-return cut m steps ahead with λ = 1 is the m-step return; a long cut reaches the fixed point.
    for m in (2, 5):
        np.testing.assert_allclose(exact.lambda_return_action_values(mdp, pi, values, 1.0, horizon=m),
                                   exact.n_step_action_values(mdp, pi, values, m), rtol=1e-12, atol=1e-12)
    cut_far = exact.lambda_return_action_values(mdp, pi, values, lam, horizon=3000)
    np.testing.assert_allclose(cut_far, exact.lambda_return_action_values(mdp, pi, values, lam), rtol=1e-9, atol=1e-9)


def n_step_by_matrix_power(mdp, pi, values, n):
    """Q^(n) = Σ_{k<n} γ^k M^k R + γ^n M^{n−1} P V with M = P·π on (s, a) pairs, [S·A, S·A]."""
    S, A = pi.shape
    P = mdp.transitions.reshape(S * A, S)
    M = np.einsum("xt,tb->xtb", P, pi).reshape(S * A, S * A)
    R = mdp.rewards.reshape(-1)
    q, power = np.zeros(S * A), np.eye(S * A)
    for k in range(n):
        q = q + mdp.discount**k * power @ R
        if k < n - 1:
            power = power @ M
    return (q + mdp.discount**n * power @ P @ values).reshape(S, A)


@PROPERTY
@given(random_problems(), st.sampled_from([0.3, 0.8]))
def test_lambda_return_values_are_the_geometric_mixture_of_n_step_values(problem, lam):
    mdp, (logits,) = problem
    pi = exact.softmax_policy(logits)
    values = np.random.default_rng(1).normal(size=mdp.num_states)
    for n in (1, 2, 4):
        np.testing.assert_allclose(exact.n_step_action_values(mdp, pi, values, n),
                                   n_step_by_matrix_power(mdp, pi, values, n), rtol=1e-10, atol=1e-10)
    # G^λ cut m steps ahead = (1 − λ) Σ_{n<m} λ^{n−1} G^(n) + λ^{m−1} G^(m), in expectation too.
    m = 4
    mixture = sum((1 - lam) * lam ** (n - 1) * exact.n_step_action_values(mdp, pi, values, n) for n in range(1, m))
    mixture = mixture + lam ** (m - 1) * exact.n_step_action_values(mdp, pi, values, m)
    np.testing.assert_allclose(exact.lambda_return_action_values(mdp, pi, values, lam, horizon=m), mixture,
                               rtol=1e-10, atol=1e-10)
    # The fixed point solves its own equation Q = R + γ P((1 − λ)V + λ π·Q).
    q = exact.lambda_return_action_values(mdp, pi, values, lam)
    backup = mdp.rewards + mdp.discount * np.einsum("sat,t->sa", mdp.transitions,
                                                    (1 - lam) * values + lam * (pi * q).sum(1))
    np.testing.assert_allclose(q, backup, rtol=1e-10, atol=1e-10)


def test_multi_step_values_ignore_the_critic_at_terminal_states():
    mdp = gridworld_mdp(2, 3, discount=0.9, slip=0.2)
    pi = exact.softmax_policy(np.random.default_rng(2).normal(size=(6, 4)))
    values = np.random.default_rng(3).normal(size=6)
    moved = values.copy()
    moved[5] += 100.0  # the goal: entering it ends the episode, so V(goal) is never bootstrapped from
    for fn in (lambda v: exact.lambda_return_action_values(mdp, pi, v, 0.5),
               lambda v: exact.lambda_return_action_values(mdp, pi, v, 0.5, horizon=3),
               lambda v: exact.n_step_action_values(mdp, pi, v, 2)):
        np.testing.assert_allclose(fn(moved), fn(values), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(fn(values)[5], 0.0, atol=1e-15)
    with pytest.raises(ValueError, match="at least 1"):
        exact.n_step_action_values(mdp, pi, values, 0)
    with pytest.raises(ValueError, match="at least 1"):
        exact.lambda_return_action_values(mdp, pi, values, 0.5, horizon=0)
