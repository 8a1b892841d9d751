"""Natural policy gradient (`npg`) and trust region policy optimisation (`trpo`).

Both take GAE(λ) advantages from a value critic V_w (normalised per batch), move the policy along
the natural gradient u = (F + λI)⁻¹ ∇U (12.13), computed by conjugate gradient on Fisher-vector
products, and then re-fit the critic on the λ-returns (`updates.value_regression`):

    npg   θ' = θ + u √(2ε / ∇Uᵀu)                                   (12.12), no line search
    trpo  θ' = θ + α^j u √(2ε / ∇Uᵀu), the first j = 0, 1, ... with a better surrogate (12.21) and
          mean KL (12.19) ≤ ε                                        (12.18-12.20, Algorithm 12.5)

Exact advantages on tabular MDPs (`advantages="exact"`). When the environment carries its
`TabularMDP` (`env.model`), `learn` can ignore the sampled rollout and build an *exact batch*:
every pair (s, a), with advantage A^π(s, a) from the model and sample weight d^π(s) π(a|s)
(the normalised discounted visitation, lecture 000). Then every weighted batch mean of the update
rules is an exact expectation: the surrogate's gradient is (1 − γ)∇J (policy gradient theorem),
the Fisher products use the exact Fisher E_{s~d, a~π}[∇log π ∇log πᵀ], and the mean KL is
E_{s~d}[KL] — so the same `natural_gradient` / `trust_region` rules take the exact natural
gradient / exact TRPO step. The exact quantities are computed in float32 inside `learn`
(`pgax.exact.solve_policy`: two S×S linear solves).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import optax

from pgax.algorithms.blocks import (CriticFitBlock, GAEBlock, LineSearchBlock, NaturalStepBlock, NetworkBlock,
                                    RolloutBlock, check_critic_fit, check_gae, check_line_search, check_natural_step,
                                    check_rollout)
from pgax.algorithms.core import (Agent, AgentState, actor_critic_agent, check_network, gae_estimator, make_policy,
                                  make_value, mode_action, sample_action)
from pgax.batch import Batch
from pgax.errors import ConfigError
from pgax.exact import PolicySolution, TabularMDP, solve_policy
from pgax.spaces import Discrete
from pgax.updates import FISHERS, actor_critic, natural_gradient, trust_region, value_regression

ADVANTAGE_KINDS = ("gae", "exact")


@dataclass(frozen=True)
class NPGConfig(NetworkBlock, CriticFitBlock, GAEBlock, NaturalStepBlock, RolloutBlock):
    """Natural policy gradient: GAE(λ) advantages, one natural step of KL size ε per batch (12.12)."""

    num_envs: int = 4
    gae_lambda: float = 0.97
    critic_lr: float = 3e-3
    critic_epochs: int = 5
    advantages: str = "gae"
    """gae: GAE(λ) from the critic; exact: every (s, a), exact A^π, weight d^π(s)π(a|s) (tabular MDPs only)."""
    fisher: str = "state"
    """state: the policy's Fisher averaged over the batch's states (12.9); trajectory: the empirical Fisher of
    whole-trajectory scores (12.10), as Algorithms 12.4 and 12.5 use it (about episode length × the state one,
    so ε becomes a per-trajectory KL)."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_rollout(self)
        check_critic_fit(self)
        check_natural_step(self)
        check_gae(self)
        if self.advantages not in ADVANTAGE_KINDS:
            raise ConfigError(f"--advantages {self.advantages!r} is not known; use one of {', '.join(ADVANTAGE_KINDS)}")
        if self.fisher not in FISHERS:
            raise ConfigError(f"--fisher {self.fisher!r} is not known; use one of {', '.join(FISHERS)}")
        if self.fisher == "trajectory" and self.advantages == "exact":
            raise ConfigError("--fisher trajectory needs sampled trajectories, which --advantages exact does not use; "
                              "use --advantages gae or --fisher state")
        check_network(self)


@dataclass(frozen=True)
class TRPOConfig(LineSearchBlock, NPGConfig):
    """TRPO: the natural step of NPG as the start of a backtracking line search (12.20) on the
    surrogate (12.21) under the mean-KL bound (12.19)."""

    max_kl: float = 0.01
    """ε: the mean-KL bound (12.19) of every accepted step, and the natural step's predicted KL (12.12)."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        super().validate()
        check_line_search(self)


# ---------------------------------------------------------------------------------------------
# Exact advantages on tabular MDPs (float32, jittable)
# ---------------------------------------------------------------------------------------------


def float32_mdp(mdp: TabularMDP) -> TabularMDP:
    """The MDP with the continuation kernel and live rewards of `pgax.exact` folded in, as float32
    JAX arrays (terminal states: no transition into or out of them, no reward in them)."""
    P = jnp.asarray(mdp.transitions, jnp.float32)
    R = jnp.asarray(mdp.rewards, jnp.float32)
    if mdp.terminal is not None:
        live = 1.0 - jnp.asarray(mdp.terminal, jnp.float32)
        P = live[:, None, None] * P * live
        R = R * live[:, None]
    return TabularMDP(P, R, jnp.asarray(mdp.initial_distribution, jnp.float32),
                      jnp.asarray(mdp.discount, jnp.float32), None)


def exact_tabular_batch(policy_apply, policy_params, mdp: TabularMDP) -> tuple[Batch, PolicySolution]:
    """The exact batch of a policy on a tabular MDP (one-hot observations, Discrete actions).

    Leaves [T = S, N = A]: obs[s, a] = one-hot(s), action[s, a] = a, advantage = A^π(s, a),
    sample_weight = d^π(s) π(a|s), target = V^π(s), log_prob = log π(a|s); reward, terminated,
    truncated and next_obs are zeros (no transition is sampled). With these weights every batch
    mean of `updates` is an exact expectation over s ~ d^π, a ~ π. `mdp` as from `float32_mdp`.
    """
    num_states, num_actions = mdp.rewards.shape
    states = jnp.eye(num_states, dtype=jnp.float32)
    dist = policy_apply(policy_params, states)
    pi = dist.probs
    q = solve_policy(mdp, pi)
    obs = jnp.broadcast_to(states[:, None, :], (num_states, num_actions, num_states))
    action = jnp.broadcast_to(jnp.arange(num_actions, dtype=jnp.int32), (num_states, num_actions))
    zeros = jnp.zeros((num_states, num_actions), jnp.float32)
    batch = Batch(obs=obs, action=action, reward=zeros, terminated=zeros.astype(bool), truncated=zeros.astype(bool),
                  next_obs=obs, log_prob=dist.log_probs, advantage=q.advantage,
                  target=jnp.broadcast_to(q.value[:, None], zeros.shape), value=None,
                  sample_weight=q.visitation[:, None] * pi)
    return batch, q


def _check_exact(env) -> TabularMDP:
    mdp = getattr(env, "model", None)
    if not isinstance(mdp, TabularMDP):
        raise ConfigError(f"--advantages exact needs a tabular MDP model (Garnet-v0, Chain-v0, GridWorld-v0); "
                          f"environment {getattr(env, 'name', env)!r} has none. Use --advantages gae")
    if not isinstance(env.action_space, Discrete) or int(env.observation_space.shape[-1]) != mdp.num_states:
        raise ConfigError("--advantages exact needs one-hot observations of the MDP's states and Discrete actions")
    return mdp


# ---------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------


def _make_natural(config, env, policy_rule_factory) -> Agent:
    policy = make_policy(config, env)
    policy_rule = policy_rule_factory(policy.apply)
    act, act_deterministic = sample_action(policy), mode_action(policy)

    if config.advantages == "exact":
        mdp = float32_mdp(_check_exact(env))

        def init(key, obs):
            params = {"policy": policy.init(key, obs)}
            return AgentState(params, policy_rule.init(params["policy"]))

        def learn(state: AgentState, batch: Batch, key):
            del batch  # the sampled rollout is not used: the exact batch replaces it
            exact_batch, before = exact_tabular_batch(policy.apply, state.params["policy"], mdp)
            new_policy, rule_state, metrics = policy_rule.update(state.params["policy"], state.update_state,
                                                                 exact_batch, key)
            after = solve_policy(mdp, policy.apply(new_policy, jnp.eye(mdp.rewards.shape[0])).probs)
            metrics = {**metrics, "exact_return_before": before.expected_return,
                       "exact_return": after.expected_return}
            return AgentState({**state.params, "policy": new_policy}, rule_state), metrics

        return Agent(init, act, act_deterministic, learn)

    critic = make_value(config, env)
    rule = actor_critic(policy_rule, value_regression(critic.apply, optax.adam(config.critic_lr),
                                                      epochs=config.critic_epochs,
                                                      minibatches=config.critic_minibatches))

    return actor_critic_agent(policy, critic, rule, gae_estimator(critic, config))


def make_npg(config: NPGConfig, env, num_iterations: int) -> Agent:
    """NPG: GAE(λ) advantages (or exact ones), `updates.natural_gradient` with CG on Fisher-vector
    products and step size √(2ε/∇Uᵀu) (12.12), then the critic re-fit `updates.value_regression`.

    `num_iterations` is unused (no schedule). Metrics: those of `natural_gradient` (step_size,
    predicted_kl, mean_kl, surrogate_improvement, cg_iterations, cg_residual, grad_norm, step_norm)
    and of the critic (value_loss, explained_variance); with exact advantages, exact_return_before
    and exact_return (J before and after the step) instead of the critic's: that mode has no critic
    (params {"policy": ...}) and ignores the sampled rollout (see the module docstring).
    """
    del num_iterations
    return _make_natural(config, env, lambda apply: natural_gradient(
        apply, config.max_kl, solver="cg", cg_iters=config.cg_iters, damping=config.cg_damping,
        normalize_advantages=config.normalize_advantages, fisher=config.fisher))


def make_trpo(config: TRPOConfig, env, num_iterations: int) -> Agent:
    """TRPO: as `make_npg` with `updates.trust_region` (the natural step, then a backtracking line
    search accepting the first candidate that raises the surrogate with mean KL ≤ max_kl).

    Metrics: those of `make_npg` plus accepted and line_search_steps.
    """
    del num_iterations
    return _make_natural(config, env, lambda apply: trust_region(
        apply, config.max_kl, shrink=config.shrink, max_backtracks=config.max_backtracks, solver="cg",
        cg_iters=config.cg_iters, damping=config.cg_damping, normalize_advantages=config.normalize_advantages,
        fisher=config.fisher))
