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
    """Real vectors of `shape`, bounded elementwise by `low` and `high` (may be ±inf).

    `source_shape` is the environment's own shape of an observation that the adapter flattened into
    this vector (an image: H × W, H × W × C or C × H × W), so a policy may reshape it back
    (`image_layout`); None for spaces that were vectors to begin with.
    """

    shape: tuple[int, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    source_shape: tuple[int, ...] | None = None

    @property
    def dim(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @staticmethod
    def from_bounds(shape, low, high, source_shape=None) -> Box:
        """A Box of `shape` with bounds broadcast to it; `source_shape` is kept only when it is 2-D or 3-D."""
        low = np.broadcast_to(np.asarray(low, np.float64), shape).ravel()
        high = np.broadcast_to(np.asarray(high, np.float64), shape).ravel()
        source = tuple(int(s) for s in source_shape) if source_shape is not None and len(source_shape) in (2, 3) else None
        return Box(tuple(int(s) for s in shape), tuple(float(x) for x in low), tuple(float(x) for x in high), source)


@dataclass(frozen=True)
class ImageLayout:
    """How a flat observation vector of `height · width · channels` features is an image.

    `channels_first`: the vector is C × H × W in row-major order (else H × W × C); `scale` multiplies
    the pixels before a convolution (1/255 for byte images, 1 for MinAtar's 0/1 grids).
    """

    height: int
    width: int
    channels: int
    channels_first: bool
    scale: float

    @property
    def size(self) -> int:
        return self.height * self.width * self.channels


def image_layout(space: Box) -> ImageLayout | None:
    """The image layout of an observation Box, or None when it is not an image.

    A Box is an image when its `source_shape` is 2-D (H × W, one channel) or 3-D. A 3-D shape is
    channels-first (C × H × W, e.g. a stack of 4 Atari frames, 4 × 84 × 84) when its first axis is
    shorter than its last, else H × W × C (MinAtar's 10 × 10 × C, an RGB frame 210 × 160 × 3). The
    scale is 1 / (the largest absolute bound) when every bound is finite and that exceeds 1, else 1.
    """
    source = getattr(space, "source_shape", None)
    if not isinstance(space, Box) or source is None:
        return None
    if len(source) == 2:
        height, width, channels, channels_first = source[0], source[1], 1, False
    elif source[0] < source[-1]:
        channels, height, width, channels_first = source[0], source[1], source[2], True
    else:
        height, width, channels, channels_first = source[0], source[1], source[2], False
    high = np.asarray(space.high, np.float64)
    low = np.asarray(space.low, np.float64)
    finite = np.all(np.isfinite(high)) and np.all(np.isfinite(low))
    top = float(np.max(np.abs(np.concatenate([high, low])))) if finite else 1.0
    return ImageLayout(int(height), int(width), int(channels), bool(channels_first), 1.0 / top if top > 1.0 else 1.0)


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
