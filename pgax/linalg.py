"""Linear algebra for natural-gradient methods: conjugate gradient and Fisher products.

Layer 0 (math). Vectors are flat 1-D arrays; `flat_fn` turns a function of a parameter pytree into
one of a flat vector (via `jax.flatten_util.ravel_pytree`).

    conjugate_gradient(matvec, b)      solves (A + λI) x = b with only products A v   (Kakade 2001; TRPO)
    fisher_vector_product(dist_fn, θ)  v ↦ F v, F = (1/B) Σ_i J_iᵀ M_i J_i             (12.9, Gauss-Newton form)
    dense_matrix(matvec, n)            the n×n matrix of a product closure (small θ, tests)
    empirical_fisher(scores)           (1/m) Σ_j ∇log p(τ_j) ∇log p(τ_j)ᵀ             (12.10, Algorithm 12.4)
    solve_dense(F, g)                  (F + λI)⁻¹ g or the pseudo-inverse F⁺ g
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax.flatten_util import ravel_pytree


@struct.dataclass
class CGResult:
    """x: [n] solution; iterations: steps taken; residual_norm: ‖b − (A + λI) x‖ of the recursion;
    converged: residual_norm ≤ tol · ‖b‖ (False also when the system broke down, e.g. pᵀAp ≤ 0)."""

    x: jax.Array
    iterations: jax.Array
    residual_norm: jax.Array
    converged: jax.Array


def conjugate_gradient(matvec: Callable[[jax.Array], jax.Array], b: jax.Array, *, max_iters: int = 10,
                       tol: float = 1e-10, damping: float = 0.0) -> CGResult:
    """Solve (A + λI) x = b for symmetric positive (semi-)definite A given only v ↦ A v.

    Standard CG from x₀ = 0: α = rᵀr / pᵀ(A + λI)p, x += αp, r −= α(A + λI)p, β = r'ᵀr' / rᵀr,
    p = r' + βp. Stops after `max_iters` steps, when ‖r‖ ≤ tol·‖b‖, or on breakdown
    (the curvature pᵀ(A + λI)p / pᵀp falls below 1e-6 of the largest seen, as when b has a
    component in the null space of a singular A): x stays finite in every case.
    Jittable and vmappable (a `lax.while_loop`).
    """
    b_norm = jnp.linalg.norm(b)
    threshold = tol * b_norm

    def damped(v):
        return matvec(v) + damping * v

    def cond(state):
        _, _, _, rr, i, broke, _ = state
        return (i < max_iters) & (jnp.sqrt(rr) > threshold) & ~broke

    def body(state):
        x, r, p, rr, i, _, scale = state
        ap = damped(p)
        pap = jnp.vdot(p, ap)
        # Breakdown: the curvature along p is (numerically) zero or negative relative to the largest
        # curvature seen, i.e. p lies in the null space of a singular A. Stop with x unchanged.
        curvature = pap / jnp.maximum(jnp.vdot(p, p), 1e-30)
        scale = jnp.maximum(scale, curvature)
        broke = ~(curvature > 1e-6 * scale) | ~jnp.isfinite(pap)
        alpha = jnp.where(broke, 0.0, rr / jnp.where(broke, 1.0, pap))
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = jnp.vdot(r, r)
        p = r + (rr_new / jnp.where(rr > 0, rr, 1.0)) * p
        return x, r, p, jnp.where(broke, rr, rr_new), i + jnp.where(broke, 0, 1), broke, scale

    zero = jnp.zeros_like(b)
    init = (zero, b, b, jnp.vdot(b, b), jnp.zeros((), jnp.int32), jnp.zeros((), bool), jnp.zeros((), b.dtype))
    x, _, _, rr, iterations, broke, _ = jax.lax.while_loop(cond, body, init)
    residual = jnp.sqrt(rr)
    return CGResult(x, iterations, residual, (residual <= threshold) & ~broke)


def flat_fn(fn: Callable[[Any], Any], params: Any) -> tuple[Callable[[jax.Array], Any], jax.Array, Callable]:
    """(fn of a flat vector, flat params, unravel): adapt a function of a parameter pytree."""
    flat, unravel = ravel_pytree(params)
    return (lambda v: fn(unravel(v))), flat, unravel


def fisher_vector_product(dist_fn: Callable[[Any], Any], params: Any,
                          weights: jax.Array | None = None) -> Callable[[Any], Any]:
    """v ↦ F v, the Fisher of the policy averaged over a batch of states, without forming F.

        F = Σ_i w_i J_iᵀ M_i J_i,     J_i = ∂ (distribution parameters at s_i) / ∂θ,
        w_i = 1/B (default) or the given `weights` [B] normalised to sum 1,
        M_i = the distribution's Fisher w.r.t. its own parameters (its `fisher_vector_product`).

    This equals E_s E_{a~π}[∇log π ∇log πᵀ] (12.9) and the Hessian of the mean KL(π_θ ‖ π_θ') at
    θ' = θ, so ½ ΔθᵀFΔθ is the second-order mean KL of a step. One jvp and one vjp per product.

    Args:
        dist_fn: params -> distribution with batch shape [B] (e.g. `lambda p: policy.apply(p, obs)`).
        params: the pytree θ at which F is taken; v and F v are pytrees of the same structure.
    """
    dist, vjp_fn = jax.vjp(dist_fn, params)
    batch_size = jax.tree_util.tree_leaves(dist)[0].shape[0]
    if weights is None:
        scale = jnp.full((batch_size,), 1.0 / batch_size)
    else:
        scale = weights / jnp.sum(weights)

    def product(v):
        _, tangent = jax.jvp(dist_fn, (params,), (v,))
        weighted = dist.fisher_vector_product(tangent)
        (fv,) = vjp_fn(jax.tree_util.tree_map(
            lambda x: x * scale.reshape(scale.shape + (1,) * (x.ndim - 1)).astype(x.dtype), weighted))
        return fv

    return product


def trajectory_fisher_vector_product(log_prob_fn: Callable[[Any], jax.Array], params: Any, segment_ids: jax.Array,
                                     num_segments: int, weights: jax.Array | None = None) -> Callable[[Any], Any]:
    """v ↦ F v for the trajectory Fisher (12.10), the empirical Fisher of whole-trajectory scores:

        F = (1/K) Σ_j g_j g_jᵀ,   g_j = ∇_θ log p(τ_j | θ) = Σ_{i ∈ τ_j} ∇_θ log π_θ(a_i|s_i),

    over the K non-empty trajectories (segments) of a batch of B samples, without forming F or the
    g_j: F v = (1/K) Σ_i c_{j(i)} ∇log π(a_i|s_i) with c_j = g_jᵀv = Σ_{i ∈ τ_j} ∇log π(a_i|s_i)ᵀv (one
    jvp, a segment sum, one vjp per product).

    Args:
        log_prob_fn: params -> [B] log π_θ(a_i|s_i).
        params: the pytree θ; v and F v are pytrees of its structure.
        segment_ids: [B] int, the trajectory of sample i, in [0, num_segments).
        num_segments: static upper bound on the number of trajectories.
        weights: optional [B]; samples with weight 0 are left out (their trajectory still counts if
            it has another sample), other weights are ignored.
    """
    log_prob, vjp_fn = jax.vjp(log_prob_fn, params)
    keep = jnp.ones_like(log_prob) if weights is None else (weights > 0).astype(log_prob.dtype)
    members = jax.ops.segment_sum(keep, segment_ids, num_segments)
    count = jnp.maximum(jnp.sum((members > 0).astype(log_prob.dtype)), 1.0)

    def product(v):
        _, tangent = jax.jvp(log_prob_fn, (params,), (v,))
        coefficient = jax.ops.segment_sum(keep * tangent, segment_ids, num_segments)
        (fv,) = vjp_fn(keep * coefficient[segment_ids] / count)
        return fv

    return product


def dense_matrix(matvec: Callable[[jax.Array], jax.Array], n: int, dtype=jnp.float32) -> jax.Array:
    """[n, n] matrix of a linear map given as a product closure on flat [n] vectors."""
    return jax.vmap(matvec)(jnp.eye(n, dtype=dtype)).T


def empirical_fisher(scores: jax.Array) -> jax.Array:
    """[d, d] F̂ = (1/m) Σ_j g_j g_jᵀ for scores g_j = ∇log p(τ_j | θ), scores: [m, d] (12.10)."""
    return scores.T @ scores / scores.shape[0]


def solve_dense(fisher: jax.Array, grad: jax.Array, *, damping: float = 0.0, pinv: bool = False,
                rcond: float = 1e-6) -> jax.Array:
    """u = (F + λI)⁻¹ ∇U, or the pseudo-inverse F⁺ ∇U when `pinv` (singular F, e.g. softmax) (12.13)."""
    if pinv:
        return jnp.linalg.pinv(fisher, rtol=rcond) @ grad
    return jnp.linalg.solve(fisher + damping * jnp.eye(fisher.shape[0], dtype=fisher.dtype), grad)
