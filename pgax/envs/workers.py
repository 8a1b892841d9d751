"""The host driver's vector env: copies stepped in this process and, optionally, a few worker processes.

    WorkerVectorEnv(env_fns, num_workers) -> gymnasium.vector.VectorEnv
    default_num_workers(num_envs) -> int

Gymnasium's `AsyncVectorEnv` (like SB3's `SubprocVecEnv`) runs one process per env copy and ships
each copy's observation, reward, flags and info dict through a pipe every step. With more copies
than cores that costs more than it gains: on this project's 2-core machine 8 Hopper-v5 copies step
at about 4,300 steps/s that way, against 7,000-8,000 in one process (`SyncVectorEnv`). Waking a
process that sleeps on a pipe, and pickling a small info dict (≈ 200 µs to dump and load for 4
Hopper copies), each cost more than a MuJoCo step.

`WorkerVectorEnv` splits the N copies into W + 1 contiguous blocks (sizes differ by at most one):
block 0 is stepped in this process, blocks 1..W by W worker processes, all at the same time. A
worker steps its block in a plain loop and sends back one float64 array per step (observations,
final observations, rewards, flags); it polls its pipe for a few milliseconds before it sleeps on
it (when there are at least W + 1 cores), so within a rollout it answers without a wake-up. With
W = cores − 1 (the `gymnasium-async` driver's default) every core steps a block. W = 0 is the
`gymnasium` driver's env: every copy in this process, stepped by the same lean loop, which skips
`SyncVectorEnv`'s per-step info assembly (about 10% more steps/s on Hopper-v5 with 1 env).

It behaves as a `SyncVectorEnv` of the same copies with `AutoresetMode.SAME_STEP` and the same
seeds: the same observations, rewards and flags, in the same order; an episode that ends at step t
is reset within that step and its final observation is `info["final_obs"][i]` (mask
`info["_final_obs"]`). The info dict holds only those two keys: the copies' own info entries are
dropped, because shipping them between processes costs more than the step itself. Observation
spaces: Box and Discrete (what pgax trains on).

Workers are started by a forkserver (forking a process whose JAX threads run is unsafe); the env
factories travel with cloudpickle, as in `AsyncVectorEnv`, so lambdas work. A worker ignores
Ctrl-C: the main process decides and closes the workers. An exception in a worker comes back as a
`RuntimeError` naming the worker, its copies and the exception; one in this process's block is
raised as it is. Either closes the env.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import CloudpickleWrapper, batch_space

SPIN_SECONDS = 0.005


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_num_workers(num_envs: int) -> int:
    """Worker processes for `num_envs` copies: one per core besides this process's, at most one
    per copy besides block 0."""
    return max(0, min(_cores(), num_envs) - 1)


def worker_blocks(num_envs: int, num_blocks: int) -> list[range]:
    """Contiguous blocks of the copies: block b holds copies i with ⌊i·B/N⌋ = b, so block sizes
    differ by at most one."""
    return [range((b * num_envs + num_blocks - 1) // num_blocks, ((b + 1) * num_envs + num_blocks - 1) // num_blocks)
            for b in range(num_blocks)]


def _wait_for(remote, seconds: float = SPIN_SECONDS) -> None:
    """Poll `remote` for up to `seconds` before the caller blocks on it: waking a process that
    sleeps on a pipe costs tens of microseconds (more in a VM), a large share of a vector step,
    and within a rollout the other side answers well inside that budget."""
    deadline = time.perf_counter() + seconds
    while not remote.poll() and time.perf_counter() < deadline:
        pass


class _Block:
    """Env copies stepped in one process with same-step autoreset; results packed in one array.

    reset(seeds, options) -> float64 [n, D]                 (D = flattened observation size)
    step(actions [n, ...]) -> float64 [n, 2D + 3]: obs, final obs (= obs where the episode goes
        on), reward, terminated, truncated.
    """

    def __init__(self, env_fns: Sequence[Callable[[], Any]]):
        self.envs = []
        try:
            for fn in env_fns:
                self.envs.append(fn())
        except BaseException:
            self.close()
            raise
        space = self.envs[0].observation_space
        self.observation_space, self.action_space = space, self.envs[0].action_space
        self.metadata = getattr(self.envs[0], "metadata", {})
        self.obs_size = int(np.prod(space.shape)) if space.shape else 1

    def reset(self, seeds: Sequence[int | None], options: dict | None) -> np.ndarray:
        out = np.empty((len(self.envs), self.obs_size))
        for i, (env, seed) in enumerate(zip(self.envs, seeds)):
            out[i] = np.asarray(env.reset(seed=seed, options=options)[0], np.float64).reshape(-1)
        return out

    def step(self, actions) -> np.ndarray:
        D = self.obs_size
        out = np.empty((len(self.envs), 2 * D + 3))
        for i, env in enumerate(self.envs):
            obs, reward, terminated, truncated, _ = env.step(actions[i])
            out[i, D:2 * D] = np.asarray(obs, np.float64).reshape(-1)
            out[i, 2 * D:] = reward, terminated, truncated
            if terminated or truncated:
                obs, _ = env.reset()
            out[i, :D] = np.asarray(obs, np.float64).reshape(-1)
        return out

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker(remote, parent_remote, env_fns, spin_seconds: float) -> None:
    """Worker loop over one `_Block`; commands come as (name, payload) tuples, answers go back as
    ("ok", result) or ("error", (exception name, first line of its message))."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent_remote.close()
    block = None
    try:
        block = _Block(env_fns)
        remote.send(("ok", None))
        while True:
            _wait_for(remote, spin_seconds)
            command, payload = remote.recv()
            if command == "step":
                remote.send(("ok", block.step(payload)))
            elif command == "reset":
                remote.send(("ok", block.reset(*payload)))
            else:  # "close"
                break
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass
    except Exception as e:  # noqa: BLE001 - reported to the main process
        text = str(e).strip()
        try:
            remote.send(("error", (type(e).__name__, text.splitlines()[0] if text else "")))
        except (BrokenPipeError, OSError):
            pass
    finally:
        if block is not None:
            block.close()
        remote.close()


class WorkerVectorEnv(VectorEnv):
    """N env copies stepped by this process and W worker processes (see the module docstring).

    env_fns: N factories of single envs (`() -> gymnasium.Env`), copy i = env_fns[i]().
    num_workers: W, 0 ≤ W < N (W = 0 steps every copy in this process).
    reset(seed=, options=) -> (obs [N, ...], {});
    step(actions [N, ...]) -> (obs [N, ...], reward [N], terminated [N], truncated [N], info).
    """

    def __init__(self, env_fns: Sequence[Callable[[], Any]], num_workers: int, context: str = "forkserver"):
        num_envs = len(env_fns)
        if num_envs < 1:
            raise ValueError("WorkerVectorEnv needs at least one env")
        if not 0 <= num_workers < num_envs:
            raise ValueError(f"num_workers must be between 0 and {num_envs - 1} (the number of envs - 1), "
                             f"got {num_workers}")
        self.num_envs, self.num_workers = num_envs, num_workers
        self.blocks = worker_blocks(num_envs, num_workers + 1)
        self._remotes, self._processes, self._local, self._closed = [], [], None, False
        # Polling before sleeping pays only while every process has a core of its own.
        self._spin = SPIN_SECONDS if num_workers < _cores() else 0.0
        try:
            ctx = mp.get_context(context)
            for w, block in enumerate(self.blocks[1:], start=1):
                remote, worker_remote = ctx.Pipe()
                fns = [CloudpickleWrapper(env_fns[i]) for i in block]
                process = ctx.Process(target=_worker, args=(worker_remote, remote, fns, self._spin),
                                      name=f"pgax-env-worker-{w}", daemon=True)
                process.start()
                worker_remote.close()
                self._remotes.append(remote)
                self._processes.append(process)
            self._local = _Block([env_fns[i] for i in self.blocks[0]])
            self._receive()
        except BaseException:
            self.close()
            raise
        obs_space = self._local.observation_space
        if not isinstance(obs_space, (spaces.Box, spaces.Discrete)):
            self.close()
            raise ValueError(f"WorkerVectorEnv steps Box and Discrete observation spaces, "
                             f"not {type(obs_space).__name__}")
        self.single_observation_space, self.single_action_space = obs_space, self._local.action_space
        self.observation_space = batch_space(obs_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.metadata = {**self._local.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        self._obs_shape, self._obs_dtype = tuple(obs_space.shape), obs_space.dtype
        self._D = self._local.obs_size

    def _receive(self) -> list:
        """The workers' answers in block order; a worker's error closes the env and is raised."""
        results, error = [], None
        for w, remote in enumerate(self._remotes, start=1):
            _wait_for(remote, self._spin)
            try:
                status, payload = remote.recv()
            except (EOFError, ConnectionResetError):
                status, payload = "error", ("EOFError", "the worker process died")
            if status == "error" and error is None:
                error = (w, payload)
            results.append(payload)
        if error is not None:
            w, (name, message) = error
            block = self.blocks[w]
            self.close()
            raise RuntimeError(f"env worker {w} (copies {block.start}-{block.stop - 1}) raised {name}: {message}")
        return results

    def _run_local(self, method, *args):
        """Step or reset block 0; if it raises, the workers' answers are never read: close first."""
        try:
            return method(*args)
        except BaseException:
            self.close()
            raise

    def _obs(self, flat: np.ndarray) -> np.ndarray:
        return flat.reshape((len(flat),) + self._obs_shape).astype(self._obs_dtype)

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict | None = None):
        if seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"reset: {len(seeds)} seeds for {self.num_envs} envs")
        for remote, block in zip(self._remotes, self.blocks[1:]):
            remote.send(("reset", (seeds[block.start:block.stop], options)))
        local = self._run_local(self._local.reset, seeds[:self.blocks[0].stop], options)
        return self._obs(np.concatenate([local] + self._receive())), {}

    def step(self, actions):
        actions = np.asarray(actions)
        for remote, block in zip(self._remotes, self.blocks[1:]):  # the workers step while this process does
            remote.send(("step", actions[block.start:block.stop]))
        out = np.concatenate([self._run_local(self._local.step, actions[:self.blocks[0].stop])] + self._receive())
        D = self._D
        terminated, truncated = out[:, 2 * D + 1] != 0, out[:, 2 * D + 2] != 0
        info = {}
        ended = terminated | truncated
        if ended.any():
            final = self._obs(out[:, D:2 * D])
            info["final_obs"] = np.empty(self.num_envs, object)
            for i in np.flatnonzero(ended):
                info["final_obs"][i] = final[i]
            info["_final_obs"] = ended
        return self._obs(out[:, :D]), out[:, 2 * D].copy(), terminated, truncated, info

    def close_extras(self, **kwargs):
        if self._closed:
            return
        self._closed = True
        for remote in self._remotes:
            try:
                remote.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
        for remote in self._remotes:
            remote.close()
        if self._local is not None:
            self._local.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
