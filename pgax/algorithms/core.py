"""What every preset shares: the `Agent` it returns, its `Preset` entry, config validation, and the
policy / critic factories and advantage estimators presets compose.

Layer 2. A preset is a frozen dataclass of hyperparameters (one docstring per field; the CLI is
generated from it) and a builder `make_agent(config, env, num_iterations)` that returns an `Agent`:
the pure functions the trainer needs.

    Agent.init(key, obs)                   -> AgentState (params and update-rule state)
    Agent.act(params, obs, key)            -> (action, log_prob)  sampling for rollouts
    Agent.act_deterministic(params, obs)   -> action              the mode, for evaluation
    Agent.learn(agent_state, batch, key)   -> (agent_state, metrics)

`env` is the `JaxEnv` (or any object with `observation_space`, `action_space`, `max_episode_steps`
and `model`); presets read its spaces, and the ones that need more (the exact model of a tabular
MDP, resettable states for vine) say so with a `ConfigError` when it is missing. Every config has
`num_envs` and `num_steps`: one iteration is a rollout of num_envs × num_steps transitions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from pgax import estimators
from pgax.batch import Batch
from pgax.critics import mlp_value
from pgax.errors import ConfigError
from pgax.policies import (ACTIVATIONS, CONV_STACKS, Model, conv_encoder, linear_gain_policy, linear_gaussian_policy,
                            mlp_policy, tabular_softmax_policy)
from pgax.spaces import Box, Discrete, image_layout

POLICY_KINDS = ("mlp", "linear", "tabular", "linear_gain")
NETWORK_KINDS = ("auto", "mlp") + tuple(CONV_STACKS)
NATURE_CNN_MIN_SIDE = 36
"""The smallest image side for which `--network auto` picks nature_cnn (its stack needs 36 pixels
to keep a 1 × 1 map); smaller images get the MinAtar cnn."""


@struct.dataclass
class AgentState:
    """params: pytree trained by the update rule; update_state: the rule's own state."""

    params: Any
    update_state: Any


class Agent(NamedTuple):
    """The pure functions of a trained algorithm (see the module docstring).

    `record_env_state`: the rollout must record the environment states in `Batch.env_state`
    (vine's branch rollouts restart from them).
    `prepare(agent_state, batch) -> batch`: the batch as the update rule sees it (advantages, targets,
    sample weights filled in), for presets whose `learn` is prepare-then-rule; the policy-gradient
    estimate of a prepared batch is Σ_i w_i Â_i ∇log π_θ(a_i|s_i) (w: `sample_weight`, 1 if None).
    """

    init: Callable
    act: Callable
    act_deterministic: Callable
    learn: Callable
    record_env_state: bool = False
    prepare: Callable | None = None


@dataclass(frozen=True)
class Preset:
    """A named algorithm: its config type, agent builder and one-line description."""

    name: str
    config_type: type
    make_agent: Callable
    summary: str


# Config fields renamed so that one concept has one name across presets: old name -> new name. A
# config file or a run's config.yaml with an old name loads under the new one; an old flag is
# refused with a line naming the new one.
RENAMED_FIELDS = {"value_lr": "critic_lr", "value_epochs": "critic_epochs", "value_minibatches": "critic_minibatches",
                  "ridge": "cg_damping", "damping": "cg_damping", "adam_eps": "optimizer_eps"}


def current_name(config_type: type, name: str) -> str:
    """`name` as `config_type` calls it now: the new name of a renamed field it has, else `name`."""
    fields = {f.name for f in dataclasses.fields(config_type)}
    new = RENAMED_FIELDS.get(name)
    return new if name not in fields and new in fields else name


def flag(field_name: str) -> str:
    """The CLI flag of a config field: clip_eps -> clip-eps."""
    return field_name.replace("_", "-")


def typed_value(name: str, value: Any, default: Any, where: str) -> Any:
    """`value` for a field whose default is `default`: an int where a float is expected becomes a float; a
    value of another kind (a string for a number, a number for true/false, ...) is a one-line ConfigError
    starting with `where`."""
    if isinstance(default, bool) != isinstance(value, bool) or (
            isinstance(default, int) and not isinstance(default, bool) and not isinstance(value, int)) or (
            isinstance(default, float) and not isinstance(value, (int, float))) or (
            isinstance(default, str) and not isinstance(value, str)) or (
            isinstance(default, tuple) and not isinstance(value, tuple)):
        kind = {int: "a whole number", float: "a number", str: "a string", tuple: "a list",
                bool: "true or false"}.get(type(default), f"like {default!r}")
        raise ConfigError(f"{where}: {name} must be {kind} (like {default!r}), got {value!r}")
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def check_positive_ints(config, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(config, name)
        if value <= 0:
            raise ConfigError(f"--{flag(name)} must be a positive integer, got {value}")


def check_positive(config, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(config, name)
        if not value > 0:
            raise ConfigError(f"--{flag(name)} must be positive, got {value}")


def check_non_negative(config, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(config, name)
        if not value >= 0:
            raise ConfigError(f"--{flag(name)} must be non-negative, got {value}")


def check_unit_interval(config, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(config, name)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"--{flag(name)} must lie in [0, 1], got {value}")


def check_divides(config, minibatches_field: str = "minibatches") -> None:
    minibatches = getattr(config, minibatches_field)
    batch = config.num_envs * config.num_steps
    if batch % minibatches:
        raise ConfigError(
            f"--{flag(minibatches_field)} {minibatches} does not divide the batch of num_envs × num_steps = "
            f"{config.num_envs} × {config.num_steps} = {batch}; choose a divisor of {batch}")


def check_network(config) -> None:
    """hidden_sizes, activation and (when present) policy kind."""
    if not config.hidden_sizes or any(h <= 0 for h in config.hidden_sizes):
        raise ConfigError(f"--hidden-sizes must be positive widths, got {config.hidden_sizes}")
    if config.activation not in ACTIVATIONS:
        raise ConfigError(f"--activation {config.activation!r} is not known; use one of {sorted(ACTIVATIONS)}")
    kind = getattr(config, "policy", "mlp")
    if kind not in POLICY_KINDS:
        raise ConfigError(f"--policy {kind!r} is not known; use one of {', '.join(POLICY_KINDS)}")
    network = getattr(config, "network", "mlp")
    if network not in NETWORK_KINDS:
        raise ConfigError(f"--network {network!r} is not known; use one of {', '.join(NETWORK_KINDS)}")
    if network in CONV_STACKS and kind != "mlp":
        raise ConfigError(f"--network {network} is a torso for --policy mlp, not --policy {kind}; "
                          "drop --network or use --policy mlp")


def make_encoder(config, env):
    """The observation encoder of `config.network` on `env`, or None for a plain MLP.

    - "auto" (default): for image observations (`spaces.image_layout`), nature_cnn when both sides are
      at least NATURE_CNN_MIN_SIDE pixels, else cnn; None for vector observations;
    - "mlp": None (images are read as flat vectors);
    - "cnn" / "nature_cnn": that stack (`policies.CONV_STACKS`); a ConfigError when the observation
      is not an image or is too small for it.
    Configs without a `network` field (the off-policy presets) and policies other than mlp get None.
    """
    network = getattr(config, "network", "mlp")
    if network == "mlp" or getattr(config, "policy", "mlp") != "mlp":
        return None
    layout = image_layout(env.observation_space)
    if layout is None:
        if network == "auto":
            return None
        name = getattr(env, "name", "the environment")
        raise ConfigError(f"--network {network} needs image observations; {name}'s are vectors of "
                          f"{env.observation_space.dim} features. Use --network mlp")
    if network == "auto":
        network = "nature_cnn" if min(layout.height, layout.width) >= NATURE_CNN_MIN_SIDE else "cnn"
    try:
        return conv_encoder(layout, network)
    except ValueError as error:
        raise ConfigError(f"--network: {error}") from None


def make_policy(config, env) -> Model:
    """The policy a config asks for on `env`'s spaces (`config.policy`, default "mlp"):

    - "mlp": `mlp_policy` — Categorical for Discrete actions, state-independent-log-std Gaussian for Box,
      on the features of `make_encoder(config, env)` (a CNN for image observations);
    - "linear": the seeds' linear Gaussian N(θ_{1:d}·s, θ_{d+1}²) (scalar Box action, e.g. the
      simple regulator; `config.linear_init` sets θ0 when the config has it);
    - "tabular": softmax over a table θ[s] (one-hot observations, Discrete actions; tabular MDPs);
    - "linear_gain": linear state feedback N(−Kx, diag(σ²)) for any Box action (LQR; K = 0 and
      log σ = `config.init_log_std` initially).
    """
    kind = getattr(config, "policy", "mlp")
    obs_space, action_space = env.observation_space, env.action_space
    if kind == "mlp":
        return mlp_policy(action_space, config.hidden_sizes, config.activation,
                          getattr(config, "init_log_std", 0.0), make_encoder(config, env))
    if kind == "linear":
        if not (isinstance(action_space, Box) and action_space.dim == 1):
            raise ConfigError(f"--policy linear needs a scalar Box action; this environment's is {action_space!r}. "
                              "Use --policy mlp")
        obs_dim = int(obs_space.shape[-1])
        init = getattr(config, "linear_init", None)
        if init is not None and len(init) != obs_dim + 1:
            raise ConfigError(f"--linear-init needs {obs_dim + 1} numbers (weights then σ), got {len(init)}")
        return linear_gaussian_policy(obs_dim, tuple(init) if init is not None else None)
    if kind == "tabular":
        if not isinstance(action_space, Discrete):
            raise ConfigError(f"--policy tabular needs Discrete actions; this environment's are {action_space!r}")
        return tabular_softmax_policy(int(obs_space.shape[-1]), action_space.n)
    if kind == "linear_gain":
        if not isinstance(action_space, Box):
            raise ConfigError(f"--policy linear_gain needs Box actions; this environment's are {action_space!r}")
        return linear_gain_policy(int(obs_space.shape[-1]), action_space.dim, getattr(config, "init_log_std", 0.0))
    raise ConfigError(f"--policy {kind!r} is not known; use one of {', '.join(POLICY_KINDS)}")


def make_value(config, env) -> Model:
    """The state-value critic V_w(s): an MLP of the config's hidden sizes and activation, on the
    features of its own encoder `make_encoder(config, env)` (none for vector observations)."""
    return mlp_value(config.hidden_sizes, config.activation, make_encoder(config, env))


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


def discount_weights(batch: Batch, gamma: float) -> jax.Array:
    """[T, N] γ^τ_t, τ_t = `batch.episode_step` (steps of s_t's episode before s_t, also across windows)."""
    if batch.episode_step is None:
        raise ValueError("discount weighting needs Batch.episode_step (the step within the episode); roll out "
                         "an environment wrapped by pgax.envs.wrappers.episode_statistics, as the trainer does")
    return jnp.power(jnp.asarray(gamma, jnp.float32), batch.episode_step.astype(jnp.float32))


def discount_weighted(batch: Batch, gamma: float, enabled: bool = True) -> Batch:
    """The batch with Â_t ← γ^τ_t Â_t (`discount_weights`) when `enabled`: the policy gradient theorem's
    factor on step t, E[Σ_t γ^τ_t Â_t ∇log π(a_t|s_t)] = Σ_τ γ^τ E[A(s_τ, a_τ) ∇log π] ∝ ∇J."""
    if not enabled:
        return batch
    return batch.replace(advantage=batch.advantage * discount_weights(batch, gamma).astype(batch.advantage.dtype))


def gae_estimator(critic: Model, config) -> Callable:
    """`estimate(batch, value_params) -> batch` with GAE(`config.gae_lambda`) advantages, λ-return targets
    and values (`add_gae`, `config.gamma`), the advantages weighted by γ^τ_t if `config.discount_weighting`."""

    def estimate(batch: Batch, value_params) -> Batch:
        batch = add_gae(batch, critic.apply, value_params, config.gamma, config.gae_lambda)
        return discount_weighted(batch, config.gamma, config.discount_weighting)

    return estimate


def actor_critic_agent(policy: Model, critic: Model, rule, estimate: Callable) -> Agent:
    """The agent of a policy π_θ and a state-value critic V_w trained by one update rule.

    params = {"policy": θ, "value": w}, each network initialised from its own half of the key;
    `learn` fills the batch's advantage estimates with `estimate(batch, w)` (e.g. `gae_estimator`)
    and applies `rule` (an `updates.UpdateRule` on the whole params, e.g. `updates.ppo_clip` or
    `updates.actor_critic(policy_rule, value_rule)`). Acting samples π (rollouts) or takes its mode
    (evaluation).
    """

    def init(key, obs):
        k_policy, k_value = jax.random.split(key)
        params = {"policy": policy.init(k_policy, obs), "value": critic.init(k_value, obs)}
        return AgentState(params, rule.init(params))

    def prepare(state: AgentState, batch: Batch) -> Batch:
        return estimate(batch, state.params["value"])

    def learn(state: AgentState, batch: Batch, key):
        params, update_state, metrics = rule.update(state.params, state.update_state, prepare(state, batch), key)
        return AgentState(params, update_state), metrics

    return Agent(init, sample_action(policy), mode_action(policy), learn, prepare=prepare)


def sample_action(policy: Model):
    """`act(params, obs, key) -> (action, log_prob)` sampling from `policy` on params["policy"]."""

    def act(params, obs, key):
        dist = policy.apply(params["policy"], obs)
        action = dist.sample(key)
        return action, dist.log_prob(action)

    return act


def mode_action(policy: Model):
    """`act_deterministic(params, obs) -> action`: the mode of `policy` on params["policy"]."""

    def act_deterministic(params, obs):
        return policy.apply(params["policy"], obs).mode()

    return act_deterministic


def config_to_dict(config) -> dict:
    """A plain dict of a config dataclass (tuples become lists), for YAML and JSON."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}
