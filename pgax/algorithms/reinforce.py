"""REINFORCE (Monte Carlo policy gradient) and REINFORCE with a learned value baseline.

Lecture 000 (seed 000), "REINFORCE" and "REINFORCE with Baseline": θ ← θ + α ∇log π_θ(a_t|s_t) Ψ_t
with Ψ_t the Monte Carlo return G_t (or G_t − V_w(s_t)), one gradient step per batch.

Rollouts in the jitted loop are fixed windows of num_steps steps per environment, so episodes cross
window boundaries. Without a critic there is nothing to bootstrap from: a sample's G_t is known only
once its episode has ended. So the agent keeps, per environment, the steps of the episode still open
at the end of a window (at most max_episode_steps − 1 of them, in its update state), and the next
learn step puts them in front of its window (`with_open_episode`): every sample is used exactly
once, in the update of the window in which its episode ends, with its whole return (and, for the
whole-return variant, its episode's G_0). Dropping the unfinished samples instead biases ĝ: whether a
sample is kept would depend on how soon its episode ends (`tests/test_algo_reinforce.py` measures
that bias against exact.policy_gradient). A time-limit truncation ends an episode here: G_t is the
finite-horizon return, not bootstrapped.

Scores are evaluated at the current θ. An episode open across an update was sampled by two
consecutive policies, so its held samples are one update old when used; with one step per window
this is the small lag of any Monte Carlo method on fixed windows (the alternative, waiting for every
environment's episode to end, idles environments).
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
    """REINFORCE: Monte Carlo policy gradient ∇J ≈ mean_t ∇log π_θ(a_t|s_t) G_t over samples of finished episodes."""

    num_steps: int = 256
    """Steps per environment in each rollout; a sample is used in the update of the window its episode ends in."""
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
    """Steps per environment in each rollout; a sample is used in the update of the window its episode ends in."""
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


def open_episode_store(num_slots: int, num_envs: int, obs: jax.Array, action: jax.Array) -> Batch:
    """An empty store of `num_slots` steps per environment for the episodes still open at the end of a
    window: a Batch with leaves [num_slots, num_envs, ...] shaped like one step's `obs` and `action`,
    `sample_weight` 1 on held steps (none yet) and `truncated` set on empty slots, so that the first
    held step reads as an episode start."""
    def slots(x, dtype=None):
        x = jnp.asarray(x)
        return jnp.zeros((num_slots, num_envs) + x.shape, dtype or x.dtype)

    empty = jnp.zeros((num_slots, num_envs), bool)
    return Batch(obs=slots(obs), action=slots(action), reward=slots(0.0, jnp.float32), terminated=empty,
                 truncated=~empty, next_obs=slots(obs), log_prob=slots(0.0, jnp.float32),
                 sample_weight=jnp.zeros((num_slots, num_envs), jnp.float32),
                 episode_step=jnp.zeros((num_slots, num_envs), jnp.int32))


def with_open_episode(store: Batch, batch: Batch) -> Batch:
    """[P + T, N]: the held open-episode steps in front of the window, `sample_weight` 1 on held and
    window steps and 0 on empty slots (whose `truncated` flag starts the next step's episode)."""
    window = batch.replace(sample_weight=jnp.ones(batch.reward.shape, jnp.float32), env_state=None,
                           advantage=None, target=None, value=None)
    fields = ("obs", "action", "reward", "terminated", "truncated", "next_obs", "log_prob", "sample_weight")
    joined = {f: jnp.concatenate([getattr(store, f), getattr(window, f).astype(getattr(store, f).dtype)])
              for f in fields}
    step = None if batch.episode_step is None else jnp.concatenate([store.episode_step,
                                                                    batch.episode_step.astype(jnp.int32)])
    return Batch(**joined, episode_step=step)


def hold_open_episode(joined: Batch, num_slots: int) -> tuple[Batch, jax.Array]:
    """The store for the next window: the last `num_slots` steps of `joined` that belong to the episode
    still open at its end (no episode end at or after them). Returns (store, overflow [N]: open steps
    that did not fit, 0 whenever episodes end by `max_episode_steps` = num_slots + 1)."""
    done = joined.terminated | joined.truncated
    ended_later = jnp.flip(jnp.cumsum(jnp.flip(done, 0), axis=0) > 0, 0)
    open_ = (~ended_later) & (joined.sample_weight > 0)
    start = joined.reward.shape[0] - num_slots
    keep = open_[start:]
    tail = jax.tree_util.tree_map(lambda x: x[start:], joined)
    episode_step = (jnp.zeros(keep.shape, jnp.int32) if tail.episode_step is None else tail.episode_step)
    store = tail.replace(terminated=jnp.zeros_like(keep), truncated=~keep, sample_weight=keep.astype(jnp.float32),
                         episode_step=episode_step, target=None)
    return store, jnp.sum(open_[:start], axis=0)


def _store_slots(env) -> int:
    limit = getattr(env, "max_episode_steps", None)
    if not limit:
        raise ConfigError(f"reinforce holds each unfinished episode until it ends, which needs a time limit; "
                          f"environment {getattr(env, 'name', env)!r} has none. Use an environment with "
                          "max_episode_steps, or a preset with a critic (a2c, ppo) that bootstraps")
    return int(limit) - 1


def _keep_if(used, new, old):
    """`new` where some sample was used, else `old` (no step from an empty batch)."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(used, a, b), new, old)


def _policy_rule(config, policy, num_iterations):
    optimizer = optax.adam(annealed(config, num_iterations), eps=config.optimizer_eps)
    return gradient_ascent(policy.apply, optimizer=optimizer, max_grad_norm=config.max_grad_norm or None,
                           normalize_advantages=config.normalize_advantages)


def make_reinforce(config: ReinforceConfig, env, num_iterations: int) -> Agent:
    """REINFORCE: the held open-episode steps in front of the window (`with_open_episode`),
    `add_monte_carlo_returns`, then one `updates.gradient_ascent` step with Adam on the surrogate
    whose gradient is the weighted mean Σ_i w_i G_i ∇log π_θ(a_i|s_i) (w: the normalised mask of
    samples whose episode ends in this window).

    Update state: (Adam state, the open-episode store [max_episode_steps − 1, num_envs]). The learn
    function expects consecutive windows of the same num_envs environments, as the trainer
    produces. `num_iterations` (one step each) sets the learning-rate annealing horizon.
    """
    policy = make_policy(config, env)
    rule = _policy_rule(config, policy, num_iterations)
    num_slots = _store_slots(env)

    def init(key, obs):
        k_policy, k_action = jax.random.split(key)
        params = {"policy": policy.init(k_policy, obs)}
        action = policy.apply(params["policy"], obs).sample(k_action)
        return AgentState(params, (rule.init(params["policy"]),
                                   open_episode_store(num_slots, config.num_envs, obs, action)))

    def prepare(state: AgentState, batch: Batch) -> Batch:
        joined = with_open_episode(state.update_state[1], batch)
        returns = add_monte_carlo_returns(joined, config.gamma, config.returns, first_is_start=True)
        returns = returns.replace(advantage=returns.target, sample_weight=returns.sample_weight * joined.sample_weight)
        return discount_weighted(returns, config.gamma, config.discount_weighting)

    def learn(state: AgentState, batch: Batch, key):
        rule_state, _ = state.update_state
        prepared = prepare(state, batch)
        used = jnp.sum(prepared.sample_weight)
        new_policy, new_rule_state, metrics = rule.update(state.params["policy"], rule_state, prepared, key)
        new_policy, new_rule_state = _keep_if(used > 0, (new_policy, new_rule_state),
                                              (state.params["policy"], rule_state))
        store, overflow = hold_open_episode(with_open_episode(state.update_state[1], batch), num_slots)
        metrics = {**metrics, **_episode_metrics(prepared, batch, used, overflow)}
        return AgentState({"policy": new_policy}, (new_rule_state, store)), metrics

    return Agent(init, sample_action(policy), mode_action(policy), learn, prepare=prepare)


def _episode_metrics(prepared: Batch, batch: Batch, used, overflow) -> dict:
    """used_fraction (samples used / window size: above 1 when held samples complete), return_mean."""
    return {"used_fraction": used / batch.reward.size,
            "return_mean": jnp.sum(prepared.sample_weight * prepared.target) / jnp.maximum(used, 1.0),
            "open_episode_overflow": jnp.sum(overflow).astype(jnp.float32)}


def make_reinforce_baseline(config: ReinforceBaselineConfig, env, num_iterations: int) -> Agent:
    """REINFORCE with baseline: held open-episode steps and Monte Carlo returns as in
    `make_reinforce`, Â_t = G_t − V_w(s_t) from the critic before this batch, one `gradient_ascent`
    step (Adam) on the policy, then `value_regression` of V_w on G_t (`critic_epochs` ×
    `critic_minibatches` Adam steps), composed by `updates.actor_critic`. Both use exactly the samples
    whose episode ends in this window (`sample_weight`). State and annealing as for `make_reinforce`.
    """
    policy = make_policy(config, env)
    critic = make_value(config, env)
    rule = actor_critic(_policy_rule(config, policy, num_iterations),
                        value_regression(critic.apply, optax.adam(config.critic_lr), epochs=config.critic_epochs,
                                         minibatches=config.critic_minibatches))
    num_slots = _store_slots(env)

    def init(key, obs):
        k_policy, k_value, k_action = jax.random.split(key, 3)
        params = {"policy": policy.init(k_policy, obs), "value": critic.init(k_value, obs)}
        action = policy.apply(params["policy"], obs).sample(k_action)
        return AgentState(params, (rule.init(params), open_episode_store(num_slots, config.num_envs, obs, action)))

    def prepare(state: AgentState, batch: Batch) -> Batch:
        joined = with_open_episode(state.update_state[1], batch)
        returns = add_monte_carlo_returns(joined, config.gamma, "reward_to_go", first_is_start=True)
        value = critic.apply(state.params["value"], returns.obs)
        returns = returns.replace(advantage=returns.target - value, value=value,
                                  sample_weight=returns.sample_weight * joined.sample_weight)
        return discount_weighted(returns, config.gamma, config.discount_weighting)

    def learn(state: AgentState, batch: Batch, key):
        rule_state, _ = state.update_state
        prepared = prepare(state, batch)
        used = jnp.sum(prepared.sample_weight)
        params, new_rule_state, metrics = rule.update(state.params, rule_state, prepared, key)
        params, new_rule_state = _keep_if(used > 0, (params, new_rule_state), (state.params, rule_state))
        store, overflow = hold_open_episode(with_open_episode(state.update_state[1], batch), num_slots)
        metrics = {**metrics, **_episode_metrics(prepared, batch, used, overflow)}
        return AgentState(params, (new_rule_state, store)), metrics

    return Agent(init, sample_action(policy), mode_action(policy), learn, prepare=prepare)
