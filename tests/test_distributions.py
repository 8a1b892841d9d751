"""Distributions against scipy and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from pgax.distributions import Categorical, DiagGaussian
from tests.helpers import seeded_key


def test_categorical_log_prob_entropy_against_scipy():
    logits = jnp.array([[0.3, -1.2, 2.0], [0.0, 0.0, 0.0]])
    dist = Categorical(logits)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    for i in range(2):
        ref = stats.multinomial(1, probs[i])
        for a in range(3):
            np.testing.assert_allclose(dist.log_prob(jnp.array([a, a]))[i], ref.logpmf(np.eye(3)[a]), rtol=1e-5)
        np.testing.assert_allclose(dist.entropy()[i], stats.entropy(probs[i]), rtol=1e-5)
    np.testing.assert_array_equal(dist.mode(), [2, 0])


def test_categorical_kl_closed_form_and_zero_on_self():
    p, q = Categorical(jnp.log(jnp.array([0.2, 0.8]))), Categorical(jnp.log(jnp.array([0.5, 0.5])))
    expected = 0.2 * np.log(0.2 / 0.5) + 0.8 * np.log(0.8 / 0.5)
    np.testing.assert_allclose(p.kl(q), expected, rtol=1e-5)
    np.testing.assert_allclose(p.kl(p), 0.0, atol=1e-7)
    np.testing.assert_allclose(p.kl(q), stats.entropy([0.2, 0.8], [0.5, 0.5]), rtol=1e-5)


def test_categorical_sampling_frequencies():
    probs = jnp.array([0.1, 0.6, 0.3])
    samples = jax.vmap(Categorical(jnp.log(probs)).sample)(jax.random.split(seeded_key(0), 20000))
    freq = np.bincount(np.asarray(samples), minlength=3) / 20000
    se = np.sqrt(probs * (1 - probs) / 20000)
    assert np.all(np.abs(freq - probs) < 4 * se)


def test_gaussian_log_prob_entropy_against_scipy():
    mean = jnp.array([[0.5, -1.0], [2.0, 0.0]])
    log_std = jnp.array([0.1, -0.7])
    dist = DiagGaussian(mean, jnp.broadcast_to(log_std, mean.shape))
    x = jnp.array([[0.0, 1.0], [1.5, -0.3]])
    std = np.exp(np.asarray(log_std))
    for i in range(2):
        ref = stats.multivariate_normal(np.asarray(mean[i]), np.diag(std**2))
        np.testing.assert_allclose(dist.log_prob(x)[i], ref.logpdf(np.asarray(x[i])), rtol=1e-5)
        np.testing.assert_allclose(dist.entropy()[i], ref.entropy(), rtol=1e-5)
    np.testing.assert_array_equal(dist.mode(), mean)


def test_gaussian_kl_closed_forms():
    p = DiagGaussian(jnp.array([0.0, 1.0]), jnp.log(jnp.array([1.0, 2.0])))
    q = DiagGaussian(jnp.array([1.0, -1.0]), jnp.log(jnp.array([2.0, 0.5])))
    # Σ_i log(σq/σp) + (σp² + Δμ²)/(2σq²) − ½
    expected = (np.log(2.0 / 1.0) + (1 + 1) / (2 * 4) - 0.5) + (np.log(0.5 / 2.0) + (4 + 4) / (2 * 0.25) - 0.5)
    np.testing.assert_allclose(p.kl(q), expected, rtol=1e-5)
    # Equal σ: the lecture's closed form Σ (μp − μq)² / (2σ²).
    sigma = 0.7
    a = DiagGaussian(jnp.array([0.3, -0.2]), jnp.full(2, np.log(sigma)))
    b = DiagGaussian(jnp.array([-0.1, 0.5]), jnp.full(2, np.log(sigma)))
    np.testing.assert_allclose(a.kl(b), ((0.4**2) + (0.7**2)) / (2 * sigma**2), rtol=1e-5)
    np.testing.assert_allclose(a.kl(a), 0.0, atol=1e-7)


def test_gaussian_kl_matches_monte_carlo():
    p = DiagGaussian(jnp.array([0.2]), jnp.array([np.log(0.8)]))
    q = DiagGaussian(jnp.array([-0.3]), jnp.array([np.log(1.3)]))
    x = jax.vmap(p.sample)(jax.random.split(seeded_key(1), 200_000))
    diff = np.asarray(p.log_prob(x) - q.log_prob(x))
    assert abs(diff.mean() - float(p.kl(q))) < 4 * diff.std() / np.sqrt(len(diff))


def test_gaussian_sampling_moments():
    p = DiagGaussian(jnp.array([1.0, -2.0]), jnp.log(jnp.array([0.5, 3.0])))
    x = np.asarray(jax.vmap(p.sample)(jax.random.split(seeded_key(2), 50_000)))
    assert np.all(np.abs(x.mean(0) - [1.0, -2.0]) < 4 * np.array([0.5, 3.0]) / np.sqrt(50_000))
    np.testing.assert_allclose(x.std(0), [0.5, 3.0], rtol=0.02)


@pytest.mark.parametrize("make", [
    lambda: Categorical(jnp.array([0.1, -0.4, 0.9])),
    lambda: DiagGaussian(jnp.array([0.1, -0.4]), jnp.array([0.2, -0.5])),
])
def test_fisher_vector_product_is_hessian_of_kl(make):
    """F v equals the Hessian of KL(π_old ‖ π) at π = π_old applied to v (distribution parameters)."""
    old = make()
    leaves, treedef = jax.tree_util.tree_flatten(old)
    flat_old = jnp.concatenate([x.ravel() for x in leaves])
    sizes = [x.size for x in leaves]

    def unflatten(flat):
        parts = jnp.split(flat, np.cumsum(sizes)[:-1])
        return jax.tree_util.tree_unflatten(treedef, [p.reshape(x.shape) for p, x in zip(parts, leaves)])

    hessian = jax.hessian(lambda f: old.kl(unflatten(f)))(flat_old)
    v = jnp.linspace(-1.0, 1.0, flat_old.size)
    fv = old.fisher_vector_product(unflatten(v))
    fv = jnp.concatenate([x.ravel() for x in jax.tree_util.tree_leaves(fv)])
    np.testing.assert_allclose(fv, hessian @ v, rtol=1e-4, atol=1e-6)
