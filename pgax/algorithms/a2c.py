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

from pgax.algorithms.core import (Agent, actor_critic_agent, check_network, check_non_negative,
                                  check_positive, check_positive_ints, check_unit_interval, gae_estimator,
                                  make_policy, make_value)
from pgax.errors import ConfigError
from pgax.updates import advantage_actor_critic

OPTIMIZERS = ("rmsprop", "adam")


@dataclass(frozen=True)
class A2CConfig:
    """Advantage actor-critic: one step per batch on the joint loss, GAE(λ) / n-step advantages."""

    num_envs: int = 16
    """Environments stepped in parallel (vmapped) per seed (N)."""
    num_steps: int = 16
    """Steps per environment in each rollout (n of the n-step return); a batch holds N × n transitions."""
    optimizer: str = "rmsprop"
    """rmsprop (decay 0.99, no momentum, as A3C / A2C use) or adam."""
    lr: float = 1e-2
    """Learning rate (initial value when annealed)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run."""
    optimizer_eps: float = 1e-5
    """ε of Adam / RMSprop."""
    max_grad_norm: float = 0.5
    """Clip the joint gradient to this global L2 norm (12.2)."""
    gamma: float = 0.99
    """Discount factor γ."""
    gae_lambda: float = 1.0
    """GAE trace parameter λ: 1 gives the bootstrapped n-step return minus V, 0 the TD error."""
    vf_coef: float = 0.5
    """Weight c_v of the value loss in the joint loss."""
    ent_coef: float = 0.0
    """Weight c_e of the entropy bonus."""
    normalize_advantages: bool = True
    """Standardise the advantages over each batch."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and critic MLPs."""
    activation: str = "tanh"
    """Hidden activation: tanh or relu."""
    policy: str = "mlp"
    """Policy: mlp (Categorical / Gaussian head), linear (the seeds' linear Gaussian), tabular (softmax table)."""
    linear_init: tuple[float, ...] | None = None
    """Initial θ of --policy linear (weights then σ); default zeros and σ = 1."""

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_positive_ints(self, ("num_envs", "num_steps"))
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer {self.optimizer!r} is not known; use one of {', '.join(OPTIMIZERS)}")
        check_positive(self, ("lr", "max_grad_norm", "optimizer_eps"))
        check_non_negative(self, ("vf_coef", "ent_coef"))
        check_unit_interval(self, ("gamma", "gae_lambda"))
        check_network(self)


def make_a2c(config: A2CConfig, env, num_iterations: int) -> Agent:
    """A2C: `add_gae` (advantage Â, target Â + V, value V before the step), then one
    `updates.advantage_actor_critic` step with global-norm clipping and Adam or RMSprop.

    `num_iterations` (one optimizer step each) sets the learning-rate annealing horizon.
    """
    policy = make_policy(config, env)
    critic = make_value(config)
    lr = optax.linear_schedule(config.lr, 0.0, max(1, num_iterations)) if config.anneal_lr else config.lr
    if config.optimizer == "adam":
        base = optax.adam(lr, eps=config.optimizer_eps)
    else:
        base = optax.rmsprop(lr, decay=0.99, eps=config.optimizer_eps)
    rule = advantage_actor_critic(policy.apply, critic.apply,
                                  optax.chain(optax.clip_by_global_norm(config.max_grad_norm), base),
                                  vf_coef=config.vf_coef, ent_coef=config.ent_coef,
                                  normalize_advantages=config.normalize_advantages)

    return actor_critic_agent(policy, critic, rule, gae_estimator(critic, config.gamma, config.gae_lambda))
