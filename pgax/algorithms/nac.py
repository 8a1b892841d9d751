"""Natural actor-critic (NAC) with a compatible critic (seed 002, "Compatible Function Approximation
Theorem" and "natural actor-critic"; Peters & Schaal 2008).

The compatible critic is linear in the score features ψ(s, a) = ∇_θ log π_θ(a|s): Q_w(s, a) = ψᵀw.
Fitting it by least squares to advantage estimates Â (GAE(λ) from a value critic V_v, which
supplies the baseline),

    w = argmin_w Σ_i p_i (ψ_iᵀw − Â_i)² + λ‖w‖²   ⇔   (ΨᵀPΨ + λI) w = ΨᵀPÂ,
    P = diag(p), Σ p_i = 1,

gives the natural gradient: ΨᵀPΨ is the empirical Fisher F̂ and ΨᵀPÂ the policy-gradient estimate
ĝ, so w = (F̂ + λI)⁻¹ ĝ ("natural gradient = w"). The system is solved by conjugate gradient with
products Ψᵀ(P(Ψv)) (per-sample scores by `jax.vmap(jax.grad)`, never a d × d matrix), the actor is
moved along w, and V_v is re-fitted by `updates.value_regression`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from pgax import linalg
from pgax.algorithms.blocks import (CriticFitBlock, GAEBlock, NaturalStepBlock, NetworkBlock, RolloutBlock,
                                    check_critic_fit, check_gae, check_natural_step, check_rollout)
from pgax.algorithms.core import (Agent, actor_critic_agent, check_network, check_non_negative, check_positive,
                                  gae_estimator, make_policy, make_value)
from pgax.batch import Batch
from pgax.errors import ConfigError
from pgax.updates import UpdateRule, actor_critic, mean_kl, natural_step, policy_samples, value_regression

STEP_KINDS = ("kl", "fixed")


@dataclass(frozen=True)
class NACConfig(NetworkBlock, CriticFitBlock, GAEBlock, NaturalStepBlock, RolloutBlock):
    """Natural actor-critic: compatible critic w fitted by ridge least squares (CG), actor θ += step · w."""

    num_steps: int = 64
    cg_iters: int = 20
    cg_damping: float = 1e-3
    """λ of the ridge least squares (F̂ + λI) w = ĝ (the damping of its CG solve)."""
    hidden_sizes: tuple[int, ...] = (32, 32)
    """Hidden layer widths of the actor and critic MLPs (the per-sample scores Ψ are [B, d]: d drives the cost)."""
    step: str = "fixed"
    """Actor step along w: kl (θ += √(2ε / ĝᵀw) w, predicted KL ε = --max-kl) or fixed (θ += --lr · w)."""
    lr: float = 0.05
    """α of the fixed step θ += α w (--step fixed)."""
    cg_tol: float = 1e-8
    """CG stops when ‖residual‖ ≤ tol · ‖ĝ‖."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_rollout(self)
        check_critic_fit(self)
        if self.step not in STEP_KINDS:
            raise ConfigError(f"--step {self.step!r} is not known; use one of {', '.join(STEP_KINDS)}")
        check_natural_step(self)
        check_positive(self, ("lr",))
        check_non_negative(self, ("cg_tol",))
        check_gae(self)
        check_network(self)


def score_matrix(policy_apply: Callable, params, obs: jax.Array, action: jax.Array) -> tuple[jax.Array, Callable]:
    """Ψ [B, d]: row i is ψ_i = ∇_θ log π_θ(a_i|s_i) with θ flattened (d = its size), by
    `jax.vmap(jax.grad)` over the samples. Returns (Ψ, unravel) (unravel: flat [d] -> params pytree)."""
    theta, unravel = ravel_pytree(params)

    def log_prob(flat, o, a):
        return policy_apply(unravel(flat), o[None]).log_prob(a[None])[0]

    return jax.vmap(jax.grad(log_prob), in_axes=(None, 0, 0))(theta, obs, action), unravel


def compatible_critic_weights(policy_apply: Callable, params, batch: Batch, *, damping: float = 0.0,
                              cg_iters: int = 50, cg_tol: float = 1e-10, normalize_advantages: bool = False):
    """The compatible critic's weights w for a batch (leaves [..., B] or [T, N]; flattened):

        (ΨᵀPΨ + λI) w = ΨᵀPÂ,   P = diag(p_i), p the normalised `sample_weight` (uniform if None)

    solved by CG from w = 0 with products v ↦ Ψᵀ(P(Ψv)). With λ = 0 and a singular ΨᵀPΨ (tabular
    softmax) CG stays in its range and returns the minimum-norm solution. ĝ = ΨᵀPÂ is the vanilla
    policy-gradient estimate (the surrogate's gradient).

    With Â = A^π(s, a) and p ∝ d^π(s) π(a|s) enumerating every (s, a) of a tabular MDP, ΨᵀPΨ is the
    exact (normalised) Fisher F and w = F⁺ (1 − γ) ∇J = `pgax.exact.compatible_critic_weights`.

    Returns (w pytree shaped like params, ĝ pytree, info dict of scalars: cg_iterations,
    cg_residual, grad_norm, w_norm, critic_fit (weighted R² of ψᵀw against Â)).
    """
    samples = policy_samples(policy_apply, params, batch, normalize_advantages)
    psi, unravel = score_matrix(policy_apply, params, samples.obs, samples.action)
    p = samples.weight.astype(psi.dtype)
    advantage = samples.advantage.astype(psi.dtype)
    g = psi.T @ (p * advantage)

    def fisher_product(v):
        return psi.T @ (p * (psi @ v))

    res = linalg.conjugate_gradient(fisher_product, g, max_iters=cg_iters, tol=cg_tol, damping=damping)
    w = res.x
    fit = psi @ w
    mean_adv = jnp.sum(p * advantage)
    total = jnp.sum(p * jnp.square(advantage - mean_adv))
    r2 = jnp.where(total > 0, 1.0 - jnp.sum(p * jnp.square(advantage - fit)) / jnp.where(total > 0, total, 1.0), 0.0)
    info = {"cg_iterations": res.iterations.astype(jnp.float32), "cg_residual": res.residual_norm,
            "grad_norm": jnp.linalg.norm(g), "w_norm": jnp.linalg.norm(w), "critic_fit": r2}
    return unravel(w), unravel(g), info


def natural_actor(policy_apply: Callable, *, step: str = "fixed", max_kl: float = 0.02, lr: float = 0.05,
                  damping: float = 1e-3, cg_iters: int = 20, cg_tol: float = 1e-8,
                  normalize_advantages: bool = True) -> UpdateRule:
    """NAC's actor rule on the policy parameters: fit w (`compatible_critic_weights`), then

        step="kl":    θ' = θ + √(2ε / ĝᵀw) w   (the natural step (12.12) with u = w; predicted KL ε at λ = 0)
        step="fixed": θ' = θ + α w             (Peters & Schaal's NAC actor update)

    Metrics: those of `compatible_critic_weights`, step_norm, mean_kl (of the step, on the batch).
    """
    if step not in STEP_KINDS:
        raise ValueError(f"natural_actor: unknown step {step!r}; use one of {STEP_KINDS}")

    def update(params, state, batch: Batch, key=None):
        w, g, info = compatible_critic_weights(policy_apply, params, batch, damping=damping, cg_iters=cg_iters,
                                               cg_tol=cg_tol, normalize_advantages=normalize_advantages)
        w_flat, unravel = ravel_pytree(w)
        g_flat = ravel_pytree(g)[0]
        theta = ravel_pytree(params)[0]
        delta = natural_step(g_flat, w_flat, max_kl) if step == "kl" else lr * w_flat
        new_params = unravel(theta + delta)
        samples = policy_samples(policy_apply, params, batch)
        return new_params, state, {**info, "step_norm": jnp.linalg.norm(delta),
                                   "mean_kl": mean_kl(policy_apply, new_params, samples)}

    return UpdateRule(lambda params: (), update)


def make_nac(config: NACConfig, env, num_iterations: int) -> Agent:
    """NAC: GAE(λ) advantages from V_v, `natural_actor` on params["policy"], `value_regression` on
    params["value"] (composed by `updates.actor_critic`)."""
    del num_iterations
    policy = make_policy(config, env)
    critic = make_value(config)
    rule = actor_critic(
        natural_actor(policy.apply, step=config.step, max_kl=config.max_kl, lr=config.lr, damping=config.cg_damping,
                      cg_iters=config.cg_iters, cg_tol=config.cg_tol,
                      normalize_advantages=config.normalize_advantages),
        value_regression(critic.apply, optax.adam(config.critic_lr, eps=1e-5), epochs=config.critic_epochs,
                         minibatches=config.critic_minibatches))

    return actor_critic_agent(policy, critic, rule, gae_estimator(critic, config))
