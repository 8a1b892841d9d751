"""Conjugate gradient against jnp.linalg.solve; Fisher-vector products against dense Fishers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgax import linalg
from pgax.policies import mlp_policy
from pgax.spaces import Box, Discrete
from tests.helpers import seeded_key, seeds


def random_spd(key, n, cond=10.0):
    q, _ = jnp.linalg.qr(jax.random.normal(key, (n, n)))
    eig = jnp.geomspace(1.0, cond, n)
    return (q * eig) @ q.T


@pytest.mark.parametrize("seed", seeds(4))
def test_cg_matches_solve_on_random_spd(seed):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    a = random_spd(k1, 8)
    b = jax.random.normal(k2, (8,))
    res = jax.jit(lambda b: linalg.conjugate_gradient(lambda v: a @ v, b, max_iters=50, tol=1e-6))(b)
    np.testing.assert_allclose(res.x, jnp.linalg.solve(a, b), rtol=1e-4, atol=1e-5)
    assert bool(res.converged) and int(res.iterations) <= 20


def test_cg_with_damping_solves_the_damped_system():
    a = random_spd(seeded_key(0), 6)
    b = jnp.arange(6.0)
    res = linalg.conjugate_gradient(lambda v: a @ v, b, max_iters=30, tol=1e-6, damping=0.5)
    np.testing.assert_allclose(res.x, jnp.linalg.solve(a + 0.5 * jnp.eye(6), b), rtol=1e-4, atol=1e-5)


def test_cg_is_vmappable():
    a = random_spd(seeded_key(1), 5)
    bs = jax.random.normal(seeded_key(2), (7, 5))
    xs = jax.vmap(lambda b: linalg.conjugate_gradient(lambda v: a @ v, b, max_iters=30, tol=1e-6).x)(bs)
    np.testing.assert_allclose(xs, jnp.linalg.solve(a, bs.T).T, rtol=1e-4, atol=1e-5)


def test_cg_on_singular_system_stays_finite_and_reports_non_convergence():
    a = jnp.diag(jnp.array([3.0, 1.0, 0.0, 0.0]))  # rank 2
    b = jnp.array([3.0, 2.0, 1.0, -1.0])  # has a null-space component: no exact solution
    res = linalg.conjugate_gradient(lambda v: a @ v, b, max_iters=20, tol=1e-6)
    assert np.all(np.isfinite(res.x)) and not bool(res.converged)
    # The null-space part of b (norm √2) can never be removed from the residual.
    assert float(res.residual_norm) >= np.sqrt(2.0) - 1e-5
    assert float(jnp.linalg.norm(res.x)) < 1e3
    # b in the range of A: CG converges to the minimum-norm solution.
    res = linalg.conjugate_gradient(lambda v: a @ v, jnp.array([3.0, 2.0, 0.0, 0.0]), max_iters=20, tol=1e-6)
    assert bool(res.converged)
    np.testing.assert_allclose(res.x, [1.0, 2.0, 0.0, 0.0], atol=1e-6)


def test_cg_stops_at_negative_curvature():
    """On an indefinite A = diag(2, −1), b = [1, 1]: step 1 along p = b (curvature ½) gives x = [2, 2];
    the next direction p = [6, 12] has pᵀAp = −72 < 0, so CG stops there, x unchanged and not converged
    (unguarded, α = −¼ would land on A⁻¹b = [½, −1])."""
    a = jnp.diag(jnp.array([2.0, -1.0]))
    res = linalg.conjugate_gradient(lambda v: a @ v, jnp.array([1.0, 1.0]), max_iters=10, tol=1e-8)
    assert int(res.iterations) == 1 and not bool(res.converged)
    np.testing.assert_allclose(res.x, [2.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(res.residual_norm, np.sqrt(18.0), rtol=1e-6)


def test_cg_stops_at_max_iters():
    a = random_spd(seeded_key(3), 30, cond=1e3)
    res = linalg.conjugate_gradient(lambda v: a @ v, jnp.ones(30), max_iters=3, tol=1e-12)
    assert int(res.iterations) == 3 and not bool(res.converged)


@pytest.mark.parametrize("space", [Discrete(3), Box.from_bounds((2,), -1.0, 1.0)])
def test_fisher_vector_product_matches_dense_score_fisher(space):
    """F v via jvp/vjp equals E_s E_a[∇log π ∇log πᵀ] v computed exactly (sum over actions, or
    the closed-form Gaussian Fisher) on a small network. Both matrices are built in one jitted
    program (op-by-op, the per-state gradients below compile a few hundred small programs)."""
    policy = mlp_policy(space, (4,))
    obs = jax.random.normal(seeded_key(0), (5, 3))
    params = policy.init(seeded_key(1), obs[0])

    @jax.jit
    def both(params):
        _, theta, unravel = linalg.flat_fn(lambda p: policy.apply(p, obs), params)
        fvp = linalg.fisher_vector_product(lambda p: policy.apply(p, obs), params)
        dense = linalg.dense_matrix(lambda v: jax.flatten_util.ravel_pytree(fvp(unravel(v)))[0], theta.size)
        if isinstance(space, Discrete):
            # Exact: F = (1/B) Σ_s Σ_a π(a|s) ∇log π(a|s) ∇log π(a|s)ᵀ.
            def score(flat, s, a):
                return policy.apply(unravel(flat), obs[s]).log_prob(a)
            grads = jnp.stack([jnp.stack([jax.grad(score)(theta, s, a) for a in range(3)]) for s in range(5)])
            probs = policy.apply(params, obs).probs
            exact = jnp.einsum("sa,sai,saj->ij", probs, grads, grads) / 5
        else:
            # Gaussian: F = (1/B) Σ_s J_sᵀ diag(1/σ², 2) J_s with J the Jacobian of (mean, log σ).
            def dist_params(flat, s):
                d = policy.apply(unravel(flat), obs[s])
                return jnp.concatenate([d.mean, d.log_std])
            exact = 0.0
            for s in range(5):
                j = jax.jacobian(dist_params)(theta, s)
                sigma2 = jnp.exp(2 * policy.apply(params, obs[s]).log_std)
                exact = exact + j.T @ jnp.diag(jnp.concatenate([1 / sigma2, 2 * jnp.ones(2)])) @ j
            exact = exact / 5
        return dense, exact

    dense, exact = both(params)
    np.testing.assert_allclose(dense, exact, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(dense, dense.T, atol=1e-6)
    assert np.linalg.eigvalsh(np.asarray(dense, np.float64)).min() > -1e-5


def test_fisher_is_hessian_of_mean_kl():
    policy = mlp_policy(Discrete(4), (6,))
    obs = jax.random.normal(seeded_key(4), (8, 2))
    params = policy.init(seeded_key(5), obs[0])
    v_key = seeded_key(6)

    @jax.jit  # one program: op by op, the Hessian alone compiles hundreds of small ones
    def both(params):
        _, theta, unravel = linalg.flat_fn(lambda p: p, params)
        old = policy.apply(params, obs)
        hessian = jax.hessian(lambda f: old.kl(policy.apply(unravel(f), obs)).mean())(theta)
        fvp = linalg.fisher_vector_product(lambda p: policy.apply(p, obs), params)
        v = jax.random.normal(v_key, theta.shape)
        return jax.flatten_util.ravel_pytree(fvp(unravel(v)))[0], hessian @ v

    fv, hv = both(params)
    np.testing.assert_allclose(fv, hv, rtol=1e-3, atol=1e-5)


def test_empirical_fisher_and_dense_solves():
    scores = jnp.array([[2.012, 1.430], [-0.111, 7.550]])
    f = linalg.empirical_fisher(scores)
    np.testing.assert_allclose(f, 0.5 * (jnp.outer(scores[0], scores[0]) + jnp.outer(scores[1], scores[1])), rtol=1e-6)
    g = jnp.array([1.0, 2.0])
    np.testing.assert_allclose(f @ linalg.solve_dense(f, g), g, rtol=1e-4)
    singular = jnp.array([[1.0, 1.0], [1.0, 1.0]])
    u = linalg.solve_dense(singular, jnp.array([2.0, 2.0]), pinv=True)
    np.testing.assert_allclose(u, [1.0, 1.0], rtol=1e-5)
    assert np.all(np.isfinite(linalg.solve_dense(singular, jnp.array([2.0, 0.0]), damping=1e-3)))
