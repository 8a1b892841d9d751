"""The vine preset: branch returns on an environment with known returns, common random numbers, the
surrogates (15)/(16) against their formulas, learning on CartPole and the regulator, config errors."""

import types

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from pgax import envs
from pgax.algorithms import get_preset
from pgax.algorithms.vine import VineConfig, branch_q, make_vine, vine_surrogate
from pgax.distributions import Categorical
from pgax.envs.wrappers import episode_statistics
from pgax.rollout import scan_rollout, vector_reset
from pgax.errors import ConfigError
from pgax.spaces import Box, Discrete
from tests.helpers import counter_env, seeded_key
from tests.learning import LearningClaim, preset_regulator, preset_returns

GAMMA = 0.9
GAMMA_CONFIG = VineConfig().gamma
BOOT = 7.0  # the value critic's constant prediction in the branch tests


def branch_fn(env, horizon):
    """Jitted Q̂(logits, t0, first_action, keys [M]) -> [M] on a counter env, with a constant critic."""
    policy_apply = lambda p, obs: Categorical(jnp.broadcast_to(p, obs.shape[:-1] + (2,)))  # noqa: E731
    value_apply = lambda p, obs: jnp.full(obs.shape[:-1], BOOT)  # noqa: E731

    def q(logits, t0, first_action, keys):
        obs = jnp.full(1, t0 / 10.0)
        one = lambda k: branch_q(env, policy_apply, value_apply, logits, None, t0, obs, first_action, k,  # noqa: E731
                                 horizon, GAMMA)
        return jax.vmap(one)(keys)

    return jax.jit(q)


def test_branch_returns_bootstrap_at_the_horizon_and_truncation_but_not_termination():
    env = counter_env(time_limit=5, terminate_on_action=1)  # reward 1 per step; action 1 terminates
    always_0, always_1 = jnp.array([30.0, -30.0]), jnp.array([-30.0, 30.0])
    key = seeded_key(0)[None]
    long, short = branch_fn(env, 10), branch_fn(env, 3)
    g = GAMMA ** np.arange(10)
    np.testing.assert_allclose(long(always_0, 0, 1, key), 1.0, rtol=1e-6)  # terminated at once: no bootstrap
    np.testing.assert_allclose(short(always_0, 0, 0, key), g[:3].sum() + g[3] * BOOT, rtol=1e-6)
    # The episode's time limit (5 steps) cuts the branch first: bootstrap γ^5 V(final obs).
    np.testing.assert_allclose(long(always_0, 0, 0, key), g[:5].sum() + g[5] * BOOT, rtol=1e-6)
    np.testing.assert_allclose(long(always_0, 3, 0, key), g[:2].sum() + g[2] * BOOT, rtol=1e-6)
    # Terminating later (the policy takes action 1 after the first step): rewards up to it, nothing after.
    np.testing.assert_allclose(long(always_1, 0, 0, key), 1.0 + GAMMA, rtol=1e-6)


def test_branches_of_a_state_share_their_random_numbers():
    env = counter_env(time_limit=50, terminate_on_action=1)
    keys = jnp.stack([seeded_key(4), seeded_key(4)] + [jax.random.PRNGKey(k) for k in range(8)])
    q = np.asarray(branch_fn(env, 30)(jnp.zeros(2), 0, 0, keys))  # uniform policy after the first step
    assert q[0] == q[1]
    assert len(set(q[2:].tolist())) > 1  # the branch is random; only the shared key makes the two equal


def test_surrogates_are_the_papers_estimators():
    key_theta, key_new, key_q, key_a = jax.random.split(seeded_key(0), 4)
    theta = jax.random.normal(key_theta, (4, 3))  # logits of π(·|s_n) for 4 states, 3 actions
    new = theta + 0.3 * jax.random.normal(key_new, (4, 3))
    q = 10.0 + jax.random.normal(key_q, (4, 3))
    sampled = jax.random.randint(key_a, (4, 5), 0, 3)
    q5 = 10.0 + jax.random.normal(key_q, (4, 5))
    actions = jnp.tile(jnp.arange(3), (4, 1))

    def log_probs(logits, actions):
        return jnp.take_along_axis(jax.nn.log_softmax(logits), actions, axis=1)

    # (15), every action enumerated: L = mean_n Σ_k π_θ(a_k|s_n) Q̂(s_n, a_k).
    eq15 = lambda lg: jnp.mean(jnp.sum(jax.nn.softmax(lg) * q, axis=1))  # noqa: E731
    ours15 = lambda lg: vine_surrogate(log_probs(lg, actions), log_probs(theta, actions), q, False)  # noqa: E731

    # (16), K = 5 sampled actions, self-normalised: Σ_k ρ_k Q̂_k / Σ_k ρ_k.
    def eq16(lg):
        ratio = jnp.exp(log_probs(lg, sampled) - log_probs(theta, sampled))
        return jnp.mean(jnp.sum(ratio * q5, axis=1) / jnp.sum(ratio, axis=1))

    ours16 = lambda lg: vine_surrogate(log_probs(lg, sampled), log_probs(theta, sampled), q5, True)  # noqa: E731

    @jax.jit
    def compare():
        return {"gain15": (ours15(new) - ours15(theta), eq15(new) - eq15(theta)),
                "grad15": (jax.grad(ours15)(theta), jax.grad(eq15)(theta)),
                "value16": (ours16(new), eq16(new) - jnp.mean(q5)),
                "grad16": (jax.grad(ours16)(new), jax.grad(eq16)(new))}

    for name, (a, b) in compare().items():
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=name)


CARTPOLE = LearningClaim("vine CartPole-v1 60 iterations", preset_returns, {"train_return": (">=", 195.0)},
                         measure_kwargs=dict(make=make_vine, config=VineConfig(), eval_episodes=0,
                                             steps=60 * 8 * 32))  # 60 iterations of the 8 × 32 trunk


@pytest.mark.slow
def test_vine_learns_cartpole():
    """Defaults, 60 iterations = 15.4k trunk steps + ≤ 0.77M branch steps: the trunk's episode return,
    averaged over the last 10 iterations, for at least 4 of 5 seeds. Calibrated on seeds 0-4, 100-104,
    200-204, 300-304: 20 of 20 at 297-500."""
    CARTPOLE.check()


REGULATOR = LearningClaim("vine SimpleRegulator-v0", preset_regulator, {"distance": ("<", 0.5)},
                          measure_kwargs=dict(make=make_vine, iterations=25, config=VineConfig(
                              policy="linear", linear_init=(0.0, 1.0), gamma=1.0, num_envs=16, num_steps=10,
                              num_branch_states=32, branch_actions="sampled", num_branch_actions=4, branch_horizon=10,
                              max_kl=0.05, hidden_sizes=(16,))))


@pytest.mark.slow
def test_linear_policy_on_box_actions_moves_toward_the_regulator_optimum():
    """From θ0 = [0, 1] (distance 1.41), 25 iterations with sampled branch actions: θ ends near [−1, 0]."""
    REGULATOR.check()


def test_discount_weighting_scales_each_branch_state_by_its_gamma_power():
    """With `discount_weighting` and every trunk state at episode step τ, the surrogate is γ^τ times
    that of τ = 0 (no weight): its improvement scales by γ³ at τ = 3 while the natural step and the
    line search's choice stay the same (both invariant to a positive scale of the objective); with
    mixed τ the step changes."""
    env = episode_statistics(envs.make("CartPole-v1"))  # as the trainer wraps it: it fills Batch.episode_step
    config = VineConfig(num_envs=4, num_steps=8, num_branch_states=8, branch_horizon=3, critic_minibatches=2,
                        hidden_sizes=(8,), discount_weighting=True)
    agent = make_vine(config, env, 1)
    learn = jax.jit(agent.learn)
    obs, env_state = vector_reset(env, seeded_key(0), 4)
    state = agent.init(seeded_key(1), obs[0])
    batch, *_ = scan_rollout(agent.act, state.params, env, env_state, obs, seeded_key(2), 8, record_env_state=True)
    results = {}
    for name, episode_step in (("0", jnp.zeros_like(batch.episode_step)), ("3", jnp.full_like(batch.episode_step, 3)),
                               ("mixed", jnp.arange(32, dtype=jnp.int32).reshape(8, 4))):
        new_state, metrics = learn(state, batch.replace(episode_step=episode_step), seeded_key(3))
        results[name] = (np.asarray(jax.flatten_util.ravel_pytree(new_state.params["policy"])[0]),
                         float(metrics["surrogate_improvement"]))
    plain, weighted, mixed = results["0"], results["3"], results["mixed"]
    np.testing.assert_allclose(weighted[0], plain[0], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(weighted[1], GAMMA_CONFIG ** 3 * plain[1], rtol=1e-3)
    assert np.abs(mixed[0] - plain[0]).max() > 1e-3


def test_config_errors_are_one_line():
    host_env = types.SimpleNamespace(name="host", observation_space=Box.from_bounds((4,), -1.0, 1.0),
                                     action_space=Discrete(2), max_episode_steps=10, model=None)
    with pytest.raises(ConfigError, match="saved state|JAX-native") as err:
        make_vine(VineConfig(), host_env, 1)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="--branch-actions sampled"):
        make_vine(VineConfig(), envs.make("Pendulum-v1"), 1)
    for bad, flag in ((dict(num_branch_states=1000), "--num-branch-states"),
                      (dict(branch_actions="some"), "--branch-actions"),
                      (dict(branch_actions="sampled", num_branch_actions=1), "--num-branch-actions"),
                      (dict(critic_minibatches=5), "--critic-minibatches"), (dict(max_kl=0.0), "--max-kl"),
                      (dict(branch_horizon=0), "--branch-horizon")):
        with pytest.raises(ConfigError, match=flag) as err:
            VineConfig(**bad).validate()
        assert "\n" not in str(err.value)
    assert get_preset("vine").config_type is VineConfig
    assert make_vine(VineConfig(), envs.make("CartPole-v1"), 1).record_env_state
