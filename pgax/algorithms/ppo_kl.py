"""PPO with the KL-penalised surrogate (12.24) and an adaptive penalty β, GAE(λ) advantages from a
value critic re-fitted by regression: `updates.actor_critic(updates.kl_penalty, updates.value_regression)`.

The actor and the critic are trained separately (no shared loss): the policy rule sees the batch's
GAE advantages computed from the critic *before* this batch, then the critic is regressed on the
λ-returns of the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import optax

from pgax.algorithms.core import (Agent, actor_critic_agent, check_network, check_positive, check_positive_ints,
                                  check_unit_interval, gae_estimator, make_policy, make_value)
from pgax.errors import ConfigError
from pgax.updates import actor_critic, kl_penalty, value_regression


@dataclass(frozen=True)
class PPOKLConfig:
    """PPO with the KL-penalised surrogate L(θ') = mean[ρ Â − β KL(π_θ ‖ π_θ')] (12.24), adaptive β."""

    num_envs: int = 8
    """Environments stepped in parallel (vmapped) per seed."""
    num_steps: int = 64
    """Steps per environment in each rollout; a batch holds num_envs × num_steps transitions."""
    epochs: int = 8
    """Passes of the policy optimizer over each batch."""
    minibatches: int = 4
    """Policy minibatches per epoch; must divide num_envs × num_steps."""
    lr: float = 5e-4
    """Adam learning rate of the policy (initial value when annealed)."""
    anneal_lr: bool = True
    """Decay the policy learning rate linearly to 0 over the run."""
    max_grad_norm: float = 0.5
    """Clip the policy gradient to this global L2 norm (12.2)."""
    beta: float = 1.0
    """Initial KL penalty coefficient β."""
    adaptive_beta: bool = True
    """Adapt β once per batch: measured KL d < target/1.5 → β/2, d > 1.5·target → 2β (PPO paper)."""
    kl_target: float = 0.02
    """Target mean KL per update for the β adaptation."""
    normalize_advantages: bool = True
    """Standardise the advantages of each batch."""
    gamma: float = 0.99
    """Discount factor γ."""
    gae_lambda: float = 0.95
    """GAE trace parameter λ (0: TD error, 1: Monte Carlo return minus value)."""
    critic_lr: float = 1e-3
    """Adam learning rate of the critic's regression on the λ-returns."""
    critic_epochs: int = 8
    """Passes of the critic optimizer over each batch."""
    critic_minibatches: int = 4
    """Critic minibatches per epoch; must divide num_envs × num_steps."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and critic MLPs."""
    activation: str = "tanh"
    """Hidden activation: tanh or relu."""
    policy: str = "mlp"
    """Policy: mlp (Categorical / Gaussian head), linear (the seeds' linear Gaussian), tabular (softmax table)."""
    linear_init: tuple[float, ...] | None = None
    """Initial θ of the linear Gaussian policy (weights then σ); default zeros and σ = 1."""
    init_log_std: float = 0.0
    """Initial log standard deviation of the MLP Gaussian head (Box actions)."""

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_positive_ints(self, ("num_envs", "num_steps", "epochs", "minibatches", "critic_epochs",
                                   "critic_minibatches"))
        for name in ("minibatches", "critic_minibatches"):
            if self.batch_size % getattr(self, name):
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)} does not divide the batch of "
                                  f"num_envs × num_steps = {self.batch_size}; choose a divisor of {self.batch_size}")
        check_positive(self, ("lr", "max_grad_norm", "beta", "kl_target", "critic_lr"))
        check_unit_interval(self, ("gamma", "gae_lambda"))
        check_network(self)


def make_ppo_kl(config: PPOKLConfig, env, num_iterations: int) -> Agent:
    """PPO-KL: GAE(λ) from V_w, then `kl_penalty` on params["policy"] and `value_regression` on
    params["value"] (composed by `actor_critic`).

    `num_iterations` sets the policy learning-rate annealing horizon.
    """
    policy = make_policy(config, env)
    critic = make_value(config)
    lr = config.lr
    if config.anneal_lr:
        lr = optax.linear_schedule(config.lr, 0.0, max(1, num_iterations * config.epochs * config.minibatches))
    policy_optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr, eps=1e-5))
    rule = actor_critic(
        kl_penalty(policy.apply, policy_optimizer, beta=config.beta, adaptive=config.adaptive_beta,
                   kl_target=config.kl_target, epochs=config.epochs, minibatches=config.minibatches,
                   normalize_advantages=config.normalize_advantages),
        value_regression(critic.apply, optax.adam(config.critic_lr, eps=1e-5), epochs=config.critic_epochs,
                         minibatches=config.critic_minibatches))

    return actor_critic_agent(policy, critic, rule, gae_estimator(critic, config.gamma, config.gae_lambda))
