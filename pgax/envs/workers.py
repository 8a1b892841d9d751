"""The host driver's vector env: copies stepped in this process and, optionally, worker processes.

    WorkerVectorEnv(env_fns, num_workers) -> gymnasium.vector.VectorEnv
    default_num_workers(num_envs) -> int

Gymnasium's `AsyncVectorEnv` (like SB3's `SubprocVecEnv`) runs one process per env copy and ships
each copy's observation, reward, flags and info dict through a pipe every step. With more copies
than cores that costs more than it gains: on this project's 2-core machine 8 Hopper-v5 copies step
at about 4,300 steps/s that way, against 7,000-8,000 in one process (`SyncVectorEnv`). Waking a
process that sleeps on a pipe, and pickling a small info dict (≈ 200 µs to dump and load for 4
Hopper copies), each cost more than a MuJoCo step.

Layout. With W < N workers the N copies are split into W + 1 contiguous blocks (sizes differ by at
most one): block 0 is stepped in this process, blocks 1..W by W worker processes, all at the same
time. With W = N every copy has a worker of its own and this process steps none: it only runs the
policy. That pays even for a single copy: a MuJoCo step and a jitted policy call that alternate on
one core evict each other from the caches (Hopper-v5: 119-130 µs per step alone, 156-166 µs
between policy calls; PPO's policy call 21-23 µs alone, 50-54 µs between steps; measured by
benchmarks/host_step_profile.py), while on two cores each keeps
its own warm. W = 0 is the `gymnasium` driver's env: every copy in this process, stepped by the same
lean loop, which skips `SyncVectorEnv`'s per-step info assembly (about 10% more steps/s on
Hopper-v5 with 1 env).

Transport. Steps go through shared memory: this process writes a worker's actions and posts its
request semaphore; the worker steps its block, writes one float64 array (observations, final
observations, rewards, flags) and posts its answer semaphore. Posting and taking a semaphore are
memory barriers, so this is correct on any machine. While every process has a core of its own
(W + 1 ≤ cores) a waiting process spins on the semaphore for up to 5 ms (yielding its core every
few microseconds) before it sleeps on it: a hand-over then costs a few microseconds, where waking a
sleeping process costs ≈ 50 µs on this project's VM (1 Hopper-v5 copy in a worker: 124-158 µs per
step with spinning waits, 222-258 µs with sleeping ones, two wake-ups per step;
benchmarks/host_step_profile.py). An idle
worker (during the learning phase) sleeps after those 5 ms. With more processes than cores the
waits sleep at once. The spinning assumes the cores are free: two async runs side by side on two
cores run at about 2,500 steps/s each on Hopper-v5 with 1 env, where the sync driver runs at
4,000 each. Resets, closing and errors use a pipe per worker.

It behaves as a `SyncVectorEnv` of the same copies with `AutoresetMode.SAME_STEP` and the same
seeds: the same observations, rewards and flags, in the same order; an episode that ends at step t
is reset within that step and its final observation is `info["final_obs"][i]` (mask
`info["_final_obs"]`). The info dict holds only those two keys: the copies' own info entries are
dropped, because shipping them between processes costs more than the step itself. Observation
spaces: Box and Discrete (what pgax trains on); action spaces: Box, Discrete and MultiDiscrete, and
actions reach a copy as arrays (scalars for Discrete) of the action space's dtype.

Workers are started by a forkserver (forking a process whose JAX threads run is unsafe); the env
factories travel with cloudpickle, as in `AsyncVectorEnv`, so lambdas work. A worker ignores
Ctrl-C: the main process decides and closes the workers. An exception in a worker comes back as a
`RuntimeError` naming the worker, its copies and the exception; one in this process's block is
raised as it is. Either closes the env, as does anything else that interrupts a step or a reset
half-way (Ctrl-C): the workers would be out of step. A closed env refuses further steps with a
`RuntimeError`; actions of the wrong shape are refused with a `ValueError` before anything moves.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
import weakref
from collections.abc import Callable, Sequence
from multiprocessing import shared_memory
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import CloudpickleWrapper, batch_space

SPIN_SECONDS = 0.005  # how long a waiting process spins before it sleeps
SPIN_CHECKS = 256  # looks at a semaphore between looks at the pipe and yields of the core
WAKE_SECONDS = 0.05  # a sleeping waiter's timeout, to look at the pipe for errors and a closed main process
_yield = getattr(os, "sched_yield", lambda: None)


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_num_workers(num_envs: int) -> int:
    """Worker processes for `num_envs` copies: one per copy (this process then only runs the policy)
    while there are fewer copies than cores; otherwise one per core besides this process's, which
    steps block 0."""
    cores = _cores()
    return num_envs if num_envs < cores else max(0, cores - 1)


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


def _flat_size(space) -> int:
    return int(np.prod(space.shape)) if space.shape else 1


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
        self.obs_size = _flat_size(space)

    def reset(self, seeds: Sequence[int | None], options: dict | None) -> np.ndarray:
        out = np.empty((len(self.envs), self.obs_size))
        for i, (env, seed) in enumerate(zip(self.envs, seeds)):
            out[i] = np.asarray(env.reset(seed=seed, options=options)[0], np.float64).reshape(-1)
        return out

    def step(self, actions, out: np.ndarray | None = None) -> np.ndarray:
        """Step every copy; the results go into `out` ([n, 2D + 3], e.g. shared memory) if given."""
        D = self.obs_size
        if out is None:
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


class _SharedSlot:
    """One worker's step buffers in a `SharedMemory` segment, and the two semaphores that hand a step
    over (posting and taking a semaphore are full memory barriers, so what was written before a post
    is seen after the take, on any machine).

    counters: int64 [1]: the number of the last step requested, written by the main process; a
        post of `request` with the counter unchanged means a command waits on the pipe.
    actions: float64 [n, A] (A = flattened action size); results: float64 [n, 2D + 3] as `_Block.step`.
    """

    def __init__(self, memory: shared_memory.SharedMemory, semaphores, n: int, action_size: int, obs_size: int):
        self.memory, (self.request, self.answer) = memory, semaphores
        self.counters = np.ndarray((1,), np.int64, memory.buf, 0)
        self.actions = np.ndarray((n, action_size), np.float64, memory.buf, 64)
        self.results = np.ndarray((n, 2 * obs_size + 3), np.float64, memory.buf, 64 + 8 * n * action_size)

    @staticmethod
    def nbytes(n: int, action_size: int, obs_size: int) -> int:
        return 64 + 8 * n * (action_size + 2 * obs_size + 3)

    def release(self, unlink: bool = False) -> None:
        """Drop the views (a segment with live views cannot be closed), close the segment and, in the
        process that made it, unlink it. Safe to call twice."""
        if self.memory is None:
            return
        memory, self.memory = self.memory, None
        del self.counters, self.actions, self.results
        try:
            memory.close()
        finally:
            if unlink:
                memory.unlink()


def _release_slots(slots: list) -> None:
    for slot in slots:
        slot.release(unlink=True)


def _take(semaphore, remote, spin_seconds: float) -> bool:
    """Take `semaphore`: spin on it for `spin_seconds` (yielding the core now and then, so that a
    process waiting for it runs), then sleep on it. False, without taking it, as soon as something
    is on the pipe `remote` (a message or its end)."""
    deadline = time.perf_counter() + spin_seconds
    while time.perf_counter() < deadline:
        for _ in range(SPIN_CHECKS):
            if semaphore.acquire(False):
                return True
        if remote.poll():
            return False
        _yield()
    while not semaphore.acquire(True, WAKE_SECONDS):
        if remote.poll():
            return False
    return True


class _MainGone(Exception):
    """The main process closed its end of the pipe (or died)."""


def _recv(remote):
    try:
        return remote.recv()
    except (EOFError, OSError) as e:
        raise _MainGone from e


def _take_command_post(request, remote) -> bool:
    """Take the post that follows a command already read from the pipe (the main process sends the
    command, then posts); False if the pipe shows something first: the main process is gone, or
    a close came instead."""
    while not request.acquire(True, WAKE_SECONDS):
        if remote.poll():
            return False
    return True


def _worker(remote, parent_remote, env_fns, semaphores, spin_seconds: float) -> None:
    """Worker loop over one `_Block`. First it sends its spaces and gets the name of its shared-memory
    segment. Then every post of the request semaphore is taken exactly once: either a step (the
    request counter moved on: step the block, write the results, post the answer semaphore) or a
    command on the pipe, a (name, payload) tuple answered with ("ok", result) or ("error",
    (exception name, first line of its message)); errors in steps are reported the same way."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent_remote.close()
    block = slot = None
    try:
        block = _Block(env_fns)
        remote.send(("ok", (block.observation_space, block.action_space, block.metadata)))
        command, name = _recv(remote)
        if command != "shared":  # "close" before the env was complete
            return
        slot = _SharedSlot(shared_memory.SharedMemory(name=name), semaphores, len(block.envs),
                           _flat_size(block.action_space), block.obs_size)
        remote.send(("ok", None))
        shape, dtype = tuple(block.action_space.shape), block.action_space.dtype
        answered = 0
        while True:
            if _take(slot.request, remote, spin_seconds):
                requested = int(slot.counters[0])
                if requested != answered:
                    actions = slot.actions.reshape((len(slot.actions),) + shape).astype(dtype)
                    block.step(actions, out=slot.results)
                    answered = requested
                    slot.answer.release()
                    continue
                command, payload = _recv(remote)
            else:  # the command reached the pipe before its post reached the semaphore
                command, payload = _recv(remote)
                if command != "close" and not _take_command_post(slot.request, remote):
                    break
            if command == "reset":
                remote.send(("ok", block.reset(*payload)))
            else:  # "close"
                break
    except (KeyboardInterrupt, _MainGone, BrokenPipeError):
        pass
    except Exception as e:  # noqa: BLE001 - reported to the main process
        text = str(e).strip()
        try:
            remote.send(("error", (type(e).__name__, text.splitlines()[0] if text else "")))
        except (BrokenPipeError, OSError):
            pass
    finally:
        try:
            if slot is not None:
                slot.release()
        finally:
            if block is not None:
                block.close()
            remote.close()


class WorkerVectorEnv(VectorEnv):
    """N env copies stepped by this process and W worker processes (see the module docstring).

    env_fns: N factories of single envs (`() -> gymnasium.Env`), copy i = env_fns[i]().
    num_workers: W, 0 ≤ W ≤ N: W = 0 steps every copy in this process, 0 < W < N steps block 0 here
        and W blocks in workers, W = N gives every copy a worker and steps none here.
    spin: whether waits spin before they sleep (default: while W + 1 ≤ cores); False for a machine
        whose cores are busy with other work.
    reset(seed=, options=) -> (obs [N, ...], {});
    step(actions [N, ...]) -> (obs [N, ...], reward [N], terminated [N], truncated [N], info).
    """

    def __init__(self, env_fns: Sequence[Callable[[], Any]], num_workers: int, context: str = "forkserver",
                 spin: bool | None = None):
        num_envs = len(env_fns)
        if num_envs < 1:
            raise ValueError("WorkerVectorEnv needs at least one env")
        if not 0 <= num_workers <= num_envs:
            raise ValueError(f"num_workers must be between 0 and {num_envs} (the number of envs), got {num_workers}")
        self.num_envs, self.num_workers = num_envs, num_workers
        self.blocks = ([range(0, 0)] + worker_blocks(num_envs, num_envs) if num_workers == num_envs
                       else worker_blocks(num_envs, num_workers + 1))
        self._remotes, self._processes, self._semaphores, self._local, self._closed = [], [], [], None, False
        self._slots: list[_SharedSlot] = []
        self._requests = 0
        # Spinning before sleeping pays only while every process has a core of its own.
        self.spins = num_workers < _cores() if spin is None else bool(spin)
        self._spin = SPIN_SECONDS if self.spins else 0.0
        try:
            ctx = mp.get_context(context)
            for w, block in enumerate(self.blocks[1:], start=1):
                remote, worker_remote = ctx.Pipe()
                semaphores = (ctx.Semaphore(0), ctx.Semaphore(0))
                fns = [CloudpickleWrapper(env_fns[i]) for i in block]
                process = ctx.Process(target=_worker, args=(worker_remote, remote, fns, semaphores, self._spin),
                                      name=f"pgax-env-worker-{w}", daemon=True)
                process.start()
                worker_remote.close()
                self._remotes.append(remote)
                self._processes.append(process)
                self._semaphores.append(semaphores)
            if len(self.blocks[0]):
                self._local = _Block([env_fns[i] for i in self.blocks[0]])
                obs_space, action_space, metadata = (self._local.observation_space, self._local.action_space,
                                                     self._local.metadata)
                self._receive()
            else:
                obs_space, action_space, metadata = self._receive()[0]
            for space, kind, kinds in ((obs_space, "observation", (spaces.Box, spaces.Discrete)),
                                       (action_space, "action", (spaces.Box, spaces.Discrete, spaces.MultiDiscrete))):
                if not isinstance(space, kinds):
                    raise ValueError(f"WorkerVectorEnv steps {', '.join(k.__name__ for k in kinds)} {kind} spaces, "
                                     f"not {type(space).__name__}")
            self._D, self._A = _flat_size(obs_space), _flat_size(action_space)
            self._share_steps()
        except BaseException:
            self.close()
            raise
        self.single_observation_space, self.single_action_space = obs_space, action_space
        self.observation_space = batch_space(obs_space, num_envs)
        self.action_space = batch_space(action_space, num_envs)
        self.metadata = {**metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        self._obs_shape, self._obs_dtype = tuple(obs_space.shape), obs_space.dtype
        self._action_dtype = action_space.dtype

    def _share_steps(self) -> None:
        """Give each worker a shared-memory segment for its steps (see `_SharedSlot`); the segments are
        unlinked on close, or at exit for an env that was never closed."""
        weakref.finalize(self, _release_slots, self._slots)
        for remote, block, semaphores in zip(self._remotes, self.blocks[1:], self._semaphores):
            memory = shared_memory.SharedMemory(create=True, size=_SharedSlot.nbytes(len(block), self._A, self._D))
            slot = _SharedSlot(memory, semaphores, len(block), self._A, self._D)
            slot.counters[:] = 0
            self._slots.append(slot)
            remote.send(("shared", memory.name))
        self._receive()

    def _raise_worker_error(self, w: int, name: str, message: str):
        """Raise worker w's error (its callers close the env on the way out)."""
        block = self.blocks[w]
        raise RuntimeError(f"env worker {w} (copies {block.start}-{block.stop - 1}) raised {name}: {message}")

    @staticmethod
    def _read(remote) -> tuple[str, Any]:
        try:
            return remote.recv()
        except (EOFError, ConnectionResetError, OSError):
            return "error", ("EOFError", "the worker process died")

    def _command(self, command: str, payloads: list) -> None:
        """Send each worker a command through its pipe, and wake it (a post with the request
        counter unchanged)."""
        for remote, slot, payload in zip(self._remotes, self._slots, payloads):
            remote.send((command, payload))
            slot.request.release()

    def _receive(self) -> list:
        """The workers' answers through their pipes, in block order; a worker's error is raised."""
        results, error = [], None
        for w, remote in enumerate(self._remotes, start=1):
            _wait_for(remote, self._spin)
            status, payload = self._read(remote)
            if status == "error" and error is None:
                error = (w, payload)
            results.append(payload)
        if error is not None:
            self._raise_worker_error(error[0], *error[1])
        return results

    def _await_answers(self) -> list[np.ndarray]:
        """The workers' step results from shared memory, in block order. Anything on a worker's pipe
        while it is stepping is an error (or its end)."""
        results = []
        for w, (remote, slot) in enumerate(zip(self._remotes, self._slots), start=1):
            if not _take(slot.answer, remote, self._spin):
                status, payload = self._read(remote)
                if status != "error":
                    payload = ("RuntimeError", f"unexpected message {status!r} during a step")
                self._raise_worker_error(w, *payload)
            results.append(slot.results)  # a view: `_step` concatenates it before the next step
        return results

    def _closing_on_error(self, exchange, *args):
        """Run one hand-over with the workers (`exchange(*args)`); if anything interrupts it (an
        exception in this process's block, Ctrl-C, a worker's error), the workers and this process
        are out of step: close the env before the exception goes on."""
        if self._closed:
            raise RuntimeError("this WorkerVectorEnv is closed; make a new one")
        try:
            return exchange(*args)
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
        return self._obs(self._closing_on_error(self._reset, seeds, options)), {}

    def _reset(self, seeds: list, options: dict | None) -> np.ndarray:
        self._command("reset", [(seeds[block.start:block.stop], options) for block in self.blocks[1:]])
        local = [self._local.reset(seeds[:self.blocks[0].stop], options)] if self._local is not None else []
        return np.concatenate(local + self._receive())

    def step(self, actions):
        """Step every copy with actions [N, ...]; each copy gets its action in the action space's dtype."""
        actions = np.asarray(actions)
        if actions.shape[:1] != (self.num_envs,) or actions[0].size != self._A:
            raise ValueError(f"step: actions of shape {actions.shape} for {self.num_envs} envs with actions of "
                             f"shape {self.single_action_space.shape}")
        out = self._closing_on_error(self._step, actions.astype(self._action_dtype, copy=False))
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

    def _step(self, actions: np.ndarray) -> np.ndarray:
        self._requests += 1
        for slot, block in zip(self._slots, self.blocks[1:]):  # the workers step while this process does
            slot.actions[:] = actions[block.start:block.stop].reshape(len(block), self._A)
            slot.counters[0] = self._requests
            slot.request.release()
        local = [self._local.step(actions[:self.blocks[0].stop])] if self._local is not None else []
        return np.concatenate(local + self._await_answers())

    def close_extras(self, **kwargs):
        if self._closed:
            return
        self._closed = True
        for remote, slot in zip(self._remotes, self._slots + [None] * len(self._remotes)):
            try:
                remote.send(("close", None))
                if slot is not None:
                    slot.request.release()
            except (BrokenPipeError, OSError, ValueError):
                pass
        for process in self._processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=1)
        for remote in self._remotes:
            remote.close()
        _release_slots(self._slots)
        self._slots.clear()
        if self._local is not None:
            self._local.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
