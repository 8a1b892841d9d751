"""Chapter 12's update rules: the book's worked examples reproduced exactly, and behaviour checks."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pgax import linalg
from pgax.algorithms.reinforce import add_monte_carlo_returns
from pgax.batch import Batch
from pgax.estimators import discounted_returns
from pgax.policies import linear_gaussian_policy, mlp_policy, tabular_softmax_policy
from pgax.spaces import Discrete
from pgax.updates import (TabularEstimate, backtracking_line_search, conservative_policy_iteration, gradient_ascent,
                          kl_penalty, mean_kl, natural_gradient, natural_step, policy_samples, restricted_gradient,
                          restricted_step, surrogate_objective, surrogate_problem, trajectory_segments,
                          trust_region)
from tests.helpers import seeded_key

# Example 12.1: single-state MDP, reward = action, γ = 1, policy N(θ1, θ2²), θ = [0, 1], two rollouts.
ACTIONS = jnp.array([[-0.532, 0.597, 1.947], [-0.263, -2.212, 2.364]])  # [trajectory, step]
POLICY = linear_gaussian_policy(obs_dim=1)
THETA = jnp.array([0.0, 1.0])


def example_batch():
    a = ACTIONS.T  # [T=3, N=2]
    obs = jnp.ones((3, 2, 1))
    to_go = jax.vmap(discounted_returns, in_axes=(1, 1), out_axes=1)(a, jnp.ones_like(a))
    return Batch(obs=obs, action=a[..., None], reward=a, terminated=jnp.zeros((3, 2), bool),
                 truncated=jnp.zeros((3, 2), bool), next_obs=obs, log_prob=jnp.zeros((3, 2)), advantage=to_go)


@jax.jit
def trajectory_scores(theta):
    """∇log p(τ) = Σ_k ∇log π(a_k) per trajectory: [2, 2]."""
    log_p = lambda th, a: POLICY.apply(th, jnp.ones((3, 1))).log_prob(a[:, None]).sum()  # noqa: E731
    return jnp.stack([jax.grad(log_p)(theta, ACTIONS[i]) for i in range(2)])


def test_example_12_1_fisher_gradient_direction_and_step():
    scores = trajectory_scores(THETA)
    np.testing.assert_allclose(scores, [[2.012, 1.430], [-0.111, 7.550]], atol=2e-3)
    fisher = linalg.empirical_fisher(scores)
    np.testing.assert_allclose(fisher, [[2.030, 1.020], [1.020, 29.529]], atol=6e-3)
    returns = ACTIONS.sum(axis=1)  # R(τ) with γ = 1
    grad = jnp.mean(scores * returns[:, None], axis=0)
    np.testing.assert_allclose(grad, [2.030, 1.020], atol=2e-3)
    u = linalg.solve_dense(fisher, grad)
    np.testing.assert_allclose(u, [1.0, 0.0], atol=1e-5)  # Exercise 12.2
    # Exercise 12.2's printed inverse.
    np.testing.assert_allclose(jnp.linalg.inv(fisher), [[0.501, -0.017], [-0.017, 0.034]], atol=1e-3)
    theta_new = THETA + natural_step(grad, u, 0.1)
    np.testing.assert_allclose(theta_new, [0.314, 1.0], atol=1e-3)
    # The same step through conjugate gradient on the 2×2 Fisher.
    u_cg = linalg.conjugate_gradient(lambda v: fisher @ v, grad, max_iters=2).x
    np.testing.assert_allclose(u_cg, u, atol=1e-4)


def test_example_12_1_surrogate_constraint_and_line_search():
    batch = example_batch()
    samples = policy_samples(POLICY.apply, THETA, batch)
    theta_new = jnp.array([0.3139, 1.0])
    np.testing.assert_allclose(surrogate_objective(POLICY.apply, THETA, samples), 1.485, atol=1e-3)
    np.testing.assert_allclose(surrogate_objective(POLICY.apply, theta_new, samples), 2.110, atol=1e-3)
    np.testing.assert_allclose(mean_kl(POLICY.apply, theta_new, samples), 0.049, atol=1e-3)
    accepted_theta, info = backtracking_line_search(
        lambda t: surrogate_objective(POLICY.apply, t, samples), lambda t: mean_kl(POLICY.apply, t, samples),
        THETA, theta_new - THETA, 0.1)
    assert bool(info["accepted"]) and int(info["steps"]) == 0  # accepted at the natural step itself
    np.testing.assert_allclose(accepted_theta, theta_new)


def example_whole_return_batch():
    """Example 12.1's rollouts as the library's whole-return REINFORCE sees them: depth 3 (a time
    limit after the third step), γ = 1, so every step's weight is R(τ) = Σ_k r_k (Algorithm 12.4's ∇U(τ))."""
    batch = example_batch()
    batch = batch.replace(truncated=batch.truncated.at[-1].set(True))
    batch = add_monte_carlo_returns(batch, 1.0, "whole_return", first_is_start=True)
    return batch.replace(advantage=batch.target)


def test_example_12_1_by_the_library_rules_with_the_trajectory_fisher():
    """Algorithm 12.4's update, by `natural_gradient(fisher="trajectory")` on the batch: θ' = [0.314, 1.000]."""
    batch = example_whole_return_batch()
    np.testing.assert_allclose(batch.advantage, jnp.broadcast_to(ACTIONS.sum(axis=1), (3, 2)), atol=1e-6)
    problem = surrogate_problem(POLICY.apply, THETA, batch, fisher="trajectory")
    fisher = linalg.dense_matrix(problem.fisher_product, 2)
    np.testing.assert_allclose(fisher, [[2.030, 1.020], [1.020, 29.529]], atol=6e-3)  # the book's F
    for solver in ("dense", "cg"):
        rule = natural_gradient(POLICY.apply, 0.1, solver=solver, damping=0.0, cg_iters=2, fisher="trajectory")
        new, _, metrics = jax.jit(rule.update)(THETA, (), batch)
        np.testing.assert_allclose(new, [0.314, 1.000], atol=1e-3)
        np.testing.assert_allclose(metrics["predicted_kl"], 0.1, rtol=1e-3)
    # Algorithm 12.5: the same natural step, accepted by the line search at once.
    rule = trust_region(POLICY.apply, 0.1, solver="dense", damping=0.0, fisher="trajectory")
    new, _, metrics = jax.jit(rule.update)(THETA, (), batch)
    np.testing.assert_allclose(new, [0.314, 1.000], atol=1e-3)
    assert metrics["accepted"] == 1 and metrics["line_search_steps"] == 0
    # The state-averaged Fisher, diag(1, 2) here, gives another step: the option is what reproduces the book.
    state_new, _, _ = jax.jit(natural_gradient(POLICY.apply, 0.1, solver="dense", damping=0.0).update)(THETA, (), batch)
    assert np.abs(np.asarray(state_new) - [0.314, 1.0]).max() > 0.05


def test_trajectory_fisher_segments_follow_episode_ends_and_windows():
    """Two envs × 5 steps: env 0 ends an episode after step 1, env 1 is truncated after step 2 and
    4; the trajectories are runs between ends and window edges, and F = (1/K) Σ_j g_j g_jᵀ."""
    policy = tabular_softmax_policy(3, 2)
    theta = jax.random.normal(seeded_key(3), (3, 2))
    key_s, key_a = jax.random.split(seeded_key(4))
    states = jax.random.randint(key_s, (5, 2), 0, 3)
    actions = jax.random.randint(key_a, (5, 2), 0, 2)
    terminated = jnp.zeros((5, 2), bool).at[1, 0].set(True)
    truncated = jnp.zeros((5, 2), bool).at[2, 1].set(True).at[4, 1].set(True)
    obs = jax.nn.one_hot(states, 3)
    batch = Batch(obs=obs, action=actions, reward=jnp.zeros((5, 2)), terminated=terminated, truncated=truncated,
                  next_obs=obs, log_prob=jnp.zeros((5, 2)), advantage=jnp.zeros((5, 2)))
    ids = np.asarray(trajectory_segments(batch)).reshape(5, 2)
    assert len(set(ids[:2, 0])) == 1 and len(set(ids[2:, 0])) == 1 and ids[0, 0] != ids[2, 0]
    assert len(set(ids[:3, 1])) == 1 and len(set(ids[3:, 1])) == 1 and ids[0, 1] != ids[3, 1]
    assert len(set(ids.reshape(-1))) == 4
    runs = [[(0, 0), (1, 0)], [(2, 0), (3, 0), (4, 0)], [(0, 1), (1, 1), (2, 1)], [(3, 1), (4, 1)]]

    def log_p(th, run):
        return sum(policy.apply(th, obs[t, n]).log_prob(actions[t, n]) for t, n in run)

    scores = jnp.stack([jax.grad(log_p)(theta, run).reshape(-1) for run in runs])
    problem = surrogate_problem(policy.apply, theta, batch, fisher="trajectory")
    np.testing.assert_allclose(linalg.dense_matrix(problem.fisher_product, 6), linalg.empirical_fisher(scores),
                               atol=1e-6)


def test_exercise_12_3_mean_kl_over_sampled_states():
    pi = jnp.log(jnp.array([[0.1, 0.2, 0.3, 0.4], [0.1, 0.1, 0.6, 0.2]]))
    pi_new = jnp.log(jnp.array([[0.4, 0.3, 0.2, 0.1], [0.1, 0.1, 0.5, 0.3]]))
    policy = tabular_softmax_policy(2, 4)
    states = jnp.array([0, 1, 0, 0, 1])
    obs = jax.nn.one_hot(states, 2)
    per_state = policy.apply(pi, jnp.eye(2)).kl(policy.apply(pi_new, jnp.eye(2)))
    np.testing.assert_allclose(per_state, [0.456, 0.0283], atol=5e-4)
    batch = Batch(obs=obs, action=jnp.zeros(5, jnp.int32), reward=jnp.zeros(5), terminated=jnp.zeros(5, bool),
                  truncated=jnp.zeros(5, bool), next_obs=obs, log_prob=jnp.zeros(5), advantage=jnp.zeros(5))
    samples = policy_samples(policy.apply, pi, batch)
    np.testing.assert_allclose(mean_kl(policy.apply, pi_new, samples), 0.285, atol=5e-4)


def test_natural_gradient_rule_reproduces_the_closed_form_step():
    """The rule's dense solve with the state-averaged Fisher: ½ΔθᵀFΔθ = ε exactly (no damping)."""
    rule = natural_gradient(POLICY.apply, 0.1, solver="dense", damping=0.0)
    new, _, m = jax.jit(rule.update)(THETA, rule.init(THETA), example_batch())
    np.testing.assert_allclose(m["predicted_kl"], 0.1, rtol=1e-4)
    # For N(θ1, 1) at θ2 = 1 the Fisher is diag(1, 2); Δθ ∝ F⁻¹ g.
    g = jax.grad(lambda t: surrogate_objective(POLICY.apply, t, policy_samples(POLICY.apply, THETA, example_batch())))(THETA)
    expected = THETA + natural_step(g, g / jnp.array([1.0, 2.0]), 0.1)
    np.testing.assert_allclose(new, expected, rtol=1e-5)
    # CG agrees with the dense solve.
    cg_rule = natural_gradient(POLICY.apply, 0.1, solver="cg", damping=0.0, cg_iters=5, cg_tol=1e-5)
    cg_new, _, cg_m = jax.jit(cg_rule.update)(THETA, (), example_batch())
    np.testing.assert_allclose(cg_new, new, rtol=1e-4)
    assert cg_m["cg_iterations"] <= 2


def test_restricted_and_scaled_steps():
    batch = example_batch()
    new, _, m = restricted_gradient(POLICY.apply, 0.1).update(THETA, (), batch)
    np.testing.assert_allclose(jnp.linalg.norm(new - THETA), np.sqrt(0.2), rtol=1e-6)
    np.testing.assert_allclose(restricted_step(jnp.array([3.0, 4.0]), 0.5), [0.6, 0.8], rtol=1e-6)
    # Gradient scaling to an L2 bound (12.2) and element-wise clipping.
    rule = gradient_ascent(POLICY.apply, 1.0, max_grad_norm=0.5)
    new, _, m = rule.update(THETA, rule.init(THETA), batch)
    assert m["grad_norm"] > 0.5
    np.testing.assert_allclose(jnp.linalg.norm(new - THETA), 0.5, rtol=1e-5)
    rule = gradient_ascent(POLICY.apply, 1.0, clip_value=0.01)
    new, _, _ = rule.update(THETA, rule.init(THETA), batch)
    np.testing.assert_allclose(jnp.abs(new - THETA), 0.01, rtol=1e-5)
    # Plain ascent moves along the gradient: θ1 up (reward = action).
    rule = gradient_ascent(POLICY.apply, 0.01)
    new, _, m = rule.update(THETA, rule.init(THETA), batch)
    assert new[0] > THETA[0] and m["surrogate_improvement"] > 0


def test_gradient_ascent_with_an_optimizer_ascends():
    """With `optimizer=optax.sgd(α)` (a descent transformation, fed −∇U) the step is the same θ + α∇U as
    with `learning_rate=α`, and it raises the surrogate."""
    batch = example_batch()
    samples = policy_samples(POLICY.apply, THETA, batch)
    grad = jax.grad(lambda t: surrogate_objective(POLICY.apply, t, samples))(THETA)
    by_rate = gradient_ascent(POLICY.apply, 0.01)
    by_sgd = gradient_ascent(POLICY.apply, optimizer=optax.sgd(0.01))
    new_rate, _, _ = by_rate.update(THETA, by_rate.init(THETA), batch)
    new_sgd, _, m = by_sgd.update(THETA, by_sgd.init(THETA), batch)
    np.testing.assert_allclose(new_rate, THETA + 0.01 * grad, rtol=1e-6)
    np.testing.assert_allclose(new_sgd, THETA + 0.01 * grad, rtol=1e-6)
    assert m["surrogate_improvement"] > 0


def random_discrete_batch(key, T=64, N=4, obs_dim=3):
    k1, k2, k3 = jax.random.split(key, 3)
    obs = jax.random.normal(k1, (T, N, obs_dim))
    action = jax.random.randint(k2, (T, N), 0, 3)
    return Batch(obs=obs, action=action, reward=jnp.zeros((T, N)), terminated=jnp.zeros((T, N), bool),
                 truncated=jnp.zeros((T, N), bool), next_obs=obs, log_prob=jnp.zeros((T, N)),
                 advantage=jax.random.normal(k3, (T, N)) + (action == 0))


TRPO_POLICY = mlp_policy(Discrete(3), (16,))


@jax.jit
def trpo_step_and_kl(max_kl, params, batch):
    """One TRPO update (max_backtracks 5) and the true mean KL of its result. max_kl is an argument,
    so the parametrisations below share one compiled program."""
    new, _, m = trust_region(TRPO_POLICY.apply, max_kl, max_backtracks=5).update(params, (), batch)
    return new, m, mean_kl(TRPO_POLICY.apply, new, policy_samples(TRPO_POLICY.apply, params, batch))


@pytest.mark.parametrize("max_kl", [1e-3, 0.05, 2.0])
def test_trpo_never_accepts_a_step_that_violates_the_kl_bound(max_kl):
    for i in range(4):
        params = TRPO_POLICY.init(seeded_key(i), jnp.zeros(3))
        batch = random_discrete_batch(seeded_key(100 + i))
        new, m, kl = trpo_step_and_kl(jnp.float32(max_kl), params, batch)
        if m["accepted"]:
            assert float(kl) <= max_kl and float(m["surrogate_improvement"]) > 0
        else:
            for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(params)):
                np.testing.assert_array_equal(a, b)


def test_trpo_with_zero_advantages_takes_no_step():
    """Zero advantages give a zero gradient and a zero natural step: nothing can improve the surrogate."""
    policy = mlp_policy(Discrete(3), (8,))
    params = policy.init(seeded_key(0), jnp.zeros(3))
    batch = random_discrete_batch(seeded_key(1))
    batch = batch.replace(advantage=jnp.zeros_like(batch.advantage))
    new, _, m = jax.jit(trust_region(policy.apply, 0.01, max_backtracks=3).update)(params, (), batch)
    assert m["accepted"] == 0.0 and m["line_search_steps"] == 4.0 and m["surrogate_improvement"] == 0.0
    for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(a, b)


# A trust region whose quadratic KL model underestimates the true KL. One state (obs = 1), policy
# N(θ1, θ2²) at θ = [0, 1]; actions near the mean have advantage +1, far ones −1, so the gradient
# asks only for a smaller σ. The Fisher is diag(1, 2), so the natural step is Δθ = [0, −√δ], whose
# predicted KL ½ΔθᵀFΔθ is exactly δ; but the true KL(N(0, 1) ‖ N(0, σ'²)) = log σ' + 1/(2σ'²) − ½
# grows much faster than its quadratic model as σ' shrinks, so the full step violates the bound.
SHRINK_ACTIONS = np.array([0.5, -0.5, 2.0, -2.0])
SHRINK_ADVANTAGES = np.array([1.0, 1.0, -1.0, -1.0])


def shrink_batch():
    a = jnp.asarray(SHRINK_ACTIONS, jnp.float32)[:, None]  # [T=4, N=1]
    obs = jnp.ones((4, 1, 1))
    zeros = jnp.zeros((4, 1))
    return Batch(obs=obs, action=a[..., None], reward=zeros, terminated=zeros.astype(bool),
                 truncated=zeros.astype(bool), next_obs=obs, log_prob=zeros,
                 advantage=jnp.asarray(SHRINK_ADVANTAGES, jnp.float32)[:, None])


def shrink_problem_by_hand(max_kl):
    """float64 numpy: the natural step, and the true surrogate and KL of a point θ = [μ, σ]."""
    a, adv = SHRINK_ACTIONS, SHRINK_ADVANTAGES
    grad = np.array([np.mean(adv * a), np.mean(adv * (a**2 - 1.0))])  # ∇ log N(a; μ, σ²) at μ = 0, σ = 1
    u = grad / np.array([1.0, 2.0])  # F⁻¹g, F = diag(1/σ², 2/σ²)
    full_step = u * np.sqrt(2.0 * max_kl / (grad @ u))

    def log_density(theta):
        return -0.5 * ((a - theta[0]) / theta[1]) ** 2 - np.log(abs(theta[1])) - 0.5 * np.log(2 * np.pi)

    def surrogate(theta):
        return np.mean(np.exp(log_density(theta) - log_density(np.array([0.0, 1.0]))) * adv)

    def kl(theta):  # KL(N(0, 1) ‖ N(μ, σ²))
        return np.log(abs(theta[1])) + (1.0 + theta[0] ** 2) / (2.0 * theta[1] ** 2) - 0.5

    return full_step, surrogate, kl


@pytest.mark.parametrize("solver, max_kl, shrink", [("dense", 0.3, 0.5), ("dense", 0.3, 0.8), ("cg", 0.1, 0.5)])
def test_trpo_backtracks_from_a_full_step_that_violates_the_kl_bound(solver, max_kl, shrink):
    theta = np.array([0.0, 1.0])
    full_step, surrogate, kl = shrink_problem_by_hand(max_kl)
    np.testing.assert_allclose(full_step, [0.0, -np.sqrt(max_kl)], atol=1e-12)
    # The full step improves the surrogate but violates the bound: only the KL check rejects it.
    assert surrogate(theta + full_step) > surrogate(theta) and kl(theta + full_step) > 1.5 * max_kl
    k = next(j for j in range(10) if kl(theta + shrink**j * full_step) <= max_kl
             and surrogate(theta + shrink**j * full_step) > surrogate(theta))
    assert k >= 1
    expected = theta + shrink**k * full_step

    rule = trust_region(POLICY.apply, max_kl, shrink=shrink, max_backtracks=10, solver=solver, damping=0.0,
                        cg_iters=5, cg_tol=1e-8)
    new, _, m = jax.jit(rule.update)(jnp.asarray(theta, jnp.float32), (), shrink_batch())
    np.testing.assert_allclose(m["predicted_kl"], max_kl, rtol=1e-4)  # the quadratic model of the full step
    assert m["accepted"] == 1.0 and m["line_search_steps"] == float(k)
    np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m["mean_kl"], kl(expected), rtol=1e-4)
    assert m["mean_kl"] <= max_kl
    np.testing.assert_allclose(m["surrogate_improvement"], surrogate(expected) - surrogate(theta), rtol=1e-4)
    assert m["surrogate_improvement"] > 0


def test_trpo_restores_the_old_parameters_when_no_point_is_accepted():
    """A non-zero natural step whose only candidate (max_backtracks = 0) violates the KL bound is
    rejected, and θ is restored exactly."""
    theta = jnp.array([0.0, 1.0])
    full_step, _, kl = shrink_problem_by_hand(0.3)
    assert np.linalg.norm(full_step) > 0.5 and kl(np.asarray(theta) + full_step) > 0.3
    rule = trust_region(POLICY.apply, 0.3, max_backtracks=0, solver="dense", damping=0.0)
    new, _, m = jax.jit(rule.update)(theta, (), shrink_batch())
    np.testing.assert_array_equal(new, theta)
    assert m["accepted"] == 0.0 and m["line_search_steps"] == 1.0
    assert m["surrogate_improvement"] == 0.0 and m["mean_kl"] == 0.0 and m["step_norm"] == 0.0


def test_line_search_keeps_theta_when_no_point_improves_the_objective():
    """Along a descent direction every candidate lowers the objective: none is accepted, θ is kept."""
    theta = jnp.array([1.0, -2.0])
    objective = lambda t: -jnp.sum(jnp.square(t))  # noqa: E731
    new, info = backtracking_line_search(objective, lambda t: jnp.zeros(()), theta, theta, 1.0, max_backtracks=4)
    np.testing.assert_array_equal(new, theta)
    assert not bool(info["accepted"]) and int(info["steps"]) == 5 and float(info["objective_gain"]) == 0.0
    # The same search along the ascent direction accepts the full step (j = 0) ...
    new, info = backtracking_line_search(objective, lambda t: jnp.zeros(()), theta, -0.5 * theta, 1.0)
    assert bool(info["accepted"]) and int(info["steps"]) == 0
    np.testing.assert_allclose(new, 0.5 * theta)
    # ... and under the constraint ‖θ'‖² ≤ 1 rejects the improving full step θ − 1.8θ (‖θ'‖² = 3.2) and
    # accepts the half step θ − 0.9θ (‖θ'‖² = 0.05).
    new, info = backtracking_line_search(objective, lambda t: jnp.sum(jnp.square(t)), theta, -1.8 * theta, 1.0)
    assert bool(info["accepted"]) and int(info["steps"]) == 1
    np.testing.assert_allclose(new, 0.1 * theta, rtol=1e-6)


def cpi_bound(gamma, a, expected=0.175, eps_a=0.2):
    """The CPI lower bound α𝔸/(1 − γ) − 2γ ε_A α²/(1 − γ)²."""
    return a * expected / (1 - gamma) - 2 * gamma * eps_a * a**2 / (1 - gamma) ** 2


def test_cpi_bound_step_by_hand():
    """CPI's α = min(1, (1 − γ)𝔸 / (4γ ε_A)) on a two-state table, the maximiser of its lower bound."""
    pi = jnp.full((2, 2), 0.5)
    estimate = TabularEstimate(advantage=jnp.array([[0.2, -0.2], [-0.1, 0.1]]), visitation=jnp.array([0.75, 0.25]))
    # greedy: a0 in s0, a1 in s1; 𝔸 = 0.75·0.2 + 0.25·0.1 = 0.175; ε_A = 0.2.
    for gamma, alpha in [(0.9, 0.1 * 0.175 / (4 * 0.9 * 0.2)), (0.1, 1.0)]:  # γ = 0.1: 0.9·0.175/0.08 > 1, clipped
        new, _, m = conservative_policy_iteration(gamma).update(pi, (), estimate)
        np.testing.assert_allclose(m["expected_advantage"], 0.175, rtol=1e-6)
        np.testing.assert_allclose(m["alpha"], alpha, rtol=1e-5)
        np.testing.assert_allclose(new, (1 - alpha) * pi + alpha * jnp.array([[1.0, 0.0], [0.0, 1.0]]), rtol=1e-5)
        np.testing.assert_allclose(m["bound_improvement"], cpi_bound(gamma, alpha), rtol=1e-4)
        assert m["converged"] == 0.0
    # The interior α maximises the bound.
    alpha = 0.1 * 0.175 / (4 * 0.9 * 0.2)
    assert cpi_bound(0.9, alpha) > max(cpi_bound(0.9, 0.9 * alpha), cpi_bound(0.9, 1.1 * alpha))
    # No positive expected advantage: converged, π unchanged.
    new, _, m = conservative_policy_iteration(0.9).update(pi, (), estimate._replace(advantage=jnp.zeros((2, 2))))
    assert m["converged"] == 1.0 and m["alpha"] == 0.0
    np.testing.assert_array_equal(new, pi)


def test_kl_penalty_adapts_beta():
    policy = mlp_policy(Discrete(3), (16,))
    params = policy.init(seeded_key(0), jnp.zeros(3))
    batch = random_discrete_batch(seeded_key(1))
    # Large learning rate: KL far above target → β doubles. Tiny one: KL below target → β halves.

    @jax.jit  # the learning rate and the target are arguments: one program for both cases
    def adapt(lr, kl_target):
        rule = kl_penalty(policy.apply, optax.adam(lr), beta=1.0, kl_target=kl_target, epochs=5)
        _, state, m = rule.update(params, rule.init(params), batch, seeded_key(2))
        return state.beta, m["mean_kl"]

    beta, kl = adapt(5e-2, 1e-3)
    assert kl > 1.5e-3 and beta == 2.0
    beta, kl = adapt(1e-6, 1e-2)
    assert kl < 1e-2 / 1.5 and beta == 0.5
    fixed = kl_penalty(policy.apply, optax.adam(5e-2), beta=1.0, adaptive=False, epochs=2)
    _, state, _ = fixed.update(params, fixed.init(params), batch, seeded_key(2))
    assert state.beta == 1.0


def test_larger_beta_keeps_the_policy_closer():
    policy = mlp_policy(Discrete(3), (16,))
    params = policy.init(seeded_key(0), jnp.zeros(3))
    batch = random_discrete_batch(seeded_key(1))

    @jax.jit  # β only sets the rule's initial state: one program for both values
    def kl_after_update(beta):
        rule = kl_penalty(policy.apply, optax.adam(1e-2), beta=beta, adaptive=False, epochs=10)
        return rule.update(params, rule.init(params), batch, seeded_key(2))[2]["mean_kl"]

    kls = [float(kl_after_update(beta)) for beta in (0.0, 10.0)]
    assert kls[1] < 0.5 * kls[0]
