"""Each preset's own gradient estimate, from its own Batch, against exact.policy_gradient.

Part 1, `discount_weighting`.

The problem: a layered episodic MDP in which every episode lasts exactly H steps (no early
termination), γ = 0.7, a random tabular softmax policy. M environments are rolled out by the
trainer's driver (`pgax.rollout.scan_rollout` on `make_tabular_env` with `episode_statistics`) for
one window of 2H steps from a reset, so each window holds exactly two whole episodes. Each preset's
`Agent.prepare` turns the window into the batch its update rule sees, and the estimate is the
gradient, at θ, of the surrogate that every rule ascends (`updates.surrogate_problem`, a mean weighted
by the normalised sample weights; PPO's and the KL-penalty's objectives have the same gradient at
ratio 1), times the window's total sample weight:

    ĝ = Σ_t w_t Â_t ∇log π_θ(a_t|s_t),   with discount_weighting Â_t ← γ^τ_t Â_t (nac: w_t ← γ^τ_t w_t).

With discount_weighting every preset has E[ĝ] = 2 ∇J (critic presets with GAE λ = 1, whose
Â_t = G_t − V(s_t) is unbiased for any critic V, here the random initial one). The sample mean over
M windows must lie within Z_STAR standard errors of 2∇J in every component; without the weighting it
must miss by more than 3·Z_STAR (a measured bias, recorded in docs/theory.md). Whole-return
REINFORCE is unbiased without the weighting (its G_0 already discounts from the episode start), and
the config refuses the combination.

Part 2, REINFORCE across windows. With windows of 2 steps over the same 3-step episodes, every
episode straddles a window boundary. Three consecutive windows (6 steps, two episodes per
environment) are learned from with θ reset after each step, and the three windows' estimates are
summed: REINFORCE holds the open episode's steps until it ends, so the sum uses each sample once with
its whole return and has expectation 2∇J exactly. The negative control empties the store before each
window (dropping the samples whose episode has not ended in it) and must be biased.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgax import exact
from pgax.algorithms import PRESETS
from pgax.algorithms.core import make_policy
from pgax.envs.tabular import make_tabular_env
from pgax.envs.wrappers import episode_statistics
from pgax.errors import ConfigError
from pgax.rollout import scan_rollout, vector_reset
from pgax.updates import surrogate_problem
from tests.helpers import rng, seeded_key

pytestmark = pytest.mark.xdist_group("test_preset_estimates")

GAMMA = 0.7
HORIZON, WIDTH, NUM_ACTIONS = 3, 2, 2
NUM_WINDOWS = 1 << 15
Z_STAR = 4.5  # Bonferroni over 12 components × 11 cases at a family-wise false alarm of about 1e-3

# name -> (preset, extra config fields): critic presets with λ = 1; no advantage normalisation.
CASES = {
    "reinforce": ("reinforce", {}),
    "reinforce_whole_return": ("reinforce", {"returns": "whole_return"}),
    "reinforce_baseline": ("reinforce_baseline", {"critic_epochs": 1, "critic_minibatches": 1}),
    "a2c": ("a2c", {"gae_lambda": 1.0}),
    "ppo": ("ppo", {"gae_lambda": 1.0}),
    "ppo_kl": ("ppo_kl", {"gae_lambda": 1.0}),
    "npg": ("npg", {"gae_lambda": 1.0}),
    "trpo": ("trpo", {"gae_lambda": 1.0}),
    "nac": ("nac", {"gae_lambda": 1.0}),
}


def fixed_horizon_mdp(generator: np.random.Generator) -> exact.TabularMDP:
    """HORIZON layers of WIDTH states and a terminal state: (s, a) in layer l moves to a state of layer
    l + 1 (Dirichlet), the last layer to the terminal state, so every episode lasts exactly HORIZON
    steps; R ~ N(0, 1), μ0 over layer 0."""
    num_states = HORIZON * WIDTH + 1
    P = np.zeros((num_states, NUM_ACTIONS, num_states))
    P[-1, :, -1] = 1.0
    for layer in range(HORIZON):
        for s in range(layer * WIDTH, (layer + 1) * WIDTH):
            for a in range(NUM_ACTIONS):
                if layer == HORIZON - 1:
                    P[s, a, -1] = 1.0
                else:
                    P[s, a, (layer + 1) * WIDTH:(layer + 2) * WIDTH] = generator.dirichlet(np.ones(WIDTH))
    rewards = generator.normal(size=(num_states, NUM_ACTIONS))
    rewards[-1] = 0.0
    initial = np.zeros(num_states)
    initial[:WIDTH] = generator.dirichlet(np.ones(WIDTH))
    terminal = np.zeros(num_states, bool)
    terminal[-1] = True
    return exact.TabularMDP(P, rewards, initial, np.float64(GAMMA), terminal)


@pytest.fixture(scope="module")
def problem():
    """(env, θ, the rollout batch [2H, M], exact ∇J [S, A])."""
    generator = rng(7)
    mdp = fixed_horizon_mdp(generator)
    theta = jnp.asarray(generator.normal(size=(mdp.num_states, NUM_ACTIONS)), jnp.float32)
    env = episode_statistics(make_tabular_env(mdp, max_episode_steps=HORIZON + 1))  # never reached
    reset_key, rollout_key = jax.random.split(seeded_key(11))
    obs, env_state = vector_reset(env, reset_key, NUM_WINDOWS)
    act = PRESETS["reinforce"].make_agent(PRESETS["reinforce"].config_type(policy="tabular"), env, 1).act
    batch, _, _, _ = jax.jit(scan_rollout, static_argnums=(0, 2, 6))(act, {"policy": theta}, env, env_state, obs,
                                                                      rollout_key, 2 * HORIZON)
    with jax.enable_x64(True):
        gradient = np.asarray(exact.policy_gradient(mdp, jnp.asarray(theta, jnp.float64)))
    return env, theta, batch, gradient


def per_window_estimates(problem, name: str, discount_weighting: bool) -> np.ndarray:
    """[M, S, A] ĝ of each window for preset `name` of CASES."""
    env, theta, batch, _ = problem
    preset, extra = CASES[name]
    spec = PRESETS[preset]
    config = spec.config_type(policy="tabular", gamma=GAMMA, normalize_advantages=False, num_envs=NUM_WINDOWS,
                              num_steps=2 * HORIZON, discount_weighting=discount_weighting, **extra)
    agent = spec.make_agent(config, env, 1)
    policy_apply = make_policy(config, env).apply
    state = agent.init(jax.random.PRNGKey(0), batch.obs[0, 0])
    state = state.replace(params={**state.params, "policy": theta})

    @jax.jit
    def estimates(state, batch):
        prepared = agent.prepare(state, batch)

        def one_window(window):
            problem = surrogate_problem(policy_apply, theta, window)
            total_weight = window.reward.shape[0] if window.sample_weight is None else jnp.sum(window.sample_weight)
            return jax.grad(problem.objective)(problem.theta) * total_weight

        return jax.vmap(one_window, in_axes=1)(prepared.replace(env_state=None))

    return np.asarray(estimates(state, batch)).reshape((NUM_WINDOWS,) + theta.shape)


def z_scores(samples: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """|mean − expected| / standard error per component; a component without variance scores 0 if it
    matches to 1e-6 and infinity otherwise."""
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    flat = se < 1e-12
    off = np.abs(mean - expected)
    return np.where(flat, np.where(off < 1e-6, 0.0, np.inf), off / np.where(flat, 1.0, se))


@pytest.mark.parametrize("name", list(CASES))
def test_discount_weighted_estimate_is_unbiased(problem, name):
    if name == "reinforce_whole_return":
        samples = per_window_estimates(problem, name, discount_weighting=False)
    else:
        samples = per_window_estimates(problem, name, discount_weighting=True)
    z = z_scores(samples, 2.0 * problem[3])
    assert z.max() < Z_STAR, f"{name}: max z {z.max():.2f}"


@pytest.mark.parametrize("name", [n for n in CASES if n != "reinforce_whole_return"])
def test_estimate_without_discount_weighting_is_biased(problem, name):
    samples = per_window_estimates(problem, name, discount_weighting=False)
    truth = 2.0 * problem[3]
    z = z_scores(samples, truth)
    relative_bias = np.linalg.norm(samples.mean(axis=0) - truth) / np.linalg.norm(truth)
    assert z.max() > 3 * Z_STAR, f"{name}: max z {z.max():.2f}, relative bias {relative_bias:.3f}"
    print(f"{name}: relative bias ‖E ĝ − 2∇J‖ / ‖2∇J‖ = {relative_bias:.3f}, max z {z.max():.1f}")


def test_whole_return_refuses_discount_weighting():
    config = PRESETS["reinforce"].config_type(returns="whole_return", discount_weighting=True)
    with pytest.raises(ConfigError, match="whole_return"):
        config.validate()


# ------------------------------------------------------------------ part 2: windows shorter than episodes

WINDOW = 2


def straddling_estimates(problem, name: str, forget_open_episodes: bool) -> np.ndarray:
    """[M, S, A] Σ over 3 consecutive windows of WINDOW steps of each window's ĝ (REINFORCE presets)."""
    env, theta, _, _ = problem
    preset, extra = CASES[name]
    spec = PRESETS[preset]
    config = spec.config_type(policy="tabular", gamma=GAMMA, normalize_advantages=False, num_envs=NUM_WINDOWS,
                              num_steps=WINDOW, discount_weighting=extra.get("returns") != "whole_return", **extra)
    agent = spec.make_agent(config, env, 1)
    policy_apply = make_policy(config, env).apply
    reset_key, rollout_key = jax.random.split(seeded_key(12))
    obs, env_state = vector_reset(env, reset_key, NUM_WINDOWS)
    state = agent.init(jax.random.PRNGKey(0), obs[0])
    state = state.replace(params={**state.params, "policy": theta})
    empty_store = state.update_state[1]

    @jax.jit
    def window(state, env_state, obs, key):
        batch, env_state, obs, _ = scan_rollout(agent.act, state.params, env, env_state, obs, key, WINDOW)
        if forget_open_episodes:
            state = state.replace(update_state=(state.update_state[0], empty_store))
        prepared = agent.prepare(state, batch)

        def one_env(env_batch):
            problem = surrogate_problem(policy_apply, theta, env_batch)
            return jax.grad(problem.objective)(problem.theta) * jnp.sum(env_batch.sample_weight)

        estimate = jax.vmap(one_env, in_axes=1)(prepared.replace(env_state=None))
        state, _ = agent.learn(state, batch, key)
        return state.replace(params={**state.params, "policy": theta}), env_state, obs, estimate

    total = 0.0
    for key in jax.random.split(rollout_key, 3):
        state, env_state, obs, estimate = window(state, env_state, obs, key)
        total = total + np.asarray(estimate)
    return total.reshape((NUM_WINDOWS,) + theta.shape)


@pytest.mark.parametrize("name", ["reinforce", "reinforce_whole_return", "reinforce_baseline"])
def test_reinforce_uses_the_episodes_that_straddle_windows(problem, name):
    z = z_scores(straddling_estimates(problem, name, forget_open_episodes=False), 2.0 * problem[3])
    assert z.max() < Z_STAR, f"{name}: max z {z.max():.2f}"


def test_dropping_the_unfinished_samples_is_biased(problem):
    samples = straddling_estimates(problem, "reinforce", forget_open_episodes=True)
    z = z_scores(samples, 2.0 * problem[3])
    relative_bias = np.linalg.norm(samples.mean(axis=0) - 2.0 * problem[3]) / np.linalg.norm(2.0 * problem[3])
    assert z.max() > 3 * Z_STAR, f"max z {z.max():.2f}, relative bias {relative_bias:.3f}"
    print(f"reinforce, unfinished samples dropped: relative bias {relative_bias:.3f}, max z {z.max():.1f}")
