"""Named algorithms as presets: estimator × critic × update rule, with typed default configs.

Layer 2. A preset is a frozen dataclass of hyperparameters (one docstring per field; the CLI is
generated from it) and a builder `make_agent(config, obs_space, action_space, num_iterations)`
that returns an `Agent`: the pure functions the trainer needs.

    Agent.init(key, obs)                   -> AgentState (params and update-rule state)
    Agent.act(params, obs, key)            -> (action, log_prob)  sampling for rollouts
    Agent.act_deterministic(params, obs)   -> action              the mode, for evaluation
    Agent.learn(agent_state, batch, key)   -> (agent_state, metrics)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from pgax import estimators
from pgax.batch import Batch
from pgax.critics import mlp_value
from pgax.errors import ConfigError
from pgax.policies import ACTIVATIONS, mlp_policy
from pgax.spaces import Space
from pgax.updates import ppo_clip


@struct.dataclass
class AgentState:
    """params: pytree trained by the update rule; update_state: the rule's own state."""

    params: Any
    update_state: Any


class Agent(NamedTuple):
    init: Callable
    act: Callable
    act_deterministic: Callable
    learn: Callable


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
    adam_eps: float = 1e-5
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

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    def validate(self) -> None:
        """Raise `ConfigError` with a one-line message naming the bad value and the fix."""
        for name in ("num_envs", "num_steps", "epochs", "minibatches"):
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(f"--{_flag(name)} must be a positive integer, got {value}")
        if self.batch_size % self.minibatches:
            raise ConfigError(
                f"--minibatches {self.minibatches} does not divide the batch of num_envs × num_steps = "
                f"{self.num_envs} × {self.num_steps} = {self.batch_size}; choose a divisor of {self.batch_size}")
        for name in ("lr", "clip_eps", "max_grad_norm", "adam_eps"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigError(f"--{_flag(name)} must be positive, got {value}")
        for name in ("vf_coef", "ent_coef"):
            value = getattr(self, name)
            if value < 0:
                raise ConfigError(f"--{_flag(name)} must be non-negative, got {value}")
        for name in ("gamma", "gae_lambda"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"--{_flag(name)} must lie in [0, 1], got {value}")
        if not self.hidden_sizes or any(h <= 0 for h in self.hidden_sizes):
            raise ConfigError(f"--hidden-sizes must be positive widths, got {self.hidden_sizes}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"--activation {self.activation!r} is not known; use one of {sorted(ACTIVATIONS)}")


def _flag(field_name: str) -> str:
    return field_name.replace("_", "-")


def make_ppo(config: PPOConfig, obs_space: Space, action_space: Space, num_iterations: int) -> Agent:
    """PPO-clip: GAE(λ) advantages from a value critic, then `updates.ppo_clip`.

    `num_iterations` (rollout-update cycles in the run) sets the learning-rate annealing horizon.
    """
    del obs_space
    policy = mlp_policy(action_space, config.hidden_sizes, config.activation)
    critic = mlp_value(config.hidden_sizes, config.activation)
    if config.anneal_lr:
        total_steps = max(1, num_iterations * config.epochs * config.minibatches)
        lr = optax.linear_schedule(config.lr, 0.0, total_steps)
    else:
        lr = config.lr
    optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                            optax.adam(lr, eps=config.adam_eps))
    rule = ppo_clip(policy.apply, critic.apply, optimizer, clip_eps=config.clip_eps, vf_coef=config.vf_coef,
                    ent_coef=config.ent_coef, epochs=config.epochs, minibatches=config.minibatches,
                    normalize_advantages=config.normalize_advantages, clip_value_loss=config.clip_value_loss)

    def init(key, obs):
        k_policy, k_value = jax.random.split(key)
        params = {"policy": policy.init(k_policy, obs), "value": critic.init(k_value, obs)}
        return AgentState(params, rule.init(params))

    def act(params, obs, key):
        dist = policy.apply(params["policy"], obs)
        action = dist.sample(key)
        return action, dist.log_prob(action)

    def act_deterministic(params, obs):
        return policy.apply(params["policy"], obs).mode()

    def learn(state: AgentState, batch: Batch, key):
        batch = add_gae(batch, critic.apply, state.params["value"], config.gamma, config.gae_lambda)
        params, update_state, metrics = rule.update(state.params, state.update_state, batch, key)
        return AgentState(params, update_state), metrics

    return Agent(init, act, act_deterministic, learn)


def add_gae(batch: Batch, value_apply: Callable, value_params, gamma: float, lambda_: float) -> Batch:
    """Fill `advantage` (GAE(λ)), `target` (λ-return Â + V) and `value` (V(s_t)) of a [T, N] batch.

    discount_t = γ (1 − terminated_t); truncated episodes bootstrap from V(next_obs).
    """
    v_tm1 = value_apply(value_params, batch.obs)
    v_t = value_apply(value_params, batch.next_obs)
    discount = gamma * (1.0 - batch.terminated.astype(v_t.dtype))
    gae = jax.vmap(estimators.gae, in_axes=(1, 1, 1, 1, None, 1), out_axes=1)
    advantage = gae(batch.reward, discount, v_tm1, v_t, lambda_, batch.truncated)
    return batch.replace(advantage=advantage, target=advantage + v_tm1, value=v_tm1)


@dataclass(frozen=True)
class Preset:
    """A named algorithm: its config type, agent builder and one-line description."""

    name: str
    config_type: type
    make_agent: Callable
    summary: str


PRESETS: dict[str, Preset] = {
    "ppo": Preset("ppo", PPOConfig, make_ppo, "PPO, clipped surrogate (12.22) with GAE(λ) and a value critic"),
}


def get_preset(name: str) -> Preset:
    """The preset called `name`, or a ConfigError listing the known ones."""
    if name not in PRESETS:
        raise ConfigError(f"unknown algorithm {name!r}; choose one of: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def config_to_dict(config) -> dict:
    """A plain dict of a config dataclass (tuples become lists), for YAML and JSON."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
