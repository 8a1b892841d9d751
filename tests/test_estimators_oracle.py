"""Every estimator of the seeds, checked two ways:

1. exact equivalences on hand-made streams: Python reference loops, n-step ↔ λ-return mixtures,
   TD(λ) forward view ↔ backward view (eligibility traces), GAE limits;
2. statistics against the exact oracle (pgax.exact) on random Garnet MDPs with a tabular softmax
   policy: 4 MDPs × 4096 trajectories of 150 steps, sampled and estimated in one jitted, vmapped
   program. An estimator passes when its sample mean lies within z* standard errors of the exact
   value in every one of its K = 4 MDPs × 15 components. The standard errors come from the samples;
   z* is the Bonferroni bound for a family-wise false-alarm rate of 1e-3 over the K comparisons,
   z* = Φ⁻¹(1 − 1e-3 / 2K) ≈ 4.3. (A flat 4 SE would falsely fail each 60-comparison test with
   probability ≈ 0.4%, and one of this module's 16 such tests with probability ≈ 6%.)
   Negative controls (known-biased estimators) must be rejected by the same statistic by a wide
   margin, so the test has power against those biases. Its resolution is that of the standard
   errors, though: the whole-return REINFORCE check would pass an estimator off by several times
   ∇J, and the reward-to-go and Q actor-critic ones by about ∇J itself, and the targets are checked
   with the true V^π only, where any weighting of future TD errors has the right mean. The exact
   expectations of tests/test_estimators_exact_expectation.py (every trajectory of tiny episodic
   MDPs enumerated, a random critic V ≠ V^π) close those gaps; this module checks the same
   estimators on long sampled streams of recurrent MDPs.

Seeds (the MDPs, the logits, the critic perturbation and the sampling key) come from
tests/helpers.py: fixed, so a run is deterministic, and shifted by PGAX_TEST_SEED_OFFSET, so a run
with another offset checks that the statistical tests do not depend on lucky seeds.

Truncating the infinite-horizon streams at T = 150 with γ = 0.9 changes the estimated means by at
most γ^T·max|return| ≈ 1e-6, far below the standard errors (~1e-2); estimators that bootstrap from
the true V^π at the stream end are exactly unbiased.
"""

import functools
from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgax import estimators as est
from pgax import exact
from pgax.envs.tabular import garnet_mdp, sample_trajectories, stack_mdps
from tests.helpers import seed, seeds

# One xdist worker runs this file (`--dist loadgroup`), so its module-scoped fixture oracle_run is built once.
pytestmark = pytest.mark.xdist_group("test_estimators_oracle")

NUM_STATES, NUM_ACTIONS, GAMMA = 5, 3, 0.9
NUM_STEPS, NUM_TRAJECTORIES = 150, 4096
MDP_SEEDS = tuple(seeds(4))

FAMILY_WISE_FALSE_ALARM = 1e-3
NUM_COMPARISONS = len(MDP_SEEDS) * NUM_STATES * NUM_ACTIONS
NUM_SE = NormalDist().inv_cdf(1.0 - FAMILY_WISE_FALSE_ALARM / (2 * NUM_COMPARISONS))  # ≈ 4.31
# Non-bootstrapped Monte Carlo targets are compared on t < 50, where ≥ 100 steps remain: γ^100 ≈ 3e-5.
MC_HORIZON = 50


# ------------------------------------------------------------------ 1. exact equivalences


@pytest.fixture
def float64():
    """Run one test with 64-bit types; the scoped context restores float32 for the rest of the suite."""
    with jax.enable_x64(True):
        yield


def random_stream(seed, T=40, dtype=np.float64):
    """A stream with terminations (discount 0) and truncations, and consistent values."""
    rng = np.random.default_rng(seed)
    r = rng.normal(size=T)
    terminated = rng.random(T) < 0.08
    truncated = (rng.random(T) < 0.08) & ~terminated
    d = np.where(terminated, 0.0, 0.9)
    v = rng.normal(size=T)
    v_next = np.append(v[1:], rng.normal())
    ended = terminated | truncated
    v_next[ended] = rng.normal(size=ended.sum())
    return tuple(jnp.asarray(x, dtype) for x in (r, d, v, v_next)) + (jnp.asarray(truncated),)


def reference_n_step(r, d, v_next, n, trunc):
    T, out = len(r), np.zeros(len(r))
    for t in range(T):
        g, scale = 0.0, 1.0
        for k in range(t, min(t + n, T)):
            g += scale * r[k]
            scale *= d[k]
            if trunc[k] or k == T - 1 or k == t + n - 1 or d[k] == 0:
                g += scale * v_next[k]
                break
        out[t] = g
    return out


def reference_starts_and_weights(d, trunc):
    starts, weights, w = [], [], 1.0
    for t in range(len(d)):
        start = t == 0 or d[t - 1] == 0 or bool(trunc[t - 1])
        w = 1.0 if start else w * d[t - 1]
        starts.append(start)
        weights.append(w)
    return np.array(starts), np.array(weights)


def reference_reward_to_go(r, d, trunc):
    g, out = 0.0, np.zeros(len(r))
    for t in reversed(range(len(r))):
        g = r[t] + (0.0 if trunc[t] or t == len(r) - 1 else d[t] * g)
        out[t] = g
    return out


def reference_traces(phi, d, lam, trunc):
    e, out = np.zeros(phi.shape[1:]), np.zeros(phi.shape)
    for t in range(len(phi)):
        keep = 0.0 if t == 0 else d[t - 1] * lam * (1.0 - trunc[t - 1])
        e = phi[t] + keep * e
        out[t] = e
    return out


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("seed", range(3))
def test_episode_bookkeeping_and_monte_carlo_returns_match_reference_loops(seed):
    r, d, v, v_next, trunc = random_stream(seed)
    r_, d_, trunc_ = np.asarray(r), np.asarray(d), np.asarray(trunc)
    starts, weights = reference_starts_and_weights(d_, trunc_)
    np.testing.assert_array_equal(est.episode_starts(d, trunc), starts)
    np.testing.assert_allclose(est.discount_from_episode_start(d, trunc), weights, rtol=1e-12)
    g = reference_reward_to_go(r_, d_, trunc_)
    np.testing.assert_allclose(est.reward_to_go(r, d, trunc), g, rtol=1e-12, atol=1e-12)
    first = np.maximum.accumulate(np.where(starts, np.arange(len(r_)), 0))
    np.testing.assert_allclose(est.episode_returns(r, d, trunc), g[first], rtol=1e-12)
    np.testing.assert_allclose(est.baselined_returns(r, d, v, trunc), g - np.asarray(v), rtol=1e-12, atol=1e-12)
    # REINFORCE weights: causal γ^{t−t0} G_t, or the whole return G_{t0} at every step.
    np.testing.assert_allclose(est.reinforce_weights(r, d, trunc), weights * g, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(est.reinforce_weights(r, d, trunc, causal=False), g[first], rtol=1e-12)
    np.testing.assert_allclose(est.reinforce_weights(r, d, trunc, discount_weighting=False), g, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(est.reinforce_with_baseline_weights(r, d, v, trunc), weights * (g - np.asarray(v)),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.usefixtures("float64")
def test_discount_from_episode_start_by_hand():
    d = jnp.array([0.5, 0.5, 0.0, 0.5, 0.5])  # terminated after step 2
    np.testing.assert_allclose(est.discount_from_episode_start(d), [1.0, 0.5, 0.25, 1.0, 0.5])
    truncated = jnp.array([False, True, False, False, False])
    np.testing.assert_allclose(est.discount_from_episode_start(d, truncated), [1.0, 0.5, 1.0, 1.0, 0.5])


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("seed", range(3))
def test_n_step_returns_match_reference_loop_and_limits(seed):
    r, d, v, v_next, trunc = random_stream(seed)
    for n in (1, 2, 5, 40, 100):
        np.testing.assert_allclose(est.n_step_returns(r, d, v_next, n, trunc),
                                   reference_n_step(*map(np.asarray, (r, d, v_next)), n, np.asarray(trunc)),
                                   rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(est.n_step_advantages(r, d, v, v_next, 1, trunc), est.td_errors(r, d, v, v_next),
                               atol=1e-12)
    np.testing.assert_allclose(est.n_step_returns(r, d, v_next, 1000, trunc),
                               est.discounted_returns(r, d, v_next, trunc), atol=1e-12)
    with pytest.raises(ValueError, match="at least 1"):
        est.n_step_returns(r, d, v_next, 0)


@pytest.mark.usefixtures("float64")
def test_n_step_returns_by_hand():
    r = jnp.array([1.0, 2.0, 3.0])
    d = jnp.array([0.5, 0.5, 0.5])
    v_next = jnp.array([10.0, 20.0, 30.0])
    # G^(2)_0 = 1 + .5·2 + .25·20 = 7 ; G^(2)_1 = 2 + .5·3 + .25·30 = 11 ; G^(2)_2 = 3 + .5·30 = 18 (stream end)
    np.testing.assert_allclose(est.n_step_returns(r, d, v_next, 2), [7.0, 11.0, 18.0])


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("seed", range(3))
def test_lambda_return_is_the_geometric_mixture_of_n_step_returns(seed):
    r, d, v, v_next, trunc = random_stream(seed, T=25)
    lam, T = 0.7, 25
    # G^λ = (1−λ) Σ_{n<T} λ^{n−1} G^(n) + λ^{T−1} G^(T): every G^(n), n ≥ T, is the full return.
    mixture = sum((1 - lam) * lam ** (n - 1) * np.asarray(est.n_step_returns(r, d, v_next, n, trunc))
                  for n in range(1, T))
    mixture = mixture + lam ** (T - 1) * np.asarray(est.n_step_returns(r, d, v_next, T, trunc))
    np.testing.assert_allclose(est.lambda_returns(r, d, v, v_next, lam, trunc), mixture, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(est.lambda_returns(r, d, v, v_next, 0.0, trunc), r + d * v_next, atol=1e-12)
    np.testing.assert_allclose(est.lambda_returns(r, d, v, v_next, 1.0, trunc),
                               est.discounted_returns(r, d, v_next, trunc), atol=1e-12)


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("seed", range(3))
def test_td_lambda_backward_view_equals_forward_view(seed):
    r, d, v, v_next, trunc = random_stream(seed)
    phi = jnp.asarray(np.random.default_rng(seed).normal(size=(len(r), 4, 2)))
    for lam in (0.0, 0.6, 1.0):
        traces = est.eligibility_traces(phi, d, lam, trunc)
        np.testing.assert_allclose(traces, reference_traces(np.asarray(phi), np.asarray(d), lam, np.asarray(trunc)),
                                   rtol=1e-12, atol=1e-12)
        backward = est.td_lambda_update(phi, r, d, v, v_next, lam, trunc)
        forward = jnp.tensordot(est.lambda_returns(r, d, v, v_next, lam, trunc) - v, phi, axes=(0, 0))
        np.testing.assert_allclose(backward, forward, rtol=1e-10, atol=1e-10)
        # The TD(λ) actor is the GAE advantage actor-critic (lecture 000, "∇log π δ e").
        actor = est.td_lambda_actor_gradient(phi, r, d, v, v_next, lam, trunc)
        weights = est.actor_critic_weights(est.gae(r, d, v, v_next, lam, trunc), d, trunc)
        np.testing.assert_allclose(actor, est.policy_gradient_estimate(phi, weights), rtol=1e-10, atol=1e-10)


@pytest.mark.usefixtures("float64")
def test_q_critic_targets_by_hand():
    r, d = jnp.array([1.0, 2.0]), jnp.array([0.5, 0.0])
    q_tm1, q_t = jnp.array([3.0, 4.0]), jnp.array([4.0, 9.0])
    np.testing.assert_allclose(est.sarsa_targets(r, d, q_t), [3.0, 2.0])
    np.testing.assert_allclose(est.q_td_errors(r, d, q_tm1, q_t), [0.0, -2.0])
    q_next, pi_next = jnp.array([[2.0, 6.0], [1.0, 1.0]]), jnp.array([[0.5, 0.5], [1.0, 0.0]])
    np.testing.assert_allclose(est.expected_sarsa_targets(r, d, q_next, pi_next), [3.0, 2.0])


def test_score_function_surrogate_gradient_is_the_estimate():
    rng = np.random.default_rng(0)
    logits, states, actions = rng.normal(size=(4, 3)), rng.integers(0, 4, 20), rng.integers(0, 3, 20)
    weights = jnp.asarray(rng.normal(size=20))
    grad = jax.grad(lambda th: est.score_function_surrogate(jax.nn.log_softmax(th)[states, actions], weights))(logits)
    pi = np.asarray(jax.nn.softmax(logits))
    scores = np.zeros((20, 4, 3))
    for t, (s, a) in enumerate(zip(states, actions)):
        scores[t, s] = np.eye(3)[a] - pi[s]
    np.testing.assert_allclose(grad, est.policy_gradient_estimate(jnp.asarray(scores), weights), rtol=1e-5, atol=1e-6)


def test_new_estimators_vmap_over_streams():
    streams = [random_stream(s, dtype=np.float32) for s in range(3)]
    r, d, v, v_next, trunc = (jnp.stack(x) for x in zip(*streams))  # [N, T]
    batched = jax.vmap(functools.partial(est.n_step_advantages, n=4))(r, d, v, v_next, truncated_t=trunc)
    batched_rtg = jax.vmap(est.reward_to_go)(r, d, trunc)
    for i, s in enumerate(streams):
        np.testing.assert_allclose(batched[i], est.n_step_advantages(s[0], s[1], s[2], s[3], 4, s[4]), rtol=1e-6)
        np.testing.assert_allclose(batched_rtg[i], est.reward_to_go(s[0], s[1], s[4]), rtol=1e-6)


# ---------------------------------------------------------------- 2. statistics vs the oracle


def problem_set():
    mdps = [garnet_mdp(mdp_seed, NUM_STATES, NUM_ACTIONS, branching=3, discount=GAMMA) for mdp_seed in MDP_SEEDS]
    rng = np.random.default_rng(seed(123))
    logits = [rng.normal(size=(NUM_STATES, NUM_ACTIONS)) for _ in MDP_SEEDS]
    return mdps, logits


def per_trajectory_estimates(traj, logits, v, q, adv, perturbed_v):
    """Every estimator on one [T] trajectory, with the exact V, Q, A of its MDP (float32 here)."""
    s, a, s_next, r, d = traj.state, traj.action, traj.next_state, traj.reward, traj.discount
    v_tm1, v_t, q_tm1, adv_t = v[s], v[s_next], q[s, a], adv[s, a]
    pi = jax.nn.softmax(logits, axis=-1)
    delta = est.td_errors(r, d, v_tm1, v_t)
    gae_09 = est.gae(r, d, v_tm1, v_t, 0.9)

    def gradient(weight_t):
        """ĝ = ∇_θ Σ_t Ψ_t log π_θ(a_t|s_t) for the tabular softmax, [S, A]."""
        def surrogate(th):
            return est.score_function_surrogate(jax.nn.log_softmax(th, axis=-1)[s, a], weight_t)

        return jax.grad(surrogate)(logits)

    gradients = {
        "reinforce": gradient(est.reinforce_weights(r, d)),
        "reinforce_whole_return": gradient(est.reinforce_weights(r, d, causal=False)),
        "reinforce_baseline": gradient(est.reinforce_with_baseline_weights(r, d, v_tm1)),
        "td_actor_critic": gradient(est.actor_critic_weights(delta, d)),
        "gae_actor_critic": gradient(est.actor_critic_weights(gae_09, d)),
        "n_step_actor_critic": gradient(est.actor_critic_weights(est.n_step_advantages(r, d, v_tm1, v_t, 5), d)),
        "q_actor_critic": gradient(est.actor_critic_weights(q_tm1, d)),
        # Negative controls: known to be biased for ∇J.
        "biased_no_discount_weighting": gradient(est.reinforce_weights(r, d, discount_weighting=False)),
        "biased_action_dependent_baseline": gradient(est.reinforce_with_baseline_weights(r, d, q_tm1)),
    }

    # Per-(s, a) bias sums Σ_t 1[(s_t, a_t) = cell] (X_t − target(s_t, a_t)): i.i.d. over trajectories,
    # mean 0 iff E[X_t | s_t, a_t] = target(s_t, a_t).
    cell = s * NUM_ACTIONS + a
    early = (jnp.arange(NUM_STEPS) < MC_HORIZON).astype(r.dtype)

    def bias(x_t, target_t, mask=1.0):
        return jax.ops.segment_sum(mask * (x_t - target_t), cell, NUM_STATES * NUM_ACTIONS)

    a_next = jnp.append(a[1:], 0)
    sarsa_next = jnp.where(jnp.arange(NUM_STEPS) < NUM_STEPS - 1, q[s_next, a_next], v[s_next])  # last: E_π Q = V
    perturbed_delta = est.td_errors(r, d, perturbed_v[s], perturbed_v[s_next])
    biases = {
        "td_error_vs_advantage": bias(delta, adv_t),
        "gae_0.5_vs_advantage": bias(est.gae(r, d, v_tm1, v_t, 0.5), adv_t),
        "gae_1.0_vs_advantage": bias(est.gae(r, d, v_tm1, v_t, 1.0), adv_t),
        "n_step_3_vs_advantage": bias(est.n_step_advantages(r, d, v_tm1, v_t, 3), adv_t),
        "lambda_return_0.7_vs_q": bias(est.lambda_returns(r, d, v_tm1, v_t, 0.7), q_tm1),
        "sarsa_target_vs_q": bias(est.sarsa_targets(r, d, sarsa_next), q_tm1),
        "expected_sarsa_target_vs_q": bias(est.expected_sarsa_targets(r, d, q[s_next], pi[s_next]), q_tm1),
        "monte_carlo_return_vs_q": bias(est.reward_to_go(r, d), q_tm1, early),
        "monte_carlo_advantage_vs_advantage": bias(est.baselined_returns(r, d, v_tm1), adv_t, early),
        "biased_td_error_with_wrong_values": bias(perturbed_delta, adv_t),
    }

    bootstrapped_mc = est.discounted_returns(r, d, v_t)
    identities = {
        "gae_1_minus_mc_advantage": est.gae(r, d, v_tm1, v_t, 1.0) - (bootstrapped_mc - v_tm1),
        "gae_0_minus_td_error": est.gae(r, d, v_tm1, v_t, 0.0) - delta,
        # Without the bootstrap the Monte Carlo advantage differs from GAE(1) by γ^{T−t} V(s_T) only.
        "gae_1_minus_unbootstrapped_mc": est.gae(r, d, v_tm1, v_t, 1.0) - est.baselined_returns(r, d, v_tm1),
        "discount_powers": est.discount_from_episode_start(d) - GAMMA ** jnp.arange(NUM_STEPS, dtype=r.dtype),
    }
    return gradients, biases, identities


@functools.partial(jax.jit, static_argnums=(2, 3))
def sample_and_estimate(key, inputs, num_steps, num_trajectories):
    """[M MDPs] × [N trajectories]: sample, then run every estimator, vmapped twice."""

    def one_mdp(key, mdp, logits, v, q, adv, perturbed_v):
        trajectories = sample_trajectories(key, mdp, logits, num_steps, num_trajectories)
        return jax.vmap(per_trajectory_estimates, in_axes=(0, None, None, None, None, None))(
            trajectories, logits, v, q, adv, perturbed_v)

    keys = jax.random.split(key, len(MDP_SEEDS))
    return jax.vmap(one_mdp)(keys, *inputs)


@pytest.fixture(scope="module")
def oracle_run():
    mdps, logits = problem_set()
    policies = [exact.softmax_policy(th) for th in logits]
    v = [exact.state_values(m, p) for m, p in zip(mdps, policies)]
    q = [exact.action_values(m, p) for m, p in zip(mdps, policies)]
    adv = [exact.advantages(m, p) for m, p in zip(mdps, policies)]
    rng = np.random.default_rng(seed(7))
    perturbed_v = [x + rng.normal(scale=0.5, size=x.shape) for x in v]
    inputs = (stack_mdps(mdps), *(np.stack(x).astype(np.float32) for x in (logits, v, q, adv, perturbed_v)))
    gradients, biases, identities = jax.tree_util.tree_map(
        lambda x: np.asarray(x, np.float64),
        sample_and_estimate(jax.random.key(seed(2024)), inputs, NUM_STEPS, NUM_TRAJECTORIES))
    exact_gradients = np.stack([exact.policy_gradient(m, th) for m, th in zip(mdps, logits)])
    return {"gradients": gradients, "biases": biases, "identities": identities, "exact_gradient": exact_gradients,
            "values": np.stack(v)}


def standard_error_excess(samples, expected):
    """max over components of |mean − expected| / SE, for samples [N, ...] (SE from the samples)."""
    n = samples.shape[0]
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / np.sqrt(n)
    gap = np.abs(mean - expected)
    tiny = 1e-9 * max(1.0, np.abs(expected).max())
    return np.max(np.where(gap <= tiny, 0.0, gap / np.maximum(se, 1e-300)))


def assert_unbiased(samples_per_mdp, expected_per_mdp, label):
    for m, (samples, expected) in enumerate(zip(samples_per_mdp, expected_per_mdp)):
        z = standard_error_excess(samples, expected)
        assert z <= NUM_SE, f"{label}, MDP {MDP_SEEDS[m]}: mean is {z:.2f} standard errors from the exact value"


UNBIASED_GRADIENTS = ["reinforce", "reinforce_whole_return", "reinforce_baseline", "td_actor_critic",
                      "gae_actor_critic", "n_step_actor_critic", "q_actor_critic"]


@pytest.mark.parametrize("name", UNBIASED_GRADIENTS)
def test_policy_gradient_estimators_converge_to_the_exact_gradient(oracle_run, name):
    """The sample mean lies within z* standard errors of ∇J. Power: z*·SE on the largest component
    is about 5 % of max|∇J| for the baseline and critic-based estimators, but 0.3–0.8 × max|∇J| for
    plain REINFORCE and the Q actor-critic and 1.5–4 × for the whole-return form, so a 25 % bias of
    those three can pass here; tests/test_estimators_exact_expectation.py checks each exactly."""
    assert_unbiased(oracle_run["gradients"][name], oracle_run["exact_gradient"], name)


@pytest.mark.parametrize("name", ["biased_no_discount_weighting", "biased_action_dependent_baseline"])
def test_the_standard_error_test_rejects_biased_gradient_estimators(oracle_run, name):
    worst = max(standard_error_excess(samples, expected)
                for samples, expected in zip(oracle_run["gradients"][name], oracle_run["exact_gradient"]))
    assert worst > 3 * NUM_SE, f"{name} should be clearly rejected, got only {worst:.1f} SE"


def test_baseline_reduces_variance_and_leaves_the_mean_unchanged(oracle_run):
    plain, baselined = oracle_run["gradients"]["reinforce"], oracle_run["gradients"]["reinforce_baseline"]
    for m in range(len(MDP_SEEDS)):
        variance_plain = plain[m].reshape(NUM_TRAJECTORIES, -1).var(0, ddof=1).sum()
        variance_baselined = baselined[m].reshape(NUM_TRAJECTORIES, -1).var(0, ddof=1).sum()
        assert variance_baselined < 0.5 * variance_plain, (m, variance_plain, variance_baselined)
        # Paired on the same trajectories: the difference E[∇log π · b(s)] has mean exactly 0.
        difference = plain[m] - baselined[m]
        assert standard_error_excess(difference, np.zeros_like(difference[0])) <= NUM_SE


def test_causality_reduces_variance_of_reinforce(oracle_run):
    causal, whole = oracle_run["gradients"]["reinforce"], oracle_run["gradients"]["reinforce_whole_return"]
    for m in range(len(MDP_SEEDS)):
        assert causal[m].var(0).sum() < whole[m].var(0).sum()


UNBIASED_TARGETS = ["td_error_vs_advantage", "gae_0.5_vs_advantage", "gae_1.0_vs_advantage", "n_step_3_vs_advantage",
                    "lambda_return_0.7_vs_q", "sarsa_target_vs_q", "expected_sarsa_target_vs_q",
                    "monte_carlo_return_vs_q", "monte_carlo_advantage_vs_advantage"]


@pytest.mark.parametrize("name", UNBIASED_TARGETS)
def test_advantage_and_q_estimates_are_unbiased_given_the_true_values(oracle_run, name):
    """E[X_t − target(s_t, a_t) | s_t, a_t] = 0 per (s, a). With the true V^π every future TD error has
    mean 0, so a wrong λ or γ in the GAE / n-step / λ-return recursion also passes here;
    tests/test_estimators_exact_expectation.py uses a random V ≠ V^π, where the recursion matters."""
    biases = oracle_run["biases"][name]
    assert_unbiased(biases, np.zeros(biases.shape[:1] + biases.shape[2:]), name)


def test_the_standard_error_test_rejects_td_errors_with_wrong_values(oracle_run):
    biases = oracle_run["biases"]["biased_td_error_with_wrong_values"]
    assert max(standard_error_excess(b, np.zeros(b.shape[1:])) for b in biases) > 3 * NUM_SE


def test_gae_limits_on_sampled_trajectories(oracle_run):
    identities = oracle_run["identities"]
    np.testing.assert_allclose(identities["gae_1_minus_mc_advantage"], 0.0, atol=1e-4)
    np.testing.assert_allclose(identities["gae_0_minus_td_error"], 0.0, atol=1e-6)
    np.testing.assert_allclose(identities["discount_powers"], 0.0, atol=1e-6)
    # |GAE(1) − (G_t − V(s_t))| = γ^{T−t} |V(s_T)| ≤ γ^{T−t} max|V| when nothing is bootstrapped.
    gap = np.abs(identities["gae_1_minus_unbootstrapped_mc"])
    bound = GAMMA ** (NUM_STEPS - np.arange(NUM_STEPS)) * oracle_run["values"].max(axis=1)[:, None, None]
    assert np.all(gap <= bound * (1 + 1e-4) + 1e-4)
