"""Online actor-critic: one-step TD actor-critic (`td_ac`) and TD(λ) actor-critic with eligibility
traces for actor and critic in the backward view (`td_lambda_ac`).

Source: lecture 000 (seeds/000_258194b867719426.txt), sections "Advantage Function" (the TD error
δ = r + γV(s') − V(s) is an unbiased estimate of A^π(s, a) when V = V^π), "MC vs TD Policy
Gradient" (Δθ = α (r + γV_v(s_{t+1}) − V_v(s_t)) ∇_θ log π_θ(s_t, a_t); "also TD-λ with
forward/backward view") and "Policy Gradient Summary" (TD actor-critic E[∇ log π δ], TD(λ)
actor-critic E[∇ log π δ e]).

Online, per step. One trainer iteration is a rollout of N = num_envs environments × T = num_steps
steps; `learn` walks the T steps in order with `lax.scan` and updates after every one of them, so
the parameters used at step t+1 already include step t's update (T = 1, the default, updates after
every environment step). At each step the N environments are updated synchronously: the update is
the mean of the N per-environment semi-gradient updates. Both are *semi*-gradients: δ is held fixed,
the target r + γV_w(s') is not differentiated.

Per step t, environment i (δ computed with the parameters before the step):

    δ_i   = c r_i + γ (1 − terminated_i) V_w(s'_i) − V_w(s_i)    truncation bootstraps from next_obs
    td_ac:         w ← w + β mean_i δ_i ∇_w V_w(s_i)
                   θ ← θ + α mean_i δ_i I_i ∇_θ log π_θ(a_i|s_i)
    td_lambda_ac:  z^w_i ← γ λ_w z^w_i + ∇_w V_w(s_i)
                   z^θ_i ← γ λ_θ z^θ_i + I_i ∇_θ log π_θ(a_i|s_i)
                   w ← w + β mean_i δ_i z^w_i,    θ ← θ + α mean_i δ_i z^θ_i
                   z_i ← 0 after an episode end (terminated or truncated)

I_i = γ^{t_i} (t_i: steps since the episode of env i began) when `discount_weighting` is set (the
episodic actor-critic's "I" factor, which makes the expected update the gradient of the start-state
value J(θ)); otherwise I_i = 1 (the default and common practice: every visited state weighs alike,
a biased but far less starved direction; with γ = 0.99 and 500-step CartPole episodes γ^t falls to
0.007 at the end).

Two options for finite-horizon tasks: `reward_scale` c multiplies r in δ (a critic at c·V gives
c·δ, so the actor's direction changes by the factor c only, which Adam ignores), and
`bootstrap_truncation=False` treats a time-limit truncation like a termination. Both are needed on
the simple regulator (γ = 1, its depth of 10 part of the objective): bootstrapping through the
truncation makes V the value of an undiscounted continuing chain, which does not exist (the critic
drifted to −3300 after 100k steps, flat in s), and without scaling the −s² targets of tens push every
weight of the MLP critic the same way under per-step Adam until it saturates into a constant
(measured: flat at −45 over s ∈ [−4, 4]); see docs/algorithms/td_ac.md.

"β mean δ ∇V" is taken by the optimizer: `optimizer="sgd"` is the plain rule above (the step is
learning_rate × direction); `optimizer="adam"` (the default) feeds the negated direction to Adam as
its gradient, which rescales it per coordinate; `anneal_lr` decays the step sizes linearly to 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax

from pgax.algorithms.blocks import DiscountBlock, NetworkBlock, OnlineRolloutBlock, STEP_OPTIMIZERS, check_rollout
from pgax.algorithms.core import (Agent, AgentState, check_network, check_non_negative, check_positive,
                                  check_unit_interval, make_policy, make_value, mode_action, sample_action)
from pgax.batch import Batch
from pgax.errors import ConfigError
from pgax.updates import ascend, critic_td_errors, next_discount_weight



@dataclass(frozen=True)
class OnlineActorCriticBlock(NetworkBlock, DiscountBlock, OnlineRolloutBlock):
    """What the online TD actor-critics share: step sizes, how a per-step direction is applied, δ's inputs."""

    actor_lr: float = 1e-3
    """Actor step size α."""
    critic_lr: float = 1e-3
    """Critic step size β."""
    optimizer: str = "adam"
    """How each per-step direction is applied: adam (Adam on it) or sgd (θ + α · direction)."""
    optimizer_eps: float = 1e-5
    """Adam's ε (optimizer adam only)."""
    anneal_lr: bool = False
    """Decay both step sizes linearly to 0 over the run (num_iterations × num_steps updates)."""
    max_grad_norm: float = 0.0
    """Clip each per-step direction to this global L2 norm, actor and critic separately (0: no clipping)."""
    reward_scale: float = 1.0
    """Multiply rewards by this c in δ: the critic learns c·V, the actor's direction scales by c only; keeps V in
    the range the MLP critic learns well (0.01 on the regulator, whose rewards −s² reach tens)."""
    bootstrap_truncation: bool = True
    """Bootstrap from V(next_obs) when an episode is cut by a time limit; --no-bootstrap-truncation treats the
    limit as the end of the task (finite-horizon problems such as the regulator with γ = 1, whose depth is
    part of the objective: with γ = 1 and bootstrapping, V has no fixed point and drifts without bound)."""
    discount_weighting: bool = False
    """Multiply the actor's step (td_lambda_ac: its trace input) by I = γ^t, t the step within the episode
    (the episodic algorithm's I factor)."""
    ent_coef: float = 0.0
    """Weight of an entropy bonus added to the actor's step (outside any trace; 0: the lecture's rule)."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        _validate_online(self)


@dataclass(frozen=True)
class TDACConfig(OnlineActorCriticBlock):
    """One-step TD actor-critic, online (lecture 000, "MC vs TD Policy Gradient"): after every
    environment step, w ← w + β δ ∇V_w(s) and θ ← θ + α δ ∇ log π_θ(a|s), δ = r + γV_w(s') − V_w(s)."""


@dataclass(frozen=True)
class TDLambdaACConfig(OnlineActorCriticBlock):
    """TD(λ) actor-critic, backward view (lecture 000, "Policy Gradient Summary": E[∇ log π δ e]):
    eligibility traces for the critic (of ∇V_w) and the actor (of ∇ log π_θ), one per environment."""

    actor_lr: float = 5e-4
    critic_lr: float = 2e-3
    anneal_lr: bool = True
    """Decay both step sizes linearly to 0 over the run (num_iterations × num_steps updates); it keeps the
    final policy from the late collapses that constant steps allow."""
    hidden_sizes: tuple[int, ...] = (32, 32)
    """Hidden layer widths of the actor and critic MLPs (smaller than td_ac's: each step reads and writes
    num_envs traces of every parameter)."""
    critic_lambda: float = 0.5
    """Trace decay λ_w of the critic's trace z^w ← γ λ_w z^w + ∇V_w(s) (0: one-step TD)."""
    actor_lambda: float = 0.5
    """Trace decay λ_θ of the actor's trace z^θ ← γ λ_θ z^θ + I ∇ log π_θ(a|s) (0: one-step TD actor-critic)."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        _validate_online(self)
        check_unit_interval(self, ("critic_lambda", "actor_lambda"))


def _validate_online(config) -> None:
    check_rollout(config)
    check_positive(config, ("actor_lr", "critic_lr", "optimizer_eps", "reward_scale"))
    check_non_negative(config, ("max_grad_norm", "ent_coef"))
    check_unit_interval(config, ("gamma",))
    if config.optimizer not in STEP_OPTIMIZERS:
        raise ConfigError(f"--optimizer {config.optimizer!r} is not known; use one of {', '.join(STEP_OPTIMIZERS)}")
    check_network(config)


def online_optimizer(config, learning_rate: float, num_iterations: int) -> optax.GradientTransformation:
    """The optax *descent* transformation that applies one per-step direction d as a step on −d:
    sgd gives θ + lr · d, adam Adam's step on the gradient −d; optionally after clipping d's norm, and
    with `config.anneal_lr` the step size decays linearly to 0 over num_iterations × num_steps updates."""
    if config.anneal_lr:
        learning_rate = optax.linear_schedule(learning_rate, 0.0, max(1, num_iterations * config.num_steps))
    parts = [optax.clip_by_global_norm(config.max_grad_norm)] if config.max_grad_norm > 0 else []
    parts.append(optax.sgd(learning_rate) if config.optimizer == "sgd"
                 else optax.adam(learning_rate, eps=config.optimizer_eps))
    return optax.chain(*parts)


def transitions(batch: Batch):
    """The batch as a scan sequence over time: a tuple of [T, N, ...] arrays."""
    return (batch.obs, batch.action, batch.reward, batch.terminated, batch.truncated, batch.next_obs)


def _step_metrics(delta, entropy, actor_direction, critic_direction, weight):
    return {"td_error": jnp.mean(delta), "value_loss": 0.5 * jnp.mean(jnp.square(delta)),
            "entropy": jnp.mean(entropy), "actor_grad_norm": optax.tree.norm(actor_direction),
            "critic_grad_norm": optax.tree.norm(critic_direction), "discount_weight": jnp.mean(weight)}


def td_error_and_weight(config, critic, params, update_state, transition):
    """([N] δ, [N] I) of one step: δ = c r + γ (1 − end) V_w(s') − V_w(s) (`updates.critic_td_errors`; c the
    reward scale, end = terminated, or also truncated with --no-bootstrap-truncation) and the episodic
    factor I = γ^t with --discount-weighting (else 1)."""
    obs, _, reward, terminated, truncated, next_obs = transition
    end = terminated if config.bootstrap_truncation else terminated | truncated
    delta, _ = critic_td_errors(critic.apply, params["value"], obs, config.reward_scale * reward, end, next_obs,
                                config.gamma)
    weight = update_state["discount_weight"] if config.discount_weighting else jnp.ones_like(delta)
    return delta, weight


def online_agent(policy, init, step) -> Agent:
    """The agent of an online rule: `learn` applies `step((params, update_state), transition) ->
    ((params, update_state), metrics)` to the batch's transitions in time order (one update per
    environment step, each the mean over the environments) and reports the metrics' means."""

    def learn(state: AgentState, batch: Batch, key):
        del key
        (params, update_state), metrics = jax.lax.scan(step, (state.params, state.update_state),
                                                       transitions(batch))
        return AgentState(params, update_state), _mean_over_steps(metrics)

    return Agent(init, sample_action(policy), mode_action(policy), learn)


def _mean_over_steps(metrics):
    return jax.tree_util.tree_map(jnp.mean, metrics)


def make_td_ac(config: TDACConfig, env, num_iterations: int) -> Agent:
    """One-step TD actor-critic, online (see the module docstring for the update).

    AgentState.params = {"policy": θ, "value": w}; update_state = {"actor_opt", "critic_opt",
    "discount_weight": [num_envs] I of each environment's current step}. `num_iterations` sets the
    annealing horizon (`anneal_lr`). `learn(state, batch [T, N], key)` requires N = config.num_envs.
    """
    policy = make_policy(config, env)
    critic = make_value(config, env)
    actor_opt = online_optimizer(config, config.actor_lr, num_iterations)
    critic_opt = online_optimizer(config, config.critic_lr, num_iterations)

    def init(key, obs):
        k_policy, k_value = jax.random.split(key)
        params = {"policy": policy.init(k_policy, obs), "value": critic.init(k_value, obs)}
        return AgentState(params, {"actor_opt": actor_opt.init(params["policy"]),
                                   "critic_opt": critic_opt.init(params["value"]),
                                   "discount_weight": jnp.ones((config.num_envs,), jnp.float32)})

    def step(carry, transition):
        params, opt = carry
        obs, action, _, terminated, truncated, _ = transition
        delta, weight = td_error_and_weight(config, critic, params, opt, transition)
        actor_weight = jax.lax.stop_gradient(weight * delta)

        def actor_objective(theta):  # its gradient: mean_i I_i δ_i ∇ log π(a_i|s_i) (+ entropy bonus)
            dist = policy.apply(theta, obs)
            return jnp.mean(actor_weight * dist.log_prob(action)) + config.ent_coef * jnp.mean(dist.entropy()), \
                dist.entropy()

        def critic_objective(w):  # its gradient: mean_i δ_i ∇V_w(s_i), the semi-gradient
            return jnp.mean(jax.lax.stop_gradient(delta) * critic.apply(w, obs))

        actor_direction, entropy = jax.grad(actor_objective, has_aux=True)(params["policy"])
        critic_direction = jax.grad(critic_objective)(params["value"])
        theta, actor_state = ascend(actor_opt, params["policy"], opt["actor_opt"], actor_direction)
        w, critic_state = ascend(critic_opt, params["value"], opt["critic_opt"], critic_direction)
        opt = {"actor_opt": actor_state, "critic_opt": critic_state,
               "discount_weight": next_discount_weight(opt["discount_weight"], terminated | truncated, config.gamma)}
        metrics = _step_metrics(delta, entropy, actor_direction, critic_direction, weight)
        return ({**params, "policy": theta, "value": w}, opt), metrics

    return online_agent(policy, init, step)


def make_td_lambda_ac(config: TDLambdaACConfig, env, num_iterations: int) -> Agent:
    """TD(λ) actor-critic with per-environment eligibility traces (backward view; module docstring).

    AgentState.params = {"policy": θ, "value": w}; update_state = {"actor_opt", "critic_opt",
    "discount_weight": [N], "actor_trace": z^θ, "critic_trace": z^w}, the traces pytrees shaped like
    θ and w with a leading [N = num_envs] axis, carried across iterations and zeroed after each
    environment's episode end. Per-environment gradients are `jax.vmap(jax.grad(...))`.
    λ_θ = λ_w = 0 gives exactly `td_ac`'s update; an entropy bonus (`ent_coef`) is added to the actor's
    direction outside the trace, as in td_ac.
    """
    policy = make_policy(config, env)
    critic = make_value(config, env)
    actor_opt = online_optimizer(config, config.actor_lr, num_iterations)
    critic_opt = online_optimizer(config, config.critic_lr, num_iterations)
    value_grad = jax.vmap(jax.grad(lambda w, o: critic.apply(w, o)), in_axes=(None, 0))
    score = jax.vmap(jax.grad(lambda theta, o, a: policy.apply(theta, o).log_prob(a)), in_axes=(None, 0, 0))

    def zeros_per_env(params):
        return jax.tree_util.tree_map(lambda p: jnp.zeros((config.num_envs,) + p.shape, p.dtype), params)

    def init(key, obs):
        k_policy, k_value = jax.random.split(key)
        params = {"policy": policy.init(k_policy, obs), "value": critic.init(k_value, obs)}
        return AgentState(params, {"actor_opt": actor_opt.init(params["policy"]),
                                   "critic_opt": critic_opt.init(params["value"]),
                                   "discount_weight": jnp.ones((config.num_envs,), jnp.float32),
                                   "actor_trace": zeros_per_env(params["policy"]),
                                   "critic_trace": zeros_per_env(params["value"])})

    def per_env(x, like):  # [N] → [N, 1, ..., 1] to broadcast against a per-environment leaf
        return x.reshape(x.shape + (1,) * (like.ndim - 1))

    def decay_and_add(trace, grads, decay, scale):
        return jax.tree_util.tree_map(lambda z, g: decay * z + per_env(scale, g) * g, trace, grads)

    def weighted_mean(delta, trace):  # mean_i δ_i z_i
        return jax.tree_util.tree_map(lambda z: jnp.mean(per_env(delta, z) * z, axis=0), trace)

    def step(carry, transition):
        params, opt = carry
        obs, action, _, terminated, truncated, _ = transition
        delta, weight = td_error_and_weight(config, critic, params, opt, transition)
        critic_trace = decay_and_add(opt["critic_trace"], value_grad(params["value"], obs),
                                     config.gamma * config.critic_lambda, jnp.ones_like(delta))
        actor_trace = decay_and_add(opt["actor_trace"], score(params["policy"], obs, action),
                                    config.gamma * config.actor_lambda, weight)
        actor_direction = weighted_mean(delta, actor_trace)
        entropy = policy.apply(params["policy"], obs).entropy()
        if config.ent_coef > 0:
            entropy_grad = jax.grad(lambda th: jnp.mean(policy.apply(th, obs).entropy()))(params["policy"])
            actor_direction = jax.tree_util.tree_map(lambda d, e: d + config.ent_coef * e, actor_direction,
                                                     entropy_grad)
        critic_direction = weighted_mean(delta, critic_trace)
        theta, actor_state = ascend(actor_opt, params["policy"], opt["actor_opt"], actor_direction)
        w, critic_state = ascend(critic_opt, params["value"], opt["critic_opt"], critic_direction)
        done = terminated | truncated
        reset = lambda trace: jax.tree_util.tree_map(  # noqa: E731
            lambda z: jnp.where(per_env(done, z), jnp.zeros_like(z), z), trace)
        opt = {"actor_opt": actor_state, "critic_opt": critic_state,
               "discount_weight": next_discount_weight(opt["discount_weight"], done, config.gamma),
               "actor_trace": reset(actor_trace), "critic_trace": reset(critic_trace)}
        metrics = _step_metrics(delta, entropy, actor_direction, critic_direction, weight)
        return ({**params, "policy": theta, "value": w}, opt), metrics

    return online_agent(policy, init, step)
