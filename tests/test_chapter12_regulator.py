"""Every chapter-12 rule moves the simple regulator's θ from [0, 1] toward the optimum [−1, 0]."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pgax.envs.regulator import REGULATOR_OPTIMAL_THETA, regulator_expected_return, simple_regulator
from pgax.estimators import discounted_returns
from pgax.policies import linear_gaussian_policy
from pgax.rollout import scan_rollout, vector_reset
from pgax.updates import gradient_ascent, kl_penalty, natural_gradient, ppo_clip, restricted_gradient, trust_region

POLICY = linear_gaussian_policy(obs_dim=1)
ENV = simple_regulator(depth=10)
OPTIMUM = jnp.array(REGULATOR_OPTIMAL_THETA)


def act(theta, obs, key):
    dist = POLICY.apply(theta, obs)
    a = dist.sample(key)
    return a, dist.log_prob(a)


def rollout_batch(theta, key, num_envs=64):
    """num_envs episodes of depth 10 (γ = 1); advantage = reward-to-go (the book's Q estimate)."""
    k_reset, k_roll = jax.random.split(key)
    obs, state = vector_reset(ENV, k_reset, num_envs)
    batch, *_ = scan_rollout(act, theta, ENV, state, obs, k_roll, ENV.max_episode_steps)
    to_go = jax.vmap(discounted_returns, in_axes=(1, 1), out_axes=1)(batch.reward, jnp.ones_like(batch.reward))
    return batch.replace(advantage=to_go)


def zero_critic_ppo(**kw):
    rule = ppo_clip(POLICY.apply, lambda p, o: jnp.zeros(o.shape[:-1]),
                    optax.adam(0.02), vf_coef=0.0, ent_coef=0.0, **kw)

    def update(theta, state, batch, key):
        batch = batch.replace(target=jnp.zeros_like(batch.reward), value=jnp.zeros_like(batch.reward))
        params, state, metrics = rule.update({"policy": theta, "value": {}}, state, batch, key)
        return params["policy"], state, metrics

    return rule._replace(init=lambda theta: rule.init({"policy": theta, "value": {}}), update=update)


RULES = {
    "gradient_ascent_scaled": lambda: gradient_ascent(POLICY.apply, 0.05, max_grad_norm=1.0),
    "gradient_ascent_clipped": lambda: gradient_ascent(POLICY.apply, 0.05, clip_value=1.0),
    "restricted": lambda: restricted_gradient(POLICY.apply, 0.005),
    "natural_dense": lambda: natural_gradient(POLICY.apply, 0.01, solver="dense"),
    "natural_cg": lambda: natural_gradient(POLICY.apply, 0.01, solver="cg"),
    "trpo": lambda: trust_region(POLICY.apply, 0.01),
    "kl_penalty": lambda: kl_penalty(POLICY.apply, optax.adam(0.02), epochs=5),
    "ppo_clip": lambda: zero_critic_ppo(epochs=4, minibatches=4),
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_moves_theta_toward_the_optimum(name):
    rule = RULES[name]()
    theta = POLICY.init(None)  # [0, 1]
    state = rule.init(theta)

    @jax.jit
    def iteration(theta, state, key):
        k_batch, k_update = jax.random.split(key)
        new_theta, state, _ = rule.update(theta, state, rollout_batch(theta, k_batch), k_update)
        return new_theta, state

    start_distance = float(jnp.linalg.norm(theta - OPTIMUM))
    start_value = float(regulator_expected_return(theta))
    for key in jax.random.split(jax.random.PRNGKey(0), 40):
        theta, state = iteration(theta, state, key)
    distance = float(jnp.linalg.norm(jnp.array([theta[0], jnp.abs(theta[1])]) - OPTIMUM))
    assert distance < 0.6 * start_distance, (name, theta)
    assert float(regulator_expected_return(theta)) > start_value + 0.5 * (
        float(regulator_expected_return(OPTIMUM)) - start_value), (name, theta)
    assert theta[0] < -0.3  # the gain moved toward −1
