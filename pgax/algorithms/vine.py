"""TRPO with the vine sampling scheme (Schulman et al. 2015, §5.2; seed 001 "Sampling Schemes – 2.
Vine", eqs. (14)-(16)).

The trunk is the trainer's ordinary rollout, recorded with the environment states
(`Agent.record_env_state`). From it `num_branch_states` states s_n (the rollout set) are drawn; in
each, K actions a_{n,k} are tried — every action of a Discrete space ("all") or K samples from
π_old ("sampled") — and each is followed by a branch rollout of the current policy for
`branch_horizon` steps in total, restarting the JAX environment from the saved state. The K branches
of a state share their random numbers (common random numbers: the same environment and action keys),
so Q̂ differences between actions are not swamped by independent noise.

    Q̂(s_n, a_k) = Σ_{h<H} γ^h r_h + γ^H V(s_H)     (alive at the horizon)
                 = Σ_{h≤t} γ^h r_h + γ^{t+1} V(s')   (time-limit truncation after step t)
                 = Σ_{h≤t} γ^h r_h                   (termination after step t)

Per-state surrogate, exactly as in the paper:

    "all" (finite A = {a_1..a_K}):  L_n(θ) = Σ_k π_θ(a_k|s_n) Q̂(s_n, a_k)                         (15)
    "sampled" (self-normalised):    L_n(θ) = Σ_k ρ_k Q̂(s_n, a_k) / Σ_k ρ_k                         (16)
                                    with ρ_k = π_θ(a_k|s_n) / π_old(a_k|s_n)

L(θ) = mean_n L_n(θ), maximised by the TRPO step: the natural step (12.12) from CG on Fisher-vector
products, then the backtracking line search (12.20) under the mean KL (12.19) ≤ max_kl.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from pgax import linalg
from pgax.algorithms.blocks import (CriticFitBlock, DiscountBlock, LineSearchBlock, NaturalStepBlock, NetworkBlock,
                                    RolloutBlock, check_critic_fit, check_discount, check_line_search,
                                    check_natural_step, check_rollout)
from pgax.algorithms.core import (Agent, AgentState, check_network, check_positive_ints, discount_weights,
                                  make_policy, make_value, mode_action, sample_action)
from pgax.batch import Batch
from pgax.errors import ConfigError
from pgax.spaces import Discrete, RestorableEnv
from pgax.updates import FlatPolicyProblem, natural_proposal, trust_region_search, value_regression

BRANCH_ACTIONS = ("all", "sampled")


@dataclass(frozen=True)
class VineConfig(NetworkBlock, CriticFitBlock, DiscountBlock, LineSearchBlock, NaturalStepBlock, RolloutBlock):
    """TRPO with vine sampling: K actions per sampled state, each followed by a branch rollout."""

    num_steps: int = 32
    """Trunk steps per environment in each rollout (the states the branches start from)."""
    max_kl: float = 0.01
    """Trust-region size δ: mean KL(π_old ‖ π) over the trunk states ≤ δ."""
    critic_epochs: int = 10
    critic_minibatches: int = 2
    """Critic minibatches per epoch; must divide num_branch_states (the critic fits the branch states' returns)."""
    num_branch_states: int = 64
    """States drawn (without replacement) from the trunk's num_envs × num_steps for branching: the rollout set."""
    branch_actions: str = "all"
    """all: every action of a Discrete space, surrogate (15); sampled: K actions from π_old, the
    self-normalised surrogate (16)."""
    num_branch_actions: int = 4
    """K, the actions per branch state when --branch-actions sampled."""
    branch_horizon: int = 100
    """Steps of each branch rollout (the first with the branch's action); bootstrap γ^H V(s_H) if still alive."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_rollout(self)
        check_positive_ints(self, ("num_branch_states", "num_branch_actions", "branch_horizon"))
        check_natural_step(self)
        check_line_search(self)
        check_critic_fit(self, divides_batch=False)
        if self.branch_actions not in BRANCH_ACTIONS:
            raise ConfigError(f"--branch-actions {self.branch_actions!r} is not known; use one of "
                              f"{', '.join(BRANCH_ACTIONS)}")
        if self.num_branch_states > self.num_envs * self.num_steps:
            raise ConfigError(f"--num-branch-states {self.num_branch_states} exceeds the trunk's num_envs × num_steps "
                              f"= {self.num_envs * self.num_steps} states; lower it or lengthen the trunk")
        if self.num_branch_states % self.critic_minibatches:
            raise ConfigError(f"--critic-minibatches {self.critic_minibatches} does not divide --num-branch-states "
                              f"{self.num_branch_states}; choose a divisor")
        if self.branch_actions == "sampled" and self.num_branch_actions < 2:
            raise ConfigError("--num-branch-actions must be at least 2 for the self-normalised estimator")
        check_discount(self)
        check_network(self)


def vine_surrogate(log_prob: jax.Array, old_log_prob: jax.Array, q: jax.Array, self_normalised: bool) -> jax.Array:
    """mean_n L_n over the rollout set; log_prob, old_log_prob, q: [N_b, K] (15) / (16).

    The per-state constant b_n (Σ_k π_old Q̂ for (15), mean_k Q̂ for (16)) is subtracted from Q̂ first:
    both estimators are shift-equivariant (L_n(θ; Q̂ − b) = L_n(θ; Q̂) − b exactly, as Σ_k π_θ(a_k|s) = 1
    for (15) and by the normalisation for (16)), so values, gradients and the line search's gains
    are unchanged, while the float32 cancellation of large returns is avoided.
    """
    if self_normalised:
        q = q - jnp.mean(q, axis=1, keepdims=True)
        ratio = jnp.exp(log_prob - old_log_prob)
        per_state = jnp.sum(ratio * q, axis=1) / jnp.sum(ratio, axis=1)
    else:
        old = jnp.exp(old_log_prob)
        q = q - jnp.sum(old * q, axis=1, keepdims=True)
        per_state = jnp.sum(jnp.exp(log_prob) * q, axis=1)
    return jnp.mean(per_state)


def branch_q(env: RestorableEnv, policy_apply: Callable, value_apply: Callable, policy_params, value_params,
             env_state, obs: jax.Array, first_action: jax.Array, key: jax.Array, horizon: int,
             gamma: float) -> jax.Array:
    """Q̂ of one branch (single environment): `first_action` in `env_state` (observation `obs`), then
    the policy for horizon − 1 steps, bootstrapped as in the module docstring. vmap over actions with
    the same `key` (common random numbers) and over states."""

    def body(carry, inputs):
        state, obs, total, discount, alive, boot_obs, boot_discount = carry
        i, k = inputs
        act_key, env_key = jax.random.split(k)
        sampled = policy_apply(policy_params, obs[None]).sample(act_key)[0]
        action = jnp.where(i == 0, first_action, sampled)
        t = env.step(env_key, state, action)
        total = total + jnp.where(alive, discount * t.reward, 0.0)
        discount = discount * gamma
        truncated = alive & t.truncated & ~t.terminated
        terminated = alive & t.terminated
        boot_obs = jnp.where(truncated, t.final_obs, boot_obs)
        boot_discount = jnp.where(truncated, discount, jnp.where(terminated, 0.0, boot_discount))
        alive = alive & ~(t.terminated | t.truncated)
        boot_obs = jnp.where(alive, t.obs, boot_obs)
        boot_discount = jnp.where(alive, discount, boot_discount)
        return (t.state, t.obs, total, discount, alive, boot_obs, boot_discount), None

    zero = jnp.zeros((), jnp.float32)
    init = (env_state, obs, zero, jnp.ones((), jnp.float32), jnp.ones((), bool), obs, zero)
    keys = jax.random.split(key, horizon)
    (_, _, total, _, _, boot_obs, boot_discount), _ = jax.lax.scan(body, init, (jnp.arange(horizon), keys))
    return total + boot_discount * value_apply(value_params, boot_obs[None])[0]


def make_vine(config: VineConfig, env, num_iterations: int) -> Agent:
    """Vine TRPO on a JAX-native `env` (branches restart `env.step` from recorded states).

    learn: draw the rollout set, roll out the branches, Q̂ [N_b, K]; TRPO step on `vine_surrogate`
    (Fisher products and the mean-KL constraint over all trunk states); then `value_regression` of
    V on the branch states' value estimates (Σ_k π_old(a_k|s_n) Q̂_k for "all", mean_k Q̂_k for
    "sampled"). Per iteration the agent simulates num_envs × num_steps trunk steps plus at most
    num_branch_states × K × branch_horizon branch steps.
    """
    del num_iterations
    if not isinstance(env, RestorableEnv):
        raise ConfigError(f"vine restarts branch rollouts from saved states, which only a JAX-native environment "
                          f"allows; {type(env).__name__} cannot be reset to a state — use a JaxEnv id "
                          "(gymnax or pgax's own)")
    discrete = isinstance(env.action_space, Discrete)
    if config.branch_actions == "all" and not discrete:
        raise ConfigError(f"--branch-actions all enumerates a Discrete action space; this environment's is "
                          f"{env.action_space!r}: use --branch-actions sampled")
    policy = make_policy(config, env)
    critic = make_value(config, env)
    value_rule = value_regression(critic.apply, optax.adam(config.critic_lr, eps=1e-5), epochs=config.critic_epochs,
                                  minibatches=config.critic_minibatches)
    self_normalised = config.branch_actions == "sampled"
    num_actions = env.action_space.n if (discrete and not self_normalised) else config.num_branch_actions

    def init(key, obs):
        k_policy, k_value = jax.random.split(key)
        params = {"policy": policy.init(k_policy, obs), "value": critic.init(k_value, obs)}
        return AgentState(params, value_rule.init(params["value"]))

    def learn(state: AgentState, batch: Batch, key):
        params = state.params
        choice_key, action_key, branch_key, value_key = jax.random.split(key, 4)
        trunk_obs = batch.obs.reshape((-1,) + batch.obs.shape[2:])
        trunk_states = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), batch.env_state)
        index = jax.random.choice(choice_key, trunk_obs.shape[0], (config.num_branch_states,), replace=False)
        obs = trunk_obs[index]
        env_states = jax.tree_util.tree_map(lambda x: x[index], trunk_states)

        old_dist = jax.lax.stop_gradient(policy.apply(params["policy"], obs))
        if self_normalised:
            actions = jax.vmap(old_dist.sample)(jax.random.split(action_key, num_actions))  # [K, N_b, ...]
            actions = jnp.swapaxes(actions, 0, 1)
        else:
            actions = jnp.broadcast_to(jnp.arange(num_actions, dtype=jnp.int32),
                                       (config.num_branch_states, num_actions))

        def per_state(env_state, o, state_actions, k):
            return jax.vmap(lambda a: branch_q(env, policy.apply, critic.apply, params["policy"], params["value"],
                                               env_state, o, a, k, config.branch_horizon, config.gamma))(state_actions)

        q = jax.vmap(per_state)(env_states, obs, actions,
                                jax.random.split(branch_key, config.num_branch_states))  # [N_b, K]
        q = jax.lax.stop_gradient(q)
        if config.discount_weighting:  # γ^τ of each branch state, τ its step within the episode
            weight = discount_weights(batch, config.gamma).reshape(-1)[index]
        else:
            weight = jnp.ones_like(q[:, 0])

        def log_probs(policy_params):
            dist = policy.apply(policy_params, obs)
            return jax.vmap(dist.log_prob, in_axes=1, out_axes=1)(actions)  # [N_b, K]

        old_log_prob = log_probs(params["policy"])
        theta, unravel = ravel_pytree(params["policy"])
        trunk_old = jax.lax.stop_gradient(policy.apply(params["policy"], trunk_obs))

        def objective(flat):
            return vine_surrogate(log_probs(unravel(flat)), old_log_prob, weight[:, None] * q, self_normalised)

        def kl(flat):
            return jnp.mean(trunk_old.kl(policy.apply(unravel(flat), trunk_obs)))

        fvp_tree = linalg.fisher_vector_product(lambda p: policy.apply(p, trunk_obs), params["policy"])
        problem = FlatPolicyProblem(theta, unravel, objective, kl, lambda v: ravel_pytree(fvp_tree(unravel(v)))[0])
        proposal = natural_proposal(problem, config.max_kl, cg_iters=config.cg_iters, damping=config.cg_damping)
        new_theta, trpo_metrics = trust_region_search(proposal, config.max_kl, shrink=config.shrink,
                                                      max_backtracks=config.max_backtracks)

        if self_normalised:
            value_target = jnp.mean(q, axis=1)
        else:
            value_target = jnp.sum(jnp.exp(old_log_prob) * q, axis=1)
        value_batch = Batch(obs=obs, action=None, reward=None, terminated=None, truncated=None, next_obs=None,
                            log_prob=None, target=value_target, value=critic.apply(params["value"], obs))
        value_params, value_state, value_metrics = value_rule.update(params["value"], state.update_state,
                                                                     value_batch, value_key)
        metrics = {
            **trpo_metrics,  # surrogate_improvement, mean_kl, accepted, line_search_steps, grad_norm, step_norm, cg_*
            "q_mean": jnp.mean(q), "q_action_spread": jnp.mean(jnp.max(q, axis=1) - jnp.min(q, axis=1)),
            **value_metrics,  # value_loss, explained_variance (of V before the fit, on the branch states)
        }
        return AgentState({"policy": unravel(new_theta), "value": value_params}, value_state), metrics

    return Agent(init, sample_action(policy), mode_action(policy), learn, record_env_state=True)
