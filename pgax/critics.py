"""Critics: state values V_w(s) and action values Q_φ(s, a).

Layer 1 (learning). Each is a `Model`: the state-value critic V_w(s) (`init(key, obs)`, `apply(params,
obs)`) is an MLP with a scalar head (orthogonal gain 1), of image features when it has an encoder; the
action-value critic of the off-policy presets is an MLP of the concatenation [s, a] (`init(key, obs,
action)`, `apply(params, obs, action)`) for Box actions, or of s with one output per action for
Discrete ones (`apply(params, obs) -> [..., A]`).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from pgax.policies import ACTIVATIONS, MLP, Model


class EncodedMLP(nn.Module):
    """MLP(φ(s)): an encoder's features (a `ConvEncoder`) fed to an MLP; [..., obs_dim] → [..., out_dim]."""

    encoder: nn.Module
    mlp: MLP

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return self.mlp(self.encoder(obs))


def mlp_value(hidden_sizes: Sequence[int] = (64, 64), activation: str = "tanh",
              encoder: nn.Module | None = None) -> Model:
    """V_w(s): `apply(params, obs: [..., obs_dim]) -> [...]` state values, MLP(s) or MLP(φ(s)) with `encoder`."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; use one of {sorted(ACTIVATIONS)}")
    module = MLP(tuple(hidden_sizes), 1, activation, 1.0)
    if encoder is not None:
        module = EncodedMLP(encoder, module)

    def apply(params, obs: jax.Array) -> jax.Array:
        return module.apply(params, obs)[..., 0]

    return Model(module.init, apply)


def mlp_action_value(hidden_sizes: Sequence[int] = (256, 256), activation: str = "relu") -> Model:
    """Q_φ(s, a) for Box actions: `init(key, obs, action)`, `apply(params, obs [..., obs_dim],
    action [..., action_dim]) -> [...]`, an MLP of [s, a]."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; use one of {sorted(ACTIVATIONS)}")
    module = MLP(tuple(hidden_sizes), 1, activation, 1.0)

    def init(key, obs: jax.Array, action: jax.Array):
        return module.init(key, jnp.concatenate([obs, action], axis=-1))

    def apply(params, obs: jax.Array, action: jax.Array) -> jax.Array:
        return module.apply(params, jnp.concatenate([obs, action], axis=-1))[..., 0]

    return Model(init, apply)


def mlp_action_values(num_actions: int, hidden_sizes: Sequence[int] = (256, 256), activation: str = "relu") -> Model:
    """Q_φ(s, ·) for Discrete actions: `apply(params, obs [..., obs_dim]) -> [..., A]`."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; use one of {sorted(ACTIVATIONS)}")
    module = MLP(tuple(hidden_sizes), int(num_actions), activation, 1.0)
    return Model(module.init, module.apply)
