"""Exact expectations of the estimators, by enumerating every stream of tiny episodic MDPs.

No sampling: a stream's probability is the product of μ0, π and P along it; every estimator runs on
every stream (float64, vmapped) and the probability-weighted sum is the estimator's exact
expectation. It must equal the truth from pgax.exact to 1e-9 of the truth's largest entry, so a
bias of any size (25 %, or 1e-6) fails; tests/test_estimators_oracle.py samples instead and only
sees biases of the order of its standard errors.

1. Policy-gradient estimators on streams of two whole episodes of a layered MDP (every path enters
   the terminal state within H steps, so the infinite-horizon quantities of pgax.exact are those of
   the finite episodes). REINFORCE (causal, whole return, with a baseline) must have E[ĝ] = 2 ∇J.
   A critic-based Ψ_t = γ^{t − t0} X_t with E[X_t | s_t = s, a_t = a] = X(s, a) has

       E[ĝ] = 2 Σ_s ρ(s) Σ_a π(a|s) ∇log π(a|s) X(s, a)          (ρ: discounted visitation),

   and with a random critic V ≠ V^π, X = Q^λ_V or Q^(n)_V (pgax.exact) depends on λ, n and γ.
2. Advantage and Q targets on streams of T steps with a time limit L < T and auto-reset, in an MDP
   with loops and a terminal state, with a random critic V ≠ V^π and a random Q table: episodes end
   by termination (no bootstrap), truncation (bootstrapped) and the stream end. For every step t,
   state s and action a,

       E[1[s_t = s, a_t = a] X_t] = E[1[s_t = s, a_t = a] truth_{m_t}(s, a)],

   where m_t = min(L − τ_t, T − t) counts the steps to the next cut (τ_t: steps since the episode
   started) and truth_m is the oracle cut m steps ahead (e.g. Q^λ_V with horizon m).

The MDPs, policies and critics are random, drawn from seeds shifted by PGAX_TEST_SEED_OFFSET.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgax import estimators as est
from pgax import exact
from tests.helpers import rng

# One xdist worker runs this file (`--dist loadgroup`), so its module-scoped fixtures are built
# once.
pytestmark = pytest.mark.xdist_group("test_estimators_exact_expectation")

GAMMA = 0.8
RELATIVE_TOLERANCE = 1e-9  # of the truth's largest entry; float64 round-off is ~1e-14

# Part 1: layered MDP, 3 layers of 2 states, 3 actions; two whole episodes per stream.
NUM_LAYERS, LAYER_WIDTH, NUM_ACTIONS = 3, 2, 3
NUM_EPISODES = 2
# Part 2: 3 recurrent states + 1 terminal, 2 actions; streams of T = 5 steps, time limit 3.
NUM_LIVE, LOOP_ACTIONS, STREAM_STEPS, TIME_LIMIT = 3, 2, 5, 3


# ------------------------------------------------------------------------ MDPs and enumeration


def layered_mdp(generator: np.random.Generator, num_layers: int, width: int, num_actions: int,
                discount: float) -> exact.TabularMDP:
    """S = num_layers·width + 1 states: state l·width + i is state i of layer l, the last is terminal.

    From layer l, (s, a) enters the terminal state with probability q(s, a) ~ U[0.1, 0.5] and
    otherwise a state of layer l + 1 (flat Dirichlet); the last layer always terminates. So every
    episode ends within num_layers steps. R ~ N(0, 1), μ0 a flat Dirichlet over layer 0.
    """
    S = num_layers * width + 1
    terminal = S - 1
    P = np.zeros((S, num_actions, S))
    P[terminal, :, terminal] = 1.0  # never acted in (terminal); keeps the rows stochastic
    for layer in range(num_layers):
        for s in range(layer * width, (layer + 1) * width):
            for a in range(num_actions):
                if layer == num_layers - 1:
                    P[s, a, terminal] = 1.0
                    continue
                end = generator.uniform(0.1, 0.5)
                P[s, a, terminal] = end
                P[s, a, (layer + 1) * width:(layer + 2) * width] = (1 - end) * generator.dirichlet(np.ones(width))
    rewards = generator.normal(size=(S, num_actions))
    initial = np.zeros(S)
    initial[:width] = generator.dirichlet(np.ones(width))
    mdp = exact.TabularMDP(P, rewards, initial, np.float64(discount), np.arange(S) == terminal)
    exact.check_tabular_mdp(mdp)
    return mdp


def looping_mdp(generator: np.random.Generator, num_live: int, num_actions: int, discount: float) -> exact.TabularMDP:
    """S = num_live + 1 states, the last terminal: each live (s, a) moves by a flat Dirichlet over all
    S states, so states recur and episodes terminate at random times. R ~ N(0, 1); μ0 a flat
    Dirichlet over states 0 and 1."""
    S = num_live + 1
    P = np.zeros((S, num_actions, S))
    P[:num_live] = generator.dirichlet(np.ones(S), size=(num_live, num_actions))
    P[S - 1, :, S - 1] = 1.0
    rewards = generator.normal(size=(S, num_actions))
    initial = np.zeros(S)
    initial[:2] = generator.dirichlet(np.ones(2))
    mdp = exact.TabularMDP(P, rewards, initial, np.float64(discount), np.arange(S) == S - 1)
    exact.check_tabular_mdp(mdp)
    return mdp


class Streams(NamedTuple):
    """N enumerated streams of T steps; `prob` [N] sums to 1, every other leaf is [N, T].

    state, action, next_state: int (next_state is the true successor s_{t+1}, before a reset).
    reward R(s_t, a_t); discount γ, or 0 where s_{t+1} is terminal; truncated: the time limit cut
    the episode after step t; time τ_t: steps since the episode started; valid: False on padding
    (reward 0, discount 0, state and action 0) after the last episode of a shorter stream.
    """

    prob: np.ndarray
    state: np.ndarray
    action: np.ndarray
    next_state: np.ndarray
    reward: np.ndarray
    discount: np.ndarray
    truncated: np.ndarray
    time: np.ndarray
    valid: np.ndarray


STEP_FIELDS = Streams._fields[1:]


def enumerate_streams(mdp: exact.TabularMDP, policy: np.ndarray, num_steps: int, time_limit: int | None = None,
                      num_episodes: int | None = None) -> Streams:
    """Every stream of an auto-resetting driver under `policy` [S, A], with its exact probability.

    num_episodes=K: streams of K whole episodes, padded to `num_steps` (every episode must end by
    then). Otherwise streams of exactly `num_steps` steps, an episode truncated after `time_limit`
    steps (unless it terminates there); the stream end cuts the last episode. After an episode
    ends the next starts from s ~ μ0.
    """
    P, R, mu0 = (np.asarray(x, np.float64) for x in (mdp.transitions, mdp.rewards, mdp.initial_distribution))
    gamma, terminal = float(mdp.discount), np.asarray(mdp.terminal, bool)
    starts = np.flatnonzero(mu0 > 0)
    prob, current = mu0[starts], starts
    elapsed, episodes = np.zeros(len(starts), int), np.zeros(len(starts), int)
    steps = {name: np.zeros((len(starts), 0)) for name in STEP_FIELDS}
    finished = []
    for t in range(num_steps):
        branch = prob[:, None, None] * policy[current][:, :, None] * P[current]  # [N, A, S]
        row, action, successor = np.nonzero(branch > 0)
        prob, state = branch[row, action, successor], current[row]
        terminated = terminal[successor]
        truncated = (~terminated & (elapsed[row] + 1 >= time_limit) if time_limit is not None
                     else np.zeros_like(terminated))
        new = dict(state=state, action=action, next_state=successor, reward=R[state, action],
                   discount=np.where(terminated, 0.0, gamma), truncated=truncated, time=elapsed[row],
                   valid=np.ones_like(terminated))
        steps = {k: np.concatenate([v[row], new[k][:, None]], axis=1) for k, v in steps.items()}
        ended = terminated | truncated
        episodes, elapsed = episodes[row] + ended, elapsed[row] + 1
        if num_episodes is not None:
            done = episodes == num_episodes
            finished.append((prob[done], {k: v[done] for k, v in steps.items()}))
            keep = ~done
            prob, successor, ended, episodes, elapsed = (x[keep] for x in (prob, successor, ended, episodes, elapsed))
            steps = {k: v[keep] for k, v in steps.items()}
        if t == num_steps - 1:
            break
        # An ended episode is followed by a reset: one copy of the prefix per start state.
        copies = np.where(ended, len(starts), 1)
        source = np.repeat(np.arange(len(prob)), copies)
        offset = np.arange(len(source)) - np.repeat(np.cumsum(copies) - copies, copies)
        reset = ended[source]
        current = np.where(reset, starts[offset], successor[source])
        prob = prob[source] * np.where(reset, mu0[starts[offset]], 1.0)
        elapsed = np.where(reset, 0, elapsed[source])
        episodes = episodes[source]
        steps = {k: v[source] for k, v in steps.items()}
    if num_episodes is not None:
        assert len(prob) == 0, "some episodes did not end within num_steps"
        prob = np.concatenate([p for p, _ in finished])
        steps = {k: np.concatenate([_pad(s[k], num_steps) for _, s in finished]) for k in STEP_FIELDS}
    dtypes = dict(state=int, action=int, next_state=int, reward=float, discount=float, truncated=bool, time=int,
                  valid=bool)
    return Streams(prob, **{k: steps[k].astype(dtypes[k]) for k in STEP_FIELDS})


def _pad(x: np.ndarray, num_steps: int) -> np.ndarray:
    """[N, t] → [N, num_steps], zeros (state 0, reward 0, discount 0, valid False) after step t."""
    return np.pad(x, ((0, 0), (0, num_steps - x.shape[1])))


def expectation(prob: np.ndarray, samples: np.ndarray) -> np.ndarray:
    """Σ_n prob[n] · samples[n, ...]: the exact expectation over the enumerated streams."""
    return np.tensordot(prob, np.asarray(samples, np.float64), axes=(0, 0))


def assert_exact(actual: np.ndarray, truth: np.ndarray, label: str) -> None:
    scale = np.abs(truth).max()
    error = np.abs(actual - truth).max()
    assert error <= RELATIVE_TOLERANCE * scale, f"{label}: |E[estimate] − truth| = {error:.3g}, scale {scale:.3g}"


# ---------------------------------------------------- 1. policy-gradient estimators, two episodes


def gradient_estimates(stream: Streams, score_table, values, q_table, true_values):
    """Every policy-gradient estimator on one padded stream, each shaped [k] (k = S·A logits).

    score_table: [S, A, k] ∇_θ log π(a|s); values [S] a random critic; q_table [S, A] a random Q
    critic; true_values [S] V^π. Padding steps get a zero score, so they add nothing.
    """
    s, a, s_next, r, d = stream.state, stream.action, stream.next_state, stream.reward, stream.discount
    score_t = stream.valid[:, None] * score_table[s, a]
    v_tm1, v_t = values[s], values[s_next]

    def estimate(weight_t):
        return est.policy_gradient_estimate(score_t, weight_t)

    def advantage_actor_critic(advantage_t):
        return estimate(est.actor_critic_weights(advantage_t, d))

    return {
        "reinforce": estimate(est.reinforce_weights(r, d)),
        "reinforce_whole_return": estimate(est.reinforce_weights(r, d, causal=False)),
        "reinforce_baseline": estimate(est.reinforce_with_baseline_weights(r, d, v_tm1)),
        "td_actor_critic": advantage_actor_critic(est.td_errors(r, d, v_tm1, v_t)),
        "gae_0_actor_critic": advantage_actor_critic(est.gae(r, d, v_tm1, v_t, 0.0)),
        "gae_0.6_actor_critic": advantage_actor_critic(est.gae(r, d, v_tm1, v_t, 0.6)),
        "gae_1_actor_critic": advantage_actor_critic(est.gae(r, d, v_tm1, v_t, 1.0)),
        "gae_0.6_actor_critic_true_values": advantage_actor_critic(
            est.gae(r, d, true_values[s], true_values[s_next], 0.6)),
        "n_step_2_actor_critic": advantage_actor_critic(est.n_step_advantages(r, d, v_tm1, v_t, 2)),
        "n_step_3_actor_critic": advantage_actor_critic(est.n_step_advantages(r, d, v_tm1, v_t, 3)),
        "q_actor_critic": estimate(est.actor_critic_weights(q_table[s, a], d)),
        "td_lambda_0.6_actor": est.td_lambda_actor_gradient(score_t, r, d, v_tm1, v_t, 0.6),
        # Known to be biased: the fixture must tell them apart from ∇J.
        "biased_no_discount_weighting": estimate(est.reinforce_weights(r, d, discount_weighting=False)),
        "biased_action_dependent_baseline": estimate(est.reinforce_with_baseline_weights(r, d, q_table[s, a])),
    }


@pytest.fixture(scope="module")
def gradient_problem():
    generator = rng(11)
    mdp = layered_mdp(generator, NUM_LAYERS, LAYER_WIDTH, NUM_ACTIONS, GAMMA)
    S = mdp.num_states
    logits = generator.normal(size=(S, NUM_ACTIONS))
    policy = exact.softmax_policy(logits)
    true_values = exact.state_values(mdp, policy)
    values = true_values + generator.normal(size=S)  # V ≠ V^π everywhere, the terminal state included
    q_table = generator.normal(size=(S, NUM_ACTIONS))
    streams = enumerate_streams(mdp, policy, NUM_EPISODES * NUM_LAYERS, num_episodes=NUM_EPISODES)
    score_table = exact.score_table(logits)
    with jax.enable_x64(True):
        estimates = jax.jit(jax.vmap(gradient_estimates, in_axes=(0, None, None, None, None)))(
            jax.tree_util.tree_map(jnp.asarray, streams),
            *map(jnp.asarray, (score_table, values, q_table, true_values)))
    means = {name: expectation(streams.prob, x) / NUM_EPISODES for name, x in estimates.items()}

    # Truth: Σ_s ρ(s) Σ_a π(a|s) ∇log π(a|s) X(s, a) for the X that the estimator's E[X_t | s_t, a_t] is.
    rho = exact.discounted_visitation(mdp, policy, normalized=False)

    def gradient_of(x):
        return np.einsum("s,sa,sak,sa->k", rho, policy, score_table, x)

    grad_j = exact.policy_gradient(mdp, logits).reshape(-1)
    lam = functools.partial(exact.lambda_return_action_values, mdp, policy, values)
    n_step = functools.partial(exact.n_step_action_values, mdp, policy, values)
    truths = {
        "reinforce": grad_j, "reinforce_whole_return": grad_j, "reinforce_baseline": grad_j,
        "td_actor_critic": gradient_of(n_step(1)),
        "gae_0_actor_critic": gradient_of(lam(0.0)),
        "gae_0.6_actor_critic": gradient_of(lam(0.6)),
        "gae_1_actor_critic": grad_j,
        "gae_0.6_actor_critic_true_values": grad_j,
        "n_step_2_actor_critic": gradient_of(n_step(2)),
        "n_step_3_actor_critic": gradient_of(n_step(3)),
        "q_actor_critic": gradient_of(q_table),
        "td_lambda_0.6_actor": gradient_of(lam(0.6)),
    }
    return dict(mdp=mdp, policy=policy, streams=streams, means=means, truths=truths, grad_j=grad_j,
                gradient_of=gradient_of, q_pi=exact.action_values(mdp, policy))


def test_enumeration_is_complete_and_its_visitation_is_exact(gradient_problem):
    streams, mdp, policy = gradient_problem["streams"], gradient_problem["mdp"], gradient_problem["policy"]
    np.testing.assert_allclose(streams.prob.sum(), 1.0, rtol=1e-13)
    assert (streams.prob > 0).all() and (streams.discount[streams.valid] == 0).sum() == NUM_EPISODES * len(streams.prob)
    # Σ_t γ^{t − t0} Pr(s_t = s) over the stream's episodes = K ρ(s): the enumerated paths are those of exact.py.
    weight = np.where(streams.valid, GAMMA ** streams.time, 0.0)
    visits = np.zeros(mdp.num_states)
    np.add.at(visits, streams.state, weight * streams.prob[:, None])
    np.testing.assert_allclose(visits / NUM_EPISODES, exact.discounted_visitation(mdp, policy, normalized=False),
                               rtol=1e-12, atol=1e-14)
    # The truth's own formula gives the policy gradient theorem's ∇J for X = Q^π.
    np.testing.assert_allclose(gradient_problem["gradient_of"](gradient_problem["q_pi"]), gradient_problem["grad_j"],
                               rtol=1e-10, atol=1e-12)


UNBIASED_GRADIENTS = ["reinforce", "reinforce_whole_return", "reinforce_baseline", "td_actor_critic",
                      "gae_0_actor_critic", "gae_0.6_actor_critic", "gae_1_actor_critic",
                      "gae_0.6_actor_critic_true_values", "n_step_2_actor_critic", "n_step_3_actor_critic",
                      "q_actor_critic", "td_lambda_0.6_actor"]


@pytest.mark.parametrize("name", UNBIASED_GRADIENTS)
def test_policy_gradient_estimator_has_the_exact_expectation(gradient_problem, name):
    assert_exact(gradient_problem["means"][name], gradient_problem["truths"][name], name)


@pytest.mark.parametrize("name", ["biased_no_discount_weighting", "biased_action_dependent_baseline"])
def test_known_biases_are_large_in_this_mdp(gradient_problem, name):
    """The fixture has power: a known-biased estimator misses ∇J by far more than the tolerance."""
    grad_j = gradient_problem["grad_j"]
    assert np.abs(gradient_problem["means"][name] - grad_j).max() > 0.05 * np.abs(grad_j).max()


def test_the_critic_is_wrong_enough_that_lambda_and_n_matter(gradient_problem):
    """With V ≠ V^π the truths of different λ, n (and ∇J) differ, so a wrong recursion shows: the
    estimators are compared at 1e-9 of the scale, and these truths differ by more than 1e-3 of it
    (the smallest gap seen was 1.7e-2 of it, at PGAX_TEST_SEED_OFFSET=100). (n = 3 reaches every
    episode's end here, so its truth is ∇J.)"""
    truths, grad_j = gradient_problem["truths"], gradient_problem["grad_j"]
    distinct = [grad_j] + [truths[k] for k in ("td_actor_critic", "gae_0.6_actor_critic", "n_step_2_actor_critic")]
    scale = np.abs(grad_j).max()
    for i in range(len(distinct)):
        for j in range(i):
            assert np.abs(distinct[i] - distinct[j]).max() > 1e-3 * scale, (i, j)


# ------------------------------------------------------- 2. targets with truncation and a time limit


def target_estimates(stream: Streams, policy, values, q_table):
    """Every advantage / Q target on one stream of T steps, [T] each ("td_lambda_0.8_update": [S·A]).

    policy [S, A]; values [S] a random critic; q_table [S, A] a random Q critic.
    """
    s, a, s_next, r, d, trunc = (stream.state, stream.action, stream.next_state, stream.reward, stream.discount,
                                 stream.truncated)
    v_tm1, v_t = values[s], values[s_next]
    num_steps = r.shape[0]
    # SARSA's next action: a_{t+1} while the episode goes on in the stream, else E_π Q(s_{t+1}, ·).
    same_episode = ~trunc & (d > 0) & (jnp.arange(num_steps) < num_steps - 1)
    following = jnp.minimum(jnp.arange(num_steps) + 1, num_steps - 1)
    q_next = jnp.where(same_episode, q_table[s[following], a[following]], jnp.sum(policy[s_next] * q_table[s_next], -1))
    features = jax.nn.one_hot(s * q_table.shape[1] + a, q_table.size, dtype=r.dtype)
    return {
        "td_error": est.td_errors(r, d, v_tm1, v_t),
        "gae_0.5": est.gae(r, d, v_tm1, v_t, 0.5, trunc),
        "gae_0.9": est.gae(r, d, v_tm1, v_t, 0.9, trunc),
        "gae_1": est.gae(r, d, v_tm1, v_t, 1.0, trunc),
        "lambda_return_0.7": est.lambda_returns(r, d, v_tm1, v_t, 0.7, trunc),
        "n_step_return_2": est.n_step_returns(r, d, v_t, 2, trunc),
        "n_step_advantage_3": est.n_step_advantages(r, d, v_tm1, v_t, 3, trunc),
        "bootstrapped_return": est.discounted_returns(r, d, v_t, trunc),
        "reward_to_go": est.reward_to_go(r, d, trunc),
        "baselined_return": est.baselined_returns(r, d, v_tm1, trunc),
        "sarsa_target": est.sarsa_targets(r, d, q_next),
        "expected_sarsa_target": est.expected_sarsa_targets(r, d, q_table[s_next], policy[s_next]),
        "q_td_error": est.q_td_errors(r, d, q_table[s, a], q_next),
        # Policy-gradient weights γ^{τ_t} X_t: the discount restarts after a truncation too.
        "reinforce_weights": est.reinforce_weights(r, d, trunc),
        "gae_0.9_actor_critic_weights": est.actor_critic_weights(est.gae(r, d, v_tm1, v_t, 0.9, trunc), d, trunc),
        # Σ_t δ_t e_t with one-hot (s, a) features = Σ_t GAE_t(0.8) φ_t: per-(s, a) sums over the stream.
        "td_lambda_0.8_update": est.td_lambda_update(features, r, d, v_tm1, v_t, 0.8, trunc),
    }


@pytest.fixture(scope="module")
def target_problem():
    generator = rng(12)
    mdp = looping_mdp(generator, NUM_LIVE, LOOP_ACTIONS, GAMMA)
    S, A = mdp.num_states, LOOP_ACTIONS
    policy = exact.softmax_policy(generator.normal(size=(S, A)))
    values = exact.state_values(mdp, policy) + generator.normal(size=S)
    q_table = generator.normal(size=(S, A))
    streams = enumerate_streams(mdp, policy, STREAM_STEPS, time_limit=TIME_LIMIT)
    with jax.enable_x64(True):
        estimates = jax.jit(jax.vmap(target_estimates, in_axes=(0, None, None, None)))(
            jax.tree_util.tree_map(jnp.asarray, streams), *map(jnp.asarray, (policy, values, q_table)))
    estimates = {k: np.asarray(x) for k, x in estimates.items()}

    # truth[m − 1] [S, A] for a cut m = 1 … M steps ahead, and V(s) where the target is an advantage.
    cuts = range(1, max(TIME_LIMIT, STREAM_STEPS) + 1)
    lam = functools.partial(exact.lambda_return_action_values, mdp, policy, values)
    n_step = functools.partial(exact.n_step_action_values, mdp, policy, values)
    monte_carlo = np.stack([exact.n_step_action_values(mdp, policy, np.zeros(S), m) for m in cuts])
    sarsa = exact.n_step_action_values(mdp, policy, (policy * q_table).sum(1), 1)  # R + γ P_c π·Q
    v = values[:, None]
    tables = {
        "td_error": np.stack([n_step(1) - v for _ in cuts]),
        "gae_0.5": np.stack([lam(0.5, horizon=m) - v for m in cuts]),
        "gae_0.9": np.stack([lam(0.9, horizon=m) - v for m in cuts]),
        "gae_1": np.stack([n_step(m) - v for m in cuts]),
        "lambda_return_0.7": np.stack([lam(0.7, horizon=m) for m in cuts]),
        "n_step_return_2": np.stack([n_step(min(2, m)) for m in cuts]),
        "n_step_advantage_3": np.stack([n_step(min(3, m)) - v for m in cuts]),
        "bootstrapped_return": np.stack([n_step(m) for m in cuts]),
        "reward_to_go": monte_carlo,
        "baselined_return": monte_carlo - v,
        "sarsa_target": np.stack([sarsa for _ in cuts]),
        "expected_sarsa_target": np.stack([sarsa for _ in cuts]),
        "q_td_error": np.stack([sarsa - q_table for _ in cuts]),
        "td_lambda_0.8_update": np.stack([lam(0.8, horizon=m) - v for m in cuts]),
    }
    tables["reinforce_weights"] = tables["reward_to_go"]
    tables["gae_0.9_actor_critic_weights"] = tables["gae_0.9"]
    discounted = {"reinforce_weights", "gae_0.9_actor_critic_weights"}  # truths carry γ^{τ_t}
    steps = np.arange(STREAM_STEPS)
    to_cut = np.minimum(TIME_LIMIT - streams.time, STREAM_STEPS - steps)  # m_t, [N, T]
    cell = streams.state * A + streams.action
    weighted_cells = streams.prob[:, None, None] * np.eye(S * A)[cell]  # [N, T, S·A]
    actual, truth = {}, {}
    for name, table in tables.items():
        truth_t = table[to_cut - 1, streams.state, streams.action]  # [N, T]
        if name in discounted:
            truth_t = GAMMA ** streams.time * truth_t
        if name == "td_lambda_0.8_update":
            actual[name] = expectation(streams.prob, estimates[name])
            truth[name] = np.einsum("ntc,nt->c", weighted_cells, truth_t)
        else:
            actual[name] = np.einsum("ntc,nt->tc", weighted_cells, estimates[name])
            truth[name] = np.einsum("ntc,nt->tc", weighted_cells, truth_t)
    return dict(streams=streams, to_cut=to_cut, actual=actual, truth=truth, tables=tables,
                weighted_cells=weighted_cells)


def test_streams_cover_termination_truncation_and_the_stream_end(target_problem):
    streams, to_cut = target_problem["streams"], target_problem["to_cut"]
    np.testing.assert_allclose(streams.prob.sum(), 1.0, rtol=1e-13)
    # Episodes end mid-stream by termination and by truncation, each with real probability mass,
    # and every cut length 1 … L occurs (the first step is L steps from its cut).
    inside = slice(0, STREAM_STEPS - 1)
    for event in (streams.discount[:, inside] == 0, streams.truncated[:, inside]):
        assert expectation(streams.prob, event.any(1)) > 0.05
    assert not (streams.truncated & (streams.discount == 0)).any()
    assert set(np.unique(to_cut)) == set(range(1, TIME_LIMIT + 1)) and (to_cut[:, 0] == TIME_LIMIT).all()


TARGETS = ["td_error", "gae_0.5", "gae_0.9", "gae_1", "lambda_return_0.7", "n_step_return_2", "n_step_advantage_3",
           "bootstrapped_return", "reward_to_go", "baselined_return", "sarsa_target", "expected_sarsa_target",
           "q_td_error", "reinforce_weights", "gae_0.9_actor_critic_weights", "td_lambda_0.8_update"]


@pytest.mark.parametrize("name", TARGETS)
def test_target_has_the_exact_conditional_expectation(target_problem, name):
    assert_exact(target_problem["actual"][name], target_problem["truth"][name], name)


def test_the_cut_length_and_lambda_change_the_truth(target_problem):
    """The oracle's horizon matters (V ≠ V^π): a target that ignored truncation, or mixed in the wrong
    λ, would have a different expectation: by more than 1e-3 of the scale, far above the 1e-9 at
    which the estimators are compared."""
    tables, weighted_cells = target_problem["tables"], target_problem["weighted_cells"]
    visited = weighted_cells.sum((0, 1)).reshape(tables["gae_0.5"].shape[1:]) > 0
    for name in ("gae_0.5", "gae_0.9", "reward_to_go", "n_step_advantage_3"):
        table = tables[name]
        assert np.abs(table[0] - table[2])[visited].max() > 1e-3 * np.abs(table).max(), name
    assert np.abs(tables["gae_0.5"] - tables["gae_0.9"])[:, visited].max() > 1e-3 * np.abs(tables["gae_0.9"]).max()
