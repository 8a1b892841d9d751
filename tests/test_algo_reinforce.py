"""REINFORCE and REINFORCE with baseline: the finished-episode masking and Monte Carlo weights
(exact values), the learn step against a hand-written gradient, the open episodes held between
windows, config errors, and learning on CartPole-v1 and the simple regulator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgax import estimators
from pgax.algorithms import ReinforceBaselineConfig, ReinforceConfig, make_reinforce, make_reinforce_baseline
from pgax.algorithms.core import make_policy
from pgax.algorithms.reinforce import add_monte_carlo_returns
from pgax.batch import Batch
from pgax.cli import main
from pgax.errors import ConfigError
from tests.helpers import counter_env, seeded_key
from tests.learning import LearningClaim, preset_regulator, preset_returns

GAMMA = 0.5


def hand_batch():
    """T = 6, N = 2. Env 0: rewards 1..6, terminated after step 1, truncated after step 4, then an
    unfinished episode. Env 1: rewards 1, no episode end."""
    reward = jnp.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0], [5.0, 1.0], [6.0, 1.0]])
    terminated = jnp.zeros((6, 2), bool).at[1, 0].set(True)
    truncated = jnp.zeros((6, 2), bool).at[4, 0].set(True)
    obs = jnp.arange(12, dtype=jnp.float32).reshape(6, 2, 1) / 10.0
    action = jnp.array([[0, 1], [1, 1], [0, 0], [1, 0], [1, 1], [0, 1]], jnp.int32)
    return Batch(obs=obs, action=action, reward=reward, terminated=terminated, truncated=truncated,
                 next_obs=obs + 0.05, log_prob=jnp.zeros((6, 2)))


def test_finished_episode_masks_exact():
    discount = jnp.array([1.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    truncated = jnp.array([0, 0, 0, 0, 1, 0], bool)
    np.testing.assert_array_equal(estimators.episode_end_seen(discount, truncated), [1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(estimators.episode_start_seen(discount, truncated), [0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(estimators.episode_start_seen(discount, truncated, True), [1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(estimators.episode_end_seen(jnp.ones(3)), [0, 0, 0])
    np.testing.assert_array_equal(estimators.episode_start_seen(jnp.ones(3)), [0, 0, 0])


@jax.jit
def all_variants(batch):
    return (add_monte_carlo_returns(batch, GAMMA, "reward_to_go"), add_monte_carlo_returns(batch, GAMMA, "whole_return"),
            add_monte_carlo_returns(batch, GAMMA, "whole_return", first_is_start=jnp.array([True, True])))


def test_monte_carlo_weights_exact():
    to_go, whole, whole_from_reset = all_variants(hand_batch())
    # Env 0: G_0 = 1 + ½·2, G_1 = 2 (terminated); G_2 = 3 + ½·4 + ¼·5, G_3 = 4 + ½·5, G_4 = 5 (truncated: no
    # bootstrap); G_5 = 6 is cut by the window. Env 1: G_t = Σ_{k=t}^{5} ½^{k−t}, never finished.
    np.testing.assert_allclose(to_go.target[:, 0], [2.0, 2.0, 6.25, 6.5, 5.0, 6.0])
    np.testing.assert_allclose(to_go.target[:, 1], [1.96875, 1.9375, 1.875, 1.75, 1.5, 1.0])
    np.testing.assert_array_equal(to_go.sample_weight[:, 0], [1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(to_go.sample_weight[:, 1], [0, 0, 0, 0, 0, 0])
    # Whole return: every step of an episode carries its G_{t0}.
    np.testing.assert_allclose(whole.target[:, 0], [2.0, 2.0, 6.25, 6.25, 6.25, 6.0])
    # The first episode began before the window (its G_0 is unknown) and the last has not ended.
    np.testing.assert_array_equal(whole.sample_weight[:, 0], [0, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(whole.sample_weight[:, 1], [0, 0, 0, 0, 0, 0])
    # When step 0 is known to start an episode (just reset), the first episode counts.
    np.testing.assert_array_equal(whole_from_reset.sample_weight[:, 0], [1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(whole_from_reset.sample_weight[:, 1], [0, 0, 0, 0, 0, 0])


ENV = counter_env(time_limit=10)  # episodes of at most 10 steps: the store holds 9 per environment
CFG = ReinforceConfig(num_envs=2, num_steps=6, gamma=GAMMA, returns="whole_return", normalize_advantages=False,
                      hidden_sizes=(8,), anneal_lr=False)
AGENT = make_reinforce(CFG, ENV, 1)
LEARN = jax.jit(AGENT.learn)  # one compiled learn step shared by the tests below (same shapes)


def test_learn_is_the_masked_monte_carlo_gradient():
    """One learn step's gradient is Σ_i w_i G_i ∇log π(a_i|s_i) / Σ_i w_i over the samples whose episode
    ends in the window; the open episodes' steps are held, and what happens in them does not
    influence this update."""
    batch = hand_batch()
    state = AGENT.init(seeded_key(0), batch.obs[0, 0])
    new_state, metrics = LEARN(state, batch, seeded_key(1))

    # Fresh agent: step 0 starts an episode (the envs were just reset), so env 0's first episode counts.
    w = jnp.array([[1, 0], [1, 0], [1, 0], [1, 0], [1, 0], [0, 0]], jnp.float32)
    g = jnp.array([[2.0, 0], [2.0, 0], [6.25, 0], [6.25, 0], [6.25, 0], [0, 0]])
    apply = make_policy(CFG, ENV).apply

    def objective(p):
        return jnp.sum(w * g * apply(p, batch.obs).log_prob(batch.action)) / jnp.sum(w)

    grad = jax.jit(jax.grad(objective))(state.params["policy"])
    np.testing.assert_allclose(metrics["grad_norm"], tree_norm(grad), rtol=1e-5)
    np.testing.assert_allclose(metrics["used_fraction"], 5 / 12)
    np.testing.assert_allclose(metrics["return_mean"], (2 + 2 + 3 * 6.25) / 5, rtol=1e-6)
    assert metrics["open_episode_overflow"] == 0
    store = new_state.update_state[1]  # env 0's step 5 and env 1's six steps, right-aligned in 9 slots
    np.testing.assert_array_equal(store.sample_weight.sum(axis=0), [1, 6])
    np.testing.assert_array_equal(store.obs[-1, 0], batch.obs[5, 0])
    np.testing.assert_array_equal(store.obs[-6:, 1], batch.obs[:, 1])

    # Changing what happens in unfinished episodes changes nothing in this update.
    other = batch.replace(reward=batch.reward.at[5, 0].set(100.0).at[:, 1].set(-7.0),
                          action=batch.action.at[5, 0].set(1).at[:, 1].set(0))
    other_state, _ = LEARN(state, other, seeded_key(1))
    for a, b in zip(jax.tree_util.tree_leaves(new_state.params), jax.tree_util.tree_leaves(other_state.params)):
        np.testing.assert_array_equal(a, b)

    # A window in which no episode ends leaves the parameters as they were.
    no_end = batch.replace(truncated=jnp.zeros_like(batch.truncated), terminated=jnp.zeros_like(batch.terminated))
    same_state, metrics = LEARN(state, no_end, seeded_key(1))
    assert metrics["used_fraction"] == 0
    for a, b in zip(jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(same_state.params)):
        np.testing.assert_array_equal(a, b)


def test_held_steps_complete_with_their_whole_return_in_the_next_window():
    """Second window: env 0's held step 5 (reward 6) continues with rewards 1, 2 and terminates, so its
    episode's G_0 = 6 + ½·1 + ¼·2 = 7 weights all three steps; env 1's six held steps (reward 1) end
    one step in, G_0 = Σ_{k<7} ½^k."""
    first = hand_batch()
    state = AGENT.init(seeded_key(0), first.obs[0, 0])
    state, _ = LEARN(state, first, seeded_key(1))
    second = first.replace(obs=first.obs + 2.0, terminated=first.terminated.at[0, 1].set(True))
    new_state, metrics = LEARN(state, second, seeded_key(2))

    obs = jnp.concatenate([first.obs[5:, 0], second.obs[:5, 0], first.obs[:, 1], second.obs[:1, 1]])
    action = jnp.concatenate([first.action[5:, 0], second.action[:5, 0], first.action[:, 1], second.action[:1, 1]])
    g = jnp.array([7.0] * 3 + [6.25] * 3 + [sum(0.5 ** k for k in range(7))] * 7)
    apply = make_policy(CFG, ENV).apply

    def objective(p):
        return jnp.mean(g * apply(p, obs).log_prob(action))

    grad = jax.jit(jax.grad(objective))(state.params["policy"])
    np.testing.assert_allclose(metrics["grad_norm"], tree_norm(grad), rtol=1e-5)
    np.testing.assert_allclose(metrics["used_fraction"], 13 / 12)
    np.testing.assert_allclose(metrics["return_mean"], float(jnp.mean(g)), rtol=1e-6)
    np.testing.assert_array_equal(new_state.update_state[1].sample_weight.sum(axis=0), [1, 5])


def tree_norm(tree):
    return float(jnp.sqrt(sum(jnp.sum(x ** 2) for x in jax.tree_util.tree_leaves(tree))))


def test_every_sample_is_used_once_in_the_window_its_episode_ends_in():
    """Consecutive windows of 6 steps over episodes of 5 steps (global steps 5e..5e+4 form episode e,
    truncated at its end): each window uses exactly the 5 samples of every episode ending in it,
    including the part held from earlier windows."""
    state = AGENT.init(seeded_key(0), jnp.zeros(1))
    seen, expected = [], []
    for w in range(11):
        steps = np.arange(6 * w, 6 * w + 6)
        truncated = jnp.asarray(np.tile((steps % 5 == 4)[:, None], (1, 2)))
        batch = hand_batch().replace(terminated=jnp.zeros((6, 2), bool), truncated=truncated)
        state, metrics = LEARN(state, batch, jax.random.PRNGKey(w))
        seen.append(float(metrics["used_fraction"]))
        expected.append(5 * int(np.sum(steps % 5 == 4)) / 6)
    assert expected == [5 / 6] * 4 + [10 / 6] + [5 / 6] * 4 + [10 / 6, 5 / 6]
    np.testing.assert_allclose(seen, expected)


def test_an_environment_without_a_time_limit_is_refused():
    with pytest.raises(ConfigError, match="needs a time limit"):
        make_reinforce(CFG, ENV._replace(max_episode_steps=None), 1)


@pytest.mark.parametrize("argv, message", [
    (["train", "reinforce", "--returns", "whole"], "--returns 'whole' is not known"),
    (["train", "reinforce", "--gamma", "0"], "--gamma must lie in (0, 1] for Monte Carlo returns"),
    (["train", "reinforce", "--lr", "0"], "--lr must be positive"),
    (["train", "reinforce", "--max-grad-norm", "-1"], "--max-grad-norm must be non-negative"),
    (["train", "reinforce", "--policy", "linear"], "--policy linear needs a scalar Box action"),
    (["train", "reinforce", "--policy", "linear", "--env", "SimpleRegulator-v0", "--linear-init", "1", "2", "3"],
     "--linear-init needs 2 numbers"),
    (["train", "reinforce_baseline", "--critic-minibatches", "3"], "--critic-minibatches 3 does not divide the batch"),
    (["train", "reinforce_baseline", "--critic-lr", "-1"], "--critic-lr must be positive"),
    (["train", "reinforce_baseline", "--critic-epochs", "0"], "--critic-epochs must be a positive integer"),
])
def test_bad_config_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code = main(argv + ["--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())


CARTPOLE = {
    "reinforce": LearningClaim("reinforce CartPole-v1 100k", preset_returns, {"eval_return": (">=", 300.0)},
                               measure_kwargs=dict(make=make_reinforce, config=ReinforceConfig(), steps=100_000)),
    "reinforce_baseline": LearningClaim("reinforce_baseline CartPole-v1 100k", preset_returns,
                                        {"eval_return": (">=", 350.0)},
                                        measure_kwargs=dict(make=make_reinforce_baseline,
                                                            config=ReinforceBaselineConfig(), steps=100_000)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CARTPOLE))
def test_learns_cartpole(name):
    """Defaults: deterministic evaluation over 20 episodes per seed, for at least 4 of 5 seeds."""
    CARTPOLE[name].check()


REGULATOR_CONFIGS = {
    # Whole returns: windows of one episode (depth 10).
    "reinforce": (make_reinforce, ReinforceConfig(num_envs=16, num_steps=10, lr=0.05, gamma=1.0, policy="linear",
                                                  returns="whole_return")),
    "reinforce_baseline": (make_reinforce_baseline,
                           ReinforceBaselineConfig(num_envs=16, num_steps=10, lr=0.05, gamma=1.0, policy="linear",
                                                   critic_minibatches=1)),
}


REGULATOR = {name: LearningClaim(f"{name} SimpleRegulator-v0", preset_regulator,
                                 {"distance": ("<", 0.7), "gain": ("<", -0.5)},
                                 measure_kwargs=dict(make=make, config=config, iterations=200))
             for name, (make, config) in REGULATOR_CONFIGS.items()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REGULATOR))
def test_moves_the_regulator_toward_the_optimum(name):
    """θ0 = [0, 1] (the linear Gaussian default), γ = 1, 200 iterations: θ ends much closer to [−1, 0]."""
    REGULATOR[name].check()
