"""Adapter from gymnax environments to `JaxEnv`.

Observations are flattened to vectors (MinAtar's [10, 10, c] grids become 100·c features, their
Box keeping the grid's shape as `source_shape` for a CNN policy) and cast to float32; Discrete
actions are passed as int32 scalars, Box actions as arrays of the space's shape, clipped to its
bounds at the environment boundary.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types


class _DeferredModule(types.ModuleType):
    """A stand-in in `sys.modules` that imports the real module on first use of an attribute it lacks."""

    def __getattr__(self, attribute):
        name = self.__name__
        if sys.modules.get(name) is self:
            del sys.modules[name]
        real = importlib.import_module(name)
        self.__dict__.update(real.__dict__)
        sys.modules[name] = real
        return getattr(real, attribute)


def _defer_render_imports() -> None:
    """Defer the imports gymnax makes only for rendering (seaborn, with scipy.stats, and pyplot).

    gymnax imports every environment when it is imported, and several import these at module level
    although only their `render` uses them; they are most of gymnax's import time. Each is replaced
    by a `_DeferredModule` unless already imported, so code that uses it gets the real module.
    """
    for name in ("seaborn", "matplotlib.pyplot"):
        if name not in sys.modules and importlib.util.find_spec(name) is not None:
            sys.modules[name] = _DeferredModule(name)


_defer_render_imports()

import gymnax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from gymnax.environments import spaces as gx_spaces  # noqa: E402

from pgax.envs.core import JaxEnv, Transition
from pgax.errors import ConfigError
from pgax.spaces import Box, Discrete, Space


def gymnax_ids() -> list[str]:
    return list(gymnax.registered_envs)


def _convert_space(space, what: str, env_id: str) -> Space:
    if isinstance(space, gx_spaces.Discrete):
        return Discrete(int(space.n))
    if isinstance(space, gx_spaces.Box):
        shape = tuple(int(s) for s in space.shape) or (1,)
        return Box.from_bounds(shape, np.asarray(space.low), np.asarray(space.high))
    raise ConfigError(f"{env_id}: its {what} space {type(space).__name__} is not supported; "
                      "pgax handles Discrete and Box spaces")


def make_gymnax(env_id: str, **env_param_overrides) -> JaxEnv:
    """The gymnax environment `env_id` as a `JaxEnv` (default parameters unless overridden)."""
    env, params = gymnax.make(env_id)
    if env_param_overrides:
        params = params.replace(**env_param_overrides)
    obs_space = _convert_space(env.observation_space(params), "observation", env_id)
    if not isinstance(obs_space, Box):
        raise ConfigError(f"{env_id}: discrete observations are not supported yet; use a Box-observation env")
    obs_space = Box.from_bounds((obs_space.dim,), obs_space.low, obs_space.high, source_shape=obs_space.shape)
    action_space = _convert_space(env.action_space(params), "action", env_id)

    if isinstance(action_space, Box):
        low = jnp.asarray(action_space.low, jnp.float32).reshape(action_space.shape)
        high = jnp.asarray(action_space.high, jnp.float32).reshape(action_space.shape)
        to_env_action = lambda a: jnp.clip(a.reshape(action_space.shape), low, high)  # noqa: E731
    else:
        to_env_action = lambda a: jnp.asarray(a, jnp.int32)  # noqa: E731

    flat = lambda o: jnp.asarray(o, jnp.float32).reshape(-1)  # noqa: E731

    def reset(key):
        obs, state = env.reset(key, params)
        return flat(obs), state

    def step(key, state, action):
        obs, state, reward, terminated, truncated, info = env.step(key, state, to_env_action(action), params)
        return Transition(obs=flat(obs), state=state, reward=jnp.asarray(reward, jnp.float32),
                          terminated=jnp.asarray(terminated, bool), truncated=jnp.asarray(truncated, bool),
                          final_obs=flat(info["final_observation"]), info={})

    return JaxEnv(env_id, reset, step, obs_space, action_space, int(params.max_steps_in_episode))
