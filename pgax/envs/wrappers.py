"""Wrappers over `JaxEnv` whose own state is an explicit pytree carried in the env state."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import struct

from pgax.envs.core import JaxEnv, Transition


@struct.dataclass
class EpisodeStatsState:
    """inner: the wrapped env's state; running_*: the current episode so far;
    last_*: the most recent completed episode (NaN / 0 before the first one ends)."""

    inner: Any
    running_return: jnp.ndarray
    running_length: jnp.ndarray
    last_return: jnp.ndarray
    last_length: jnp.ndarray


def episode_statistics(env: JaxEnv) -> JaxEnv:
    """Track undiscounted episode returns and lengths.

    Adds to `Transition.info`: `episode_return` and `episode_length` of the episode so far
    (complete where `episode_done`), `episode_done`, and `last_return` / `last_length` of the most
    recent completed episode (NaN before the first one ends).
    """

    def reset(key):
        obs, inner = env.reset(key)
        zero = jnp.zeros((), jnp.float32)
        return obs, EpisodeStatsState(inner, zero, jnp.zeros((), jnp.int32), jnp.full((), jnp.nan), jnp.zeros((), jnp.int32))

    def step(key, state: EpisodeStatsState, action) -> Transition:
        t = env.step(key, state.inner, action)
        ret = state.running_return + t.reward
        length = state.running_length + 1
        done = t.terminated | t.truncated
        new_state = EpisodeStatsState(
            inner=t.state,
            running_return=jnp.where(done, 0.0, ret),
            running_length=jnp.where(done, 0, length),
            last_return=jnp.where(done, ret, state.last_return),
            last_length=jnp.where(done, length, state.last_length),
        )
        info = {**t.info, "episode_return": ret, "episode_length": length, "episode_done": done,
                "last_return": new_state.last_return, "last_length": new_state.last_length}
        return t.replace(state=new_state, info=info)

    return env._replace(reset=reset, step=step)
