"""PPO-clip: GAE(λ) advantages from a value critic, then the clipped surrogate (12.22) with value
loss and entropy bonus, `epochs` × `minibatches` Adam steps per batch (`updates.ppo_clip`)."""

from __future__ import annotations

from dataclasses import dataclass

import optax

from pgax.algorithms.blocks import (GAEBlock, NetworkBlock, OptimizerBlock, RolloutBlock, annealed, check_gae,
                                    check_optimizer, check_rollout, clip_then)
from pgax.algorithms.core import (Agent, actor_critic_agent, check_divides, check_network, check_non_negative,
                                  check_positive, check_positive_ints, gae_estimator, make_policy, make_value)
from pgax.updates import ppo_clip


@dataclass(frozen=True)
class PPOConfig(NetworkBlock, GAEBlock, OptimizerBlock, RolloutBlock):
    """Proximal policy optimisation with the clipped surrogate (12.22) and GAE(λ) advantages."""

    num_envs: int = 4
    epochs: int = 4
    """Passes over each batch."""
    minibatches: int = 4
    """Minibatches per epoch; must divide num_envs × num_steps."""
    clip_eps: float = 0.2
    """Clip range ε of the probability ratio (also the value-clipping range)."""
    vf_coef: float = 0.5
    """Weight of the value loss in the joint loss."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    clip_value_loss: bool = True
    """Clip the critic's change around its pre-update values, as reference PPO does."""

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        check_rollout(self)
        check_positive_ints(self, ("epochs", "minibatches"))
        check_divides(self)
        check_optimizer(self)
        check_positive(self, ("clip_eps",))
        check_non_negative(self, ("vf_coef", "ent_coef"))
        check_gae(self)
        check_network(self)


def make_ppo(config: PPOConfig, env, num_iterations: int) -> Agent:
    """PPO-clip: GAE(λ) advantages from a value critic, then `updates.ppo_clip`.

    `num_iterations` (rollout-update cycles in the run) sets the learning-rate annealing horizon.
    """
    policy = make_policy(config, env)
    critic = make_value(config, env)
    lr = annealed(config, num_iterations * config.epochs * config.minibatches)
    optimizer = clip_then(config, optax.adam(lr, eps=config.optimizer_eps))
    rule = ppo_clip(policy.apply, critic.apply, optimizer, clip_eps=config.clip_eps, vf_coef=config.vf_coef,
                    ent_coef=config.ent_coef, epochs=config.epochs, minibatches=config.minibatches,
                    normalize_advantages=config.normalize_advantages, clip_value_loss=config.clip_value_loss)

    return actor_critic_agent(policy, critic, rule, gae_estimator(critic, config))
