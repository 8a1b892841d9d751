"""The chunked, seed-vmapped trainer: equivalences and the learning test."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgax import envs
from pgax.algorithms import Agent, PPOConfig, make_ppo
from pgax.train import default_chunk_iterations, evaluate, train
from tests.helpers import counter_env, seed
from tests.learning import LearningClaim, preset_returns


def small_ppo(env, iterations):
    """A tiny PPO without learning-rate annealing, so its programs do not depend on `iterations`: the
    tests below share programs of (seeds, chunk length) (1, 2), (2, 2) and (1, 3) through the cache."""
    cfg = PPOConfig(num_envs=2, num_steps=16, minibatches=2, epochs=2, hidden_sizes=(16,), anneal_lr=False)
    return cfg, make_ppo(cfg, env, iterations)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_chunk_size_does_not_change_the_result():
    env = envs.make("CartPole-v1")
    cfg, agent = small_ppo(env, 7)
    kw = dict(num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=7, seeds=[seed(3)])
    runs = {k: train(agent, env, chunk_iterations=k, **kw) for k in (3, 2)}  # 3 and 4 chunks, the last masked
    assert runs[3].iterations_done == runs[2].iterations_done == 7
    for a, b in zip(leaves(runs[3].state.agent.params), leaves(runs[2].state.agent.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_vmapped_seed_equals_the_seed_run_alone():
    env = envs.make("CartPole-v1")
    cfg, agent = small_ppo(env, 3)
    kw = dict(num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=3, chunk_iterations=2)
    together = train(agent, env, seeds=[seed(5), seed(6)], **kw)
    alone = train(agent, env, seeds=[seed(6)], **kw)
    for a, b in zip(leaves(together.state.agent.params), leaves(alone.state.agent.params)):
        np.testing.assert_allclose(a[1], b[0], rtol=1e-4, atol=1e-5)
    # Different seeds really differ.
    first = leaves(together.state.agent.params)[0]
    assert not np.allclose(first[0], first[1])


def test_on_chunk_receives_every_iteration_once():
    env = envs.make("CartPole-v1")
    cfg, agent = small_ppo(env, 5)
    seen = []
    train(agent, env, num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=5, seeds=[seed(0), seed(1)],
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
        returns = evaluate(agent, env, {"w": jnp.zeros((2, 1))}, [seed(0), seed(1)], episodes=3)
        assert returns.shape == (2, 3)
        np.testing.assert_allclose(returns, expected)


CARTPOLE = LearningClaim("ppo CartPole-v1 100k", preset_returns, {"eval_return": (">=", 300.0)},
                         measure_kwargs=dict(make=make_ppo, config=PPOConfig(), steps=100_000))


@pytest.mark.slow
def test_ppo_learns_cartpole():
    """PPO with default hyperparameters, 100k steps: deterministic evaluation (20 episodes) for at
    least 4 of 5 seeds. Calibrated on seeds 0-4, 100-104, 200-204, 300-304: 20 of 20 at 359-494."""
    CARTPOLE.check()


def test_interrupt_keeps_the_completed_chunks():
    env = envs.make("CartPole-v1")
    cfg, agent = small_ppo(env, 6)
    calls = []

    def on_chunk(done, metrics):
        calls.append(done)
        if done == 4:
            raise KeyboardInterrupt

    result = train(agent, env, num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=6, seeds=[seed(0)],
                   chunk_iterations=2, on_chunk=on_chunk)
    assert result.interrupted and result.iterations_done == 4 and calls == [2, 4]
    # The kept state is exactly the state after iteration 4.
    four = train(agent, env, num_envs=cfg.num_envs, num_steps=cfg.num_steps, num_iterations=4, seeds=[seed(0)],
                 chunk_iterations=2)
    for a, b in zip(leaves(result.state.agent.params), leaves(four.state.agent.params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# train_loop over a stand-in driver (pure Python: the loop's bookkeeping, nothing compiled)
# ---------------------------------------------------------------------------------------------


def counting_driver(bad_at=None, raise_at=None, seeds=(0, 1)):
    """State = iterations done; metric "it" = the iteration number; HEALTH set at `bad_at` for seed 1."""
    from pgax.train import HEALTH, NONFINITE_PARAMS, Driver

    calls = []

    def run(state, start, count, stop):
        calls.append((start, count))
        if raise_at is not None and start < raise_at <= start + count:
            raise RuntimeError("env crashed")
        its = np.arange(start + 1, start + count + 1)
        health = np.zeros((len(seeds), count), np.int32)
        if bad_at is not None and start < bad_at <= start + count:
            health[1, bad_at - start - 1] = NONFINITE_PARAMS
        return state + count, {"it": np.stack([its] * len(seeds)).astype(float), HEALTH: health}, count

    driver = Driver(lambda: 0, lambda s: None, run, lambda s, d: s, None, None, lambda: None, tuple(seeds), True)
    return driver, calls


def test_train_loop_delivers_every_iteration_once_and_ends_chunks_on_the_aligned_multiples():
    from pgax.train import train_loop

    driver, calls = counting_driver()
    seen = []
    result = train_loop(driver, 0, start=0, num_iterations=20, chunk_iterations=8, align=[5],
                        on_chunk=lambda done, m, s: seen.append((done, m["it"][0].tolist(), s)))
    assert result.iterations_done == 20 and result.state == 20 and result.nonfinite is None
    assert [c[0] for c in seen] == [5, 10, 15, 20]  # 8-iteration chunks would cross 5, 10, 15
    assert sum((c[1] for c in seen), []) == list(range(1, 21))
    assert all(s == done for done, _, s in seen)  # each chunk's state is handed over with it
    driver, calls = counting_driver()
    train_loop(driver, 0, start=12, num_iterations=20, chunk_iterations=8, chunk_seconds=1e9)
    assert calls[0] == (12, 1)  # with a wall-time target the first chunk is one iteration, then they grow


def test_train_loop_stops_at_a_non_finite_chunk_and_keeps_the_state_before_it():
    from pgax.train import train_loop

    driver, _ = counting_driver(bad_at=7)
    seen = []
    result = train_loop(driver, 0, start=0, num_iterations=20, chunk_iterations=3,
                        on_chunk=lambda done, m, s: seen.append((done, s)))
    assert result.nonfinite.iteration == 7 and result.nonfinite.seeds == (1,)
    assert result.nonfinite.what == ("parameters",)
    assert result.iterations_done == 6 and result.state == 6
    assert seen[-1] == (9, None)  # the bad chunk's rows are delivered, its state is not


def test_train_loop_keeps_the_completed_chunks_on_an_error_and_on_a_stop_request():
    from pgax.train import train_loop

    driver, _ = counting_driver(raise_at=8)
    result = train_loop(driver, 0, start=0, num_iterations=20, chunk_iterations=3)
    assert isinstance(result.error, RuntimeError) and result.iterations_done == 6 and result.state == 6
    driver, _ = counting_driver()
    requests = iter([False, False, True])
    result = train_loop(driver, 0, start=0, num_iterations=20, chunk_iterations=3, stop=lambda: next(requests, True))
    assert result.stopped and result.iterations_done == 6 and not result.interrupted
