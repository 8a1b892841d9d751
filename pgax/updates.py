"""Policy update rules (chapter 12), each a factory returning an `UpdateRule`: a pair of pure functions

    init(params) -> state
    update(params, state, batch, key) -> (params, state, metrics)

in the style of optax's `init`/`update`. `params` is the pytree of everything the rule trains
(here `{"policy": ..., "value": ...}`), `batch` a `pgax.batch.Batch` whose `advantage`, `target`
and `value` fields an estimator has filled, and `metrics` a flat dict of scalars.

Layer 1 (learning). Chapter 12 of the book, each rule citing its equation:

    ppo_clip                       clipped surrogate (12.22) with value loss and entropy (actor-critic)
    gradient_ascent                θ ← θ + α∇U (12.1), with gradient scaling and clipping (12.2)
    restricted_gradient            restricted step θ + √(2ε) u/‖u‖ (12.6)
    natural_gradient               natural step u √(2ε/∇Uᵀu), u = F⁻¹∇U (12.12, 12.13), CG or dense
    trust_region                   TRPO: natural step + backtracking line search (12.18-12.20)
    kl_penalty                     KL-penalised surrogate (12.24), fixed or adaptive β
    conservative_policy_iteration  CPI mixture update on tabular policies

The off-policy actor objectives of lecture 003 ("Policy Updates – REINFORCE or Reparameterization",
"Off-policy policy gradient") and the Polyak target update are at the end of the module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from pgax import estimators, linalg
from pgax.batch import Batch, flatten_time_and_envs


class UpdateRule(NamedTuple):
    """`init(params) -> state`; `update(params, state, batch, key) -> (params, state, metrics)`."""

    init: Callable
    update: Callable


def clipped_surrogate(log_prob: jax.Array, old_log_prob: jax.Array, advantage: jax.Array,
                      clip_eps: float) -> tuple[jax.Array, jax.Array]:
    """Per-sample clipped surrogate objective (12.22), to be maximised.

        ρ = π_θ(a|s) / π_θold(a|s) = exp(log π_θ − log π_θold)
        L^CLIP = min(ρ Â, clip(ρ, 1 − ε, 1 + ε) Â)

    Where the clamp is active (ρ outside [1 − ε, 1 + ε] on the side the advantage favours), the
    objective is constant in θ, so such a sample contributes zero gradient.

    Args:
        log_prob, old_log_prob, advantage: [B].
    Returns:
        (objective [B], ratio [B]).
    """
    ratio = jnp.exp(log_prob - old_log_prob)
    unclipped = ratio * advantage
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantage
    return jnp.minimum(unclipped, clipped), ratio


def explained_variance(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """1 − Var[target − prediction] / Var[target]; 1 is perfect, 0 no better than a constant."""
    var_target = jnp.var(target)
    return jnp.where(var_target > 0, 1.0 - jnp.var(target - prediction) / var_target, jnp.nan)


def ppo_loss(params, minibatch: Batch, old_log_prob: jax.Array, *, policy_apply: Callable,
             value_apply: Callable, clip_eps: float, vf_coef: float, ent_coef: float,
             normalize_advantages: bool, clip_value_loss: bool):
    """PPO's loss on one minibatch of B samples (leaves [B, ...]); returns (loss, aux).

        loss = −mean L^CLIP + c_v · ½ mean (V_w(s) − target)² − c_e · mean H[π_θ(·|s)]

    With `clip_value_loss`, the value error is max((V − target)², (V_clip − target)²) where
    V_clip = V_old + clip(V − V_old, −ε, ε), as in the reference PPO implementations.
    `aux` holds the per-sample `ratio` and the scalar diagnostics.
    """
    advantage = minibatch.advantage
    if normalize_advantages:
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    dist = policy_apply(params["policy"], minibatch.obs)
    log_prob = dist.log_prob(minibatch.action)
    objective, ratio = clipped_surrogate(log_prob, old_log_prob, advantage, clip_eps)
    policy_loss = -objective.mean()

    value = value_apply(params["value"], minibatch.obs)
    value_error = jnp.square(value - minibatch.target)
    if clip_value_loss:
        value_clipped = minibatch.value + jnp.clip(value - minibatch.value, -clip_eps, clip_eps)
        value_error = jnp.maximum(value_error, jnp.square(value_clipped - minibatch.target))
    value_loss = 0.5 * value_error.mean()

    entropy = dist.entropy().mean()
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
    log_ratio = log_prob - old_log_prob
    aux = {
        "ratio": ratio,
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        # k3 estimator of KL(π_old ‖ π): E_old[(ρ − 1) − log ρ], unbiased and non-negative.
        "approx_kl": jnp.mean(jnp.expm1(log_ratio) - log_ratio),
        "clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32)),
    }
    return loss, aux


def minibatch_epochs(step: Callable, carry, data, key: jax.Array, *, epochs: int, minibatches: int,
                     rule: str = "update"):
    """`epochs` passes over `data` (a pytree of [B, ...] leaves), each in a fresh random order cut into
    `minibatches` equal minibatches, as `carry, out = step(carry, minibatch)` steps.

    Epoch e's order is `permutation(split(key, epochs)[e], B)`. Returns (carry, outs) with outs
    stacked [epochs, minibatches, ...] (None when `step` outputs None). `rule` names the caller in
    the error raised when `minibatches` does not divide B.
    """
    num = jax.tree_util.tree_leaves(data)[0].shape[0]
    if num % minibatches:
        raise ValueError(f"{rule}: {minibatches} minibatches do not divide the batch of {num} samples; "
                         "choose a divisor of num_envs × num_steps")

    def epoch(carry, epoch_key):
        order = jax.random.permutation(epoch_key, num)
        shuffled = jax.tree_util.tree_map(
            lambda x: jnp.take(x, order, axis=0).reshape((minibatches, -1) + x.shape[1:]), data)
        return jax.lax.scan(step, carry, shuffled)

    return jax.lax.scan(epoch, carry, jax.random.split(key, epochs))


def ppo_clip(policy_apply: Callable, value_apply: Callable, optimizer: optax.GradientTransformation, *,
             clip_eps: float = 0.2, vf_coef: float = 0.5, ent_coef: float = 0.01, epochs: int = 4,
             minibatches: int = 4, normalize_advantages: bool = True,
             clip_value_loss: bool = True) -> UpdateRule:
    """PPO with the clipped surrogate (12.22): `epochs` passes of `minibatches` shuffled minibatches.

    The old policy π_θold is the policy at the start of the update; its log-probabilities are
    recomputed from the batch so that the first minibatch's ratio is exactly 1. The optimizer
    (e.g. `optax.chain(optax.clip_by_global_norm(g), optax.adam(lr))`) is applied to the joint
    actor-critic loss of `ppo_loss`.

    Metrics: means over all minibatch steps of policy_loss, value_loss, entropy, approx_kl,
    clip_fraction and grad_norm (global norm before any clipping), plus explained_variance of the
    critic's pre-update values against the targets on the whole batch.
    """
    loss_kwargs = dict(policy_apply=policy_apply, value_apply=value_apply, clip_eps=clip_eps,
                       vf_coef=vf_coef, ent_coef=ent_coef, normalize_advantages=normalize_advantages,
                       clip_value_loss=clip_value_loss)
    grad_fn = jax.value_and_grad(ppo_loss, has_aux=True)

    def init(params):
        return optimizer.init(params)

    def update(params, opt_state, batch: Batch, key: jax.Array):
        samples = flatten_time_and_envs(batch)
        num_samples = samples.advantage.shape[0]
        old_log_prob = jax.lax.stop_gradient(
            policy_apply(params["policy"], samples.obs).log_prob(samples.action))
        # Only what the loss reads is shuffled into minibatches.
        samples = (Batch(obs=samples.obs, action=samples.action, reward=None, terminated=None, truncated=None,
                         next_obs=None, log_prob=None, advantage=samples.advantage, target=samples.target,
                         value=samples.value), old_log_prob)

        def minibatch_step(carry, minibatch):
            params, opt_state, totals = carry
            mb, mb_old_log_prob = minibatch
            (_, aux), grads = grad_fn(params, mb, mb_old_log_prob, **loss_kwargs)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            aux = {k: v for k, v in aux.items() if k != "ratio"}
            aux["grad_norm"] = optax.tree.norm(grads)
            # Diagnostics are summed in the carry, not stacked into [epochs, minibatches] outputs:
            # with 320 small minibatch steps (the MuJoCo preset) stacking cost 10-15% of the update.
            totals = jax.tree_util.tree_map(jnp.add, totals, aux)
            return (params, opt_state, totals), None

        example = jax.tree_util.tree_map(lambda x: x[:num_samples // minibatches], samples)
        aux_shape = jax.eval_shape(lambda: grad_fn(params, *example, **loss_kwargs)[0][1])
        totals = {k: jnp.zeros(v.shape, v.dtype) for k, v in aux_shape.items() if k != "ratio"}
        totals["grad_norm"] = jnp.zeros((), samples[0].advantage.dtype)
        (params, opt_state, totals), _ = minibatch_epochs(minibatch_step, (params, opt_state, totals), samples, key,
                                                          epochs=epochs, minibatches=minibatches, rule="ppo_clip")
        metrics = {k: v / (epochs * minibatches) for k, v in totals.items()}
        metrics["explained_variance"] = explained_variance(batch.value, batch.target)
        return params, opt_state, metrics

    return UpdateRule(init, update)


# ---------------------------------------------------------------------------------------------
# Chapter 12: policy-only update rules. `params` is the policy's parameter pytree; the batch's
# `advantage` (any leading shape) is the estimate Â to ascend (reward-to-go, GAE, ...).
# ---------------------------------------------------------------------------------------------


class PolicySamples(NamedTuple):
    """Flat samples for a policy update: obs [B, ...], action [B, ...], advantage [B], the
    behaviour distribution π_θ at update time (a distribution pytree with batch shape [B]), and
    weight [B], the normalised sample weights (sum 1; 1/B each unless the batch has
    `sample_weight`). Every "mean_i" below is the weighted mean Σ_i w_i (·)."""

    obs: jax.Array
    action: jax.Array
    advantage: jax.Array
    old_dist: Any
    old_log_prob: jax.Array
    weight: jax.Array


def policy_samples(policy_apply: Callable, params, batch: Batch, normalize_advantages: bool = False) -> PolicySamples:
    """Flatten a batch to [B] samples and record π_θ (stop-gradient) on them.

    With `normalize_advantages`, Â is standardised with the weighted mean and standard deviation.
    """
    lead = batch.advantage.ndim
    flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[lead:]),
                                  (batch.obs, batch.action, batch.advantage))
    obs, action, advantage = flat
    if batch.sample_weight is None:
        weight = jnp.full(advantage.shape, 1.0 / advantage.shape[0], advantage.dtype)
    else:
        raw = batch.sample_weight.reshape(-1).astype(advantage.dtype)
        weight = raw / jnp.maximum(jnp.sum(raw), 1e-30)
    if normalize_advantages:
        mean = jnp.sum(weight * advantage)
        std = jnp.sqrt(jnp.sum(weight * jnp.square(advantage - mean)))
        advantage = (advantage - mean) / (std + 1e-8)
    old_dist = jax.lax.stop_gradient(policy_apply(params, obs))
    return PolicySamples(obs, action, advantage, old_dist, old_dist.log_prob(action), weight)


def surrogate_objective(policy_apply: Callable, params, samples: PolicySamples) -> jax.Array:
    """Importance-weighted surrogate (12.18 / 12.21): L(θ') = mean_i [π_θ'(a_i|s_i) / π_θ(a_i|s_i) Â_i].

    At θ' = θ its gradient is the policy gradient mean_i[∇log π_θ(a_i|s_i) Â_i] (Exercise 12.1).
    """
    log_prob = policy_apply(params, samples.obs).log_prob(samples.action)
    return jnp.sum(samples.weight * jnp.exp(log_prob - samples.old_log_prob) * samples.advantage)


def mean_kl(policy_apply: Callable, params, samples: PolicySamples) -> jax.Array:
    """Surrogate constraint (12.19): mean_i KL(π_θ(·|s_i) ‖ π_θ'(·|s_i)) over the sampled states."""
    return jnp.sum(samples.weight * samples.old_dist.kl(policy_apply(params, samples.obs)))


def restricted_step(grad: jax.Array, epsilon: float) -> jax.Array:
    """(12.6): Δθ = √(2ε) u / ‖u‖ with u = ∇U: the best step in the ball ½‖Δθ‖² ≤ ε."""
    norm = jnp.linalg.norm(grad)
    return jnp.where(norm > 0, jnp.sqrt(2.0 * epsilon) * grad / jnp.where(norm > 0, norm, 1.0), 0.0)


def natural_step(grad: jax.Array, direction: jax.Array, epsilon: float) -> jax.Array:
    """(12.12): Δθ = u √(2ε / ∇Uᵀu) with u = F⁻¹∇U (12.13), so that ½ΔθᵀFΔθ = ε.

    Returns a zero step when ∇Uᵀu ≤ 0 (no ascent direction, e.g. a zero gradient).
    """
    gu = jnp.vdot(grad, direction)
    return jnp.where(gu > 0, direction * jnp.sqrt(2.0 * epsilon / jnp.where(gu > 0, gu, 1.0)), 0.0)


class FlatPolicyProblem(NamedTuple):
    """A policy-improvement problem over flat parameters θ [d]: the objective U(θ) to raise, the mean
    KL(θ) from the current policy to bound, and the Fisher product v ↦ F v at the current θ."""

    theta: jax.Array
    unravel: Callable
    objective: Callable
    kl: Callable
    fisher_product: Callable


FISHERS = ("state", "trajectory")


def trajectory_segments(batch: Batch) -> jax.Array:
    """[B] int32 trajectory index of each sample of a [T, N] (or [T]) batch, flattened as
    `policy_samples` flattens: a trajectory is a run of one environment's steps between episode ends
    (termination or truncation) and the window's edges, so an episode cut by the window counts as
    one trajectory per window it touches."""
    terminated, truncated = batch.terminated, batch.truncated
    if terminated.ndim == 1:
        terminated, truncated = terminated[:, None], truncated[:, None]
    num_steps, num_envs = terminated.shape
    ids = jax.vmap(estimators.episode_ids, in_axes=1, out_axes=1)((~terminated).astype(jnp.float32), truncated)
    return (ids + num_steps * jnp.arange(num_envs, dtype=jnp.int32)).reshape(-1)


def surrogate_problem(policy_apply: Callable, params, batch: Batch, normalize_advantages: bool = False,
                      fisher: str = "state") -> FlatPolicyProblem:
    """The problem of chapter 12 for a batch: U = the importance-sampled surrogate (12.21), KL = the
    batch's weighted mean KL (12.19), and F either the policy's Fisher averaged over the batch's
    states (`fisher="state"`, E_s[F(s)], 12.9) or the trajectory Fisher (`"trajectory"`, (12.10): the
    empirical (1/K) Σ_j ∇log p(τ_j)∇log p(τ_j)ᵀ over the batch's `trajectory_segments`, as
    Algorithms 12.4 and 12.5 use it; about episode length × the state-averaged one)."""
    if fisher not in FISHERS:
        raise ValueError(f"unknown Fisher {fisher!r}; use one of {FISHERS}")
    samples = policy_samples(policy_apply, params, batch, normalize_advantages)
    theta, unravel = ravel_pytree(params)
    if fisher == "state":
        fvp_tree = linalg.fisher_vector_product(lambda p: policy_apply(p, samples.obs), params, samples.weight)
    else:
        segments = trajectory_segments(batch)
        fvp_tree = linalg.trajectory_fisher_vector_product(
            lambda p: policy_apply(p, samples.obs).log_prob(samples.action), params, segments, segments.shape[0],
            samples.weight)
    return FlatPolicyProblem(theta, unravel,
                             lambda flat: surrogate_objective(policy_apply, unravel(flat), samples),
                             lambda flat: mean_kl(policy_apply, unravel(flat), samples),
                             lambda v: ravel_pytree(fvp_tree(unravel(v)))[0])


def _natural_direction(fvp, grad, *, solver, cg_iters, cg_tol, damping):
    """u ≈ (F + λI)⁻¹ g, by CG on Fisher-vector products or a dense solve."""
    if solver == "cg":
        res = linalg.conjugate_gradient(fvp, grad, max_iters=cg_iters, tol=cg_tol, damping=damping)
        return res.x, {"cg_iterations": res.iterations.astype(jnp.float32), "cg_residual": res.residual_norm}
    fisher = linalg.dense_matrix(fvp, grad.shape[0], grad.dtype)
    direction = linalg.solve_dense(fisher, grad, damping=damping, pinv=(solver == "pinv"))
    residual = jnp.linalg.norm(fisher @ direction + damping * direction - grad)
    return direction, {"cg_iterations": jnp.zeros((), jnp.float32), "cg_residual": residual}


class NaturalProposal(NamedTuple):
    """The natural step Δθ (12.12) of a `FlatPolicyProblem`, with ∇U and the solver's metrics."""

    problem: FlatPolicyProblem
    grad: jax.Array
    step: jax.Array
    info: dict


def natural_proposal(problem: FlatPolicyProblem, epsilon: float, *, solver: str = "cg", cg_iters: int = 10,
                     cg_tol: float = 1e-10, damping: float = 0.1) -> NaturalProposal:
    """Δθ = u √(2ε / ∇Uᵀu), u = (F + λI)⁻¹∇U (12.12-12.13) for any flat objective, KL and Fisher
    product (the surrogate of `surrogate_problem`, vine's (15)/(16), ...). Metrics: cg_iterations,
    cg_residual, grad_norm, step_size √(2ε/∇Uᵀu), predicted_kl ½ΔθᵀFΔθ."""
    _check_solver(solver)
    grad = jax.grad(problem.objective)(problem.theta)
    direction, info = _natural_direction(problem.fisher_product, grad, solver=solver, cg_iters=cg_iters,
                                         cg_tol=cg_tol, damping=damping)
    gu = jnp.vdot(grad, direction)
    step = natural_step(grad, direction, epsilon)
    info = {**info, "grad_norm": jnp.linalg.norm(grad),
            "step_size": jnp.where(gu > 0, jnp.sqrt(2.0 * epsilon / jnp.where(gu > 0, gu, 1.0)), 0.0),
            "predicted_kl": 0.5 * jnp.vdot(step, problem.fisher_product(step))}
    return NaturalProposal(problem, grad, step, info)


def trust_region_search(proposal: NaturalProposal, max_kl: float, *, shrink: float = 0.5,
                        max_backtracks: int = 10) -> tuple[jax.Array, dict]:
    """TRPO's line search (12.20) from a natural proposal: the first θ + α^j Δθ that raises U with
    KL ≤ max_kl, else θ. Returns (θ' flat, metrics: the proposal's, step_norm, mean_kl,
    surrogate_improvement, accepted, line_search_steps)."""
    problem = proposal.problem
    new_theta, search = backtracking_line_search(problem.objective, problem.kl, problem.theta, proposal.step, max_kl,
                                                 shrink=shrink, max_backtracks=max_backtracks)
    return new_theta, {**proposal.info, "step_norm": jnp.linalg.norm(new_theta - problem.theta),
                       "mean_kl": search["constraint"], "surrogate_improvement": search["objective_gain"],
                       "accepted": search["accepted"].astype(jnp.float32),
                       "line_search_steps": search["steps"].astype(jnp.float32)}


def _check_solver(solver, fisher="state"):
    if solver not in ("cg", "dense", "pinv"):
        raise ValueError(f"unknown natural-gradient solver {solver!r}; use 'cg', 'dense' or 'pinv'")
    if fisher not in FISHERS:
        raise ValueError(f"unknown Fisher {fisher!r}; use one of {FISHERS}")


def gradient_ascent(policy_apply: Callable, learning_rate: float | optax.Schedule | None = None, *,
                    max_grad_norm: float | None = None, clip_value: float | None = None,
                    normalize_advantages: bool = False,
                    optimizer: optax.GradientTransformation | None = None) -> UpdateRule:
    """θ ← θ + α ∇U (12.1), ∇U the gradient of the surrogate at θ (the policy gradient).

    Gradient scaling (12.2, first form): rescale ∇U to L2 norm at most `max_grad_norm`
    (`optax.clip_by_global_norm`); gradient clipping (12.2, second form): clip each component to
    [−clip_value, clip_value] (`optax.clip`). The step is α g (`learning_rate`), or, with
    `optimizer` (an optax *descent* transformation such as `optax.adam(lr)`), the optimizer's step
    on −∇U. The state is the optax state.
    """
    if (learning_rate is None) == (optimizer is None):
        raise ValueError("gradient_ascent: give exactly one of learning_rate and optimizer")
    parts = []
    if max_grad_norm is not None:
        parts.append(optax.clip_by_global_norm(max_grad_norm))
    if clip_value is not None:
        parts.append(optax.clip(clip_value))
    if optimizer is None:
        parts.append(optax.scale_by_learning_rate(learning_rate, flip_sign=False))  # ascent: θ + α g
    else:
        parts.extend([optax.scale(-1.0), optimizer])  # the optimizer descends on the loss −U
    transform = optax.chain(*parts)

    def update(params, state, batch: Batch, key=None):
        samples = policy_samples(policy_apply, params, batch, normalize_advantages)
        grad = jax.grad(lambda p: surrogate_objective(policy_apply, p, samples))(params)
        step, state = transform.update(grad, state, params)
        new_params = optax.apply_updates(params, step)
        return new_params, state, {
            "grad_norm": optax.tree.norm(grad), "step_norm": optax.tree.norm(step),
            "mean_kl": mean_kl(policy_apply, new_params, samples),
            "surrogate_improvement": surrogate_objective(policy_apply, new_params, samples)
            - surrogate_objective(policy_apply, params, samples),
        }

    return UpdateRule(transform.init, update)


def restricted_gradient(policy_apply: Callable, epsilon: float, *, normalize_advantages: bool = False) -> UpdateRule:
    """Restricted step (12.6): θ' = θ + √(2ε) ∇U / ‖∇U‖, the steepest step with ½‖Δθ‖² = ε."""

    def update(params, state, batch: Batch, key=None):
        problem = surrogate_problem(policy_apply, params, batch, normalize_advantages)
        grad = jax.grad(problem.objective)(problem.theta)
        step = restricted_step(grad, epsilon)
        new_theta = problem.theta + step
        return problem.unravel(new_theta), state, {
            "grad_norm": jnp.linalg.norm(grad), "step_norm": jnp.linalg.norm(step), "mean_kl": problem.kl(new_theta),
            "surrogate_improvement": problem.objective(new_theta) - problem.objective(problem.theta),
        }

    return UpdateRule(lambda params: (), update)


def natural_gradient(policy_apply: Callable, epsilon: float, *, solver: str = "cg", cg_iters: int = 10,
                     cg_tol: float = 1e-10, damping: float = 1e-3,
                     normalize_advantages: bool = False, fisher: str = "state") -> UpdateRule:
    """Natural policy gradient (12.12, 12.13): θ' = θ + u √(2ε / ∇Uᵀu), u = (F + λI)⁻¹ ∇U.

    F is the policy's Fisher averaged over the batch's states (`fisher="state"`: Gauss-Newton
    products) or the trajectory Fisher (12.10) of Algorithm 12.4 (`"trajectory"`), see
    `surrogate_problem`; no dense matrix with `solver="cg"`; `"dense"` materialises F and solves with
    damping λ, `"pinv"` uses the pseudo-inverse — for small θ. The step's predicted KL ½ΔθᵀFΔθ equals
    ε when λ = 0.
    Metrics: step_size √(2ε/∇Uᵀu), predicted_kl, mean_kl (actually taken), surrogate_improvement,
    cg_iterations, cg_residual, grad_norm, step_norm.
    """
    _check_solver(solver, fisher)

    def update(params, state, batch: Batch, key=None):
        problem = surrogate_problem(policy_apply, params, batch, normalize_advantages, fisher)
        p = natural_proposal(problem, epsilon, solver=solver, cg_iters=cg_iters, cg_tol=cg_tol, damping=damping)
        new_theta = problem.theta + p.step
        return problem.unravel(new_theta), state, {
            **p.info, "step_norm": jnp.linalg.norm(p.step), "mean_kl": problem.kl(new_theta),
            "surrogate_improvement": problem.objective(new_theta) - problem.objective(problem.theta),
        }

    return UpdateRule(lambda params: (), update)


def backtracking_line_search(objective: Callable, constraint: Callable, theta: jax.Array, full_step: jax.Array,
                             max_constraint: float, *, shrink: float = 0.5, max_backtracks: int = 10):
    """(12.20) Try θ + α^j Δθ for j = 0, 1, ..., max_backtracks; accept the first with
    objective(θ') > objective(θ) and constraint(θ') ≤ max_constraint. Without one, keep θ.

    Returns (θ', info) with info: accepted (bool), steps (j of the accepted point, or the number of
    points tried), objective_gain, constraint.
    """
    base = objective(theta)

    def cond(state):
        j, accepted = state
        return (~accepted) & (j <= max_backtracks)

    def body(state):
        j, _ = state
        candidate = theta + shrink ** j.astype(theta.dtype) * full_step
        ok = (objective(candidate) > base) & (constraint(candidate) <= max_constraint)
        return jnp.where(ok, j, j + 1), ok

    j, accepted = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), jnp.zeros((), bool)))
    new_theta = jnp.where(accepted, theta + shrink ** j.astype(theta.dtype) * full_step, theta)
    return new_theta, {"accepted": accepted, "steps": j, "objective_gain": objective(new_theta) - base,
                       "constraint": constraint(new_theta)}


def trust_region(policy_apply: Callable, max_kl: float, *, shrink: float = 0.5, max_backtracks: int = 10,
                 solver: str = "cg", cg_iters: int = 10, cg_tol: float = 1e-10, damping: float = 0.1,
                 normalize_advantages: bool = False, fisher: str = "state") -> UpdateRule:
    """TRPO (section 12.4, Algorithm 12.5): the natural step (12.12) with ε = max_kl starts a
    backtracking line search (12.20) on the surrogate (12.21) under the mean-KL constraint (12.19).
    `fisher`: the state-averaged or the trajectory Fisher (12.10) of the natural step (`surrogate_problem`).

    A point is accepted only when it improves the surrogate and its mean KL is ≤ max_kl; when none
    of the max_backtracks + 1 points qualifies, the old parameters are kept (`accepted` = 0).
    Metrics as for `natural_gradient`, plus accepted and line_search_steps.
    """
    _check_solver(solver, fisher)

    def update(params, state, batch: Batch, key=None):
        problem = surrogate_problem(policy_apply, params, batch, normalize_advantages, fisher)
        proposal = natural_proposal(problem, max_kl, solver=solver, cg_iters=cg_iters, cg_tol=cg_tol, damping=damping)
        new_theta, metrics = trust_region_search(proposal, max_kl, shrink=shrink, max_backtracks=max_backtracks)
        return problem.unravel(new_theta), state, metrics

    return UpdateRule(lambda params: (), update)


class KLPenaltyState(NamedTuple):
    """opt_state: the optimizer's state; beta: the current penalty coefficient β."""

    opt_state: Any
    beta: jax.Array


def kl_penalty(policy_apply: Callable, optimizer: optax.GradientTransformation, *, beta: float = 1.0,
               adaptive: bool = True, kl_target: float = 0.01, epochs: int = 10, minibatches: int = 1,
               normalize_advantages: bool = True) -> UpdateRule:
    """KL-penalised surrogate (12.24), maximised by `epochs` × `minibatches` optimizer steps:

        L(θ') = mean_i [ρ_i Â_i − β KL(π_θ(·|s_i) ‖ π_θ'(·|s_i))]

    With `adaptive`, β is updated once per batch from the measured mean KL d after the update
    (PPO paper): d < kl_target / 1.5 → β / 2; d > 1.5 · kl_target → β · 2. Metrics: policy_loss
    (−mean ρÂ at the end), mean_kl, beta (after adaptation), grad_norm.
    """

    def init(params):
        return KLPenaltyState(optimizer.init(params), jnp.asarray(beta, jnp.float32))

    def loss_fn(params, mb: PolicySamples, beta_value):
        surrogate = surrogate_objective(policy_apply, params, mb)
        kl = mean_kl(policy_apply, params, mb)
        return -(surrogate - beta_value * kl), (surrogate, kl)

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    def update(params, state: KLPenaltyState, batch: Batch, key):
        samples = policy_samples(policy_apply, params, batch, normalize_advantages)

        def step(carry, mb):
            params, opt_state = carry
            mb = mb._replace(weight=mb.weight / jnp.maximum(jnp.sum(mb.weight), 1e-30))
            (_, _), grads = grad_fn(params, mb, state.beta)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), optax.tree.norm(grads)

        (new_params, opt_state), grad_norms = minibatch_epochs(
            step, (params, state.opt_state), samples, key, epochs=epochs, minibatches=minibatches, rule="kl_penalty")
        surrogate = surrogate_objective(policy_apply, new_params, samples)
        kl = mean_kl(policy_apply, new_params, samples)
        new_beta = state.beta
        if adaptive:
            new_beta = jnp.where(kl < kl_target / 1.5, state.beta / 2.0,
                                 jnp.where(kl > kl_target * 1.5, state.beta * 2.0, state.beta))
        return new_params, KLPenaltyState(opt_state, new_beta), {
            "policy_loss": -surrogate, "mean_kl": kl, "beta": new_beta, "grad_norm": grad_norms.mean(),
            "surrogate_improvement": surrogate - surrogate_objective(policy_apply, params, samples),
        }

    return UpdateRule(init, update)


class TabularEstimate(NamedTuple):
    """What conservative policy iteration needs about the current policy π (exact or sampled):
    advantage A^π [S, A] and the normalised discounted state visitation d^π_μ [S]."""

    advantage: jax.Array
    visitation: jax.Array


def conservative_policy_iteration(gamma: float, *, alpha: float | None = None, epsilon: float = 1e-6,
                                  objective: Callable | None = None, line_search_steps: int = 12) -> UpdateRule:
    """CPI (lecture 000 "Incremental update of CPI"; Kakade & Langford 2002) on a direct policy table:

        π' = greedy(A^π),  π_{t+1} = (1 − α) π_t + α π'

    Expected advantage 𝔸 = E_{s~d^π}[A^π(s, π'(s))]; when 𝔸 ≤ `epsilon` the policy is returned
    unchanged (`converged` = 1). With `alpha=None`, α maximises the CPI lower bound on the
    improvement, α𝔸/(1−γ) − 2γ ε_A α²/(1−γ)² with ε_A = max_s A^π(s, π'(s)) (the bound in the
    TRPO notes, seed 001), i.e. α = min(1, (1−γ)𝔸 / (4γ ε_A)).

    Line search: with `objective` (a function π [S, A] -> J, e.g. the exact
    `lambda pi: pgax.exact.expected_return(mdp, pi)` inside `jax.enable_x64`, or an estimate), α is
    the best of 1, 1/2, ..., 2^-(line_search_steps-1) and the bound's α by that objective; a
    candidate that does not raise the objective above J(π_t) is not taken (α = 0). `alpha` fixed
    overrides both.

    `params` is the policy table π [S, A] (rows sum to 1); `batch` a `TabularEstimate`.
    Metrics: expected_advantage, alpha, bound_improvement (the guaranteed gain of the step), converged.
    """

    def update(pi, state, estimate: TabularEstimate, key=None):
        pi = jnp.asarray(pi)
        adv = jnp.asarray(estimate.advantage, pi.dtype)
        greedy = jax.nn.one_hot(jnp.argmax(adv, axis=1), adv.shape[1], dtype=pi.dtype)
        per_state = jnp.sum(greedy * adv, axis=1)
        expected = jnp.sum(jnp.asarray(estimate.visitation, pi.dtype) * per_state)
        eps_a = jnp.max(jnp.abs(per_state))
        denom = 4.0 * gamma * eps_a
        bound_alpha = jnp.where(denom > 0, jnp.clip((1.0 - gamma) * expected / jnp.where(denom > 0, denom, 1.0),
                                                    0.0, 1.0), 1.0)
        if alpha is not None:
            step = jnp.asarray(alpha, pi.dtype)
        elif objective is not None:
            candidates = jnp.concatenate([0.5 ** jnp.arange(line_search_steps, dtype=pi.dtype), bound_alpha[None]])
            values = jnp.stack([objective((1.0 - c) * pi + c * greedy) for c in candidates])
            best = jnp.argmax(values)
            step = jnp.where(values[best] > objective(pi), candidates[best], 0.0).astype(pi.dtype)
        else:
            step = bound_alpha
        converged = expected <= epsilon
        step = jnp.where(converged, 0.0, step)
        bound = step * expected / (1.0 - gamma) - 2.0 * gamma * eps_a * step**2 / (1.0 - gamma) ** 2
        return (1.0 - step) * pi + step * greedy, state, {
            "expected_advantage": expected, "alpha": step, "bound_improvement": bound,
            "converged": converged.astype(jnp.float32)}

    return UpdateRule(lambda pi: (), update)


# ---------------------------------------------------------------------------------------------
# Critic fitting and composition: a critic rule trains `params["value"]` on the batch's targets;
# `actor_critic` runs a policy rule on `params["policy"]` and a critic rule on `params["value"]`.
# ---------------------------------------------------------------------------------------------


def value_regression(value_apply: Callable, optimizer: optax.GradientTransformation, *, epochs: int = 5,
                     minibatches: int = 4) -> UpdateRule:
    """Fit V_w to the batch's `target` by least squares: `epochs` passes of `minibatches` shuffled
    minibatches of optimizer steps on ½ mean_i (V_w(s_i) − target_i)² (weighted by the batch's
    `sample_weight` where given; zero-weight samples are ignored).

    This is the baseline / critic re-fit of REINFORCE with baseline, NPG, TRPO and vine: the critic
    is trained after the policy step on the same batch, so the advantages the policy used came from
    the critic before it saw this batch. `params` is the critic's parameter pytree.
    Metrics: value_loss (on the whole batch after fitting), explained_variance (of the critic's
    values before fitting, `batch.value`, against the targets when given).
    """

    def loss_fn(w, obs, target, weight):
        return 0.5 * jnp.sum(weight * jnp.square(value_apply(w, obs) - target)) / jnp.maximum(jnp.sum(weight), 1e-30)

    grad_fn = jax.grad(loss_fn)

    def update(w, opt_state, batch: Batch, key: jax.Array):
        obs = batch.obs.reshape((-1,) + batch.obs.shape[batch.target.ndim:])
        target = batch.target.reshape(-1)
        weight = (jnp.ones_like(target) if batch.sample_weight is None
                  else batch.sample_weight.reshape(-1).astype(target.dtype))
        data = (obs, target, weight)

        def step(carry, mb):
            w, opt_state = carry
            grads = grad_fn(w, *mb)
            updates, opt_state = optimizer.update(grads, opt_state, w)
            return (optax.apply_updates(w, updates), opt_state), None

        (w, opt_state), _ = minibatch_epochs(step, (w, opt_state), data, key, epochs=epochs, minibatches=minibatches,
                                             rule="value_regression")
        metrics = {"value_loss": loss_fn(w, obs, target, weight)}
        if batch.value is not None:
            metrics["explained_variance"] = explained_variance(batch.value.reshape(-1), target)
        return w, opt_state, metrics

    return UpdateRule(optimizer.init, update)


def actor_critic(policy_rule: UpdateRule, value_rule: UpdateRule) -> UpdateRule:
    """Compose a policy rule (on `params["policy"]`) with a critic rule (on `params["value"]`).

    Both see the same batch (its advantages computed by the caller from the critic before the
    update); the critic's metrics are prefixed by nothing and merged with the policy's (the policy
    rule wins on a name clash except `value_loss` and `explained_variance`, which come from the critic).
    State: (policy rule state, critic rule state).
    """

    def init(params):
        return (policy_rule.init(params["policy"]), value_rule.init(params["value"]))

    def update(params, state, batch: Batch, key: jax.Array):
        policy_key, value_key = jax.random.split(key)
        policy, policy_state, policy_metrics = policy_rule.update(params["policy"], state[0], batch, policy_key)
        value, value_state, value_metrics = value_rule.update(params["value"], state[1], batch, value_key)
        return {**params, "policy": policy, "value": value}, (policy_state, value_state), {
            **policy_metrics, **value_metrics}

    return UpdateRule(init, update)


def advantage_actor_critic(policy_apply: Callable, value_apply: Callable, optimizer: optax.GradientTransformation,
                           *, vf_coef: float = 0.5, ent_coef: float = 0.01,
                           normalize_advantages: bool = False) -> UpdateRule:
    """One optimizer step per batch on the joint actor-critic loss of A2C (lecture 000, "Advantage
    Actor-Critic"; the advantage estimator, GAE or n-step, is the caller's):

        loss(θ, w) = −mean_i log π_θ(a_i|s_i) Â_i + c_v · ½ mean_i (V_w(s_i) − target_i)² − c_e · mean_i H[π_θ(·|s_i)]

    Its θ-gradient is −mean_i Â_i ∇log π_θ(a_i|s_i), the policy-gradient estimate; means are
    weighted by the batch's `sample_weight` where given. `params` is `{"policy": ..., "value": ...}`;
    the optimizer (e.g. `optax.chain(optax.clip_by_global_norm(g), optax.rmsprop(lr))`) descends.
    With `normalize_advantages`, Â is standardised over the batch first.
    Metrics: policy_loss, value_loss, entropy, grad_norm (before any clipping), explained_variance
    of the batch's pre-update `value` against `target`.
    """

    def loss_fn(params, obs, action, advantage, target, weight):
        dist = policy_apply(params["policy"], obs)
        policy_loss = -jnp.sum(weight * dist.log_prob(action) * advantage)
        value_loss = 0.5 * jnp.sum(weight * jnp.square(value_apply(params["value"], obs) - target))
        entropy = jnp.sum(weight * dist.entropy())
        return policy_loss + vf_coef * value_loss - ent_coef * entropy, {
            "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}

    grad_fn = jax.grad(loss_fn, has_aux=True)

    def update(params, opt_state, batch: Batch, key=None):
        lead = batch.advantage.ndim
        obs, action = (x.reshape((-1,) + x.shape[lead:]) for x in (batch.obs, batch.action))
        advantage = jax.lax.stop_gradient(batch.advantage.reshape(-1))
        target = jax.lax.stop_gradient(batch.target.reshape(-1))
        raw = (jnp.ones_like(advantage) if batch.sample_weight is None
               else batch.sample_weight.reshape(-1).astype(advantage.dtype))
        weight = raw / jnp.maximum(jnp.sum(raw), 1e-30)
        if normalize_advantages:
            mean = jnp.sum(weight * advantage)
            advantage = (advantage - mean) / (jnp.sqrt(jnp.sum(weight * jnp.square(advantage - mean))) + 1e-8)
        grads, aux = grad_fn(params, obs, action, advantage, target, weight)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics = {**aux, "grad_norm": optax.tree.norm(grads)}
        if batch.value is not None:
            metrics["explained_variance"] = explained_variance(batch.value.reshape(-1), target)
        return params, opt_state, metrics

    return UpdateRule(optimizer.init, update)


# ---------------------------------------------------------------------------------------------
# Online (per-step) rules: one update after every environment step (td_ac, td_lambda_ac, qac).
# ---------------------------------------------------------------------------------------------


def ascend(optimizer: optax.GradientTransformation, params, opt_state, direction):
    """One step along the ascent `direction` (a pytree shaped like `params`) with an optax *descent*
    transformation, applied to −direction: (params, opt_state)."""
    step, opt_state = optimizer.update(jax.tree_util.tree_map(jnp.negative, direction), opt_state, params)
    return optax.apply_updates(params, step), opt_state


def critic_td_errors(value_apply: Callable, value_params, obs: jax.Array, reward: jax.Array, terminated: jax.Array,
                     next_obs: jax.Array, gamma: float) -> tuple[jax.Array, jax.Array]:
    """([N] δ_i, [N] V_w(s_i)): `estimators.td_errors` of one step of N environments,

        δ_i = r_i + γ (1 − terminated_i) V_w(s'_i) − V_w(s_i),

    with `next_obs` the true successor (a truncated episode bootstraps from its final observation;
    pass terminated | truncated to treat a time limit as the end of the task)."""
    v = value_apply(value_params, obs)
    v_next = value_apply(value_params, next_obs)
    return estimators.td_errors(reward, gamma * (1.0 - terminated.astype(v.dtype)), v, v_next), v


def next_discount_weight(weight: jax.Array, done: jax.Array, gamma: float) -> jax.Array:
    """[N] the episodic factor I for the next step: γ I, or 1 after an episode end (I = γ^t)."""
    return jnp.where(done, 1.0, gamma * weight)


# ---------------------------------------------------------------------------------------------
# Off-policy actor objectives (lecture 003) and target networks: sac, td3, ddpg, offpac.
# Each objective is a scalar surrogate whose gradient in θ is the named estimate of
# ∇_θ E_{s~D} E_{a~π_θ(·|s)} Q(s, a); `q_fn(obs, action) -> [B]` is the critic (or the exact Q).
# ---------------------------------------------------------------------------------------------


def pathwise_actor_objective(policy_apply: Callable, params, obs: jax.Array, q_fn: Callable,
                             key: jax.Array, entropy_coef: float | jax.Array = 0.0) -> jax.Array:
    """mean_i [Q(s_i, a_i) − α log π_θ(a_i|s_i)], a_i = a_θ(s_i, z_i), z_i ~ p(z): the pathwise
    (reparameterised) gradient (lecture 003)

        ∇_θ J = E_{s~D} E_z[∇_a Q(s, a)|_{a = μ_θ + z σ_θ} ∇_θ(μ_θ + z σ_θ)],

    plus, with α = `entropy_coef` > 0, the entropy bonus of soft actor-critic. The policy's sample
    must be reparameterised (DiagGaussian, SquashedGaussian). obs: [B, obs_dim]."""
    action, log_prob = policy_apply(params, obs).sample_and_log_prob(key)
    return jnp.mean(q_fn(obs, action) - entropy_coef * log_prob)


def likelihood_ratio_actor_objective(policy_apply: Callable, params, obs: jax.Array, q_fn: Callable,
                                     key: jax.Array, baseline: bool = True,
                                     entropy_coef: float | jax.Array = 0.0) -> jax.Array:
    """The likelihood-ratio (score-function) surrogate of the same gradient (lecture 003):

        ∇_θ J = E_{s~D} E_{a~π_θ}[∇_θ log π_θ(a|s) f(s, a)],   f = Q − α log π_θ

    (the α term's own score term E[∇ log π] is 0). Two actions a_i, a'_i ~ π_θ(·|s_i) per state, f
    held fixed; with `baseline` each is weighted by f(s, a) − f(s, a'), the other action's value (a
    baseline independent of the action, so the estimate stays unbiased):
    ½ mean_i [(f_i − f'_i) log π(a_i) + (f'_i − f_i) log π(a'_i)]. obs: [B, obs_dim]."""
    k1, k2 = jax.random.split(key)
    dist = policy_apply(params, obs)
    a1, a2 = jax.lax.stop_gradient(dist.sample(k1)), jax.lax.stop_gradient(dist.sample(k2))
    log_p1, log_p2 = dist.log_prob(a1), dist.log_prob(a2)
    f1 = jax.lax.stop_gradient(q_fn(obs, a1) - entropy_coef * log_p1)
    f2 = jax.lax.stop_gradient(q_fn(obs, a2) - entropy_coef * log_p2)
    w1, w2 = (f1 - f2, f2 - f1) if baseline else (f1, f2)
    return 0.5 * jnp.mean(w1 * log_p1 + w2 * log_p2)


def importance_weights(log_prob: jax.Array, behaviour_log_prob: jax.Array,
                       max_weight: float | None = None) -> jax.Array:
    """[B] ρ = π_θ(a|s) / β(a|s) = exp(log π_θ − log β), truncated at `max_weight` when given."""
    ratio = jnp.exp(log_prob - behaviour_log_prob)
    return ratio if max_weight is None else jnp.minimum(ratio, max_weight)


def importance_weighted_actor_objective(log_prob: jax.Array, behaviour_log_prob: jax.Array, q: jax.Array,
                                        baseline: jax.Array | float = 0.0,
                                        max_weight: float | None = None) -> jax.Array:
    """mean_i ρ_i (Q_i − b_i) log π_θ(a_i|s_i), ρ and Q held fixed: the off-policy policy gradient

        E_{a~β}[(π_θ(a|s) / β(a|s)) Q^π(s, a) ∇_θ log π_θ(a|s)]         (Degris et al. 2012; lecture 003)

    from actions of the behaviour policy β (their log β stored at acting time). A baseline b(s)
    keeps it unbiased, since E_β[ρ ∇ log π] = ∇ Σ_a π = 0; truncating ρ (`max_weight`) trades bias
    for variance. Args: [B] each; log_prob differentiable in θ."""
    rho = importance_weights(jax.lax.stop_gradient(log_prob), behaviour_log_prob, max_weight)
    return jnp.mean(jax.lax.stop_gradient(rho * (q - baseline)) * log_prob)


def polyak_update(target_params, online_params, tau: float):
    """φ̂ ← τ φ + (1 − τ) φ̂: the slowly moving target network of a Bellman critic (optax.incremental_update)."""
    return optax.incremental_update(online_params, target_params, tau)
