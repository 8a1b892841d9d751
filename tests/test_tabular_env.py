"""Tabular MDPs: the generators build what they promise, and both samplers (the trajectory sampler
and the `JaxEnv`) simulate exactly the MDP that pgax.exact solves.

Frequency checks compare empirical probabilities with the MDP's within z* binomial standard errors,
z* the Bonferroni bound for a family-wise false-alarm rate of 1e-3 (as in test_estimators_oracle).
"""

from statistics import NormalDist

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgax import estimators as est
from pgax import exact
from pgax.envs import episode_statistics
from pgax.envs.tabular import (
    GRID_MOVES,
    chain_mdp,
    garnet_mdp,
    gridworld_mdp,
    make_tabular_env,
    sample_trajectories,
    stack_mdps,
)
from pgax.rollout import scan_rollout, vector_reset
from pgax.spaces import Box, Discrete
from tests.helpers import seed, seeded_rng

# One xdist worker runs this file (`--dist loadgroup`), so its module-scoped fixture garnet_samples is built once.
pytestmark = pytest.mark.xdist_group("test_tabular_env")


def bonferroni_z(num_comparisons, family_wise=1e-5):
    """z* = Φ⁻¹(1 − α / 2K) for K comparisons at family-wise false-alarm rate α. α is small because
    the suite runs under several PGAX_TEST_SEED_OFFSETs: with α = 1e-3 the π(a|s) check failed at
    offset 200 with a 4.21 SE gap (its maximum over 15 cells was 0.95-2.97 for 19 other draws), a
    chance event a correct sampler still produces; a sampler bug shows as tens of SEs."""
    return NormalDist().inv_cdf(1.0 - family_wise / (2 * num_comparisons))


def assert_frequencies_match(counts, probabilities, label):
    """counts [..., K] of categorical outcomes vs probabilities [..., K], within z* binomial SEs."""
    totals = counts.sum(-1, keepdims=True)
    observed = counts / np.maximum(totals, 1)
    se = np.sqrt(probabilities * (1 - probabilities) / np.maximum(totals, 1))
    z_star = bonferroni_z(probabilities.size)
    gap = np.abs(observed - probabilities)
    assert np.all((totals > 0) | (probabilities.sum(-1, keepdims=True) == 0))
    assert np.all(gap <= z_star * se + 1e-12), f"{label}: max gap {np.max(gap / np.maximum(se, 1e-12)):.2f} SE"


# ------------------------------------------------------------------------------------ generators


def test_garnet_is_a_valid_seeded_mdp():
    mdp = garnet_mdp(3, num_states=7, num_actions=4, branching=3, discount=0.8)
    exact.check_tabular_mdp(mdp)
    assert (mdp.num_states, mdp.num_actions) == (7, 4)
    assert mdp.transitions.shape == (7, 4, 7) and mdp.rewards.shape == (7, 4)
    assert np.all((mdp.transitions > 0).sum(-1) == 3)  # exactly `branching` successors per (s, a)
    assert np.all((mdp.rewards >= 0) & (mdp.rewards <= 1)) and np.all(mdp.initial_distribution > 0)
    assert float(mdp.discount) == 0.8 and mdp.terminal is None
    again, other = garnet_mdp(3, 7, 4, 3, 0.8), garnet_mdp(4, 7, 4, 3, 0.8)
    np.testing.assert_array_equal(again.transitions, mdp.transitions)
    assert not np.allclose(other.transitions, mdp.transitions)
    with pytest.raises(ValueError, match="branching"):
        garnet_mdp(0, num_states=3, branching=4)


def test_chain_by_hand():
    mdp = chain_mdp(num_states=4, discount=0.9, slip=0.25, left_reward=0.1, right_reward=2.0)
    left, right = 0, 1
    np.testing.assert_allclose(mdp.transitions[2, left], [0, 1, 0, 0])
    np.testing.assert_allclose(mdp.transitions[0, left], [1, 0, 0, 0])
    np.testing.assert_allclose(mdp.transitions[1, right], [0.25, 0, 0.75, 0])
    np.testing.assert_allclose(mdp.transitions[3, right], [0, 0, 0.25, 0.75])
    np.testing.assert_allclose(mdp.rewards, [[0.1, 0], [0, 0], [0, 0], [0, 2.0]])
    np.testing.assert_allclose(mdp.initial_distribution, [1, 0, 0, 0])


def test_gridworld_by_hand():
    mdp = gridworld_mdp(height=2, width=3, slip=0.2, walls=((0, 1),), step_reward=-1.0)
    up, right, down, left = range(4)
    assert GRID_MOVES[right] == (0, 1)
    start, goal, wall = 0, 5, 1
    # From (0,0): right hits the wall (stay), down reaches (1,0) = 3; slip spreads 0.05 on each move.
    np.testing.assert_allclose(mdp.transitions[start, right], np.eye(6)[start] * (0.8 + 0.15) + np.eye(6)[3] * 0.05)
    np.testing.assert_allclose(mdp.transitions[start, down], np.eye(6)[3] * (0.8 + 0.05) + np.eye(6)[start] * 0.15)
    assert mdp.terminal[goal] and mdp.terminal.sum() == 1
    np.testing.assert_allclose(mdp.rewards, -1.0)
    np.testing.assert_allclose(mdp.initial_distribution, np.eye(6)[start])
    assert mdp.transitions[:, :, wall].sum() == mdp.transitions[wall, :, wall].sum()  # only the wall reaches itself
    with pytest.raises(ValueError, match="start and goal"):
        gridworld_mdp(2, 2, walls=((0, 0),))


# ---------------------------------------------------------------------------- trajectory sampler


@pytest.fixture(scope="module")
def garnet_samples():
    mdp = garnet_mdp(5, 5, 3, branching=3, discount=0.9)
    logits = seeded_rng(5).normal(size=(5, 3))
    trajectories = jax.jit(lambda k: sample_trajectories(k, mdp, logits, 150, 2048))(jax.random.key(seed(0)))
    return mdp, logits, jax.tree_util.tree_map(np.asarray, trajectories)


def test_sampled_transitions_actions_and_starts_follow_the_mdp(garnet_samples):
    mdp, logits, traj = garnet_samples
    S, A = mdp.num_states, mdp.num_actions
    s, a, s_next = traj.state.ravel(), traj.action.ravel(), traj.next_state.ravel()
    counts = np.zeros((S, A, S))
    np.add.at(counts, (s, a, s_next), 1)
    assert_frequencies_match(counts, mdp.transitions, "P(s'|s,a)")
    action_counts = np.zeros((S, A))
    np.add.at(action_counts, (s, a), 1)
    assert_frequencies_match(action_counts, exact.softmax_policy(logits), "π(a|s)")
    start_counts = np.bincount(traj.state[:, 0], minlength=S)
    assert_frequencies_match(start_counts, mdp.initial_distribution, "μ0")


def test_sampled_streams_are_consistent(garnet_samples):
    mdp, logits, traj = garnet_samples
    np.testing.assert_array_equal(traj.state[:, 1:], traj.next_state[:, :-1])  # no terminal states: one episode
    assert not traj.terminated.any()
    np.testing.assert_allclose(traj.discount, 0.9, rtol=1e-6)
    np.testing.assert_allclose(traj.reward, mdp.rewards[traj.state, traj.action], rtol=1e-6)
    log_pi = np.log(exact.softmax_policy(logits))
    np.testing.assert_allclose(traj.log_prob, log_pi[traj.state, traj.action], rtol=1e-5, atol=1e-6)


def test_mean_discounted_return_from_the_start_is_the_exact_objective(garnet_samples):
    mdp, logits, traj = garnet_samples
    returns = np.asarray(jax.vmap(est.reward_to_go)(jnp.asarray(traj.reward), jnp.asarray(traj.discount)))[:, 0]
    se = returns.std(ddof=1) / np.sqrt(len(returns))
    # Truncation at T = 150 misses at most γ^150 / (1 − γ) ≈ 1.4e-6 of J.
    assert abs(returns.mean() - exact.objective(mdp, logits)) <= bonferroni_z(1) * se


def test_episodic_gridworld_sampler_restarts_and_matches_the_exact_return():
    mdp = gridworld_mdp(3, 4, discount=0.95, slip=0.2, walls=((1, 1),))
    logits = seeded_rng(1).normal(size=(12, 4))
    logits[:, 1:3] += 1.0  # lean right/down so episodes finish within the stream
    traj = jax.tree_util.tree_map(np.asarray, jax.jit(lambda k: sample_trajectories(k, mdp, logits, 200, 2048))(
        jax.random.key(seed(1))))
    goal, start = 11, 0
    assert traj.terminated.any()
    np.testing.assert_array_equal(traj.terminated, traj.next_state == goal)
    np.testing.assert_allclose(traj.discount, np.where(traj.terminated, 0.0, 0.95), rtol=1e-6)
    after_termination = traj.state[:, 1:][traj.terminated[:, :-1]]
    assert np.all(after_termination == start)  # auto-reset from μ0
    continuing = ~traj.terminated[:, :-1]
    np.testing.assert_array_equal(traj.state[:, 1:][continuing], traj.next_state[:, :-1][continuing])
    assert not np.isin(traj.state, [goal, 5]).any()  # never acts in the goal or the wall
    # The first episode's discounted return (reward_to_go stops at the termination) estimates J.
    returns = np.asarray(jax.vmap(est.reward_to_go)(jnp.asarray(traj.reward), jnp.asarray(traj.discount)))[:, 0]
    finished = traj.terminated.any(1).mean()
    assert finished > 0.999  # the truncation bias of unfinished first episodes is negligible
    se = returns.std(ddof=1) / np.sqrt(len(returns))
    assert abs(returns.mean() - exact.expected_return(mdp, exact.softmax_policy(logits))) <= bonferroni_z(1) * se


def test_sampler_vmaps_over_stacked_mdps():
    mdps = [garnet_mdp(seed, 4, 2, 2, 0.9) for seed in range(3)]
    logits = np.zeros((3, 4, 2))
    keys = jax.random.split(jax.random.key(seed(0)), 3)
    batched = jax.jit(jax.vmap(lambda k, m, th: sample_trajectories(k, m, th, 20, 64)))(keys, stack_mdps(mdps), logits)
    assert batched.state.shape == (3, 64, 20)
    for i, mdp in enumerate(mdps):
        s, a, s_next = (np.asarray(x[i]) for x in (batched.state, batched.action, batched.next_state))
        # Each slice follows its own MDP: only its 2 successors per (s, a) occur, with its rewards.
        assert np.all(mdp.transitions[s, a, s_next] > 0)
        np.testing.assert_allclose(batched.reward[i], mdp.rewards[s, a], rtol=1e-6)
        assert not all(np.all(other.transitions[s, a, s_next] > 0) for j, other in enumerate(mdps) if j != i)


# ----------------------------------------------------------------------------------- the JaxEnv


def uniform_act(num_actions):
    def act(params, obs, key):
        action = jax.random.randint(key, obs.shape[:1], 0, num_actions)
        return action, jnp.full(obs.shape[:1], -jnp.log(num_actions))

    return act


def test_tabular_env_spaces_and_reset():
    mdp = garnet_mdp(0, 5, 3, 2, 0.9)
    env = make_tabular_env(mdp, max_episode_steps=7, name="garnet")
    assert env.name == "garnet" and env.max_episode_steps == 7
    assert env.action_space == Discrete(3)
    assert isinstance(env.observation_space, Box) and env.observation_space.shape == (5,)
    obs, state = env.reset(jax.random.key(seed(0)))
    assert obs.dtype == jnp.float32 and obs.shape == (5,)
    np.testing.assert_array_equal(obs, np.eye(5)[int(state.state)])
    assert int(state.time) == 0


def test_tabular_env_rollout_truncates_terminates_and_follows_the_mdp():
    mdp = gridworld_mdp(2, 3, discount=0.9, slip=0.3)
    env = episode_statistics(make_tabular_env(mdp, max_episode_steps=6))
    obs, env_state = vector_reset(env, jax.random.key(seed(0)), 256)
    batch, _, _, info = jax.jit(lambda s, o, k: scan_rollout(uniform_act(4), None, env, s, o, k, 60))(
        env_state, obs, jax.random.key(seed(1)))
    state = np.asarray(batch.obs).argmax(-1)
    successor = np.asarray(batch.next_obs).argmax(-1)
    terminated, truncated = np.asarray(batch.terminated), np.asarray(batch.truncated)
    goal = 5
    np.testing.assert_array_equal(terminated, successor == goal)
    np.testing.assert_allclose(batch.reward, -1.0)
    assert truncated.any() and terminated.any() and not (terminated & truncated).any()
    lengths = np.asarray(info["episode_length"])[np.asarray(info["episode_done"])]
    assert lengths.max() == 6 and lengths.min() >= 1
    done = terminated | truncated
    np.testing.assert_array_equal(state[1:][~done[:-1]], successor[:-1][~done[:-1]])  # continuing steps chain
    assert np.all(state[1:][done[:-1]] == 0)  # auto-reset to the start cell
    counts = np.zeros((6, 4, 6))
    np.add.at(counts, (state.ravel(), np.asarray(batch.action).ravel(), successor.ravel()), 1)
    acted = counts.sum(-1) > 0
    assert_frequencies_match(counts[acted], mdp.transitions[acted], "env P(s'|s,a)")
