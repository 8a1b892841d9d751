import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgax.critics import mlp_value
from pgax.distributions import Categorical, DiagGaussian
from pgax.policies import mlp_policy
from pgax.spaces import Box, Discrete
from tests.helpers import seeded_key


def test_discrete_policy_is_categorical_and_starts_near_uniform():
    policy = mlp_policy(Discrete(3), (16, 16))
    obs = jax.random.normal(seeded_key(1), (5, 4))
    params = policy.init(seeded_key(0), obs[0])
    dist = policy.apply(params, obs)
    assert isinstance(dist, Categorical) and dist.logits.shape == (5, 3)
    np.testing.assert_allclose(dist.probs, 1 / 3, atol=0.02)  # output gain 0.01


def test_box_policy_is_gaussian_with_state_independent_log_std():
    policy = mlp_policy(Box.from_bounds((2,), -1.0, 1.0), (16,), init_log_std=-0.5)
    obs = jnp.ones((7, 3))
    params = policy.init(seeded_key(0), obs[0])
    dist = policy.apply(params, obs)
    assert isinstance(dist, DiagGaussian) and dist.mean.shape == (7, 2)
    np.testing.assert_allclose(dist.log_std, -0.5)
    assert params["params"]["log_std"].shape == (2,)


def test_hidden_layers_are_orthogonal():
    policy = mlp_policy(Discrete(2), (8, 8))
    params = policy.init(seeded_key(0), jnp.zeros(8))
    kernel = params["params"]["MLP_0"]["Dense_1"]["kernel"]  # 8×8 hidden layer, gain √2
    np.testing.assert_allclose(kernel.T @ kernel, 2.0 * np.eye(8), atol=1e-5)


def test_value_critic_shape():
    critic = mlp_value((16,))
    params = critic.init(seeded_key(0), jnp.zeros(4))
    assert critic.apply(params, jnp.zeros((6, 4))).shape == (6,)
    assert critic.apply(params, jnp.zeros((2, 3, 4))).shape == (2, 3)


def test_bad_inputs():
    with pytest.raises(TypeError, match="action space"):
        mlp_policy("not a space")
    with pytest.raises(ValueError, match="activation"):
        mlp_value(activation="sigmoid")
