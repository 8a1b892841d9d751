"""Policy update rules (chapter 12), each a factory returning an `UpdateRule`: a pair of pure functions

    init(params) -> state
    update(params, state, batch, key) -> (params, state, metrics)

in the style of optax's `init`/`update`. `params` is the pytree of everything the rule trains
(here `{"policy": ..., "value": ...}`), `batch` a `pgax.batch.Batch` whose `advantage`, `target`
and `value` fields an estimator has filled, and `metrics` a flat dict of scalars.

Layer 1 (learning). This module holds the clipped surrogate of PPO (12.22).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

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
        if num_samples % minibatches:
            raise ValueError(f"ppo_clip: {minibatches} minibatches do not divide the batch of {num_samples} "
                             "samples; choose a divisor of num_envs × num_steps")
        old_log_prob = jax.lax.stop_gradient(
            policy_apply(params["policy"], samples.obs).log_prob(samples.action))
        # Only what the loss reads is shuffled into minibatches.
        samples = (Batch(obs=samples.obs, action=samples.action, reward=None, terminated=None, truncated=None,
                         next_obs=None, log_prob=None, advantage=samples.advantage, target=samples.target,
                         value=samples.value), old_log_prob)

        def minibatch_step(carry, minibatch):
            params, opt_state = carry
            mb, mb_old_log_prob = minibatch
            (_, aux), grads = grad_fn(params, mb, mb_old_log_prob, **loss_kwargs)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            aux = {k: v for k, v in aux.items() if k != "ratio"}
            aux["grad_norm"] = optax.tree.norm(grads)
            return (params, opt_state), aux

        def epoch(carry, epoch_key):
            order = jax.random.permutation(epoch_key, num_samples)
            shuffled = jax.tree_util.tree_map(
                lambda x: jnp.take(x, order, axis=0).reshape((minibatches, -1) + x.shape[1:]), samples)
            return jax.lax.scan(minibatch_step, carry, shuffled)

        (params, opt_state), metrics = jax.lax.scan(epoch, (params, opt_state), jax.random.split(key, epochs))
        metrics = jax.tree_util.tree_map(jnp.mean, metrics)
        metrics["explained_variance"] = explained_variance(batch.value, batch.target)
        return params, opt_state, metrics

    return UpdateRule(init, update)
