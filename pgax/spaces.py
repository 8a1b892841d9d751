"""Environment-independent descriptions of observation and action spaces, and of what an
algorithm may ask of an environment beyond them (`RestorableEnv`).

Layer 0. Policies are built from these, so the learning layer never imports an environment
library; the env adapters (pgax.envs) translate gymnax and Gymnasium spaces into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Discrete:
    """n actions, {0, ..., n-1}."""

    n: int


@dataclass(frozen=True)
class Box:
    """Real vectors of `shape`, bounded elementwise by `low` and `high` (may be ±inf)."""

    shape: tuple[int, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    @property
    def dim(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @staticmethod
    def from_bounds(shape, low, high) -> Box:
        low = np.broadcast_to(np.asarray(low, np.float64), shape).ravel()
        high = np.broadcast_to(np.asarray(high, np.float64), shape).ravel()
        return Box(tuple(int(s) for s in shape), tuple(float(x) for x in low), tuple(float(x) for x in high))


@dataclass(frozen=True)
class MultiDiscrete:
    """D integer components, component d in {0, ..., nvec[d]-1} (e.g. several buttons pressed at once)."""

    nvec: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.nvec),)


Space = Discrete | MultiDiscrete | Box


@runtime_checkable
class RestorableEnv(Protocol):
    """An environment whose step is a pure function of a saved state, so that an algorithm can
    restart rollouts from states recorded earlier (vine's branches). `pgax.envs.JaxEnv` is one.

        reset(key) -> (obs, state)
        step(key, state, action) -> transition with .obs, .state, .reward, .terminated, .truncated
    """

    restores_state: ClassVar[bool]

    def reset(self, key: Any) -> Any: ...

    def step(self, key: Any, state: Any, action: Any) -> Any: ...
