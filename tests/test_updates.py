"""PPO-clip: exact properties of the surrogate (12.22) and of one update."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pgax.batch import Batch, flatten_time_and_envs
from pgax.critics import mlp_value
from pgax.distributions import Categorical
from pgax.policies import mlp_policy
from pgax.spaces import Discrete
from pgax.updates import clipped_surrogate, ppo_clip, ppo_loss
from tests.helpers import seeded_key

POLICY = mlp_policy(Discrete(3), (32, 32))
CRITIC = mlp_value((32, 32))
LOSS_KW = dict(policy_apply=POLICY.apply, value_apply=CRITIC.apply, clip_eps=0.2, vf_coef=0.5, ent_coef=0.01,
               normalize_advantages=True, clip_value_loss=True)


def make_batch(key, params, T=32, N=4, obs_dim=5):
    k_obs, k_act, k_adv, k_tgt = jax.random.split(key, 4)
    obs = jax.random.normal(k_obs, (T, N, obs_dim))
    dist = POLICY.apply(params["policy"], obs)
    action = dist.sample(k_act)
    value = CRITIC.apply(params["value"], obs)
    return Batch(obs=obs, action=action, reward=jnp.zeros((T, N)), terminated=jnp.zeros((T, N), bool),
                 truncated=jnp.zeros((T, N), bool), next_obs=obs, log_prob=dist.log_prob(action),
                 advantage=jax.random.normal(k_adv, (T, N)), target=value + jax.random.normal(k_tgt, (T, N)),
                 value=value)


def init_params(key, obs_dim=5):
    kp, kv = jax.random.split(key)
    return {"policy": POLICY.init(kp, jnp.zeros(obs_dim)), "value": CRITIC.init(kv, jnp.zeros(obs_dim))}


def test_ratio_is_one_to_a_few_ulps_on_the_first_minibatch():
    """The old log-probabilities come from the same parameters, so ρ = 1 up to rounding: the jitted
    minibatch forward pass may differ from the whole-batch one by an ulp or so (float32 ulp ≈ 1.2e-7)."""
    params = init_params(seeded_key(0))
    samples = flatten_time_and_envs(make_batch(seeded_key(1), params))
    # As the update does: old log-probs from one forward pass over the whole batch ...
    old_log_prob = POLICY.apply(params["policy"], samples.obs).log_prob(samples.action)
    first = jax.tree_util.tree_map(lambda x: x[:32], samples)  # ... then a minibatch of a quarter
    _, aux = jax.jit(lambda p, b, o: ppo_loss(p, b, o, **LOSS_KW))(params, first, old_log_prob[:32])
    np.testing.assert_allclose(aux["ratio"], 1.0, rtol=1e-6)
    assert aux["clip_fraction"] == 0.0 and abs(float(aux["approx_kl"])) <= 1e-6


def test_ppo_loss_by_hand():
    """Two samples, two one-hot states, a uniform policy and a table critic: every term of the loss by hand.

    ρ = π/π_old = 0.5/0.4 = 1.25 (clamped at 1.2 since Â = 2 > 0) and 0.5/0.6 = 5/6 (inside [0.8, 1.2]);
    L^CLIP = [1.2·2, −5/6], policy_loss = −(2.4 − 5/6)/2. V = [1, 3], V_old = [0.5, 3.5], target = [2, 3]:
    V_clip = V_old + clip(V − V_old, ±0.2) = [0.7, 3.3], errors max([1, 0], [1.69, 0.09]) = [1.69, 0.09],
    value_loss = ½·0.89. Entropy log 2. approx_kl = mean((ρ − 1) − log ρ); clip_fraction = ½.
    """
    obs = jnp.eye(2)
    minibatch = Batch(obs=obs, action=jnp.array([0, 1]), reward=None, terminated=None, truncated=None, next_obs=None,
                      log_prob=None, advantage=jnp.array([2.0, -1.0]), target=jnp.array([2.0, 3.0]),
                      value=jnp.array([0.5, 3.5]))
    params = {"policy": jnp.zeros((2, 2)), "value": jnp.array([1.0, 3.0])}
    kw = dict(policy_apply=lambda p, o: Categorical(o @ p), value_apply=lambda w, o: o @ w, clip_eps=0.2,
              vf_coef=0.5, ent_coef=0.01, normalize_advantages=False, clip_value_loss=True)
    loss, aux = ppo_loss(params, minibatch, jnp.log(jnp.array([0.4, 0.6])), **kw)
    ratio = np.array([1.25, 5.0 / 6.0])
    policy_loss = -(1.2 * 2.0 - 5.0 / 6.0) / 2
    value_loss = 0.5 * (1.69 + 0.09) / 2
    np.testing.assert_allclose(aux["ratio"], ratio, rtol=1e-6)
    np.testing.assert_allclose(aux["policy_loss"], policy_loss, rtol=1e-6)
    np.testing.assert_allclose(aux["value_loss"], value_loss, rtol=1e-6)
    np.testing.assert_allclose(aux["entropy"], np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(loss, policy_loss + 0.5 * value_loss - 0.01 * np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(aux["approx_kl"], np.mean(ratio - 1.0 - np.log(ratio)), rtol=1e-5)
    assert aux["clip_fraction"] == 0.5
    # Without value clipping the error is the plain (V − target)².
    _, aux = ppo_loss(params, minibatch, jnp.log(jnp.array([0.4, 0.6])), **{**kw, "clip_value_loss": False})
    np.testing.assert_allclose(aux["value_loss"], 0.5 * (1.0 + 0.0) / 2, rtol=1e-6)


def test_update_with_one_minibatch_reports_no_clipping_and_no_kl():
    params = init_params(seeded_key(0))
    batch = make_batch(seeded_key(1), params)
    rule = ppo_clip(POLICY.apply, CRITIC.apply, optax.adam(1e-3), epochs=1, minibatches=1)
    _, _, metrics = jax.jit(rule.update)(params, rule.init(params), batch, seeded_key(2))
    assert metrics["clip_fraction"] == 0.0 and abs(float(metrics["approx_kl"])) <= 1e-6


def test_gradients_of_clamped_samples_are_zero():
    old = jnp.zeros(6)
    # ratios e^{±0.5} lie outside [0.8, 1.2]; the clamp is active where it caps the gain:
    # ρ > 1 + ε with Â > 0, and ρ < 1 − ε with Â < 0.
    log_prob = jnp.array([0.5, 0.5, -0.5, -0.5, 0.05, -0.05])
    advantage = jnp.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    grad = jax.grad(lambda lp: clipped_surrogate(lp, old, advantage, 0.2)[0].sum())(log_prob)
    clamped = np.array([True, False, False, True, False, False])
    np.testing.assert_array_equal(grad[clamped], 0.0)
    # Everywhere else the gradient is ρ Â (d ρ / d log π = ρ).
    np.testing.assert_allclose(grad[~clamped], (jnp.exp(log_prob) * advantage)[~clamped], rtol=1e-6)


def test_clipped_surrogate_values():
    obj, ratio = clipped_surrogate(jnp.log(jnp.array([1.5, 0.5, 1.1])), jnp.zeros(3), jnp.array([2.0, -1.0, 1.0]), 0.2)
    np.testing.assert_allclose(ratio, [1.5, 0.5, 1.1], rtol=1e-6)
    np.testing.assert_allclose(obj, [1.2 * 2.0, -0.8, 1.1], rtol=1e-6)


def test_update_moves_probability_toward_positive_advantage():
    """A one-state problem: action 0 has advantage +1, the others −1; PPO raises π(0)."""
    params = init_params(seeded_key(3), obs_dim=2)
    T, N = 64, 4
    obs = jnp.ones((T, N, 2))
    action = jnp.tile(jnp.arange(T * N) % 3, 1).reshape(T, N)
    advantage = jnp.where(action == 0, 1.0, -1.0)
    value = CRITIC.apply(params["value"], obs)
    batch = Batch(obs=obs, action=action, reward=jnp.zeros((T, N)), terminated=jnp.zeros((T, N), bool),
                  truncated=jnp.zeros((T, N), bool), next_obs=obs, log_prob=jnp.zeros((T, N)),
                  advantage=advantage, target=value, value=value)
    rule = ppo_clip(POLICY.apply, CRITIC.apply, optax.adam(3e-3), epochs=4, minibatches=4, clip_eps=0.2)
    new_params, _, metrics = jax.jit(rule.update)(params, rule.init(params), batch, seeded_key(0))
    before = POLICY.apply(params["policy"], obs[0, 0]).probs[0]
    after = POLICY.apply(new_params["policy"], obs[0, 0]).probs[0]
    assert after > before + 0.05
    assert 0.0 < metrics["clip_fraction"] < 1.0
    assert set(metrics) >= {"policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "grad_norm",
                            "explained_variance"}


def test_explained_variance_of_perfect_critic_is_one():
    from pgax.updates import explained_variance
    t = jnp.arange(10.0)
    assert explained_variance(t, t) == 1.0
    np.testing.assert_allclose(explained_variance(jnp.full(10, t.mean()), t), 0.0, atol=1e-6)
