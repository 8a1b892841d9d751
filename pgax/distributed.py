"""Where a sweep's programs run: one after another in this process, or as Ray tasks on a cluster.

Layer 3 (running). `pgax sweep ... --backend ray [--address ADDR]`: each program (a group of
configurations, `sweep.SweepPlan.programs`) is one Ray task (https://docs.ray.io) that trains the
group into its run folders exactly as the local backend does (`sweep._run_program`), so the sweep
folder must be on a filesystem every node sees (one machine; NFS or the like for several). Without
`--address` a local Ray instance is started and stopped afterwards.

- Every task starts as a resume: a task Ray retries after its worker died (`--retries`, Ray's
  `max_retries`) continues from the configurations' last checkpoints, so it ends where an unbroken run
  would; a program whose retries are spent is marked `error` on its own rows while the others go on;
- each finished program is handed back (`run_programs` yields it) as it finishes, so the sweep writes
  sweep.json then and no finished configuration is lost;
- a stop request (a signal in the driver) cancels the tasks: a running task gets KeyboardInterrupt and
  checkpoints its configurations as a local program does;
- `--task-cpus` and `--task-gpus` are each task's Ray resources; with a fraction of a GPU the task's
  JAX is given about that fraction of the GPU's memory (XLA_PYTHON_CLIENT_MEM_FRACTION) unless it is set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

from pgax.errors import ConfigError

BACKENDS = ("local", "ray")


@dataclasses.dataclass(frozen=True)
class Backend:
    """Where programs run: `local` (this process, one after another) or `ray` (one task per program)."""

    name: str = "local"
    address: str | None = None
    """An existing Ray cluster (`ray start --head` prints it; "auto" finds a local one); None: start one."""
    task_cpus: float = 1.0
    task_gpus: float = 0.0
    retries: int = 2
    """Times a task whose worker died is run again (from its checkpoints)."""

    def validate(self) -> None:
        if self.name not in BACKENDS:
            raise ConfigError(f"--backend {self.name}: use one of {', '.join(BACKENDS)}")
        if self.name == "local" and self.address is not None:
            raise ConfigError("--address is the Ray cluster of --backend ray; add --backend ray")
        if self.task_cpus <= 0 or self.task_gpus < 0 or self.retries < 0:
            raise ConfigError(f"--task-cpus must be > 0, --task-gpus ≥ 0 and --retries ≥ 0; got {self.task_cpus}, "
                              f"{self.task_gpus}, {self.retries}")


class _NoStop:
    """A task's stop request: never (Ray's cancel raises KeyboardInterrupt in the task instead)."""

    requested = None

    def __call__(self) -> bool:
        return False


def program_task(splan, group: list[int], sweep_dir: str, prune=None):
    """One Ray task: train the configurations `group` of `splan` into `sweep_dir` (resuming from their
    checkpoints where they have them); (rows, exit code) as `sweep._run_program` returns them."""
    from pgax.experiment import Reporter
    from pgax.sweep import _run_program

    return _run_program(splan, group, Path(sweep_dir), _NoStop(), Reporter(), True,
                        prune=prune() if prune is not None else None)


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray, which is not installed; install it with "
                          "`pip install 'pgax[ray]'` (or `pip install ray`)") from None
    return ray


def preflight(backend: Backend, timeout: float = 5.0) -> None:
    """Before anything compiles or is written: Ray is installed and `--address` (HOST:PORT, or
    ray://HOST:PORT) accepts a connection within `timeout` seconds. One line if not."""
    import socket

    if backend.name != "ray":
        return
    _ray()
    if backend.address in (None, "auto", "local"):
        return
    host, sep, port = backend.address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--address {backend.address}: give HOST:PORT of the Ray head node (ray start --head "
                          "prints it), e.g. --address 10.0.0.1:6379")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConfigError(f"--address {backend.address}: no Ray cluster answers there ({e.strerror or e}); start one "
                          "with `ray start --head` on that machine, or drop --address for a local one") from None


def connect(backend: Backend, say=print):
    """Start or join the Ray cluster of `backend`; (the ray module, whether this call connected, so that
    the caller disconnects afterwards). A Ray the caller initialised itself is used as it is. One line
    if there is no cluster to reach."""
    import warnings

    ray = _ray()
    if ray.is_initialized():
        return ray, False
    try:
        with warnings.catch_warnings():  # Ray starts its processes by fork + exec, which is safe beside JAX's threads
            warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
            ray.init(address=backend.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=True, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at {backend.address}" if backend.address else "a local Ray instance"
        raise ConfigError(f"--backend ray: could not reach {where} ({str(e).splitlines()[0]}); start one with "
                          "`ray start --head` and pass its address, or drop --address") from None
    resources = ray.cluster_resources()
    cpus = resources.get("CPU", 0)
    say(f"pgax: Ray {'cluster at ' + backend.address if backend.address else 'local instance'}: "
        f"{cpus:g} CPU(s), {resources.get('GPU', 0):g} GPU(s)")
    if backend.task_cpus > cpus or backend.task_gpus > resources.get("GPU", 0):
        ray.shutdown()
        raise ConfigError(f"each task asks for {backend.task_cpus:g} CPU(s) and {backend.task_gpus:g} GPU(s), more "
                          f"than the cluster's {cpus:g} and {resources.get('GPU', 0):g}; lower --task-cpus/--task-gpus")
    return ray, True


@contextlib.contextmanager
def session(backend: Backend, say=print):
    """Keep one Ray connection for everything inside (a search's batches); nothing for the local backend."""
    if backend.name != "ray":
        yield
        return
    ray, connected = connect(backend, say)
    try:
        yield
    finally:
        if connected:
            ray.shutdown()


def run_programs(splan, groups: list[list[int]], sweep_dir: Path, *, backend: Backend, stop, reporter,
                 resume: bool, prune_for=None) -> Iterator[tuple[list[int], list[dict], int]]:
    """Train each program of `groups`; yields (group, rows, exit code) as each one finishes.

    local: in this process, in order, stopping after the first that is interrupted or fails. ray: all
    at once as Ray tasks; a stop request cancels those still running (their rows, read back from their
    run folders, say interrupted).
    prune_for(group): a picklable function of no arguments that makes the group's `prune` callback (it
    runs where the program runs).
    """
    from pgax.sweep import _run_program

    if backend.name == "local":
        for group in groups:
            n = splan.programs.index(group) if group in splan.programs else 0
            reporter.say(f"pgax: program {n + 1}/{len(splan.programs)}: {len(group)} configuration(s) × "
                         f"{splan.run.seeds} seed(s)" + (f", vmapped over {', '.join(splan.vmapped)}"
                                                        if len(group) > 1 else ""))
            rows, code = _run_program(splan, group, sweep_dir, stop, reporter, resume,
                                      prune=prune_for(group)() if prune_for else None)
            yield group, rows, code
            if stop() or any(r["status"] in ("interrupted", "error") for r in rows):
                return
        return
    yield from _run_on_ray(splan, groups, sweep_dir, backend, stop, reporter, prune_for)


def _run_on_ray(splan, groups, sweep_dir: Path, backend: Backend, stop, reporter, prune_for):
    ray, connected = connect(backend, reporter.say)
    env_vars = {}
    if 0 < backend.task_gpus < 1 and "XLA_PYTHON_CLIENT_MEM_FRACTION" not in os.environ:
        env_vars["XLA_PYTHON_CLIENT_MEM_FRACTION"] = f"{0.9 * backend.task_gpus:.3f}"
    task = ray.remote(program_task).options(
        num_cpus=backend.task_cpus, num_gpus=backend.task_gpus, max_retries=backend.retries, retry_exceptions=False,
        **({"runtime_env": {"env_vars": env_vars}} if env_vars else {}))
    plan_ref = ray.put(splan)
    pending = {task.remote(plan_ref, group, str(sweep_dir), prune_for(group) if prune_for else None): group
               for group in groups}
    reporter.say(f"pgax: {len(pending)} program(s) submitted as Ray tasks ({backend.task_cpus:g} CPU, "
                 f"{backend.task_gpus:g} GPU each; up to {backend.retries} retries)")
    try:
        yield from _collect(ray, splan, pending, sweep_dir, backend, stop, reporter)
    finally:
        if connected:
            ray.shutdown()


def _collect(ray, splan, pending: dict, sweep_dir: Path, backend: Backend, stop, reporter):
    from pgax.experiment import EXIT_ERROR, SIGNAL_EXIT
    from pgax.sweep import DONE, _label, _read_row, _row

    cancelled_at = None
    while pending:
        if cancelled_at is None and stop():
            for ref in pending:
                ray.cancel(ref)
            cancelled_at = time.perf_counter()
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        for ref in ready:
            group = pending.pop(ref)
            try:
                rows, code = ray.get(ref)
            except ray.exceptions.RayError as e:  # cancelled, its worker died, or it raised
                rows = [_read_row(splan, i, sweep_dir) for i in group]
                if cancelled_at is not None:
                    code = SIGNAL_EXIT.get(stop.requested or "SIGINT", 130)
                    rows = [r if r is not None and r["status"] in DONE
                            else {**(r or _row(splan, i, sweep_dir, {})), "status": "interrupted"}
                            for i, r in zip(group, rows)]
                else:
                    raised = isinstance(e, ray.exceptions.RayTaskError)
                    cause = e.cause if raised and getattr(e, "cause", None) is not None else e
                    what = f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}".strip(": ")
                    how = "raised" if raised else f"failed after {backend.retries} retries"
                    reporter.error(f"pgax: the Ray task of {', '.join(_label(splan.values[i]) for i in group)} "
                                   f"{how} ({what}); its configurations are marked error, `pgax sweep --resume` "
                                   f"runs them again")
                    code = EXIT_ERROR
                    rows = [{**_row(splan, i, sweep_dir, {}), "status": "error", "error": what} for i in group]
            yield group, rows, code


__all__ = ["BACKENDS", "Backend", "connect", "preflight", "program_task", "run_programs", "session"]
