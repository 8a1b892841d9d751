"""Estimators: hand-computed values, limiting cases of λ, truncation vs termination, and the
`lax.scan` implementations against plain Python reference loops."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgax import estimators
from tests.helpers import seeded_rng


def reference_returns(r, d, v_next=None, trunc=None):
    T = len(r)
    g, out = 0.0, np.zeros(T)
    for t in reversed(range(T)):
        if v_next is None:
            g = r[t] + d[t] * g
        else:
            cut = (trunc is not None and trunc[t]) or t == T - 1
            g = r[t] + d[t] * (v_next[t] if cut else g)
        out[t] = g
    return out


def reference_gae(r, d, v, v_next, lam, trunc):
    T = len(r)
    a, out = 0.0, np.zeros(T)
    for t in reversed(range(T)):
        delta = r[t] + d[t] * v_next[t] - v[t]
        cut = trunc[t] or t == T - 1
        a = delta + (0.0 if cut else d[t] * lam * a)
        out[t] = a
    return out


def test_discounted_returns_hand_computed():
    r = jnp.array([1.0, 2.0, 3.0])
    d = jnp.array([0.5, 0.5, 0.5])
    # G2 = 3, G1 = 2 + 0.5*3 = 3.5, G0 = 1 + 0.5*3.5 = 2.75
    np.testing.assert_allclose(estimators.discounted_returns(r, d), [2.75, 3.5, 3.0])


def test_returns_stop_at_termination():
    r = jnp.array([1.0, 1.0, 1.0, 1.0])
    d = jnp.array([0.9, 0.0, 0.9, 0.9])  # terminated after step 1
    np.testing.assert_allclose(estimators.discounted_returns(r, d), [1.9, 1.0, 1.9, 1.0], rtol=1e-6)


def test_gae_hand_computed():
    r = jnp.array([1.0, 0.0])
    d = jnp.array([0.9, 0.9])
    v = jnp.array([0.5, 1.0])
    v_next = jnp.array([1.0, 2.0])
    lam = 0.5
    # δ1 = 0 + 0.9*2 - 1 = 0.8 ; δ0 = 1 + 0.9*1 - 0.5 = 1.4 ; A0 = 1.4 + 0.9*0.5*0.8 = 1.76
    np.testing.assert_allclose(estimators.gae(r, d, v, v_next, lam), [1.76, 0.8], rtol=1e-6)


def random_stream(seed, T=50):
    rng = seeded_rng(seed)
    r = rng.normal(size=T).astype(np.float32)
    term = rng.random(T) < 0.1
    trunc = (rng.random(T) < 0.1) & ~term
    d = np.where(term, 0.0, 0.97).astype(np.float32)
    # Values consistent inside episodes: V(s_{t+1}) of step t is V(s_t) of step t+1 unless the
    # episode ended at t (then it is V(final obs), an independent number).
    v = rng.normal(size=T).astype(np.float32)
    v_next = np.append(v[1:], rng.normal()).astype(np.float32)
    ended = term | trunc
    v_next[ended] = rng.normal(size=ended.sum())
    return r, d, v, v_next, trunc


@pytest.mark.parametrize("seed", range(5))
def test_scan_equals_reference_loop(seed):
    r, d, v, v_next, trunc = random_stream(seed)
    for lam in (0.0, 0.7, 1.0):
        np.testing.assert_allclose(estimators.gae(r, d, v, v_next, lam, trunc),
                                   reference_gae(r, d, v, v_next, lam, trunc), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(estimators.discounted_returns(r, d, v_next, trunc),
                               reference_returns(r, d, v_next, trunc), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(estimators.discounted_returns(r, d), reference_returns(r, d), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", range(3))
def test_gae_lambda_zero_is_td_error(seed):
    r, d, v, v_next, trunc = random_stream(seed)
    np.testing.assert_allclose(estimators.gae(r, d, v, v_next, 0.0, trunc),
                               estimators.td_errors(r, d, v, v_next), rtol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_gae_lambda_one_is_return_minus_value(seed):
    r, d, v, v_next, trunc = random_stream(seed)
    g = estimators.discounted_returns(r, d, v_next, trunc)
    np.testing.assert_allclose(estimators.gae(r, d, v, v_next, 1.0, trunc), g - v, rtol=1e-5, atol=1e-5)


def test_truncation_bootstraps_but_termination_does_not():
    # One episode of 3 steps, reward 1 each, then a new episode's step. V(final obs) = 10.
    r = jnp.ones(4)
    v = jnp.zeros(4)
    v_next = jnp.array([0.0, 0.0, 10.0, 0.0])
    gamma = 0.5
    truncated = jnp.array([False, False, True, False])
    a_trunc = estimators.gae(r, gamma * jnp.ones(4), v, v_next, 1.0, truncated)
    # truncated: A2 = 1 + 0.5*10 = 6, A1 = 1 + 0.5*6 = 4, A0 = 1 + 0.5*4 = 3
    np.testing.assert_allclose(a_trunc[:3], [3.0, 4.0, 6.0])
    terminated_discount = jnp.array([gamma, gamma, 0.0, gamma])
    a_term = estimators.gae(r, terminated_discount, v, v_next, 1.0, jnp.zeros(4, bool))
    # terminated: V(final obs) is ignored: A2 = 1, A1 = 1.5, A0 = 1.75
    np.testing.assert_allclose(a_term[:3], [1.75, 1.5, 1.0])
    # Neither leaks the next episode's reward into the ended one.
    np.testing.assert_allclose(a_trunc[3], 1.0)


def test_vmaps_over_a_batch_of_streams():
    streams = [random_stream(s) for s in range(4)]
    r, d, v, v_next, trunc = (jnp.stack(x, axis=1) for x in zip(*streams))  # [T, N]
    batched = jax.vmap(estimators.gae, in_axes=(1, 1, 1, 1, None, 1), out_axes=1)(r, d, v, v_next, 0.95, trunc)
    for n, s in enumerate(streams):
        np.testing.assert_allclose(batched[:, n], reference_gae(*s[:4], 0.95, s[4]), rtol=1e-5, atol=1e-5)


def test_truncated_without_values_is_an_error():
    with pytest.raises(ValueError, match="needs v_t"):
        estimators.discounted_returns(jnp.ones(3), jnp.ones(3), truncated_t=jnp.zeros(3, bool))
