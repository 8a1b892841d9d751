"""The ppo_kl preset: KL-penalised surrogate (12.24) with adaptive β and a regression-fitted critic."""

import numpy as np
import pytest

from pgax import envs
from pgax.algorithms import get_preset
from pgax.algorithms.ppo_kl import PPOKLConfig, make_ppo_kl
from pgax.errors import ConfigError
from tests.learning import LearningClaim, preset_regulator, return_scores, train_preset


def measure_cartpole(seeds, steps):
    env = envs.make("CartPole-v1")
    cfg = PPOKLConfig()
    cfg.validate()
    agent, result, metrics = train_preset(make_ppo_kl, cfg, env, steps // cfg.batch_size, seeds)
    scores = return_scores(agent, env, result, metrics, eval_episodes=20)
    scores["beta_range"] = np.ptp(metrics["beta"], axis=1)  # β really adapts: halved / doubled from the KL
    scores["value_loss_finite"] = np.all(np.isfinite(metrics["value_loss"]), axis=1)
    return scores


# ppo_kl's outcome at 100k steps is spread (deterministic evaluation 137-500 over 15 seeds, a third of
# them below 400), so the claim is on the median: at least 3 of 5 seeds reach 200.
CARTPOLE = LearningClaim("ppo_kl CartPole-v1 100k", measure_cartpole,
                         {"eval_return": (">=", 200.0), "beta_range": (">", 0.0), "value_loss_finite": (">", 0.5)},
                         at_least=3,
                         measure_kwargs=dict(steps=100_000))


@pytest.mark.slow
def test_ppo_kl_learns_cartpole():
    """Defaults, 100k steps: deterministic evaluation >= 200 and an adapting β for at least 3 of 5 seeds."""
    CARTPOLE.check()


REGULATOR = LearningClaim("ppo_kl SimpleRegulator-v0", preset_regulator, {"distance": ("<", 0.5), "gain": ("<", -0.5)},
                          measure_kwargs=dict(make=make_ppo_kl, iterations=25, config=PPOKLConfig(
                              policy="linear", linear_init=(0.0, 1.0), gamma=1.0, num_envs=16, num_steps=20, lr=0.01,
                              anneal_lr=False, minibatches=2, critic_minibatches=2, hidden_sizes=(16,))))


@pytest.mark.slow
def test_linear_policy_moves_toward_the_regulator_optimum():
    """From θ0 = [0, 1] (distance 1.41), 25 iterations: θ ends near [−1, 0]."""
    REGULATOR.check()


def test_config_errors_are_one_line():
    for bad, flag in ((dict(minibatches=3), "--minibatches"), (dict(critic_minibatches=5), "--critic-minibatches"),
                      (dict(kl_target=0.0), "--kl-target"), (dict(gae_lambda=1.5), "--gae-lambda"),
                      (dict(policy="table"), "--policy"), (dict(beta=-1.0), "--beta")):
        with pytest.raises(ConfigError, match=flag) as err:
            PPOKLConfig(**bad).validate()
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="--policy linear"):
        make_ppo_kl(PPOKLConfig(policy="linear"), envs.make("CartPole-v1"), 1)
    assert get_preset("ppo_kl").config_type is PPOKLConfig
