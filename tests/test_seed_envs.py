"""The seeds' problems as JAX envs: the simple regulator, the single-state Gaussian MDP and LQR.

Statistical checks use fixed seeds and a 4-standard-error tolerance; exact LQR quantities are
checked against finite differences, long rollouts and SciPy.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from pgax.envs.core import JaxEnv
from pgax.envs.lqr import (
    LQRProblem,
    LQRState,
    closed_loop,
    default_lqr,
    lqr_cost,
    lqr_env,
    lqr_finite_horizon_cost,
    lqr_gradient,
    lqr_natural_gradient,
    lqr_optimal_gain,
    lqr_state_covariance,
    lqr_value_matrix,
    random_lqr,
    solve_discrete_lyapunov,
    spectral_radius,
)
from pgax.envs.regulator import (
    RegulatorState,
    regulator_expected_return,
    simple_regulator,
    single_state_expected_return,
    single_state_gaussian,
)
from tests.helpers import seeded_key, seeded_rng

N_SAMPLES = 20_000


def within_standard_errors(samples, expected, k=4.0):
    samples = np.asarray(samples, np.float64)
    se = samples.std(ddof=1) / np.sqrt(samples.size)
    return abs(samples.mean() - expected) <= k * se, (samples.mean(), expected, se)


def rollout(env: JaxEnv, policy, key, num_envs: int, num_steps: int, params=None):
    """(transitions [T, N, ...], observations acted on [T, N, obs_dim], actions [T, N, act_dim])
    under `policy(key, obs, params) -> action` for one env (vmapped here)."""
    reset_key, scan_key = jax.random.split(key)
    obs, state = jax.vmap(env.reset)(jax.random.split(reset_key, num_envs))

    def one(carry, step_key):
        obs, state = carry
        act_key, env_key = jax.random.split(step_key)
        action = jax.vmap(policy, in_axes=(0, 0, None))(jax.random.split(act_key, num_envs), obs, params)
        t = jax.vmap(env.step)(jax.random.split(env_key, num_envs), state, action)
        return (t.obs, t.state), (t, obs, action)

    _, out = jax.lax.scan(one, (obs, state), jax.random.split(scan_key, num_steps))
    return out


NUM_ENVS = 64
EPISODES_PER_ENV = 313  # 64 × 313 = 20032 episodes per simulation ...
LONG_EPISODES_PER_ENV = 32  # ... except for the 250-step LQR episodes: 64 × 32 = 2048


def episodes_per_env(env: JaxEnv) -> int:
    return LONG_EPISODES_PER_ENV if env.max_episode_steps > 100 else EPISODES_PER_ENV


def affine_gaussian(key, obs, params):
    """a = W obs + b + σ ξ, ξ ~ N(0, I), for params = (W [m, n], b [m], σ); one policy for every test,
    so each env's rollout compiles once."""
    W, b, sigma = params
    return W @ obs + b + sigma * jax.random.normal(key, b.shape)


def policy_params(W, b, sigma):
    return (jnp.asarray(W, jnp.float32), jnp.asarray(b, jnp.float32), jnp.asarray(sigma, jnp.float32))


def regulator_policy(theta):
    """π_θ(a | s) = N(θ1·s, θ2²) (the book's linear Gaussian policy; N(θ1, θ2²) on the single state [1])."""
    return policy_params([[theta[0]]], [0.0], theta[1])


@functools.lru_cache(maxsize=None)
def _compiled_rollout(env: JaxEnv):
    steps = episodes_per_env(env) * env.max_episode_steps
    return jax.jit(lambda key, params: rollout(env, affine_gaussian, key, NUM_ENVS, steps, params))


def simulate(env: JaxEnv, key, params):
    """64 envs (vmap) × `episodes_per_env` consecutive auto-reset episodes each (scan), jitted once per env:
    (transitions [T, 64, ...], observations acted on, actions)."""
    return _compiled_rollout(env)(key, params)


def episode_returns(transitions, depth):
    """Undiscounted return of each simulated episode (they all have length `depth`)."""
    rewards = np.asarray(transitions.reward, np.float64)
    return rewards.reshape(-1, depth, rewards.shape[-1]).sum(axis=1).ravel()


@functools.lru_cache(maxsize=None)
def compiled_step_many(env: JaxEnv):
    return jax.jit(jax.vmap(env.step, in_axes=(0, None, None)))


def step_many(env, state, action, n=N_SAMPLES, seed=0):
    """n independent steps from the same state and action."""
    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    return compiled_step_many(env)(keys, state, jnp.asarray(action, jnp.float32))


REGULATOR = simple_regulator()
FREE_REGULATOR = simple_regulator(clip_bound=float("inf"))
SINGLE_STATE = single_state_gaussian(3)


# ------------------------------------------------------------------------------ simple regulator


def test_regulator_spaces_and_reset_shapes():
    env = REGULATOR
    assert env.max_episode_steps == 10
    assert env.observation_space.shape == (1,) and env.observation_space.low == (-10.0,)
    assert env.action_space.shape == (1,)
    assert env.action_space.low == (-np.inf,) and env.action_space.high == (np.inf,)
    obs, state = env.reset(seeded_key(0))
    assert obs.shape == (1,) and obs.dtype == jnp.float32
    assert int(state.time) == 0 and float(state.s) == float(obs[0])
    with pytest.raises(ValueError, match="depth"):
        simple_regulator(0)


def test_regulator_start_distribution_is_n_0_3_0_1():
    obs, state = jax.jit(jax.vmap(REGULATOR.reset))(jax.random.split(seeded_key(1), N_SAMPLES))
    s0 = np.asarray(obs[:, 0], np.float64)
    ok, info = within_standard_errors(s0, 0.3)
    assert ok, info
    std_se = 0.1 / np.sqrt(2 * N_SAMPLES)
    assert abs(s0.std(ddof=1) - 0.1) <= 4 * std_se, s0.std(ddof=1)
    np.testing.assert_array_equal(np.asarray(state.s), s0.astype(np.float32))


@pytest.mark.parametrize("s, a", [(2.0, -0.5), (-1.0, 0.7), (0.0, 0.0)])
def test_regulator_transition_mean_is_s_plus_a_with_std_0_1(s, a):
    state = RegulatorState(jnp.float32(s), jnp.int32(0))
    t = step_many(REGULATOR, state, [a])
    s_next = np.asarray(t.final_obs[:, 0], np.float64)
    ok, info = within_standard_errors(s_next, s + a)
    assert ok, info
    assert abs(s_next.std(ddof=1) - 0.1) <= 4 * 0.1 / np.sqrt(2 * N_SAMPLES), s_next.std(ddof=1)
    # Mid-episode: the successor is the next observation and the state carries it.
    np.testing.assert_array_equal(np.asarray(t.obs), np.asarray(t.final_obs))
    np.testing.assert_array_equal(np.asarray(t.state.s), s_next.astype(np.float32))
    assert np.all(np.asarray(t.state.time) == 1)
    assert not np.asarray(t.truncated).any() and not np.asarray(t.terminated).any()


def test_regulator_clips_the_state_to_plus_minus_10():
    up = step_many(REGULATOR, RegulatorState(jnp.float32(9.95), jnp.int32(0)), [5.0])
    down = step_many(REGULATOR, RegulatorState(jnp.float32(-9.95), jnp.int32(0)), [-5.0])
    assert np.all(np.asarray(up.final_obs) == 10.0)
    assert np.all(np.asarray(down.final_obs) == -10.0)
    # Clipping (not resampling): the mass above the bound lands exactly on it, P = 1 − Φ(0.5).
    edge = np.asarray(step_many(REGULATOR, RegulatorState(jnp.float32(9.95), jnp.int32(0)), [0.0]).final_obs[:, 0])
    assert edge.max() == 10.0
    at_bound = (edge == 10.0).astype(np.float64)
    p = 0.30853753872598688
    assert abs(at_bound.mean() - p) <= 4 * np.sqrt(p * (1 - p) / at_bound.size), at_bound.mean()
    # Without a bound the same step goes far past 10.
    free = step_many(FREE_REGULATOR, RegulatorState(jnp.float32(9.95), jnp.int32(0)), [5.0])
    ok, info = within_standard_errors(np.asarray(free.final_obs[:, 0]), 14.95)
    assert ok, info


@pytest.mark.parametrize("s", [-3.0, -0.25, 0.0, 0.5, 2.0])
def test_regulator_reward_is_minus_s_squared_of_the_state_acted_in(s):
    state = RegulatorState(jnp.float32(s), jnp.int32(3))
    for a in (-2.0, 0.0, 1.5):
        t = REGULATOR.step(seeded_key(2), state, jnp.array([a], jnp.float32))
        assert t.reward.shape == () and t.reward.dtype == jnp.float32
        assert float(t.reward) == pytest.approx(-s * s, rel=1e-6, abs=0)


def test_regulator_truncates_after_depth_steps_with_final_obs():
    depth = REGULATOR.max_episode_steps
    # Push the state up by 0.5 each step so the true successor is far from a fresh start.
    t, acted_on, _ = simulate(REGULATOR, seeded_key(3), policy_params([[0.0]], [0.5], 0.0))
    truncated = np.asarray(t.truncated)
    expected = np.zeros(truncated.shape, bool)
    expected[depth - 1 :: depth] = True
    np.testing.assert_array_equal(truncated, expected)
    assert not np.asarray(t.terminated).any()
    obs, final_obs = np.asarray(t.obs[..., 0]), np.asarray(t.final_obs[..., 0])
    np.testing.assert_array_equal(obs[~expected], final_obs[~expected])
    # At the episode end: final_obs = s_depth ~ N(0.3 + 0.5·depth, 0.1²·(depth + 1)), obs = a fresh
    # s0 ~ N(0.3, 0.1²), time reset to 0.
    ok, info = within_standard_errors(final_obs[expected], 0.3 + 0.5 * depth)
    assert ok, info
    assert np.all(final_obs[expected] > 3.0) and np.all(np.abs(obs[expected] - 0.3) < 0.6)
    np.testing.assert_array_equal(np.asarray(t.state.time)[expected], 0)
    np.testing.assert_array_equal(np.asarray(t.state.time)[~expected] > 0, True)
    # Rewards are −s_t² of the states acted on (the observation before each step).
    np.testing.assert_allclose(np.asarray(t.reward), -np.asarray(acted_on[..., 0]) ** 2, rtol=1e-6)
    # The auto-reset starts are N(0.3, 0.1²) too.
    ok, info = within_standard_errors(obs[expected], 0.3)
    assert ok, info


def test_regulator_expected_return_hand_values_and_optimum():
    # depth 2: U = −(E[s0²] + E[s1²]) = −(0.1 + (1 + θ1)²·0.1 + θ2² + 0.01).
    hand = -(0.1 + 0.025 + 0.09 + 0.01)
    assert float(regulator_expected_return(jnp.array([-0.5, 0.3]), 2)) == pytest.approx(hand, rel=1e-6)
    # The optimum θ = [−1, 0]: U* = −(0.1 + (depth − 1)·0.01), zero gradient, and every perturbation is worse.
    theta_star = jnp.array([-1.0, 0.0])
    assert float(regulator_expected_return(theta_star, 10)) == pytest.approx(-0.19, rel=1e-6)
    np.testing.assert_allclose(np.asarray(jax.grad(regulator_expected_return)(theta_star, 10)), 0.0, atol=1e-7)
    deltas = jnp.asarray(seeded_rng(0).normal(scale=0.1, size=(20, 2)), jnp.float32)
    worse = jax.vmap(lambda d: regulator_expected_return(theta_star + d, 10))(deltas)
    assert float(worse.max()) < -0.19


@pytest.mark.parametrize("theta", [(-0.5, 0.3), (0.2, 0.5), (0.7, 0.1)])
def test_regulator_expected_return_matches_the_unclipped_env(theta):
    t, _, _ = simulate(FREE_REGULATOR, seeded_key(4), regulator_policy(theta))
    returns = episode_returns(t, 10)
    assert returns.size == NUM_ENVS * EPISODES_PER_ENV
    ok, info = within_standard_errors(returns, float(regulator_expected_return(jnp.array(theta), 10)))
    assert ok, info


def test_regulator_clipping_changes_the_return_of_unstable_policies():
    # θ1 = 0.7: the mean state grows as 0.3·1.7^t and passes 10 at t = 7, where the clip bites.
    theta = (0.7, 0.1)
    clipped, _, _ = simulate(REGULATOR, seeded_key(5), regulator_policy(theta))
    exact_unclipped = float(regulator_expected_return(jnp.array(theta), 10))
    assert episode_returns(clipped, 10).mean() > exact_unclipped + 500.0
    assert np.abs(np.asarray(clipped.final_obs)).max() == 10.0
    assert np.abs(np.asarray(clipped.obs)).max() <= 10.0


# ---------------------------------------------------------------------- single-state Gaussian MDP


def test_single_state_reward_equals_action_and_truncates():
    env = SINGLE_STATE
    assert env.observation_space.shape == (1,) and env.action_space.shape == (1,) and env.max_episode_steps == 3
    t, acted_on, actions = simulate(env, seeded_key(6), regulator_policy((0.5, 2.0)))
    np.testing.assert_array_equal(np.asarray(acted_on), 1.0)
    np.testing.assert_array_equal(np.asarray(t.obs), 1.0)
    np.testing.assert_array_equal(np.asarray(t.final_obs), 1.0)
    expected = np.zeros(np.shape(t.truncated), bool)
    expected[2::3] = True
    np.testing.assert_array_equal(np.asarray(t.truncated), expected)
    assert not np.asarray(t.terminated).any()
    actions = np.asarray(actions[..., 0])
    assert np.unique(actions).size > 0.99 * actions.size
    np.testing.assert_array_equal(np.asarray(t.reward), actions)


def test_single_state_reproduces_example_12_1():
    """Seed 004, Example 12.1: two 3-step rollouts under θ = [0, 1]; gradient [2.030, 1.020]."""
    env = SINGLE_STATE
    actions = [[-0.532, 0.597, 1.947], [-0.263, -2.212, 2.364]]
    theta = np.array([0.0, 1.0])
    grads, returns = [], []
    for episode in actions:
        _, state = env.reset(seeded_key(0))
        rewards = []
        for k, a in enumerate(episode):
            t = env.step(jax.random.PRNGKey(k), state, jnp.array([a], jnp.float32))
            state = t.state
            rewards.append(float(t.reward))
            assert bool(t.truncated) == (k == 2)
        np.testing.assert_allclose(rewards, episode, rtol=1e-6)
        a = np.array(episode)
        grads.append(np.array([np.sum((a - theta[0]) / theta[1] ** 2),
                               np.sum(((a - theta[0]) ** 2 - theta[1] ** 2) / theta[1] ** 3)]))
        returns.append(sum(rewards))
    gradient = np.mean([g * r for g, r in zip(grads, returns)], axis=0)
    fisher = np.mean([np.outer(g, g) for g in grads], axis=0)
    np.testing.assert_allclose(gradient, [2.030, 1.020], atol=2e-3)
    np.testing.assert_allclose(fisher, [[2.030, 1.020], [1.020, 29.529]], atol=2e-3)


def test_single_state_expected_return_matches_simulation():
    theta = jnp.array([0.7, 1.5])
    t, _, _ = simulate(SINGLE_STATE, seeded_key(7), regulator_policy((0.7, 1.5)))
    ok, info = within_standard_errors(episode_returns(t, 3), float(single_state_expected_return(theta, 3)))
    assert ok, info
    assert float(single_state_expected_return(theta, 3)) == pytest.approx(2.1, rel=1e-6)


# ----------------------------------------------------------------------------------- LQR problems


def test_problem_generators():
    p = default_lqr()
    assert (p.state_dim, p.action_dim) == (3, 2)
    assert spectral_radius(p.A) < 1
    r1, r2 = random_lqr(3, 4, 2, open_loop_radius=1.2), random_lqr(3, 4, 2, open_loop_radius=1.2)
    for a, b in zip(jax.tree_util.tree_leaves(r1), jax.tree_util.tree_leaves(r2)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(random_lqr(4, 4, 2).A, r1.A)
    assert spectral_radius(r1.A) == pytest.approx(1.2, rel=1e-12)
    assert r1.B.shape == (4, 2) and r1.R.shape == (2, 2)
    for M in (r1.Q, r1.R, r1.Sigma0):
        np.testing.assert_allclose(M, M.T)
        assert np.linalg.eigvalsh(M).min() > 0.09
    with pytest.raises(ValueError, match="B must be"):
        lqr_cost(LQRProblem(p.A, p.B.T, p.Q, p.R, p.Sigma0), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="K must be"):
        lqr_cost(p, np.zeros((3, 2)))


def test_lyapunov_solver_matches_scipy_and_the_series():
    rng = seeded_rng(0)
    L = rng.normal(size=(4, 4))
    L *= 0.8 / spectral_radius(L)
    M = rng.normal(size=(4, 4))
    M = M @ M.T
    X = solve_discrete_lyapunov(L, M)
    np.testing.assert_allclose(X, scipy.linalg.solve_discrete_lyapunov(L, M), rtol=1e-10)
    series, term = np.zeros_like(M), M.copy()
    for _ in range(400):
        series += term
        term = L @ term @ L.T
    np.testing.assert_allclose(X, series, rtol=1e-10)


@pytest.mark.parametrize("which", ["default", "random"])
def test_lqr_cost_forms_agree(which):
    p = default_lqr() if which == "default" else random_lqr(1, 3, 2, open_loop_radius=0.95)
    K = 0.5 * lqr_optimal_gain(p)[0]
    P, S = lqr_value_matrix(p, K), lqr_state_covariance(p, K)
    C = lqr_cost(p, K)
    assert C == pytest.approx(np.trace((p.Q + K.T @ p.R @ K) @ S), rel=1e-12)
    # Residuals of both Lyapunov equations, and C as the limit of the finite-horizon cost.
    L = closed_loop(p, K)
    np.testing.assert_allclose(P, p.Q + K.T @ p.R @ K + L.T @ P @ L, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(S, p.Sigma0 + L @ S @ L.T, rtol=1e-12, atol=1e-12)
    finite = [lqr_finite_horizon_cost(p, K, h) for h in (1, 10, 50, 1000)]
    assert finite[0] == pytest.approx(np.trace((p.Q + K.T @ p.R @ K) @ p.Sigma0), rel=1e-12)
    assert finite == sorted(finite) and finite[-1] == pytest.approx(C, rel=1e-10)


LQR_LONG = lqr_env(default_lqr(), 250)
LQR_NOISY_PROBLEM = random_lqr(2, 3, 2, open_loop_radius=1.1)
LQR_NOISY = lqr_env(LQR_NOISY_PROBLEM, 15, noise_std=0.3)


def test_lqr_cost_matches_a_long_simulated_rollout():
    p, horizon = default_lqr(), LQR_LONG.max_episode_steps
    K = 0.5 * lqr_optimal_gain(p)[0]
    assert lqr_cost(p, K) - lqr_finite_horizon_cost(p, K, horizon) < 1e-6 * lqr_cost(p, K)
    t, _, _ = simulate(LQR_LONG, seeded_key(8), policy_params(-K, np.zeros(2), 0.0))
    costs = -episode_returns(t, horizon)
    ok, info = within_standard_errors(costs, lqr_cost(p, K))
    assert ok, info
    # A different gain gives a clearly different simulated cost (the check can fail).
    assert abs(costs.mean() - lqr_cost(p, np.zeros((2, 3)))) > 10 * costs.std() / np.sqrt(costs.size)


def test_lqr_finite_horizon_cost_with_noise_matches_simulation():
    p, horizon, sigma_w, sigma_u = LQR_NOISY_PROBLEM, LQR_NOISY.max_episode_steps, 0.3, 0.5
    K = lqr_optimal_gain(p)[0]
    t, _, _ = simulate(LQR_NOISY, seeded_key(9), policy_params(-K, np.zeros(2), sigma_u))
    costs = -episode_returns(t, horizon)
    exact = lqr_finite_horizon_cost(p, K, horizon, noise_std=sigma_w, action_noise_std=sigma_u)
    ok, info = within_standard_errors(costs, exact)
    assert ok, info
    assert exact > lqr_finite_horizon_cost(p, K, horizon) + 1.0


def test_lqr_env_dynamics_reward_start_and_truncation():
    p = random_lqr(5, 3, 2)
    env = lqr_env(p, horizon=3)
    assert env.observation_space.shape == (3,) and env.action_space.shape == (2,) and env.max_episode_steps == 3
    x = jnp.array([0.5, -1.0, 2.0], jnp.float32)
    u = jnp.array([0.3, -0.7], jnp.float32)
    t = env.step(seeded_key(0), LQRState(x, jnp.int32(0)), u)
    xn, un = np.asarray(x, np.float64), np.asarray(u, np.float64)
    assert float(t.reward) == pytest.approx(-(xn @ p.Q @ xn + un @ p.R @ un), rel=1e-5)
    np.testing.assert_allclose(np.asarray(t.final_obs), p.A @ xn + p.B @ un, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(t.obs), np.asarray(t.final_obs))
    last = env.step(seeded_key(0), LQRState(x, jnp.int32(2)), u)
    assert bool(last.truncated) and not bool(last.terminated) and int(last.state.time) == 0
    np.testing.assert_allclose(np.asarray(last.final_obs), p.A @ xn + p.B @ un, rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.asarray(last.obs), np.asarray(last.final_obs))
    # x0 ~ N(0, Σ0): every sample covariance entry within 4 standard errors.
    x0, _ = jax.vmap(env.reset)(jax.random.split(seeded_key(1), N_SAMPLES))
    x0 = np.asarray(x0, np.float64)
    S, cov = p.Sigma0, x0.T @ x0 / N_SAMPLES
    se = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S ** 2) / N_SAMPLES)
    assert np.all(np.abs(cov - S) <= 4 * se), (cov, S)
    assert np.all(np.abs(x0.mean(axis=0)) <= 4 * np.sqrt(np.diag(S) / N_SAMPLES))


# ------------------------------------------------------------------------ exact gradient and K*


def central_difference_gradient(p, K, h=1e-6):
    grad = np.zeros_like(K)
    for idx in np.ndindex(*K.shape):
        E = np.zeros_like(K)
        E[idx] = h
        grad[idx] = (lqr_cost(p, K + E) - lqr_cost(p, K - E)) / (2 * h)
    return grad


@pytest.mark.parametrize("which", ["default_K0", "default_Krand", "random_unstable"])
def test_lqr_gradient_matches_finite_differences(which):
    if which == "default_K0":
        p, K = default_lqr(), np.zeros((2, 3))
    elif which == "default_Krand":
        p = default_lqr()
        K = lqr_optimal_gain(p)[0] + 0.2 * seeded_rng(1).normal(size=(2, 3))
    else:
        p = random_lqr(7, 4, 2, open_loop_radius=1.15)
        K = lqr_optimal_gain(p)[0] + 0.05 * seeded_rng(2).normal(size=(2, 4))
    assert spectral_radius(closed_loop(p, K)) < 1
    g = lqr_gradient(p, K)
    fd = central_difference_gradient(p, K)
    assert np.linalg.norm(g - fd) <= 1e-6 * np.linalg.norm(g), (g, fd)
    assert np.linalg.norm(g) > 1e-2
    # Natural gradient ∇C Σ_K⁻¹.
    np.testing.assert_allclose(lqr_natural_gradient(p, K), g @ np.linalg.inv(lqr_state_covariance(p, K)),
                               rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("which", ["default", "random_stable", "random_unstable"])
def test_riccati_gain_is_optimal(which):
    p = {"default": default_lqr(), "random_stable": random_lqr(11, 3, 1, 0.9),
         "random_unstable": random_lqr(12, 4, 2, 1.3)}[which]
    K_star, P_star = lqr_optimal_gain(p)
    P_scipy = scipy.linalg.solve_discrete_are(p.A, p.B, p.Q, p.R)
    np.testing.assert_allclose(P_star, P_scipy, rtol=1e-9)
    K_scipy = np.linalg.solve(p.R + p.B.T @ P_scipy @ p.B, p.B.T @ P_scipy @ p.A)
    np.testing.assert_allclose(K_star, K_scipy, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(lqr_value_matrix(p, K_star), P_star, rtol=1e-9)
    assert np.linalg.norm(lqr_gradient(p, K_star)) <= 1e-8 * max(1.0, np.linalg.norm(K_star))
    C_star = lqr_cost(p, K_star)
    rng = seeded_rng(3)
    for _ in range(30):
        for scale in (1e-3, 1e-1):
            K = K_star + scale * rng.normal(size=K_star.shape)
            if spectral_radius(closed_loop(p, K)) < 1:
                assert lqr_cost(p, K) >= C_star


def test_non_stabilising_gain_raises():
    p = default_lqr()
    K = np.array([[0.0, -6.0, 0.0], [0.0, 0.0, 0.0]])
    assert spectral_radius(closed_loop(p, K)) >= 1
    for fn in (lqr_cost, lqr_gradient, lqr_natural_gradient, lqr_value_matrix, lqr_state_covariance):
        with pytest.raises(ValueError, match="does not stabilise"):
            fn(p, K)
    # An unstable plant with K = 0.
    q = random_lqr(0, 3, 2, open_loop_radius=1.05)
    with pytest.raises(ValueError, match="spectral radius"):
        lqr_cost(q, np.zeros((2, 3)))
    # The finite-horizon cost needs no stability.
    assert np.isfinite(lqr_finite_horizon_cost(q, np.zeros((2, 3)), 20))


@pytest.mark.parametrize("which", ["default", "random"])
def test_policy_gradient_descent_converges_to_the_riccati_gain(which):
    """Seed 003 / Fazel et al.: gradient descent on C(K) from a stabilising K0 reaches K*."""
    p = default_lqr() if which == "default" else random_lqr(30, 3, 2, open_loop_radius=0.9)
    K_star, _ = lqr_optimal_gain(p)
    C_star = lqr_cost(p, K_star)
    K = np.zeros_like(K_star)
    eta = 0.01 if which == "default" else 0.03  # constant steps; Fazel et al.'s bound is far smaller
    costs = [lqr_cost(p, K)]
    for _ in range(500):
        K = K - eta * lqr_gradient(p, K)
        costs.append(lqr_cost(p, K))
    assert costs[0] - C_star > 1e-2 * C_star
    assert all(b <= a * (1 + 1e-12) for a, b in zip(costs, costs[1:]))
    assert costs[-1] - C_star <= 1e-9 * C_star
    np.testing.assert_allclose(K, K_star, atol=1e-5)


@pytest.mark.parametrize("which", ["default", "random"])
def test_natural_gradient_descent_converges_to_the_riccati_gain(which):
    """Natural PG K ← K − η_k ∇C Σ_K⁻¹ with η_k = 1 / (2‖R + BᵀP_K B‖), the step that maximises
    the guaranteed decrease of Fazel et al.'s cost-difference bound."""
    p = default_lqr() if which == "default" else random_lqr(22, 4, 2, open_loop_radius=0.9)
    K_star, _ = lqr_optimal_gain(p)
    C_star = lqr_cost(p, K_star)
    K = np.zeros_like(K_star)
    costs = [lqr_cost(p, K)]
    for _ in range(200):
        eta = 0.5 / np.linalg.norm(p.R + p.B.T @ lqr_value_matrix(p, K) @ p.B, 2)
        K = K - eta * lqr_natural_gradient(p, K)
        costs.append(lqr_cost(p, K))
    assert costs[0] - C_star > 1e-2 * C_star
    assert all(b <= a * (1 + 1e-12) for a, b in zip(costs, costs[1:]))
    assert costs[-1] - C_star <= 1e-9 * C_star
    np.testing.assert_allclose(K, K_star, atol=1e-6)


# ------------------------------------------------------------------------------ jit and vmap


ENVS = {"regulator": REGULATOR, "single_state": SINGLE_STATE, "lqr": LQR_LONG, "lqr_noisy": LQR_NOISY}


@pytest.mark.parametrize("name", sorted(ENVS))
def test_envs_jit_and_vmap_over_64_envs(name):
    """`simulate` runs the env as jit(scan(vmap over 64 envs)); check the batch shapes and episode ends."""
    env = ENVS[name]
    depth, steps = env.max_episode_steps, episodes_per_env(env) * env.max_episode_steps
    act_dim, obs_dim = env.action_space.shape[0], env.observation_space.shape[0]
    noise_only = policy_params(np.zeros((act_dim, obs_dim)), np.zeros(act_dim), 0.1)
    t, acted_on, actions = simulate(env, seeded_key(10), noise_only)
    assert t.obs.shape == t.final_obs.shape == acted_on.shape == (steps, NUM_ENVS, obs_dim)
    assert actions.shape == (steps, NUM_ENVS, act_dim)
    assert t.reward.shape == (steps, NUM_ENVS) and t.reward.dtype == jnp.float32
    assert t.obs.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(t.reward))) and np.all(np.isfinite(np.asarray(t.obs)))
    expected = np.zeros((steps, NUM_ENVS), bool)
    expected[depth - 1 :: depth] = True
    np.testing.assert_array_equal(np.asarray(t.truncated), expected)
    assert not np.asarray(t.terminated).any()
    # Different envs in the batch draw different randomness (the keys are really split).
    if name != "single_state":
        assert np.unique(np.asarray(acted_on[0, :, 0])).size == NUM_ENVS
