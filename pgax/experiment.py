"""The experiment core: a run from its spec to its result, and the run folder it leaves.

Layer 3. `run_experiment(preset, run, config)` builds the env and its driver (`pgax.train`), the
agent, the run folder, and trains with periodic evaluation, checkpoints (`pgax.checkpoints`) and
loggers (`pgax.logging`: metrics.csv, eval.csv, TensorBoard), then evaluates and writes
summary.json and curve.png. `resume_experiment(run_dir)` continues a run in place from its
checkpoint; `load_policy(run_dir)` returns its policy for acting. `pgax train`, `pgax resume`,
`pgax eval`, `pgax compare` and the benchmarks are thin callers.

    RUN/config.yaml        what was asked (algorithm, env, run options, hyperparameters) and derived
    RUN/metrics.csv        one row per iteration per seed
    RUN/eval.csv           one row per periodic evaluation per seed (--eval-every)
    RUN/tensorboard/       TensorBoard event files
    RUN/checkpoints/       latest/<iteration>/ (the last --keep-checkpoints) and best/<iteration>/
    RUN/summary.json       how the run ended: status, steps, evaluation, timings, error
    RUN/curve.png          the learning curve

Faults. SIGINT, SIGTERM and SIGHUP ask the run to stop: the running chunk finishes (chunks are
capped by --chunk-seconds of wall time), is kept, checkpointed, and the run ends with status
"interrupted" (a second signal aborts at once, still writing summary.json). Non-finite parameters,
losses or env outputs stop the run with status "diverged" and the last finite state checkpointed.
Any other error (an env that raises, I/O, out of memory) ends the run with status "error", the
completed iterations checkpointed and summary.json written. Exit codes: `EXIT_CODES`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pgax.checkpoints import CheckpointError
from pgax.errors import ConfigError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_DIVERGED = 0, 1, 2, 3
SIGNAL_EXIT = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}
EXIT_CODES = {
    EXIT_OK: "the run finished",
    EXIT_ERROR: "an error stopped the run (env, I/O, memory); summary.json names it, the completed iterations are checkpointed",
    EXIT_USAGE: "bad input (options, config file, run folder, checkpoint); nothing was trained",
    EXIT_DIVERGED: "non-finite parameters, losses or env outputs; the last finite state is checkpointed",
    129: "stopped by SIGHUP (closed terminal); the completed iterations are checkpointed",
    130: "stopped by SIGINT (Ctrl-C); the completed iterations are checkpointed",
    143: "stopped by SIGTERM (kill, SLURM, docker stop); the completed iterations are checkpointed",
}
MAX_STEPS = 10 ** 12
"""The largest --steps (environment steps per seed)."""
MAX_SEEDS = 4096
MAX_CHUNK_ITERATIONS = 100_000


@dataclass(frozen=True)
class RunOptions:
    """Options of a training run that are not hyperparameters of the algorithm."""

    env: str = "CartPole-v1"
    """Environment: an id of `pgax list`, a Gymnasium id (Hopper-v5, LunarLander-v3) or module:Class."""
    steps: int = 500_000
    """Environment steps per seed; rounded down to whole batches of num_envs × num_steps."""
    seeds: int = 3
    """Number of seeds, trained together as one vmapped program."""
    seed: int = 0
    """First seed; the run uses seeds seed, seed+1, ..., seed+seeds-1 (each in [0, 2^32))."""
    out: str = "runs"
    """Folder in which the run folder <date-time>-<algo>-<env>/ is created."""
    eval_episodes: int = 100
    """Episodes per seed of the final deterministic evaluation (0 skips it)."""
    eval_every: int = 0
    """Iterations between periodic deterministic evaluations (eval.csv, the best checkpoint); 0: none."""
    eval_every_episodes: int = 10
    """Episodes per seed of each periodic evaluation."""
    checkpoint_every: str = "10m"
    """Scheduled checkpoints: every N iterations (e.g. 50) or wall time (30s, 10m, 1h); 0: only at the end
    and on a signal."""
    keep_checkpoints: int = 3
    """How many of the latest checkpoints to keep (the best one is kept apart)."""
    tensorboard: bool = True
    """Write TensorBoard event files to RUN/tensorboard/."""
    curve_smoothing: int = 1
    """Iterations in the trailing mean of each seed's episode return in curve.png (1: unsmoothed)."""
    wandb: bool = False
    """Also log to Weights & Biases (needs `pip install wandb`; project from $WANDB_PROJECT, default pgax)."""
    chunk_iterations: int = 0
    """Most training iterations per compiled chunk (0: automatic, about 20 chunks per run)."""
    chunk_seconds: float = 5.0
    """Wall time a chunk aims at: a stop signal is answered, and progress shown, about this often."""
    progress: bool = True
    """Show the live progress bar."""
    driver: str = "auto"
    """Rollout driver: auto (jax for `pgax list` ids; envpool, where installed, for the MuJoCo ids checked against
    Gymnasium's and for envpool-only ids such as Pong-v5; else gymnasium), jax, gymnasium, gymnasium-async, envpool."""
    env_workers: int | None = None
    """Worker processes of --driver gymnasium-async besides the main one, at most seeds × num_envs (that many:
    a worker per env copy, the main process only runs the policy). Default: a worker per copy while there are
    fewer copies than cores, else one per core besides the main one. Evaluation uses fewer when it has fewer copies."""
    normalize_obs: bool = False
    """Running observation normalisation, clipped at 10 (both drivers; frozen at evaluation, saved in checkpoints)."""
    normalize_reward: bool = False
    """Scale rewards by the running std of the discounted return, clipped at 10 (both drivers)."""
    devices: int = 0
    """Devices the seeds (a sweep's configurations × seeds) are split over on a JAX-native env: the largest
    number up to this many (0: all of jax.devices()) that divides them evenly; results equal one device's."""

    def validate(self) -> None:
        for name in ("steps", "seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"--{name} must be a positive integer, got {value!r}")
        if self.steps > MAX_STEPS:
            raise ConfigError(f"--steps {self.steps} is more than {MAX_STEPS:.0e} steps per seed; choose fewer")
        if self.seeds > MAX_SEEDS:
            raise ConfigError(f"--seeds {self.seeds} is more than {MAX_SEEDS}; run several groups of seeds instead")
        if not 0 <= self.seed or self.seed + self.seeds > 2 ** 32:
            raise ConfigError(f"--seed {self.seed} with --seeds {self.seeds} leaves [0, 2^32) (seeds are 32-bit); "
                              f"choose --seed between 0 and {2 ** 32 - self.seeds}")
        for name in ("eval_episodes", "eval_every", "chunk_iterations", "devices"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be an integer >= 0, got {value!r}")
        if self.chunk_iterations > MAX_CHUNK_ITERATIONS:
            raise ConfigError(f"--chunk-iterations {self.chunk_iterations} is more than {MAX_CHUNK_ITERATIONS}; "
                              "choose fewer (0: automatic)")
        if self.eval_every and self.eval_every_episodes <= 0:
            raise ConfigError(f"--eval-every-episodes must be a positive integer, got {self.eval_every_episodes}")
        if isinstance(self.curve_smoothing, bool) or not isinstance(self.curve_smoothing, int) or \
                self.curve_smoothing <= 0:
            raise ConfigError(f"--curve-smoothing must be a positive integer, got {self.curve_smoothing!r}")
        if self.keep_checkpoints <= 0:
            raise ConfigError(f"--keep-checkpoints must be a positive integer, got {self.keep_checkpoints}")
        if not self.chunk_seconds > 0:
            raise ConfigError(f"--chunk-seconds must be positive, got {self.chunk_seconds}")
        parse_interval(self.checkpoint_every)
        from pgax.envs.gymnasium_env import DRIVERS
        if self.driver not in DRIVERS:
            raise ConfigError(f"--driver {self.driver!r} is not known; use one of {', '.join(DRIVERS)}")
        if self.env_workers is not None and self.driver != "gymnasium-async":
            raise ConfigError("--env-workers sets the worker processes of --driver gymnasium-async; "
                              "add --driver gymnasium-async (or drop --env-workers)")
        if self.env_workers is not None and self.env_workers < 0:
            raise ConfigError(f"--env-workers must be >= 0, got {self.env_workers}")


def parse_interval(text: str) -> tuple[int | None, float | None]:
    """--checkpoint-every: "N" → (N iterations, None); "30s" / "10m" / "2h" → (None, seconds); "0" → (None, None)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not match:
        raise ConfigError(f"--checkpoint-every {text!r}: give iterations (50) or a wall time (30s, 10m, 2h)")
    value, unit = float(match.group(1)), match.group(2)
    if value == 0:
        return None, None
    if unit:
        return None, value * {"s": 1, "m": 60, "h": 3600}[unit]
    if value != int(value):
        raise ConfigError(f"--checkpoint-every {text!r}: a number of iterations is a whole number")
    return int(value), None


class StopSignals:
    """While active (a context manager, in the main thread): SIGINT, SIGTERM and SIGHUP set
    `requested` to the signal's name instead of killing the process; a second one raises
    KeyboardInterrupt. Calling the object says whether a stop was requested."""

    def __init__(self, say: Callable[[str], None] = print):
        self.requested: str | None = None
        self._say, self._old = say, {}

    def __call__(self) -> bool:
        return self.requested is not None

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.requested is not None:
            raise KeyboardInterrupt
        self.requested = name
        self._say(f"pgax: {name} received: stopping after the running chunk and saving it (send it again to abort)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


@dataclass
class Plan:
    """Everything derived from (preset, run, config) before anything is written."""

    preset: Any
    run: RunOptions
    config: Any
    env: Any
    driver_kind: str
    batch_size: int
    num_iterations: int
    seeds: list[int]
    chunk: int
    agent: Any


def plan_run(preset, run: RunOptions, config) -> Plan:
    """Validate the options, make the env and the agent, and do the iteration arithmetic."""
    from pgax import envs
    from pgax.train import default_chunk_iterations

    run.validate()
    config.validate()
    driver = envs.resolve_driver(run.env, run.driver, copies=run.seeds * config.num_envs)
    env = envs.make(run.env) if driver == "jax" else envs.make_host_env(run.env, driver)
    batch_size = config.num_envs * config.num_steps
    num_iterations = run.steps // batch_size
    if num_iterations == 0:
        raise ConfigError(f"--steps {run.steps} is less than one batch of num_envs × num_steps = {batch_size}; "
                          f"raise --steps to at least {batch_size}")
    if num_iterations >= 2 ** 31:
        raise ConfigError(f"--steps {run.steps} is {num_iterations} iterations of {batch_size} steps, more than 2^31; "
                          "choose fewer steps")
    copies = run.seeds * config.num_envs
    if run.env_workers is not None and run.env_workers > copies:
        raise ConfigError(f"--env-workers {run.env_workers} is more than the seeds × num_envs = {copies} env copies; "
                          f"use at most {copies}")
    seeds = list(range(run.seed, run.seed + run.seeds))
    if driver == "jax":
        from pgax.train import row_devices

        row_devices(len(seeds), run.devices)  # more devices than JAX sees: one line before anything compiles
    agent = preset.make_agent(config, env, num_iterations)
    chunk = min(run.chunk_iterations or default_chunk_iterations(num_iterations), num_iterations)
    return Plan(preset, run, config, env, driver, batch_size, num_iterations, seeds, chunk, agent)


def make_run_driver(plan: Plan):
    from pgax.train import make_driver

    return make_driver(plan.agent, plan.env, num_envs=plan.config.num_envs, num_steps=plan.config.num_steps,
                       seeds=plan.seeds, chunk_iterations=plan.chunk, normalize_obs=plan.run.normalize_obs,
                       normalize_reward=plan.run.normalize_reward, gamma=getattr(plan.config, "gamma", 0.99),
                       asynchronous=plan.driver_kind == "gymnasium-async", num_workers=plan.run.env_workers,
                       devices=plan.run.devices)


def _row_device_names(plan: Plan) -> list[str]:
    """The devices the seeds are split over (the jax driver), else the first device."""
    import jax

    from pgax.train import row_devices

    if plan.driver_kind != "jax":
        return [str(jax.devices()[0])]
    return [str(d) for d in row_devices(len(plan.seeds), plan.run.devices)]


def run_config(plan: Plan) -> dict:
    """config.yaml's contents."""
    import jax

    from pgax import __version__
    from pgax.algorithms import config_to_dict

    return {
        "algorithm": plan.preset.name,
        "env": plan.run.env,
        "run": dataclasses.asdict(plan.run),
        "config": config_to_dict(plan.config),
        "derived": {"batch_size": plan.batch_size, "iterations": plan.num_iterations,
                    "steps_per_seed": plan.num_iterations * plan.batch_size, "seeds": plan.seeds,
                    "chunk_iterations": plan.chunk, "driver": plan.driver_kind,
                    "devices": _row_device_names(plan)},
        "versions": {"pgax": __version__, "jax": jax.__version__},
        "device": str(jax.devices()[0]),
    }


class Reporter:
    """What a run shows while it trains (the CLI's progress bar subclasses it; this one prints lines)."""

    def __init__(self, say: Callable[[str], None] = print):
        self.say = say

    def start(self, total_steps: int, num_seeds: int) -> None:
        pass

    def status(self, text: str) -> None:
        pass

    def update(self, steps: int, returns: np.ndarray) -> None:
        pass

    def stop(self) -> None:
        pass

    def error(self, line: str) -> None:
        """A line about a fault (divergence, an error): to stderr."""
        print(line, file=sys.stderr, flush=True)


def _checkpoint_meta(plan: Plan, done: int, metrics_offset: int, eval_offset: int, eval_return: float | None,
                     best_return: float | None) -> dict:
    return {"algorithm": plan.preset.name, "env": plan.run.env, "seeds": plan.seeds, "batch_size": plan.batch_size,
            "driver": plan.driver_kind, "iterations": int(done), "steps_per_seed": int(done) * plan.batch_size,
            "metrics_offset": int(metrics_offset), "eval_offset": int(eval_offset),
            "eval_return": eval_return, "best_eval_return": best_return,
            "written_at": _dt.datetime.now().isoformat(timespec="seconds")}


def check_checkpoint_fits(meta: dict, plan: Plan, where: str) -> None:
    """One line naming the difference when checkpoint `meta` comes from another kind of run."""
    for key, ours, what in (("algorithm", plan.preset.name, "algorithm"), ("env", plan.run.env, "env"),
                            ("seeds", plan.seeds, "seeds"), ("batch_size", plan.batch_size, "num_envs × num_steps")):
        theirs = meta.get(key)
        if theirs != ours:
            raise CheckpointError(f"checkpoint {where} is from a run with {what} {theirs!r}, this run has {ours!r}; "
                                  "use a checkpoint of this run")


def _describe_error(e: BaseException) -> str:
    text = " ".join(str(e).split())[:300]
    if "RESOURCE_EXHAUSTED" in text or "Out of memory" in text or isinstance(e, MemoryError):
        return f"out of memory ({text or type(e).__name__}); lower --seeds, --num-envs or --num-steps"
    if isinstance(e, OSError):
        return f"I/O error: {e.strerror or text} ({e.filename or ''}); free space or choose another --out"
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def run_experiment(preset, run: RunOptions, config, run_dir: Path | None = None, *, resume: str | None = None,
                   reporter: Reporter | None = None) -> dict:
    """Train `preset` with `config` as `run` asks; write the run folder; return summary.json's dict
    (with "run_dir" and "exit_code" added).

    run_dir: the folder to write (created if needed); default `run.out/<date-time>-<algo>-<env>/`.
    resume: continue `run_dir` from its checkpoint `resume` ("latest", "best" or an iteration count):
        the state is restored, metrics.csv / eval.csv are cut back to the checkpoint's rows, and the
        TensorBoard events after it are purged. JAX-native envs continue bit-identically; Gymnasium
        envs continue with fresh env resets (their state cannot be saved), normaliser statistics kept.
    Raises ConfigError (exit 2) for bad input before anything is trained.
    """
    from pgax import checkpoints
    from pgax.logging import EvalWriter, MetricsWriter, TensorBoardWriter, make_run_dir, write_json, write_yaml

    reporter = reporter or Reporter()
    say = reporter.say
    t_wall = time.perf_counter()
    plan = plan_run(preset, run, config)
    every_iterations, every_seconds = parse_interval(run.checkpoint_every)
    steps_total = plan.num_iterations * plan.batch_size

    driver = make_run_driver(plan)
    restored_meta, restore_from = None, None
    if resume is not None:
        run_dir = Path(run_dir)
        restore_from = checkpoints.resolve(run_dir, resume)
        restored_meta = restore_from[0].meta(restore_from[1])
        check_checkpoint_fits(restored_meta, plan, str(restore_from[0].directory / str(restore_from[1])))
        if restored_meta["iterations"] >= plan.num_iterations:
            raise ConfigError(f"{run_dir} already has {restored_meta['steps_per_seed']:,} steps per seed; "
                              f"continue with --steps TOTAL above that")
    elif run_dir is None:
        run_dir = make_run_dir(run.out, preset.name, run.env)
    else:
        try:
            run_dir = Path(run_dir)
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"cannot create the run folder {run_dir} ({e.strerror or e}); choose a writable folder") \
                from None
    write_yaml(run_dir / "config.yaml", run_config(plan))

    latest = checkpoints.CheckpointStore(run_dir / "checkpoints" / "latest", keep=run.keep_checkpoints)
    best_store = checkpoints.CheckpointStore(run_dir / "checkpoints" / "best", keep=1) if run.eval_every else None
    summary: dict[str, Any] = {"algorithm": preset.name, "env": run.env, "steps": 0, "steps_requested": run.steps,
                               "seeds": run.seeds, "seed_values": plan.seeds, "status": "running"}
    track = {"done": 0, "offsets": {}, "best": None, "last_eval": None, "last_ckpt_time": time.perf_counter(),
             "last_ckpt_done": 0, "saved": None}
    sinks: list = []
    result = None
    compile_seconds = 0.0
    start = 0

    def save_checkpoint(state, done, store=None, eval_return=None):
        metrics_offset, eval_offset = track["offsets"][done]
        meta = _checkpoint_meta(plan, done, metrics_offset, eval_offset, eval_return, track["best"])
        (store or latest).save(done, state, _policy_tree(driver, state), meta)
        if store is None:
            track["saved"], track["last_ckpt_time"], track["last_ckpt_done"] = done, time.perf_counter(), done

    with StopSignals(say) as stop:
        try:
            say(f"pgax: {'resuming' if resume else 'training'} {preset.name} on {run.env}: {run.seeds} seed(s) × "
                f"{steps_total:,} steps → {run_dir}")
            reporter.start(steps_total, run.seeds)
            reporter.status("compiling")
            t0 = time.perf_counter()
            state = driver.init()
            if restore_from is not None:
                store, step = restore_from
                state = driver.restart(store.restore(step, "state", state), step)
                start = int(restored_meta["iterations"])
                track["best"] = restored_meta.get("best_eval_return")
                track["offsets"][start] = (restored_meta["metrics_offset"], restored_meta["eval_offset"])
                track["last_ckpt_done"] = start
            driver.compile(state)
            compile_seconds = time.perf_counter() - t0
            track["done"] = start

            metrics_writer = MetricsWriter(run_dir / "metrics.csv", plan.seeds, plan.batch_size,
                                           resume_at=restored_meta["metrics_offset"] if restored_meta else None)
            sinks.append(metrics_writer)
            eval_writer = None
            if run.eval_every:
                eval_writer = EvalWriter(run_dir / "eval.csv", plan.seeds,
                                         resume_at=restored_meta["eval_offset"] if restored_meta else None)
                sinks.append(eval_writer)
            tensorboard = None
            if run.tensorboard:
                tensorboard = TensorBoardWriter(run_dir / "tensorboard", plan.batch_size,
                                                purge_step=start * plan.batch_size + 1 if restored_meta else None)
                sinks.append(tensorboard)
            wandb_run = _start_wandb(run, plan, run_dir) if run.wandb else None
            if wandb_run is not None:
                sinks.append(wandb_run)

            def record_offsets(done):
                track["offsets"] = {k: v for k, v in track["offsets"].items() if k >= done - 2 * plan.chunk or k == start}
                track["offsets"][done] = (metrics_writer.offset, eval_writer.offset if eval_writer else 0)

            def on_chunk(done, metrics, chunk_state):
                metrics_writer.append(done, metrics)
                if chunk_state is not None:
                    record_offsets(done)
                for sink in sinks:
                    if sink is not metrics_writer and sink is not eval_writer and hasattr(sink, "append"):
                        sink.append(done, metrics)
                reporter.update(done * plan.batch_size, metrics["episode_return_mean"][:, -1])
                track["done"] = done
                if chunk_state is None:  # non-finite: nothing of this chunk is evaluated or checkpointed
                    return
                eval_return = None
                if run.eval_every and (done % run.eval_every == 0 or done == plan.num_iterations):
                    returns = driver.evaluate(chunk_state, run.eval_every_episodes)
                    eval_writer.append(done * plan.batch_size, returns)
                    eval_return = float(returns.mean())
                    track["last_eval"] = eval_return
                    if tensorboard is not None:
                        tensorboard.append_eval(done * plan.batch_size, returns)
                    record_offsets(done)
                if eval_return is not None and (track["best"] is None or eval_return > track["best"]):
                    track["best"] = eval_return
                    save_checkpoint(chunk_state, done, best_store, eval_return)
                due = (every_iterations is not None and done - track["last_ckpt_done"] >= every_iterations) or (
                    every_seconds is not None and time.perf_counter() - track["last_ckpt_time"] >= every_seconds)
                if due and done < plan.num_iterations:
                    save_checkpoint(chunk_state, done)

            from pgax.train import train_loop

            align = [p for p in (run.eval_every, every_iterations) if p]
            result = train_loop(driver, state, start=start, num_iterations=plan.num_iterations,
                                chunk_iterations=plan.chunk, chunk_seconds=run.chunk_seconds, on_chunk=on_chunk,
                                stop=stop, align=align)
            summary["steps"] = result.iterations_done * plan.batch_size
            if result.iterations_done > start:
                save_checkpoint(result.state, result.iterations_done)
            status, exit_code = "finished", EXIT_OK
            if result.nonfinite is not None:
                status, exit_code = "diverged", EXIT_DIVERGED
                summary["diverged"] = {"iteration": result.nonfinite.iteration, "seeds": list(result.nonfinite.seeds),
                                       "what": list(result.nonfinite.what)}
                cause = ("the environment returned NaN or inf (check it with pgax check-env)"
                         if "env outputs" in result.nonfinite.what else
                         "a step size too large for this problem (lower --lr) or unclipped gradients")
                reporter.error(f"pgax: diverged: {result.nonfinite.describe()}; likely cause: {cause}. The last finite state "
                    f"(iteration {result.iterations_done}) is checkpointed in {run_dir / 'checkpoints'}")
            elif result.error is not None:
                status, exit_code = "error", EXIT_ERROR
                summary["error"] = _describe_error(result.error)
                reporter.error(f"pgax: error at iteration {result.iterations_done + 1}: {summary['error']}; the "
                    f"{result.iterations_done} completed iterations are checkpointed in {run_dir / 'checkpoints'}")
            elif result.interrupted or result.stopped:
                status = "interrupted"
                exit_code = SIGNAL_EXIT.get(stop.requested or "SIGINT", 130)
                summary["signal"] = stop.requested or "SIGINT"
                say(f"pgax: interrupted after {summary['steps']:,} steps per seed; checkpointed, continue with "
                    f"`pgax resume {run_dir}`")
            summary["status"], summary["interrupted"] = status, status == "interrupted"

            eval_returns = None
            if status == "finished" and run.eval_episodes and not stop():
                reporter.status("evaluating")
                eval_returns = driver.evaluate(result.state, run.eval_episodes)
                reporter.status("done")
                per_seed = eval_returns.mean(axis=1)
                say(f"evaluation: mean return {per_seed.mean():.1f} over {run.seeds} seed(s) × {run.eval_episodes} "
                    f"episodes (deterministic policy); per seed: {', '.join(f'{x:.1f}' for x in per_seed)}")
            summary["final_return_mean"] = float(eval_returns.mean()) if eval_returns is not None else None
            summary["final_return_per_seed"] = eval_returns.mean(axis=1).tolist() if eval_returns is not None else None
        except KeyboardInterrupt:  # a second signal: stop now, keep what is on disk
            summary.update(status="interrupted", interrupted=True, signal=stop.requested or "SIGINT")
            exit_code = SIGNAL_EXIT.get(stop.requested or "SIGINT", 130)
            say("pgax: aborted; summary.json written, the last checkpoint is kept")
        except ConfigError:
            raise
        except Exception as e:  # noqa: BLE001 - one line and a summary, never a traceback
            summary.update(status="error", interrupted=False, error=_describe_error(e))
            exit_code = EXIT_ERROR
            reporter.error(f"pgax: error: {summary['error']}")
        finally:
            reporter.stop()
            driver.close()
            for sink in sinks:
                try:
                    sink.close()
                except Exception:  # noqa: BLE001 - a sink that cannot close has nothing more to keep
                    pass
            latest.close()
            if best_store is not None:
                best_store.close()

    summary.setdefault("interrupted", False)
    summary.setdefault("final_return_mean", None)
    summary.setdefault("final_return_per_seed", None)
    train_seconds = result.train_seconds if result is not None else 0.0
    done_now = (result.iterations_done if result is not None else track["done"]) - start
    total_seconds = time.perf_counter() - t_wall
    train_sps = done_now * plan.batch_size * run.seeds / train_seconds if train_seconds > 0 else float("nan")
    summary.update({
        "eval_episodes": run.eval_episodes,
        "best_eval_return": track["best"],
        "checkpoint": str(run_dir / "checkpoints" / "latest" / str(track["saved"])) if track["saved"] is not None else None,
        "resumed_from": int(start) if resume is not None else None,
        "steps_per_second": train_sps,
        "compile_seconds": compile_seconds,
        "train_seconds": train_seconds,
        "wall_seconds": total_seconds,
        "exit_code": exit_code,
        "finished_at": _dt.datetime.now().isoformat(timespec="seconds"),
    })
    try:
        write_json(run_dir / "summary.json", summary)
        _plot(run_dir, preset.name, run.env, run.seeds, run.curve_smoothing)
    except OSError as e:
        reporter.error(f"pgax: error: {_describe_error(e)}")
        summary["exit_code"] = exit_code = exit_code or EXIT_ERROR
    if summary["status"] == "finished":
        say(f"pgax: {done_now * plan.batch_size * run.seeds:,} steps in {train_seconds:.1f} s ({train_sps:,.0f} "
            f"steps/s, compile {compile_seconds:.1f} s, wall {total_seconds:.1f} s); results in {run_dir}")
    summary["run_dir"] = str(run_dir)
    return summary


def _policy_tree(driver, state) -> dict:
    params, obs_stats = driver.policy(state)
    return {"params": params, "obs_stats": obs_stats}


def _start_wandb(run: RunOptions, plan: Plan, run_dir: Path):
    try:
        import wandb
    except ImportError:
        raise ConfigError("--wandb needs the wandb package: pip install wandb (or drop --wandb)") from None
    import os

    session = wandb.init(project=os.environ.get("WANDB_PROJECT", "pgax"), name=run_dir.name, dir=str(run_dir),
                         config=run_config(plan), resume="allow")

    class WandbSink:
        def append(self, done, metrics):
            k = next(iter(metrics.values())).shape[1]
            for j in range(k):
                step = (done - k + 1 + j) * plan.batch_size
                session.log({f"train/{n}": float(np.nanmean(v[:, j])) for n, v in metrics.items()}, step=step)

        def close(self):
            session.finish()

    return WandbSink()


def _plot(run_dir: Path, algorithm: str, env_id: str, num_seeds: int, smoothing: int = 1) -> None:
    from pgax.logging import read_metrics
    from pgax.plotting import plot_curves, smooth_per_seed

    metrics_path = run_dir / "metrics.csv"
    if not metrics_path.exists():
        return
    m = read_metrics(metrics_path)
    if not m:
        return
    returns = smooth_per_seed(m["step"], m["seed"], m["episode_return_mean"], smoothing)
    title = f"{algorithm} on {env_id}" + (f", trailing mean of {smoothing} iterations" if smoothing > 1 else "")
    plot_curves(run_dir / "curve.png", {algorithm: (m["step"], m["seed"], returns)}, title, num_seeds)


def read_run(run_dir: str | Path, steps: int | None = None):
    """(preset, RunOptions, config) of a run folder's config.yaml; `steps` replaces its --steps."""
    import yaml

    from pgax.algorithms import get_preset
    from pgax.algorithms.core import current_name

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no config.yaml); give the folder pgax train wrote")
    try:
        data = yaml.safe_load(path.read_text())
        preset = get_preset(data["algorithm"])
        run_values = dict(data["run"])
        config = preset.config_type(**{current_name(preset.config_type, k): tuple(v) if isinstance(v, list) else v
                                       for k, v in data["config"].items()})
    except (yaml.YAMLError, KeyError, TypeError) as e:
        raise ConfigError(f"{path} is damaged ({type(e).__name__}: {e}); it cannot be resumed") from None
    known = {f.name for f in dataclasses.fields(RunOptions)}
    run = RunOptions(**{k: v for k, v in run_values.items() if k in known})
    if steps is not None:
        run = dataclasses.replace(run, steps=steps)
    return preset, run, config


def resume_experiment(run_dir: str | Path, steps: int | None = None, checkpoint: str = "latest",
                      reporter: Reporter | None = None, progress: bool | None = None) -> dict:
    """Continue the run in `run_dir` from its checkpoint (see `run_experiment`'s `resume`);
    `steps`: the new total steps per seed (default: the run's own)."""
    preset, run, config = read_run(run_dir, steps)
    if progress is not None:
        run = dataclasses.replace(run, progress=progress)
    return run_experiment(preset, run, config, Path(run_dir), resume=checkpoint, reporter=reporter)


# ---------------------------------------------------------------------------------------------
# Loading a trained policy.
# ---------------------------------------------------------------------------------------------


@dataclass
class LoadedPolicy:
    """A trained policy of a run folder, usable without any training objects.

    act(obs, deterministic=True, key=None): obs [obs_dim] or [B, obs_dim] (numpy or lists) ->
    action [...] or [B, ...] as numpy; the run's observation normalisation (frozen statistics) is
    applied first. deterministic=False samples (key: a jax PRNG key, default one drawn from a
    counter). `env` is the environment the run trained on; `checkpoint` names the checkpoint used.
    """

    agent: Any
    params: Any
    obs_stats: Any
    env: Any
    checkpoint: str
    iterations: int
    _act: Any = None
    _sample: Any = None
    _calls: int = 0

    def act(self, obs, deterministic: bool = True, key=None) -> np.ndarray:
        import jax
        import jax.numpy as jnp

        from pgax.envs.normalize import normalize_obs
        from pgax.train import NORMALIZE_CLIP

        obs = np.asarray(obs, np.float32)
        single = obs.ndim == 1
        batch = jnp.asarray(obs[None] if single else obs)
        if self._act is None:
            def seen(o):
                return o if self.obs_stats is None else normalize_obs(self.obs_stats, o, NORMALIZE_CLIP)

            self._act = jax.jit(lambda o: self.agent.act_deterministic(self.params, seen(o)))
            self._sample = jax.jit(lambda o, k: self.agent.act(self.params, seen(o), k)[0])
        if deterministic:
            action = self._act(batch)
        else:
            if key is None:
                key = jax.random.PRNGKey(self._calls)
                self._calls += 1
            action = self._sample(batch, key)
        action = np.asarray(action)
        return action[0] if single else action


def _restore_policy(run_dir: str | Path, checkpoint: str | int):
    """(plan, checkpoint path, meta, policy item with a leading seed axis) of a run folder's checkpoint."""
    from pgax import checkpoints

    preset, run, config = read_run(run_dir)
    plan = plan_run(preset, dataclasses.replace(run, progress=False), config)
    store, step = checkpoints.resolve(run_dir, checkpoint)
    where = str(store.directory / str(step))
    meta = store.meta(step)
    check_checkpoint_fits(meta, plan, where)
    policy = store.restore(step, "policy", _policy_like(plan))
    store.close()
    return plan, where, meta, policy


def _seed_policy(plan: Plan, where: str, meta: dict, policy: dict, seed_index: int) -> LoadedPolicy:
    import jax

    if not 0 <= seed_index < len(plan.seeds):
        raise ConfigError(f"seed index {seed_index} is outside the run's {len(plan.seeds)} seed(s)")
    pick = lambda tree: None if tree is None else jax.tree_util.tree_map(lambda x: x[seed_index], tree)  # noqa: E731
    return LoadedPolicy(plan.agent, pick(policy["params"]), pick(policy["obs_stats"]), plan.env, where,
                        int(meta["iterations"]))


def load_policy(run_dir: str | Path, checkpoint: str | int = "best", seed_index: int = 0) -> LoadedPolicy:
    """The policy of seed number `seed_index` of a run folder's checkpoint `checkpoint` ("best":
    the best periodic evaluation, or the latest when the run had none; "latest"; an iteration count)."""
    return _seed_policy(*_restore_policy(run_dir, checkpoint), seed_index)


def _policy_like(plan: Plan) -> dict:
    """The structure of a checkpoint's `policy` item for this plan, built without stepping any env."""
    import jax
    import jax.numpy as jnp

    from pgax.envs.normalize import init_stats

    dim = plan.env.observation_space.shape[-1]
    S = len(plan.seeds)
    obs = jnp.zeros((dim,), jnp.float32)
    params = jax.eval_shape(lambda k: plan.agent.init(k, obs).params, jax.random.PRNGKey(0))
    stats = init_stats((dim,)) if plan.run.normalize_obs else None
    stack = lambda t: jax.tree_util.tree_map(lambda x: np.zeros((S,) + tuple(x.shape), x.dtype), t)  # noqa: E731
    return {"params": stack(params), "obs_stats": None if stats is None else stack(stats)}


def evaluate_run(run_dir: str | Path, checkpoint: str | int = "best", episodes: int = 10, stochastic: bool = False,
                 video: str | None = None, say: Callable[[str], None] = print) -> dict:
    """`pgax eval`: evaluate a checkpoint's policy of every seed for `episodes` episodes (deterministic
    unless `stochastic`) on fresh env copies; optionally record seed 0's first episode to `video`
    (.gif or .mp4; needs an env that renders rgb_array frames). Returns {"per_seed": [...], ...}."""
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes <= 0:
        raise ConfigError(f"--episodes must be a positive integer, got {episodes!r}")
    plan, where, meta, policy = _restore_policy(run_dir, checkpoint)
    if video is not None:
        _check_video(video, plan)
    from pgax.train import evaluate

    returns = evaluate(plan.agent, plan.env, policy["params"], plan.seeds, episodes, obs_stats=policy["obs_stats"],
                       deterministic=not stochastic)
    per_seed = returns.mean(axis=1)
    mode = "stochastic" if stochastic else "deterministic"
    say(f"{where} ({int(meta['iterations']) * plan.batch_size:,} steps): mean return "
        f"{per_seed.mean():.1f} over {len(plan.seeds)} seed(s) × {episodes} episodes ({mode} policy); per seed: "
        f"{', '.join(f'{x:.1f}' for x in per_seed)}")
    out = {"checkpoint": where, "iterations": int(meta["iterations"]), "episodes": episodes,
           "stochastic": stochastic, "per_seed": per_seed.tolist(), "mean": float(per_seed.mean())}
    if video is not None:
        frames = record_episode(_seed_policy(plan, where, meta, policy, 0), plan.env, deterministic=not stochastic)
        _write_video(video, frames)
        say(f"video: {len(frames)} frames → {video}")
        out["video"] = video
    return out


def _check_video(video: str, plan: Plan) -> None:
    if not str(video).endswith((".gif", ".mp4")):
        raise ConfigError(f"--video {video}: name a .gif or .mp4 file")
    if plan.driver_kind == "jax":
        raise ConfigError(f"--video: {plan.run.env} is a JAX-native env, which renders no frames; record a run on a "
                          "Gymnasium env (--driver gymnasium) instead")
    if str(video).endswith(".mp4"):
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise ConfigError("--video FILE.mp4 needs imageio-ffmpeg (pip install imageio-ffmpeg); or write a .gif") \
                from None


def record_episode(policy: LoadedPolicy, env, deterministic: bool = True, max_steps: int | None = None) -> list:
    """rgb_array frames of one episode of `policy` on a Gymnasium env (`GymnasiumEnv`)."""
    import gymnasium

    limit = max_steps or env.max_episode_steps or 10_000
    instance = env.make_env()
    try:
        spec_id = getattr(getattr(instance, "spec", None), "id", None)
        if getattr(instance, "render_mode", None) != "rgb_array" and spec_id is not None:
            instance.close()
            instance = gymnasium.make(spec_id, render_mode="rgb_array")
        if getattr(instance, "render_mode", None) != "rgb_array":
            raise ConfigError(f"--video: {env.name} does not render rgb_array frames; it cannot be recorded")
        obs, _ = instance.reset(seed=0)
        try:
            frames = [np.asarray(instance.render())]
        except Exception as e:  # noqa: BLE001 - a renderer that is missing (pygame, OpenGL) or broken
            raise ConfigError(f"--video: {env.name} cannot render here ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:200]}); install what it names, or drop --video") from None
        if frames[0].ndim != 3:
            raise ConfigError(f"--video: {env.name}.render() gave an array of shape {frames[0].shape}, not an "
                              "RGB frame [H, W, 3]")
        for _ in range(limit):
            action = policy.act(env.obs_to_array(np.asarray(obs)[None])[0], deterministic=deterministic)
            obs, _, terminated, truncated, _ = instance.step(env.to_env_action(np.asarray(action)[None])[0])
            frames.append(np.asarray(instance.render()))
            if terminated or truncated:
                break
    finally:
        instance.close()
    return frames


def _write_video(path: str, frames: list) -> None:
    import imageio

    if str(path).endswith(".gif"):
        imageio.mimsave(path, [np.asarray(f) for f in frames], duration=1 / 30, loop=0)
    else:
        imageio.mimsave(path, [np.asarray(f) for f in frames], fps=30)
