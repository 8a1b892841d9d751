"""The chunked, seed-vmapped trainer: equivalences and the learning test."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgax import envs
from pgax.algorithms import Agent, PPOConfig, make_ppo
from pgax.train import default_chunk_iterations, evaluate, train
from tests.helpers import counter_env


def small_ppo(env, iterations):
    cfg = PPOConfig(num_envs=2, num_steps=16, minibatches=2, epochs=2, hidden_sizes=(16,))
    return cfg, make_ppo(cfg, env, iterations)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_chunk_size_does_not_change_the_result():
    env = envs.make("CartPole-v1")
    cfg, agent = small_ppo(env, 7)
    kw = dict(num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=7, seeds=[3])
    runs = {k: train(agent, env, chunk_iterations=k, **kw) for k in (7, 3, 1)}  # 3: last chunk is masked
    for k in (3, 1):
        assert runs[k].iterations_done == 7
        for a, b in zip(leaves(runs[7].state.agent.params), leaves(runs[k].state.agent.params)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_vmapped_seed_equals_the_seed_run_alone():
    env = envs.make("CartPole-v1")
    cfg, agent = small_ppo(env, 3)
    kw = dict(num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=3)
    together = train(agent, env, seeds=[5, 6, 7], **kw)
    alone = train(agent, env, seeds=[6], **kw)
    for a, b in zip(leaves(together.state.agent.params), leaves(alone.state.agent.params)):
        np.testing.assert_allclose(a[1], b[0], rtol=1e-4, atol=1e-5)
    # Different seeds really differ.
    first = leaves(together.state.agent.params)[0]
    assert not np.allclose(first[0], first[1])


def test_on_chunk_receives_every_iteration_once():
    env = envs.make("CartPole-v1")
    cfg, agent = small_ppo(env, 5)
    seen = []
    train(agent, env, num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=5, seeds=[0, 1],
          chunk_iterations=2, on_chunk=lambda done, m: seen.append((done, m["policy_loss"].shape)))
    assert seen == [(2, (2, 2)), (4, (2, 2)), (5, (2, 1))]


def test_default_chunk_prefers_divisors():
    assert default_chunk_iterations(976) == 61
    assert 976 % default_chunk_iterations(976) == 0
    assert default_chunk_iterations(1) == 1
    assert default_chunk_iterations(997) == 50  # prime: no divisor near the target, the tail is masked


def test_evaluate_counts_only_the_first_episode():
    env = counter_env(time_limit=5, terminate_on_action=1)._replace(max_episode_steps=12)
    for action, expected in ((0, 5.0), (1, 1.0)):
        agent = Agent(None, None, lambda p, obs, a=action: jnp.full(obs.shape[0], a, jnp.int32), None)
        returns = evaluate(agent, env, {"w": jnp.zeros((2, 1))}, jax.random.PRNGKey(0), episodes=3)
        assert returns.shape == (2, 3)
        np.testing.assert_allclose(returns, expected)


@pytest.mark.slow
def test_ppo_solves_cartpole_for_three_of_three_seeds():
    """The issue's learning test: PPO with default hyperparameters reaches >= 475 within 500k steps."""
    env = envs.make("CartPole-v1")
    cfg = PPOConfig()
    iterations = 500_000 // cfg.batch_size
    agent = make_ppo(cfg, env, iterations)
    result = train(agent, env, num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=iterations,
                   seeds=[0, 1, 2])
    returns = evaluate(agent, env, result.state.agent.params, jax.random.PRNGKey(10_000), episodes=100)
    per_seed = returns.mean(axis=1)
    assert np.all(per_seed >= 475), per_seed


def test_interrupt_keeps_the_completed_chunks():
    env = envs.make("CartPole-v1")
    cfg, agent = small_ppo(env, 6)
    calls = []

    def on_chunk(done, metrics):
        calls.append(done)
        if done == 4:
            raise KeyboardInterrupt

    result = train(agent, env, num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=6, seeds=[0],
                   chunk_iterations=2, on_chunk=on_chunk)
    assert result.interrupted and result.iterations_done == 4 and calls == [2, 4]
    # The kept state is exactly the state after iteration 4.
    four = train(agent, env, num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=4, seeds=[0],
                 chunk_iterations=2)
    for a, b in zip(leaves(result.state.agent.params), leaves(four.state.agent.params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
