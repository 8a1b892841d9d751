"""PPO-clip: GAE(λ) advantages from a value critic, then the clipped surrogate (12.22) with value
loss and entropy bonus, `epochs` × `minibatches` Adam steps per batch (`updates.ppo_clip`)."""

from __future__ import annotations

from dataclasses import dataclass

import optax

from pgax.algorithms.core import (Agent, actor_critic_agent, check_divides, check_network, check_non_negative,
                                  check_positive, check_positive_ints, check_unit_interval, gae_estimator,
                                  make_policy, make_value)
from pgax.updates import ppo_clip


@dataclass(frozen=True)
class PPOConfig:
    """Proximal policy optimisation with the clipped surrogate (12.22) and GAE(λ) advantages."""

    num_envs: int = 4
    """Environments stepped in parallel (vmapped) per seed."""
    num_steps: int = 128
    """Steps per environment in each rollout; a batch holds num_envs × num_steps transitions."""
    epochs: int = 4
    """Passes over each batch."""
    minibatches: int = 4
    """Minibatches per epoch; must divide num_envs × num_steps."""
    lr: float = 2.5e-4
    """Adam learning rate (initial value when annealed)."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run."""
    optimizer_eps: float = 1e-5
    """Adam's ε."""
    max_grad_norm: float = 0.5
    """Clip the gradient to this global L2 norm (12.2)."""
    gamma: float = 0.99
    """Discount factor γ."""
    gae_lambda: float = 0.95
    """GAE trace parameter λ (0: TD error, 1: Monte Carlo return minus value)."""
    clip_eps: float = 0.2
    """Clip range ε of the probability ratio (also the value-clipping range)."""
    vf_coef: float = 0.5
    """Weight of the value loss in the joint loss."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    normalize_advantages: bool = True
    """Standardise advantages within each minibatch."""
    clip_value_loss: bool = True
    """Clip the critic's change around its pre-update values, as reference PPO does."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of the actor and critic MLPs."""
    activation: str = "tanh"
    """Hidden activation: tanh or relu."""
    policy: str = "mlp"
    """Policy: mlp (Categorical / Gaussian head), linear (the seeds' linear Gaussian), tabular (softmax table)."""

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_positive_ints(self, ("num_envs", "num_steps", "epochs", "minibatches"))
        check_divides(self)
        check_positive(self, ("lr", "clip_eps", "max_grad_norm", "optimizer_eps"))
        check_non_negative(self, ("vf_coef", "ent_coef"))
        check_unit_interval(self, ("gamma", "gae_lambda"))
        check_network(self)


def make_ppo(config: PPOConfig, env, num_iterations: int) -> Agent:
    """PPO-clip: GAE(λ) advantages from a value critic, then `updates.ppo_clip`.

    `num_iterations` (rollout-update cycles in the run) sets the learning-rate annealing horizon.
    """
    policy = make_policy(config, env)
    critic = make_value(config)
    if config.anneal_lr:
        total_steps = max(1, num_iterations * config.epochs * config.minibatches)
        lr = optax.linear_schedule(config.lr, 0.0, total_steps)
    else:
        lr = config.lr
    optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                            optax.adam(lr, eps=config.optimizer_eps))
    rule = ppo_clip(policy.apply, critic.apply, optimizer, clip_eps=config.clip_eps, vf_coef=config.vf_coef,
                    ent_coef=config.ent_coef, epochs=config.epochs, minibatches=config.minibatches,
                    normalize_advantages=config.normalize_advantages, clip_value_loss=config.clip_value_loss)

    return actor_critic_agent(policy, critic, rule, gae_estimator(critic, config.gamma, config.gae_lambda))
