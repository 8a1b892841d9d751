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

`critic="td"` learns w instead by seed 002's TD rule on the compatible features, online through the
batch's time steps and kept across batches (two time scales: β for w, the actor's step for θ):

    w ← w + (β / tr F̂) Σ_n p_{t,n} (r_t + γ Q(s_{t+1}, a_{t+1}) − Q(s_t, a_t)) ψ_t,   Q(s, a) = V_v(s) + ψ(s, a)ᵀw

The seed's Q is ψᵀw alone; since E_{a~π}[ψ(s, a)] = 0 that Q has mean 0 in every state, and its TD
fixed point F w = E[ψ r] misses the γV(s′) part of Q^π, so the state-value critic V_v supplies it
(Q_w = V + ψᵀw, the advantage parametrisation of Peters & Schaal). The term γψ(s_{t+1}, a_{t+1})ᵀw
has mean 0 given s_{t+1} (a_{t+1} ~ π) and is taken in expectation, so the TD error is Â_t − ψ_tᵀw
with Â_t the batch's advantage (GAE(λ); λ = 0 is r + γV(s′) − V(s)). Its expected update
β(ĝ − F̂w) has the fixed point w = F̂⁻¹ĝ of the least-squares fit: with exact advantages and
d^π-weights it converges to F⁺(1 − γ)∇J (`tests/test_algo_nac.py`).

`discount_weighting` weights each sample of the fit (both critics) by γ^τ (the seed's γ^t factor on
the critic's step), so F̂ and ĝ are taken under the discounted visitation and w estimates the
natural gradient of J; V_v's regression stays unweighted.
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
from pgax.algorithms.core import (Agent, actor_critic_agent, add_gae, check_network, check_non_negative,
                                  check_positive, discount_weights, make_policy, make_value)
from pgax.batch import Batch
from pgax.errors import ConfigError
from pgax.updates import UpdateRule, actor_critic, mean_kl, natural_step, policy_samples, value_regression

STEP_KINDS = ("kl", "fixed")
COMPATIBLE_CRITICS = ("ls", "td")


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
    critic: str = "ls"
    """How w is fitted: ls (ridge least squares to Â on this batch, by CG) or td (seed 002's TD rule on the
    compatible features, one step per time step of the batch, w kept across batches)."""
    compatible_lr: float = 0.1
    """β of the td critic's normalised step w += (β / tr F̂) Σ_n p (Â − ψᵀw) ψ (p: the sample weights, 1/num_envs
    each); stable below 2."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_rollout(self)
        check_critic_fit(self)
        if self.step not in STEP_KINDS:
            raise ConfigError(f"--step {self.step!r} is not known; use one of {', '.join(STEP_KINDS)}")
        check_natural_step(self)
        if self.critic not in COMPATIBLE_CRITICS:
            raise ConfigError(f"--critic {self.critic!r} is not known; use one of {', '.join(COMPATIBLE_CRITICS)}")
        check_positive(self, ("lr", "compatible_lr"))
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


def compatible_td_weights(policy_apply: Callable, params, batch: Batch, w: jax.Array, *, lr: float,
                          normalize_advantages: bool = False):
    """One pass of the TD critic on the compatible features through a [T, N] batch, in time order:

        w ← w + (β / c) Σ_n q_{t,n} (Â_{t,n} − ψ_{t,n}ᵀw) ψ_{t,n},   t = 0, …, T − 1,

    q = T · p (p the normalised `sample_weight`, so q = 1/N for uniform weights) and c = Σ_i p_i ‖ψ_i‖²
    = tr F̂, the batch's mean squared score norm: a normalised step (as in normalised LMS) that is
    stable for β < 2 whatever the scale of the scores, and one constant per batch, so the fixed
    point is unchanged. Its expected step is (β T / c)(ĝ − F̂w), with the fixed point of
    `compatible_critic_weights` at λ = 0.

    Args: w [d] flat (θ's flattening). Returns (w' [d], ĝ pytree, info: grad_norm, w_norm, critic_fit).
    """
    samples = policy_samples(policy_apply, params, batch, normalize_advantages)
    psi, unravel = score_matrix(policy_apply, params, samples.obs, samples.action)
    num_steps = batch.advantage.shape[0] if batch.advantage.ndim > 1 else 1
    p = samples.weight.astype(psi.dtype)
    advantage = samples.advantage.astype(psi.dtype)
    g = psi.T @ (p * advantage)
    scale = lr / jnp.maximum(jnp.sum(p * jnp.sum(jnp.square(psi), axis=-1)), 1e-12)

    def step(w, xs):
        psi_t, adv_t, q_t = xs
        return w + scale * psi_t.T @ (q_t * (adv_t - psi_t @ w)), None

    shaped = (psi.reshape(num_steps, -1, psi.shape[-1]), advantage.reshape(num_steps, -1),
              (num_steps * p).reshape(num_steps, -1))
    w, _ = jax.lax.scan(step, w.astype(psi.dtype), shaped)
    fit = psi @ w
    mean_adv = jnp.sum(p * advantage)
    total = jnp.sum(p * jnp.square(advantage - mean_adv))
    r2 = jnp.where(total > 0, 1.0 - jnp.sum(p * jnp.square(advantage - fit)) / jnp.where(total > 0, total, 1.0), 0.0)
    return w, unravel(g), {"grad_norm": jnp.linalg.norm(g), "w_norm": jnp.linalg.norm(w), "critic_fit": r2}


def natural_actor(policy_apply: Callable, *, step: str = "fixed", max_kl: float = 0.02, lr: float = 0.05,
                  damping: float = 1e-3, cg_iters: int = 20, cg_tol: float = 1e-8,
                  normalize_advantages: bool = True, critic: str = "ls", compatible_lr: float = 0.1) -> UpdateRule:
    """NAC's actor rule on the policy parameters: fit w (`compatible_critic_weights` for critic="ls",
    `compatible_td_weights` from the previous batch's w for "td"), then

        step="kl":    θ' = θ + √(2ε / ĝᵀw) w   (the natural step (12.12) with u = w; predicted KL ε at λ = 0)
        step="fixed": θ' = θ + α w             (Peters & Schaal's NAC actor update)

    State: () for "ls", w [d] (zeros at first) for "td". Metrics: those of the critic's fit,
    step_norm, mean_kl (of the step, on the batch).
    """
    if step not in STEP_KINDS:
        raise ValueError(f"natural_actor: unknown step {step!r}; use one of {STEP_KINDS}")
    if critic not in COMPATIBLE_CRITICS:
        raise ValueError(f"natural_actor: unknown critic {critic!r}; use one of {COMPATIBLE_CRITICS}")

    def init(params):
        return () if critic == "ls" else jnp.zeros_like(ravel_pytree(params)[0])

    def update(params, state, batch: Batch, key=None):
        if critic == "ls":
            w, g, info = compatible_critic_weights(policy_apply, params, batch, damping=damping, cg_iters=cg_iters,
                                                   cg_tol=cg_tol, normalize_advantages=normalize_advantages)
            w_flat = ravel_pytree(w)[0]
        else:
            w_flat, g, info = compatible_td_weights(policy_apply, params, batch, state, lr=compatible_lr,
                                                    normalize_advantages=normalize_advantages)
            state = w_flat
        theta, unravel = ravel_pytree(params)
        g_flat = ravel_pytree(g)[0]
        delta = natural_step(g_flat, w_flat, max_kl) if step == "kl" else lr * w_flat
        new_params = unravel(theta + delta)
        samples = policy_samples(policy_apply, params, batch)
        return new_params, state, {**info, "step_norm": jnp.linalg.norm(delta),
                                   "mean_kl": mean_kl(policy_apply, new_params, samples)}

    return UpdateRule(init, update)


def unweighted(rule: UpdateRule) -> UpdateRule:
    """`rule` applied to the batch without its `sample_weight` (a critic fitted uniformly)."""
    return UpdateRule(rule.init, lambda params, state, batch, key: rule.update(
        params, state, batch.replace(sample_weight=None), key))


def make_nac(config: NACConfig, env, num_iterations: int) -> Agent:
    """NAC: GAE(λ) advantages from V_v, `natural_actor` on params["policy"], `value_regression` on
    params["value"] (composed by `updates.actor_critic`)."""
    del num_iterations
    policy = make_policy(config, env)
    critic = make_value(config, env)
    rule = actor_critic(
        natural_actor(policy.apply, step=config.step, max_kl=config.max_kl, lr=config.lr, damping=config.cg_damping,
                      cg_iters=config.cg_iters, cg_tol=config.cg_tol,
                      normalize_advantages=config.normalize_advantages, critic=config.critic,
                      compatible_lr=config.compatible_lr),
        unweighted(value_regression(critic.apply, optax.adam(config.critic_lr, eps=1e-5),
                                    epochs=config.critic_epochs, minibatches=config.critic_minibatches)))

    def estimate(batch: Batch, value_params) -> Batch:
        batch = add_gae(batch, critic.apply, value_params, config.gamma, config.gae_lambda)
        if config.discount_weighting:
            batch = batch.replace(sample_weight=discount_weights(batch, config.gamma))
        return batch

    return actor_critic_agent(policy, critic, rule, estimate)
