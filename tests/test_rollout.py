"""The scan rollout driver and the episode-statistics wrapper on an exactly known environment."""

import jax
import jax.numpy as jnp
import numpy as np

from pgax import envs
from pgax.envs import episode_statistics
from pgax.rollout import scan_rollout, vector_reset
from tests.helpers import counter_env, seeded_key


def always(action):
    def act(params, obs, key):
        return jnp.full(obs.shape[0], action, jnp.int32), jnp.zeros(obs.shape[0])
    return act


def test_batch_shapes_and_truncation_records():
    env = episode_statistics(counter_env(time_limit=5))
    obs, state = vector_reset(env, seeded_key(0), 3)
    batch, state, obs, info = jax.jit(lambda s, o: scan_rollout(always(0), None, env, s, o, seeded_key(1), 12))(state, obs)
    assert batch.obs.shape == (12, 3, 1) and batch.reward.shape == (12, 3) and batch.action.shape == (12, 3)
    trunc = np.asarray(batch.truncated[:, 0])
    np.testing.assert_array_equal(np.flatnonzero(trunc), [4, 9])
    assert not np.any(batch.terminated)
    # next_obs is the true successor: t=5 at the cut, while the next obs acted on is a fresh reset.
    np.testing.assert_allclose(batch.next_obs[4, 0], [0.5])
    np.testing.assert_allclose(batch.obs[5, 0], [0.0])
    np.testing.assert_allclose(batch.next_obs[:3, 0, 0], batch.obs[1:4, 0, 0])
    # Episode statistics: 5 steps of reward 1 each.
    np.testing.assert_allclose(info["episode_return"][4], 5.0)
    assert bool(info["episode_done"][4, 0]) and np.isnan(info["last_return"][3, 0])
    np.testing.assert_allclose(info["last_return"][-1], 5.0)
    np.testing.assert_array_equal(info["last_length"][-1], 5)
    np.testing.assert_allclose(obs[:, 0], 0.2)  # 12 steps = two episodes of 5 + 2 steps


def test_termination_is_recorded_separately():
    env = counter_env(time_limit=5, terminate_on_action=1)
    obs, state = vector_reset(env, seeded_key(0), 2)
    batch, *_ = scan_rollout(always(1), None, env, state, obs, seeded_key(1), 3)
    assert np.all(batch.terminated) and not np.any(batch.truncated)


def test_gymnax_cartpole_rollout_final_observations():
    env = episode_statistics(envs.make("CartPole-v1"))
    obs, state = vector_reset(env, seeded_key(0), 4)

    def act(params, obs, key):
        return jax.random.randint(key, (obs.shape[0],), 0, 2), jnp.zeros(obs.shape[0])

    batch, _, _, info = jax.jit(lambda s, o: scan_rollout(act, None, env, s, o, seeded_key(1), 200))(state, obs)
    done = np.asarray(batch.done)
    assert done.any()
    not_done = ~done[:-1]
    np.testing.assert_array_equal(np.asarray(batch.next_obs[:-1])[not_done], np.asarray(batch.obs[1:])[not_done])
    # A random policy fails by termination (pole falls), with the final observation out of bounds.
    term_obs = np.asarray(batch.next_obs)[np.asarray(batch.terminated)]
    assert np.all((np.abs(term_obs[:, 0]) > 2.4) | (np.abs(term_obs[:, 2]) > 0.2094))
    # Episode returns of CartPole equal episode lengths.
    ended = np.asarray(info["episode_done"])
    np.testing.assert_allclose(np.asarray(info["episode_return"])[ended], np.asarray(info["episode_length"])[ended])


def test_unknown_env_error_names_the_fix():
    import pytest
    from pgax.errors import ConfigError
    with pytest.raises(ConfigError, match="pgax list"):
        envs.make("CartPoel-v1")


def test_every_registered_seed_env_makes_and_rolls_out():
    from pgax.algorithms import PPOConfig, make_ppo
    from pgax.envs import SEED_ENVS
    for env_id in SEED_ENVS:
        env = episode_statistics(envs.make(env_id))
        agent = make_ppo(PPOConfig(hidden_sizes=(8,)), env, 1)
        obs, state = vector_reset(env, seeded_key(0), 2)
        params = agent.init(seeded_key(1), obs[0]).params
        batch, *_ = scan_rollout(agent.act, params, env, state, obs, seeded_key(2), 4)
        assert batch.reward.shape == (4, 2) and np.all(np.isfinite(batch.reward)), env_id
        assert env_id in envs.list_envs()
