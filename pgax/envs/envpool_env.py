"""Adapter from envpool (C++ batched environments: MuJoCo, classic control, Box2D, Atari) to the host
driver: `--driver envpool`, an optional extra (`pip install pgax[envpool]`, Linux).

    envpool_available() -> bool        envpool_task(env_id) -> str | None
    make_envpool(env_id) -> GymnasiumEnv        EnvpoolVectorEnv(task, count)

`make_envpool` gives the same `GymnasiumEnv` as `make_gymnasium` (spaces converted by
`gymnasium_env.convert_spaces`), with `envpool_task` set, so `gymnasium_env.make_vector` builds an
`EnvpoolVectorEnv` instead of Gymnasium copies and everything downstream (the host driver,
normalisation, evaluation, checkpoints) is unchanged. Ids are envpool's (`envpool.list_all_envs()`):
the Gymnasium ids of MuJoCo, classic control and Box2D envs, and Atari as `Pong-v5` (Gymnasium's
`ALE/Pong-v5` is accepted too), whose defaults are envpool's: 84×84 grayscale, 4 frames stacked
channels-first, frame skip 4, 30 no-op starts, unclipped rewards, episodes of the whole game.

Autoreset. envpool resets an env on the step after its episode ended (that step ignores the action
and returns the reset observation), where pgax needs Gymnasium's same-step autoreset: the step
that ends an episode returns the next episode's first observation, with the true last one in
info["final_obs"]. `EnvpoolVectorEnv.step` therefore steps the envs whose episode ended once more,
at once, by envpool's env_id argument, which is their reset, and hands back the same
(obs, reward, terminated, truncated, info) as a same-step-autoreset Gymnasium vector env.

Seeds. envpool seeds env i of a pool from a list (`seed=[...]`), each env's stream depending on its
own seed only, so `reset(seed=list)` makes a new pool with those seeds (reduced modulo 2³¹ − 1:
envpool's seeds are int32). `VERIFIED` are the ids whose dynamics `tests/test_envpool.py` checks
against Gymnasium's (observation, reward and episode-length statistics under one fixed policy):
the ones `--driver auto` picks envpool for when it is installed.
"""

from __future__ import annotations

import functools

import numpy as np

from pgax.errors import ConfigError

VERIFIED = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5", "Swimmer-v5", "InvertedPendulum-v5",
            "InvertedDoublePendulum-v5", "Reacher-v5")
"""Ids whose envpool dynamics match Gymnasium's in tests/test_envpool.py; `--driver auto` uses envpool for
them where it is installed."""

SEED_MODULUS = 2 ** 31 - 1


@functools.cache
def envpool_available() -> bool:
    """Whether envpool can be imported here."""
    try:
        import envpool  # noqa: F401
    except Exception:  # noqa: BLE001 - absent, or a wheel for another platform
        return False
    return True


@functools.cache
def _envpool_ids() -> frozenset[str]:
    import envpool

    return frozenset(envpool.list_all_envs())


def envpool_task(env_id: str) -> str | None:
    """envpool's id for `env_id` (`ALE/Pong-v5` → `Pong-v5`), or None when envpool is absent or lacks it."""
    if ":" in env_id or not envpool_available():
        return None
    ids = _envpool_ids()
    for task in (env_id, env_id.removeprefix("ALE/")):
        if task in ids:
            return task
    return None


def make_envpool(env_id: str):
    """The envpool task `env_id` as a `GymnasiumEnv` (see the module docstring), or a one-line ConfigError."""
    from pgax.envs.gymnasium_env import GymnasiumEnv, convert_spaces

    if not envpool_available():
        raise ConfigError("--driver envpool needs envpool, which is not installed; run "
                          "`pip install 'pgax[envpool]'` (Linux x86_64), or use --driver gymnasium")
    task = envpool_task(env_id)
    if task is None:
        import difflib

        close = difflib.get_close_matches(env_id.removeprefix("ALE/"), sorted(_envpool_ids()), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"--driver envpool: envpool has no environment {env_id!r}; {hint}"
                          "see envpool.list_all_envs(), or use --driver gymnasium")
    import envpool

    spec = envpool.make_spec(task)
    obs, act, obs_to_array, to_env_action = convert_spaces(spec.observation_space, spec.action_space, env_id)
    return GymnasiumEnv(task, _single_env_factory(task), obs, act, int(spec.config.max_episode_steps),
                        obs_to_array, to_env_action, envpool_task=task)


def _single_env_factory(task: str):
    """A Gymnasium env of the same task when Gymnasium has one (for `pgax check-env`-style single-env
    use), else a one-line ConfigError when called."""
    def make_env():
        import gymnasium

        if task in gymnasium.registry:
            return gymnasium.make(task)
        raise ConfigError(f"{task} is an envpool-only environment; it runs as a vector env (--driver envpool)")
    return make_env


class EnvpoolVectorEnv:
    """`count` envs of the envpool task `task` with the interface of a same-step-autoreset Gymnasium
    vector env (`pgax.envs.workers.WorkerVectorEnv`):

        reset(seed=[count ints]) -> (obs [count, ...], {})
        step(actions [count, ...]) -> (obs, reward [count], terminated [count], truncated [count], info)

    where an episode that ended at this step is already reset in `obs`, and its last observation is
    info["final_obs"][i] (mask info["_final_obs"]). `num_threads`: envpool's worker threads (0: one
    per env up to the cores).
    """

    def __init__(self, task: str, count: int, num_threads: int = 0):
        self.task, self.num_envs, self.num_threads = task, int(count), int(num_threads)
        self._pool = None

    def reset(self, seed=None, options=None):
        import envpool

        seeds = list(range(self.num_envs)) if seed is None else [int(s) % SEED_MODULUS for s in seed]
        if len(seeds) != self.num_envs:
            raise ValueError(f"reset needs {self.num_envs} seeds, got {len(seeds)}")
        self._pool = envpool.make_gymnasium(self.task, num_envs=self.num_envs, seed=seeds,
                                            num_threads=self.num_threads)
        obs, _ = self._pool.reset()
        return obs, {}

    def step(self, actions):
        if self._pool is None:
            raise RuntimeError("call reset before step")
        obs, reward, terminated, truncated, _ = self._pool.step(actions)
        ended = np.logical_or(terminated, truncated)
        if not ended.any():
            return obs, reward, terminated, truncated, {}
        ids = np.flatnonzero(ended).astype(np.int32)
        first, *_ = self._pool.step(np.asarray(actions)[ids], ids)  # envpool's reset step: the action is ignored
        final, obs = obs, obs.copy()  # envpool returns fresh arrays each step: `final` stays as it is
        obs[ids] = first
        return obs, reward, terminated, truncated, {"final_obs": final, "_final_obs": ended}

    def close(self):
        if self._pool is not None:
            self._pool.close()
            self._pool = None
