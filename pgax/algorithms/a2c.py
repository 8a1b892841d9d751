"""A2C: synchronous advantage actor-critic. N vectorised environments × n steps per batch, GAE(λ)
advantages from a value critic, ONE optimizer step per batch on the joint loss
(`updates.advantage_actor_critic`):

    loss(θ, w) = −mean_t log π_θ(a_t|s_t) Â_t + c_v · ½ mean_t (V_w(s_t) − Ĝ_t)² − c_e · mean_t H[π_θ(·|s_t)]

Lecture 000 (seed 000), "Advantage Actor-Critic" in the policy-gradient summary and "Reducing
Variance with Critic"; the n-step and GAE estimators of the 2024 lecture (seed 003, "Better
Advantage Estimation"). With λ = 1 the estimate is the bootstrapped n-step return of A3C/A2C:
step t of a window of n gets Σ_{k=t}^{n−1} γ^{k−t} r_k + γ^{n−t} V(s_n) − V(s_t) (shorter at an
episode end); λ < 1 mixes all k-step estimators geometrically (GAE). Termination stops the return,
time-limit truncation bootstraps from V(final observation).
"""

from __future__ import annotations

from dataclasses import dataclass

import optax

from pgax.algorithms.blocks import (GAEBlock, NetworkBlock, OptimizerBlock, RolloutBlock, annealed, check_gae,
                                    check_optimizer, check_rollout, clip_then)
from pgax.algorithms.core import (Agent, actor_critic_agent, check_network, check_non_negative, gae_estimator,
                                  make_policy, make_value)
from pgax.errors import ConfigError
from pgax.updates import advantage_actor_critic

OPTIMIZERS = ("rmsprop", "adam")


@dataclass(frozen=True)
class A2CConfig(NetworkBlock, GAEBlock, OptimizerBlock, RolloutBlock):
    """Advantage actor-critic: one step per batch on the joint loss, GAE(λ) / n-step advantages."""

    num_envs: int = 16
    num_steps: int = 16
    """Steps per environment in each rollout (n of the n-step return); a batch holds num_envs × n transitions."""
    lr: float = 1e-2
    gae_lambda: float = 1.0
    """GAE trace parameter λ: 1 gives the bootstrapped n-step return minus V, 0 the TD error."""
    optimizer: str = "rmsprop"
    """rmsprop (decay 0.99, no momentum, as A3C / A2C use) or adam."""
    vf_coef: float = 0.5
    """Weight c_v of the value loss in the joint loss."""
    ent_coef: float = 0.0
    """Weight c_e of the entropy bonus."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_rollout(self)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer {self.optimizer!r} is not known; use one of {', '.join(OPTIMIZERS)}")
        check_optimizer(self)
        check_non_negative(self, ("vf_coef", "ent_coef"))
        check_gae(self)
        check_network(self)


def make_a2c(config: A2CConfig, env, num_iterations: int) -> Agent:
    """A2C: `add_gae` (advantage Â, target Â + V, value V before the step), then one
    `updates.advantage_actor_critic` step with global-norm clipping and Adam or RMSprop.

    `num_iterations` (one optimizer step each) sets the learning-rate annealing horizon.
    """
    policy = make_policy(config, env)
    critic = make_value(config, env)
    lr = annealed(config, num_iterations)
    if config.optimizer == "adam":
        base = optax.adam(lr, eps=config.optimizer_eps)
    else:
        base = optax.rmsprop(lr, decay=0.99, eps=config.optimizer_eps)
    rule = advantage_actor_critic(policy.apply, critic.apply, clip_then(config, base),
                                  vf_coef=config.vf_coef, ent_coef=config.ent_coef,
                                  normalize_advantages=config.normalize_advantages)

    return actor_critic_agent(policy, critic, rule, gae_estimator(critic, config))
