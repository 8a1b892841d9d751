"""Adapter from Gymnasium environments (any registered id, MuJoCo included, or a user's own
`gymnasium.Env` subclass) to what the host driver and the presets need.

    make_gymnasium(env_id) -> GymnasiumEnv        make_vector(env, count, asynchronous, num_workers) -> VectorEnv
    check_gymnasium_env(env_id) -> (errors, warnings)

`env_id` is a registered id (`Hopper-v5`, `LunarLander-v3`), `module:Class` (a `gymnasium.Env`
subclass, constructed without arguments) or Gymnasium's own `module:EnvId` (the module registers
EnvId when imported). Modules are imported with the working directory on `sys.path`, as
`python -m` would.

Spaces: a Box observation is flattened to a float32 vector (an image keeps its shape as the Box's
`source_shape`, for a CNN policy); a Discrete observation becomes a one-hot
vector; Discrete actions are categorical, MultiDiscrete ones (a flat nvec) one categorical per
component, Box actions Gaussian. A Box action is clipped to the
space's bounds here, at the environment boundary only: the rollout's `Batch` keeps the sampled
(unclipped) action and its log-probability. A Dict or Tuple observation of Box, Discrete, MultiDiscrete
and MultiBinary leaves is flattened into one Box by Gymnasium's `FlattenObservation` around every env
copy (`flattened_observation_space`). Other spaces (Dict or Tuple actions, MultiBinary, Graph, Text,
Sequence; MultiDiscrete observations) are refused with a one-line `ConfigError` naming the space.

Vector envs use `AutoresetMode.SAME_STEP`: an episode that ends at step t is reset within that
step, its true last observation is `info["final_obs"][i]` (mask `info["_final_obs"]`), so the
driver can bootstrap a truncated episode from V(final observation).
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from pgax.errors import ConfigError
from pgax.spaces import Box, Discrete, MultiDiscrete, Space

DRIVERS = ("auto", "jax", "gymnasium", "gymnasium-async", "envpool")


class GymnasiumEnv(NamedTuple):
    """A Gymnasium environment as pgax sees it: a factory of single envs plus converted spaces.

    make_env: `() -> gymnasium.Env`, a fresh environment (with its registered wrappers, TimeLimit
        included).
    obs_to_array: batched Gymnasium observations [B, ...] -> float32 [B, obs_dim].
    to_env_action: policy actions [B, ...] (sampled, unclipped) -> the vector env's actions [B, ...].
    max_episode_steps: the registered time limit, None when the env has none.
    envpool_task: set by `pgax.envs.envpool_env.make_envpool`: `make_vector` then builds envpool's
        batched env of this task instead of `make_env` copies.
    """

    name: str
    make_env: Callable[[], Any]
    observation_space: Box
    action_space: Space
    max_episode_steps: int | None
    obs_to_array: Callable[[np.ndarray], np.ndarray]
    to_env_action: Callable[[np.ndarray], np.ndarray]
    model: Any = None
    envpool_task: str | None = None


def is_module_class(env_id: str) -> bool:
    return ":" in env_id


def _import_module(module_name: str, env_id: str):
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"--env {env_id}: cannot import module {module_name!r} ({e}); "
                          "run from the folder that holds it or install it") from None


def _resolve(env_id: str) -> tuple[Callable[[], Any], str]:
    """(factory of single envs, display name) for a registered id, module:Class or module:EnvId."""
    import gymnasium

    if is_module_class(env_id):
        module_name, attr = env_id.split(":", 1)
        module = _import_module(module_name, env_id)
        target = getattr(module, attr, None)
        if isinstance(target, type):
            if not issubclass(target, gymnasium.Env):
                raise ConfigError(f"--env {env_id}: {attr} is not a gymnasium.Env subclass; "
                                  "derive it from gymnasium.Env")
            return target, env_id
        if attr in gymnasium.registry:  # Gymnasium's own module:EnvId form

            def make_registered():  # imports the module first, so that it also works in a fresh worker process
                importlib.import_module(module_name)
                return gymnasium.make(attr)

            return make_registered, attr
        raise ConfigError(f"--env {env_id}: module {module_name!r} has no class or registered env {attr!r}")
    if env_id not in gymnasium.registry:
        import difflib

        close = difflib.get_close_matches(env_id, list(gymnasium.registry), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown environment {env_id!r}; {hint}give a Gymnasium id (`pgax list`, "
                          "gymnasium.pprint_registry()) or module:Class")
    return (lambda: gymnasium.make(env_id)), env_id


def _unsupported(space, what: str, env_id: str) -> ConfigError:
    return ConfigError(f"{env_id}: its {what} space {type(space).__name__} is not supported; pgax handles "
                       "Discrete and Box observations and Discrete, MultiDiscrete and Box actions (flatten it with a Gymnasium "
                       "wrapper such as FlattenObservation)")


def convert_spaces(obs_space, action_space, env_id: str):
    """(pgax observation Box, pgax action space, obs_to_array, to_env_action) for Gymnasium spaces."""
    from gymnasium import spaces as gs

    if isinstance(obs_space, gs.Box):
        dim = int(np.prod(obs_space.shape)) if obs_space.shape else 1
        obs = Box.from_bounds((dim,), np.asarray(obs_space.low, np.float64).reshape(-1),
                              np.asarray(obs_space.high, np.float64).reshape(-1), source_shape=obs_space.shape)

        def obs_to_array(o):
            return np.asarray(o, np.float32).reshape(len(o), dim)
    elif isinstance(obs_space, gs.Discrete):
        n, start = int(obs_space.n), int(obs_space.start)
        obs = Box.from_bounds((n,), 0.0, 1.0)
        eye = np.eye(n, dtype=np.float32)

        def obs_to_array(o):
            return eye[np.asarray(o, np.int64).reshape(-1) - start]
    else:
        raise _unsupported(obs_space, "observation", env_id)

    if isinstance(action_space, gs.Discrete):
        act = Discrete(int(action_space.n))
        start = int(action_space.start)

        def to_env_action(a):
            return np.asarray(a, np.int64).reshape(-1) + start
    elif isinstance(action_space, gs.MultiDiscrete):
        if len(action_space.nvec.shape) != 1:
            raise ConfigError(f"{env_id}: its MultiDiscrete action space has nvec of shape {action_space.nvec.shape}; "
                              "pgax handles a flat nvec (wrap the env to flatten its actions)")
        act = MultiDiscrete(tuple(int(n) for n in action_space.nvec))
        start_vec = np.asarray(action_space.start, np.int64)
        d, env_dtype = len(act.nvec), action_space.dtype

        def to_env_action(a):
            return (np.asarray(a, np.int64).reshape(-1, d) + start_vec).astype(env_dtype, copy=False)
    elif isinstance(action_space, gs.Box):
        shape = tuple(int(s) for s in action_space.shape) or (1,)
        act = Box.from_bounds(shape, np.asarray(action_space.low, np.float64), np.asarray(action_space.high, np.float64))
        low = np.asarray(action_space.low, np.float32)
        high = np.asarray(action_space.high, np.float32)
        env_shape, dtype = tuple(action_space.shape), action_space.dtype

        def to_env_action(a):  # np.minimum/np.maximum: half the per-step cost of np.clip's wrapper
            a = np.asarray(a, np.float32).reshape((-1,) + env_shape)
            return np.minimum(np.maximum(a, low), high).astype(dtype, copy=False)
    else:
        raise _unsupported(action_space, "action", env_id)
    return obs, act, obs_to_array, to_env_action


def flattened_observation_space(space, env_id: str):
    """The Box that `gymnasium.spaces.flatten` maps a Dict or Tuple observation space onto: its leaves
    concatenated in the space's key order, a Box flattened, a Discrete one-hot, a MultiDiscrete one
    one-hot per component, a MultiBinary as 0/1. A ConfigError names the first leaf that has no
    fixed-size numeric form (Sequence, Graph, Text, or a nested OneOf)."""
    from gymnasium import spaces as gs

    def leaves(space, path):
        if isinstance(space, gs.Dict):
            for key, sub in space.spaces.items():
                yield from leaves(sub, f"{path}[{key!r}]")
        elif isinstance(space, gs.Tuple):
            for i, sub in enumerate(space.spaces):
                yield from leaves(sub, f"{path}[{i}]")
        else:
            yield path, space

    for path, leaf in leaves(space, "observation"):
        if not isinstance(leaf, (gs.Box, gs.Discrete, gs.MultiDiscrete, gs.MultiBinary)):
            raise ConfigError(f"{env_id}: its {type(space).__name__} observation cannot be flattened into a vector: "
                              f"{path} is a {type(leaf).__name__} space, which has no fixed size; pgax flattens Dict and "
                              "Tuple spaces of Box, Discrete, MultiDiscrete and MultiBinary (wrap the env to encode it)")
    return gs.flatten_space(space)


def _flattening(factory: Callable[[], Any]) -> Callable[[], Any]:
    """`factory` with Gymnasium's FlattenObservation around each env it makes."""
    from gymnasium.wrappers import FlattenObservation

    return lambda: FlattenObservation(factory())


def make_gymnasium(env_id: str) -> GymnasiumEnv:
    """The Gymnasium environment `env_id` (see the module docstring), or a one-line ConfigError."""
    try:
        import gymnasium  # noqa: F401
    except ImportError:  # pragma: no cover - gymnasium is a dependency
        raise ConfigError("gymnasium is not installed; run `make install`") from None
    factory, name = _resolve(env_id)
    try:
        probe = factory()
    except ConfigError:
        raise
    except Exception as e:  # the user's constructor, a missing extra (e.g. mujoco), ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"--env {env_id}: making the environment failed: {type(e).__name__}: {first}") from None
    try:
        from gymnasium import spaces as gs

        obs_space = probe.observation_space
        if isinstance(obs_space, (gs.Dict, gs.Tuple)):
            obs_space = flattened_observation_space(obs_space, env_id)
            factory = _flattening(factory)
        obs, act, obs_to_array, to_env_action = convert_spaces(obs_space, probe.action_space, env_id)
        spec = getattr(probe, "spec", None)
        max_steps = getattr(spec, "max_episode_steps", None) if spec is not None else None
    finally:
        probe.close()
    return GymnasiumEnv(name, factory, obs, act, max_steps, obs_to_array, to_env_action)


def make_vector(env: GymnasiumEnv, count: int, asynchronous: bool = False, num_workers: int | None = None):
    """`count` copies of `env` as one Gymnasium vector env (`pgax.envs.workers.WorkerVectorEnv`)
    with same-step autoreset: the same steps as `gymnasium.vector.SyncVectorEnv(...,
    autoreset_mode=SAME_STEP)`, the final observation of an episode in info["final_obs"] (the only
    info kept).

    Sync by default: every copy is stepped in this process by a lean loop (no per-step info dicts;
    about 10% faster than SyncVectorEnv on Hopper-v5). `asynchronous` shares the copies out
    between this process and `num_workers` worker processes that step at the same time; with
    num_workers = count every copy has a worker and this process only runs the policy (default:
    `pgax.envs.workers.default_num_workers`: a worker per copy while there are fewer copies than
    cores, else one per core besides this process's). An envpool env (`env.envpool_task`) is one
    `pgax.envs.envpool_env.EnvpoolVectorEnv` of `count` envs, stepped by envpool's threads.
    """
    from pgax.envs.workers import WorkerVectorEnv, default_num_workers

    if env.envpool_task is not None:
        from pgax.envs.envpool_env import EnvpoolVectorEnv

        return EnvpoolVectorEnv(env.envpool_task, count)
    fns = [env.make_env] * count
    if not asynchronous:
        return WorkerVectorEnv(fns, 0)
    workers = default_num_workers(count) if num_workers is None else num_workers
    if not 0 <= workers <= count:
        raise ConfigError(f"--env-workers must be between 0 and {count} (the number of env copies), got {workers}")
    return WorkerVectorEnv(fns, workers)


def step_observations(env: GymnasiumEnv, next_obs, info: dict) -> tuple[np.ndarray, np.ndarray]:
    """(obs, final), float32 [B, obs_dim] each, from a same-step-autoreset vector step: `obs` to act on
    next, and `final`, the true successor of each env's step: `obs`, except where an episode ended,
    where it is that episode's final observation (info["final_obs"])."""
    obs = env.obs_to_array(next_obs)
    mask = info.get("_final_obs")
    if mask is None or not mask.any():
        return obs, obs
    final = obs.copy()
    idx = np.flatnonzero(mask)
    final[idx] = env.obs_to_array(np.stack([np.asarray(info["final_obs"][i]) for i in idx]))
    return obs, final


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def check_gymnasium_env(env_id: str, steps: int = 200) -> tuple[list[str], list[str]]:
    """Check that `env_id` works with pgax: (errors, warnings), each a list of one-line messages.

    Checks: the spaces are supported; Gymnasium's `check_env` (reset/step signatures and return
    types, seeding determinism, observations in their space) on the unwrapped env; then `steps`
    random steps through the registered wrappers: reset returns (obs, info), step returns
    (obs, reward, terminated, truncated, info), every observation lies in the observation space
    with its dtype and is finite, rewards are finite real scalars, the flags are bools.
    """
    from gymnasium.utils.env_checker import check_env

    errors: list[str] = []
    env = make_gymnasium(env_id)  # ConfigError for unknown ids and unsupported spaces
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        raw = env.make_env()
        try:
            check_env(raw.unwrapped, skip_render_check=True, skip_close_check=True)
        except Exception as e:
            errors.append(f"gymnasium check_env: {_first_line(e)}")
        finally:
            raw.close()
    warns = sorted({str(w.message).strip().splitlines()[0] for w in caught})
    warns = [w.replace("\x1b[33m", "").replace("\x1b[0m", "") for w in warns]

    single = env.make_env()
    space = single.observation_space

    def check_obs(obs, where: str) -> bool:
        arr = np.asarray(obs)
        if not space.contains(obs):
            dtype_note = (f" (dtype {arr.dtype}, space dtype {space.dtype})"
                          if getattr(space, "dtype", None) is not None and arr.dtype != space.dtype else "")
            errors.append(f"{where}: the observation is not in the observation space {space}{dtype_note}")
            return False
        if np.issubdtype(arr.dtype, np.number) and not np.all(np.isfinite(arr)):
            errors.append(f"{where}: the observation has non-finite values")
            return False
        return True

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = single.reset(seed=0)
            if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict)):
                errors.append("reset(seed=...) must return (observation, info dict)")
                return errors, warns
            check_obs(out[0], "reset")
            single.action_space.seed(0)
            for t in range(steps):
                out = single.step(single.action_space.sample())
                if not (isinstance(out, tuple) and len(out) == 5):
                    errors.append("step(action) must return (observation, reward, terminated, truncated, info)")
                    break
                obs, reward, terminated, truncated, info = out
                if not check_obs(obs, f"step {t}"):
                    break
                if not (np.isscalar(reward) or np.ndim(reward) == 0) or not np.isreal(reward):
                    errors.append(f"step {t}: the reward must be a real scalar, got {type(reward).__name__}")
                    break
                if not math.isfinite(float(reward)):
                    errors.append(f"step {t}: the reward is not finite ({reward})")
                    break
                if not all(isinstance(f, (bool, np.bool_)) for f in (terminated, truncated)):
                    errors.append(f"step {t}: terminated and truncated must be bools, got "
                                  f"{type(terminated).__name__} and {type(truncated).__name__}")
                    break
                if not isinstance(info, dict):
                    errors.append(f"step {t}: info must be a dict, got {type(info).__name__}")
                    break
                if terminated or truncated:
                    obs, _ = single.reset()
                    if not check_obs(obs, f"reset after step {t}"):
                        break
    except Exception as e:
        errors.append(f"running the environment raised {_first_line(e)}")
    finally:
        single.close()
    return errors, warns


def make_checked_gymnasium(env_id: str) -> GymnasiumEnv:
    """`make_gymnasium(env_id)` after `check_gymnasium_env` passes (its warnings are ignored here;
    `pgax check-env` prints them); a failed check is a one-line ConfigError."""
    errors, _ = check_gymnasium_env(env_id, steps=50)
    if errors:
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(f"--env {env_id} fails the environment check: {errors[0]}{more}; "
                          f"run `pgax check-env {env_id}` for details")
    return make_gymnasium(env_id)
