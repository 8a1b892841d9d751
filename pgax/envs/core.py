"""The JAX-native environment interface: a bundle of pure single-environment functions.

    reset(key) -> (obs, state)
    step(key, state, action) -> Transition

Environments auto-reset: when an episode ends, `Transition.obs` is the first observation of the
next episode and `Transition.final_obs` the last observation of the one that ended. Drivers vmap
these functions over environments and seeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
from flax import struct

from pgax.spaces import Box, Space


@struct.dataclass
class Transition:
    """One environment step (single environment; drivers add leading axes).

    obs: observation to act on next (after auto-reset if the episode ended).
    state: environment state to step next.
    reward: scalar r_t.
    terminated: bool, the episode reached a terminal state.
    truncated: bool, the episode hit its time limit.
    final_obs: the true successor observation s_{t+1} (equals `obs` unless the episode ended).
    info: dict of extra per-step values (wrappers add episode statistics here).
    """

    obs: jax.Array
    state: Any
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    info: dict


class JaxEnv(NamedTuple):
    """A JAX-native environment: pure `reset` and `step` plus its static description."""

    name: str
    reset: Callable[[jax.Array], tuple[jax.Array, Any]]
    step: Callable[[jax.Array, Any, jax.Array], Transition]
    observation_space: Box
    action_space: Space
    max_episode_steps: int
    model: Any = None
    """The exact model when one is known (a `pgax.exact.TabularMDP` for the tabular envs, an
    `LQRProblem` for LQR), for exact-advantage modes and oracle checks; None otherwise."""

    restores_state = True  # `step` is pure in its state: a `pgax.spaces.RestorableEnv`

    # An env is a static argument of jitted functions: hash and compare it by its functions and
    # description, and its model by identity (models hold arrays, which have no hash).
    def _key(self):
        return (self.name, self.reset, self.step, self.observation_space, self.action_space,
                self.max_episode_steps, id(self.model))

    def __hash__(self):
        return hash(self._key())

    def __eq__(self, other):
        return isinstance(other, JaxEnv) and self._key() == other._key()

    def __ne__(self, other):
        return not self == other
