"""PPO with the KL-penalised surrogate (12.24) and an adaptive penalty β, GAE(λ) advantages from a
value critic re-fitted by regression: `updates.actor_critic(updates.kl_penalty, updates.value_regression)`.

The actor and the critic are trained separately (no shared loss): the policy rule sees the batch's
GAE advantages computed from the critic *before* this batch, then the critic is regressed on the
λ-returns of the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import optax

from pgax.algorithms.blocks import (CriticFitBlock, GAEBlock, NetworkBlock, OptimizerBlock, RolloutBlock, annealed,
                                    check_critic_fit, check_gae, check_optimizer, check_rollout, clip_then)
from pgax.algorithms.core import (Agent, actor_critic_agent, check_divides, check_network, check_positive,
                                  check_positive_ints, gae_estimator, make_policy, make_value)
from pgax.updates import actor_critic, kl_penalty, value_regression


@dataclass(frozen=True)
class PPOKLConfig(NetworkBlock, CriticFitBlock, GAEBlock, OptimizerBlock, RolloutBlock):
    """PPO with the KL-penalised surrogate L(θ') = mean[ρ Â − β KL(π_θ ‖ π_θ')] (12.24), adaptive β."""

    num_steps: int = 64
    lr: float = 5e-4
    epochs: int = 8
    """Passes of the policy optimizer over each batch."""
    minibatches: int = 4
    """Policy minibatches per epoch; must divide num_envs × num_steps."""
    beta: float = 1.0
    """Initial KL penalty coefficient β."""
    adaptive_beta: bool = True
    """Adapt β once per batch: measured KL d < target/1.5 → β/2, d > 1.5·target → 2β (PPO paper)."""
    kl_target: float = 0.02
    """Target mean KL per update for the β adaptation."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_rollout(self)
        check_positive_ints(self, ("epochs", "minibatches"))
        check_divides(self)
        check_optimizer(self)
        check_positive(self, ("beta", "kl_target"))
        check_critic_fit(self)
        check_gae(self)
        check_network(self)


def make_ppo_kl(config: PPOKLConfig, env, num_iterations: int) -> Agent:
    """PPO-KL: GAE(λ) from V_w, then `kl_penalty` on params["policy"] and `value_regression` on
    params["value"] (composed by `actor_critic`).

    `num_iterations` sets the policy learning-rate annealing horizon.
    """
    policy = make_policy(config, env)
    critic = make_value(config, env)
    lr = annealed(config, num_iterations * config.epochs * config.minibatches)
    policy_optimizer = clip_then(config, optax.adam(lr, eps=config.optimizer_eps))
    rule = actor_critic(
        kl_penalty(policy.apply, policy_optimizer, beta=config.beta, adaptive=config.adaptive_beta,
                   kl_target=config.kl_target, epochs=config.epochs, minibatches=config.minibatches,
                   normalize_advantages=config.normalize_advantages),
        value_regression(critic.apply, optax.adam(config.critic_lr, eps=1e-5), epochs=config.critic_epochs,
                         minibatches=config.critic_minibatches))

    return actor_critic_agent(policy, critic, rule, gae_estimator(critic, config))
