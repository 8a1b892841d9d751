"""Chapter 12's update rules: the book's worked examples reproduced exactly, and behaviour checks."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pgax import linalg
from pgax.batch import Batch
from pgax.estimators import discounted_returns
from pgax.policies import linear_gaussian_policy, mlp_policy, tabular_softmax_policy
from pgax.spaces import Discrete
from pgax.updates import (backtracking_line_search, gradient_ascent, kl_penalty, mean_kl, natural_gradient,
                          natural_step, policy_samples, restricted_gradient, restricted_step, surrogate_objective,
                          trust_region)

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


def random_discrete_batch(key, T=64, N=4, obs_dim=3):
    k1, k2, k3 = jax.random.split(key, 3)
    obs = jax.random.normal(k1, (T, N, obs_dim))
    action = jax.random.randint(k2, (T, N), 0, 3)
    return Batch(obs=obs, action=action, reward=jnp.zeros((T, N)), terminated=jnp.zeros((T, N), bool),
                 truncated=jnp.zeros((T, N), bool), next_obs=obs, log_prob=jnp.zeros((T, N)),
                 advantage=jax.random.normal(k3, (T, N)) + (action == 0))


@pytest.mark.parametrize("max_kl", [1e-3, 0.05, 2.0])
def test_trpo_never_accepts_a_step_that_violates_the_kl_bound(max_kl):
    policy = mlp_policy(Discrete(3), (16,))
    rule = trust_region(policy.apply, max_kl, max_backtracks=5)
    update = jax.jit(rule.update)
    for seed in range(4):
        params = policy.init(jax.random.PRNGKey(seed), jnp.zeros(3))
        batch = random_discrete_batch(jax.random.PRNGKey(100 + seed))
        new, _, m = update(params, (), batch)
        samples = policy_samples(policy.apply, params, batch)
        kl = float(mean_kl(policy.apply, new, samples))
        if m["accepted"]:
            assert kl <= max_kl and float(m["surrogate_improvement"]) > 0
        else:
            for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(params)):
                np.testing.assert_array_equal(a, b)


def test_trpo_restores_the_old_parameters_when_no_point_is_accepted():
    """With zero advantages no point improves the surrogate: every candidate is rejected."""
    policy = mlp_policy(Discrete(3), (8,))
    params = policy.init(jax.random.PRNGKey(0), jnp.zeros(3))
    batch = random_discrete_batch(jax.random.PRNGKey(1))
    batch = batch.replace(advantage=jnp.zeros_like(batch.advantage))
    new, _, m = jax.jit(trust_region(policy.apply, 0.01, max_backtracks=3).update)(params, (), batch)
    assert m["accepted"] == 0.0 and m["line_search_steps"] == 4.0 and m["surrogate_improvement"] == 0.0
    for a, b in zip(jax.tree_util.tree_leaves(new), jax.tree_util.tree_leaves(params)):
        np.testing.assert_array_equal(a, b)


def test_kl_penalty_adapts_beta():
    policy = mlp_policy(Discrete(3), (16,))
    params = policy.init(jax.random.PRNGKey(0), jnp.zeros(3))
    batch = random_discrete_batch(jax.random.PRNGKey(1))
    # Large learning rate: KL far above target → β doubles. Tiny one: KL below target → β halves.
    big = kl_penalty(policy.apply, optax.adam(5e-2), beta=1.0, kl_target=1e-3, epochs=5)
    _, state, m = jax.jit(big.update)(params, big.init(params), batch, jax.random.PRNGKey(2))
    assert m["mean_kl"] > 1.5e-3 and state.beta == 2.0
    small = kl_penalty(policy.apply, optax.adam(1e-6), beta=1.0, kl_target=1e-2, epochs=1)
    _, state, m = jax.jit(small.update)(params, small.init(params), batch, jax.random.PRNGKey(2))
    assert m["mean_kl"] < 1e-2 / 1.5 and state.beta == 0.5
    fixed = kl_penalty(policy.apply, optax.adam(5e-2), beta=1.0, adaptive=False, epochs=2)
    _, state, _ = fixed.update(params, fixed.init(params), batch, jax.random.PRNGKey(2))
    assert state.beta == 1.0


def test_larger_beta_keeps_the_policy_closer():
    policy = mlp_policy(Discrete(3), (16,))
    params = policy.init(jax.random.PRNGKey(0), jnp.zeros(3))
    batch = random_discrete_batch(jax.random.PRNGKey(1))
    kls = []
    for beta in (0.0, 10.0):
        rule = kl_penalty(policy.apply, optax.adam(1e-2), beta=beta, adaptive=False, epochs=10)
        _, _, m = jax.jit(rule.update)(params, rule.init(params), batch, jax.random.PRNGKey(2))
        kls.append(float(m["mean_kl"]))
    assert kls[1] < 0.5 * kls[0]
