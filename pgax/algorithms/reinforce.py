"""REINFORCE (Monte Carlo policy gradient) and REINFORCE with a learned value baseline.

Lecture 000 (seed 000), "REINFORCE" and "REINFORCE with Baseline": θ ← θ + α ∇log π_θ(a_t|s_t) Ψ_t
with Ψ_t the Monte Carlo return G_t (or G_t − V_w(s_t)), one gradient step per batch.

Rollouts in the jitted loop are fixed windows of num_steps steps per environment, so a window
rarely holds whole episodes. Without a critic there is nothing to bootstrap from, so a sample whose
episode has not ended inside the window gets `sample_weight` 0 (`estimators.episode_end_seen`);
for the whole-return variant so does a sample whose episode began before the window, since its G_0
is unknown (`estimators.episode_start_seen`). Whether a window's first step starts an episode is
known from the previous window (its last step ended one, or the run just reset the envs), so the
agent carries one flag per environment in its update state. A time-limit truncation ends an episode
here: G_t is the finite-horizon return, not bootstrapped.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax

from pgax import estimators
from pgax.algorithms.blocks import (CriticFitBlock, DiscountBlock, NetworkBlock, OptimizerBlock, RolloutBlock,
                                    annealed, check_critic_fit, check_optimizer, check_rollout)
from pgax.algorithms.core import (Agent, AgentState, check_network, discount_weighted, make_policy, make_value,
                                  mode_action, sample_action)
from pgax.batch import Batch
from pgax.errors import ConfigError
from pgax.updates import actor_critic, gradient_ascent, value_regression

RETURNS = ("reward_to_go", "whole_return")


def check_gamma_positive(config) -> None:
    """γ ∈ (0, 1]: the Monte Carlo estimators read episode ends from the discount, so γ = 0 is refused."""
    if not 0.0 < config.gamma <= 1.0:
        raise ConfigError(f"--gamma must lie in (0, 1] for Monte Carlo returns, got {config.gamma}")


@dataclass(frozen=True)
class ReinforceConfig(NetworkBlock, DiscountBlock, OptimizerBlock, RolloutBlock):
    """REINFORCE: Monte Carlo policy gradient ∇J ≈ mean_t ∇log π_θ(a_t|s_t) G_t over finished episodes."""

    num_steps: int = 256
    """Steps per environment in each rollout; only episodes that end inside this window are used."""
    lr: float = 1e-2
    optimizer_eps: float = 1e-8
    max_grad_norm: float = 0.0
    gamma: float = 0.99
    """Discount factor γ in (0, 1]."""
    hidden_sizes: tuple[int, ...] = (32,)
    """Hidden layer widths of the policy MLP (and of the baseline's)."""
    returns: str = "reward_to_go"
    """Weight of ∇log π(a_t|s_t): reward_to_go (G_t = Σ_{k≥t} γ^{k−t} r_k) or whole_return (the episode's G_0)."""
    normalize_advantages: bool = True
    """Standardise the weights over the batch's used samples (a constant baseline and a step scale)."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_rollout(self)
        check_optimizer(self)
        check_gamma_positive(self)
        if self.returns not in RETURNS:
            raise ConfigError(f"--returns {self.returns!r} is not known; use one of {', '.join(RETURNS)}")
        if self.returns == "whole_return" and self.discount_weighting:
            raise ConfigError("--returns whole_return already weights every step by G_0, discounted from the episode "
                              "start (unbiased as it is); drop --discount-weighting or use --returns reward_to_go")
        check_network(self)


@dataclass(frozen=True)
class ReinforceBaselineConfig(NetworkBlock, CriticFitBlock, DiscountBlock, OptimizerBlock, RolloutBlock):
    """REINFORCE with a learned baseline: Ψ_t = G_t − V_w(s_t), V_w re-fitted to G_t every iteration."""

    num_envs: int = 4
    num_steps: int = 512
    """Steps per environment in each rollout; only episodes that end inside this window are used
    (a window longer than the longest episode, 500 on CartPole-v1, holds an episode end in every env)."""
    lr: float = 1e-2
    optimizer_eps: float = 1e-8
    max_grad_norm: float = 0.0
    critic_lr: float = 1e-2
    critic_epochs: int = 10
    gamma: float = 0.99
    """Discount factor γ in (0, 1]."""
    hidden_sizes: tuple[int, ...] = (32,)
    """Hidden layer widths of the policy and baseline MLPs."""
    normalize_advantages: bool = True
    """Standardise G_t − V_w(s_t) over the batch's used samples."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_rollout(self)
        check_optimizer(self)
        check_critic_fit(self)
        check_gamma_positive(self)
        check_network(self)


def add_monte_carlo_returns(batch: Batch, gamma: float, returns: str = "reward_to_go",
                            first_is_start: bool | jax.Array = False) -> Batch:
    """Fill `target` with Monte Carlo returns and `sample_weight` with the finished-episode mask.

    For a [T, N] batch, with discount_t = γ (1 − terminated_t) and episodes also ended by
    truncation (finite-horizon returns, no bootstrap):

        reward_to_go:  target_t = G_t = Σ_{k=t}^{end} γ^{k−t} r_k        weight 1 iff the episode ends in the batch
        whole_return:  target_t = G_{t0} = Σ_{k=t0}^{end} γ^{k−t0} r_k   weight 1 iff it also starts in it

    Args:
        batch: leaves [T, N].
        gamma: γ > 0.
        returns: "reward_to_go" or "whole_return".
        first_is_start: scalar or [N] bool, step 0 of env n is an episode's first step.
    Returns:
        The batch with `target` [T, N] float and `sample_weight` [T, N] float in {0, 1}.
    """
    if returns not in RETURNS:
        raise ValueError(f"add_monte_carlo_returns: returns must be one of {RETURNS}, got {returns!r}")
    reward = batch.reward.astype(jnp.float32)
    discount = gamma * (1.0 - batch.terminated.astype(reward.dtype))
    over_envs = dict(in_axes=1, out_axes=1)
    if returns == "reward_to_go":
        target = jax.vmap(estimators.reward_to_go, **over_envs)(reward, discount, batch.truncated)
    else:
        target = jax.vmap(estimators.episode_returns, **over_envs)(reward, discount, batch.truncated)
    mask = jax.vmap(estimators.episode_end_seen, **over_envs)(discount, batch.truncated)
    if returns == "whole_return":
        first = jnp.broadcast_to(jnp.asarray(first_is_start, bool), reward.shape[1:])
        mask = mask & jax.vmap(estimators.episode_start_seen, in_axes=(1, 1, 0), out_axes=1)(
            discount, batch.truncated, first)
    return batch.replace(target=target, sample_weight=mask.astype(reward.dtype))


def _keep_if(used, new, old):
    """`new` where some sample was used, else `old` (no step from an empty batch)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(used, a, b), new, old)


def _policy_rule(config, policy, num_iterations):
    optimizer = optax.adam(annealed(config, num_iterations), eps=config.optimizer_eps)
    return gradient_ascent(policy.apply, optimizer=optimizer, max_grad_norm=config.max_grad_norm or None,
                           normalize_advantages=config.normalize_advantages)


def make_reinforce(config: ReinforceConfig, env, num_iterations: int) -> Agent:
    """REINFORCE: `add_monte_carlo_returns`, then one `updates.gradient_ascent` step with Adam on
    the surrogate whose gradient is the weighted mean Σ_i w_i G_i ∇log π_θ(a_i|s_i) (w: the
    normalised finished-episode mask).

    Update state: (Adam state, episode_open [num_envs] bool: the last window ended mid-episode).
    The learn function expects consecutive windows of the same num_envs environments, as the
    trainer produces. `num_iterations` (one step each) sets the learning-rate annealing horizon.
    """
    policy = make_policy(config, env)
    rule = _policy_rule(config, policy, num_iterations)

    def init(key, obs):
        params = {"policy": policy.init(key, obs)}
        return AgentState(params, (rule.init(params["policy"]), jnp.zeros(config.num_envs, bool)))

    def prepare(state: AgentState, batch: Batch) -> Batch:
        batch = add_monte_carlo_returns(batch, config.gamma, config.returns, first_is_start=~state.update_state[1])
        return discount_weighted(batch.replace(advantage=batch.target), config.gamma, config.discount_weighting)

    def learn(state: AgentState, batch: Batch, key):
        rule_state, _ = state.update_state
        batch = prepare(state, batch)
        used = jnp.sum(batch.sample_weight)
        new_policy, new_rule_state, metrics = rule.update(state.params["policy"], rule_state, batch, key)
        new_policy, new_rule_state = _keep_if(used > 0, (new_policy, new_rule_state),
                                              (state.params["policy"], rule_state))
        metrics["used_fraction"] = used / batch.sample_weight.size
        metrics["return_mean"] = jnp.sum(batch.sample_weight * batch.target) / jnp.maximum(used, 1.0)
        return AgentState({"policy": new_policy}, (new_rule_state, ~batch.done[-1])), metrics

    return Agent(init, sample_action(policy), mode_action(policy), learn, prepare=prepare)


def make_reinforce_baseline(config: ReinforceBaselineConfig, env, num_iterations: int) -> Agent:
    """REINFORCE with baseline: Â_t = G_t − V_w(s_t) from the critic before this batch, one
    `gradient_ascent` step (Adam) on the policy, then `value_regression` of V_w on G_t
    (`critic_epochs` × `critic_minibatches` Adam steps), composed by `updates.actor_critic`. Both use
    only finished episodes' samples (`sample_weight`). State and annealing as for `make_reinforce`.
    """
    policy = make_policy(config, env)
    critic = make_value(config)
    rule = actor_critic(_policy_rule(config, policy, num_iterations),
                        value_regression(critic.apply, optax.adam(config.critic_lr), epochs=config.critic_epochs,
                                         minibatches=config.critic_minibatches))

    def init(key, obs):
        k_policy, k_value = jax.random.split(key)
        params = {"policy": policy.init(k_policy, obs), "value": critic.init(k_value, obs)}
        return AgentState(params, (rule.init(params), jnp.zeros(config.num_envs, bool)))

    def prepare(state: AgentState, batch: Batch) -> Batch:
        batch = add_monte_carlo_returns(batch, config.gamma, "reward_to_go", first_is_start=~state.update_state[1])
        value = critic.apply(state.params["value"], batch.obs)
        batch = batch.replace(advantage=batch.target - value, value=value)
        return discount_weighted(batch, config.gamma, config.discount_weighting)

    def learn(state: AgentState, batch: Batch, key):
        rule_state, _ = state.update_state
        batch = prepare(state, batch)
        used = jnp.sum(batch.sample_weight)
        params, new_rule_state, metrics = rule.update(state.params, rule_state, batch, key)
        params, new_rule_state = _keep_if(used > 0, (params, new_rule_state), (state.params, rule_state))
        metrics["used_fraction"] = used / batch.sample_weight.size
        metrics["return_mean"] = jnp.sum(batch.sample_weight * batch.target) / jnp.maximum(used, 1.0)
        return AgentState(params, (new_rule_state, ~batch.done[-1])), metrics

    return Agent(init, sample_action(policy), mode_action(policy), learn, prepare=prepare)
