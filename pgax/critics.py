"""Critics: `init(key, obs) -> params` and `apply(params, obs) -> value`.

Layer 1 (learning). The state-value critic V_w(s) is an MLP with a scalar head (orthogonal gain 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax

from pgax.policies import ACTIVATIONS, MLP, Model


def mlp_value(hidden_sizes: Sequence[int] = (64, 64), activation: str = "tanh") -> Model:
    """V_w(s): `apply(params, obs: [..., obs_dim]) -> [...]` state values."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; use one of {sorted(ACTIVATIONS)}")
    module = MLP(tuple(hidden_sizes), 1, activation, 1.0)

    def apply(params, obs: jax.Array) -> jax.Array:
        return module.apply(params, obs)[..., 0]

    return Model(module.init, apply)
