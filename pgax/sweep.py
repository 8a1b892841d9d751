"""Hyperparameter sweeps: a grid of configurations × seeds, one compiled program per shape.

Layer 3 (running). `pgax sweep ALGO --grid lr=1e-4,3e-4 --grid clip_eps=0.1,0.2 --seeds 5`:

- the grid is the Cartesian product of the values of each key (`expand_grid`), every configuration
  validated before anything compiles;
- keys are split (`split_keys`): a float hyperparameter that the preset's builder can take as a traced
  value (learning rates, clip range, λ, γ, coefficients, KL sizes, ...) is an input of the program, one
  more vmapped axis beside the seeds; any other key (sizes, counts, switches, a float that changes the
  program such as `max_grad_norm`'s 0 = no clipping) makes a separate program. On a JAX-native env each
  program is `train.jax_driver` with one row per (configuration, seed); a Gymnasium env runs each
  configuration as its own `run_experiment`;
- each configuration gets a run folder of its own (config.yaml, metrics.csv, summary.json, curve.png,
  checkpoints/latest), so `pgax eval` and `pgax resume` work on it as on a `pgax train` run;
- the sweep folder holds sweep.json (written after every program, so finished configurations are
  never lost), table.txt (final deterministic return per configuration: mean over seeds and 95%
  bootstrap CI, best first) and curves.png. `pgax sweep --resume SWEEP_DIR` skips the programs whose
  configurations all finished and continues an interrupted one from its checkpoints.

A configuration's rows do not depend on the other rows of their program (bit-identical to a sweep of it
alone). Against a plain `pgax train` of the same configuration they agree to float32 rounding only:
there the values are constants of the program, which XLA may fold into a different order of operations.
"""

from __future__ import annotations

import dataclasses
import itertools
import shutil
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np

from pgax.errors import ConfigError

MAX_CONFIGS = 1024
"""Default bound on the configurations of one sweep (`--max-configs`)."""

DONE = ("finished", "diverged", "pruned")
"""The statuses of a configuration that `--resume` does not train again."""


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    """A sweep before anything is trained: its configurations and how they are grouped into programs."""

    preset: Any
    run: Any
    base: Any
    grid: dict[str, list]
    configs: list
    values: list[dict]
    vmapped: tuple[str, ...]
    programs: list[list[int]]


def parse_grid_values(config_type: type, key: str, text: str | list) -> tuple[str, list]:
    """(field name, values) of one `--grid key=v1,v2,...` (or a sweep file's `key: [v1, v2]`), each value
    of the field's type: numbers as written, true/false, strings, tuples as `64x64` (or YAML lists)."""
    from pgax.algorithms.core import typed_value

    name = field_name(config_type, key, f"--grid {key}")
    default = getattr(config_type(), name)
    raw = [v.strip() for v in text.split(",")] if isinstance(text, str) else list(text)
    if not raw or any(v == "" for v in raw):
        raise ConfigError(f"--grid {key}: give values separated by commas, like --grid {key}=a,b")
    values = []
    for v in raw:
        values.append(typed_value(name, _parse_text(v, default), default, f"--grid {key}"))
    if len(set(map(repr, values))) != len(values):
        raise ConfigError(f"--grid {key}: the value list {raw} repeats a value; give each value once")
    return name, values


def field_name(config_type: type, key: str, where: str) -> str:
    """The config field `key` names (dashes or underscores; a renamed field's old name), or one line naming
    the fields there are."""
    from pgax.algorithms.core import current_name, flag

    name = current_name(config_type, key.strip().replace("-", "_"))
    fields = {f.name for f in dataclasses.fields(config_type)}
    if name not in fields:
        raise ConfigError(f"{where}: {config_type.__name__} has no hyperparameter {name!r}; the ones it has: "
                          f"{', '.join(flag(f) for f in sorted(fields))}")
    return name


def _parse_text(value: Any, default: Any) -> Any:
    if isinstance(value, list):
        return tuple(value)
    if not isinstance(value, str) or isinstance(default, str):
        return value
    try:
        if isinstance(default, bool):
            return {"true": True, "false": False}.get(value.lower(), value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            return tuple(int(x) for x in value.split("x"))
    except ValueError:
        return value
    return value


def expand_grid(base, grid: dict[str, list]) -> tuple[list, list[dict]]:
    """The configurations of the Cartesian product of `grid` over `base` (the last key varies fastest),
    and each one's grid values."""
    keys = list(grid)
    values = [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]
    return [dataclasses.replace(base, **v) for v in values], values


def _traceable(preset, base, env, num_iterations: int, keys: list[str]) -> bool:
    """Whether the preset's training iteration traces with the float fields `keys` as traced scalars."""
    import jax
    import jax.numpy as jnp

    from pgax.train import make_iteration

    def one_iteration(h, key):
        config = dataclasses.replace(base, **h)
        init, iteration = make_iteration(preset.make_agent(config, env, num_iterations), env, config.num_envs,
                                         config.num_steps)
        return iteration(init(key))[1]

    try:
        jax.eval_shape(one_iteration, {k: jnp.float32(getattr(base, k)) for k in keys}, jax.random.PRNGKey(0))
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError,
            jax.errors.TracerIntegerConversionError, jax.errors.TracerArrayConversionError):
        return False
    return True


def split_keys(preset, base, env, num_iterations: int, keys: list[str]) -> tuple[str, ...]:
    """The grid keys that can be a vmapped input of one program: float fields the builder takes traced."""
    floats = [k for k in keys if type(getattr(base, k)) is float]
    if not floats:
        return ()
    if _traceable(preset, base, env, num_iterations, floats):
        return tuple(floats)
    return tuple(k for k in floats if _traceable(preset, base, env, num_iterations, [k]))


def plan_sweep(preset, run, base, grid: dict[str, list], max_configs: int = MAX_CONFIGS) -> SweepPlan:
    """Validate the grid (every configuration, the bound, rows per program) and group it into programs."""
    if not grid:
        raise ConfigError("a sweep needs at least one --grid KEY=V1,V2,... (or a --sweep FILE.yaml with a grid)")
    size = int(np.prod([len(v) for v in grid.values()]))
    if size > max_configs:
        raise ConfigError(f"the grid has {size} configurations, more than --max-configs {max_configs}; "
                          "use fewer values or raise --max-configs")
    run.validate()
    configs, values = expand_grid(base, grid)
    for config, v in zip(configs, values):
        try:
            config.validate()
        except ConfigError as e:
            raise ConfigError(f"configuration {_label(v)}: {e}") from None
    return plan_configs(preset, run, base, dict(grid), values, [k for k, vs in grid.items() if len(vs) > 1])


def plan_configs(preset, run, base, grid: dict[str, list], values: list[dict], varying: list[str],
                 members: list[int] | None = None, vmapped: tuple[str, ...] | None = None) -> SweepPlan:
    """Group the valid configurations `base` with `values[i]` for i in `members` (default: all) into programs:
    one program per combination of the non-vmapped keys' values (one per configuration on a Gymnasium env).

    varying: the keys whose values differ; those of them `split_keys` finds traceable are vmapped (or give
    `vmapped`, the keys found earlier). `grid` is kept in sweep.json for `--resume`.
    """
    from pgax import envs
    from pgax.experiment import MAX_SEEDS, plan_run

    configs = [dataclasses.replace(base, **v) for v in values]
    members = list(range(len(values))) if members is None else list(members)
    jax_native = envs.resolve_driver(run.env, run.driver) == "jax"
    if vmapped is None:
        first = plan_run(preset, run, configs[members[0]])
        vmapped = split_keys(preset, configs[members[0]], first.env, first.num_iterations, varying) \
            if jax_native else ()
    programs: dict[tuple, list[int]] = {}
    for i in members:
        programs.setdefault(tuple(repr(values[i].get(k)) for k in varying if k not in vmapped), []).append(i)
    groups = list(programs.values())
    if not jax_native:
        groups = [[i] for group in groups for i in group]
    largest = max(len(g) for g in groups) * run.seeds
    if largest > MAX_SEEDS:
        raise ConfigError(f"one program would train {largest} configurations × seeds, more than {MAX_SEEDS}; "
                          "use fewer values of the vmapped keys or fewer --seeds")
    return SweepPlan(preset, run, base, dict(grid), configs, values, tuple(vmapped), groups)


def _label(values: dict) -> str:
    return ",".join(f"{k}={_show(v)}" for k, v in values.items())


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def config_dir_name(index: int, values: dict) -> str:
    safe = "".join(c if c.isalnum() or c in "=.,-_" else "_" for c in _label(values))
    return f"{index:03d}-{safe}"[:120]


# --------------------------------------------------------------------------------- running a sweep


def run_sweep(splan: SweepPlan, sweep_dir: Path, *, reporter=None, resume: bool = False,
              stop_when: Callable[[], bool] | None = None, backend=None) -> dict:
    """Train every program of `splan` into `sweep_dir`; returns sweep.json's dict (with "exit_code": 0 when
    every configuration finished or diverged, else that of the interruption or error).

    stop_when: asked at each chunk boundary besides the signals (SIGINT, SIGTERM, SIGHUP); True stops
    the sweep there as a signal does, with every configuration of the running program checkpointed.
    backend: a `distributed.Backend` (default: local, one program after another in this process).
    """
    from pgax.distributed import Backend, run_programs
    from pgax.experiment import EXIT_OK, Reporter, StopSignals

    reporter = reporter or Reporter()
    backend = backend or Backend()
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict | None] = [None] * len(splan.configs)
    record = _sweep_record(splan, rows, "running")
    if resume:
        for i in range(len(splan.configs)):
            rows[i] = _read_row(splan, i, sweep_dir)
    exit_code = EXIT_OK
    t0 = time.perf_counter()
    pending = []
    for n, group in enumerate(splan.programs):
        if all(rows[i] is not None and rows[i]["status"] in DONE for i in group):
            reporter.say(f"pgax: program {n + 1}/{len(splan.programs)} finished earlier; skipped")
        else:
            pending.append(group)
    with StopSignals(reporter.say) as signals:
        stop = _Stop(signals, stop_when)
        for group, group_rows, code in run_programs(splan, pending, sweep_dir, backend=backend, stop=stop,
                                                    reporter=reporter, resume=resume):
            for i, row in zip(group, group_rows):
                rows[i] = row
            exit_code = exit_code or code
            record = _sweep_record(splan, rows, "running")
            _write_outputs(splan, record, sweep_dir)
    done = all(r is not None and r["status"] in DONE for r in rows)
    record = _sweep_record(splan, rows, "finished" if done else "interrupted")
    record["wall_seconds"] = time.perf_counter() - t0
    record["backend"] = dataclasses.asdict(backend)
    _write_outputs(splan, record, sweep_dir)
    record["exit_code"] = exit_code
    return record


class _Stop:
    """The signals' stop request, or `when()`; `requested` names the signal (None: `when`)."""

    def __init__(self, signals, when: Callable[[], bool] | None):
        self.signals, self.when = signals, when

    def __call__(self) -> bool:
        return self.signals() or (self.when is not None and self.when())

    @property
    def requested(self):
        return self.signals.requested


def _read_row(splan: SweepPlan, i: int, sweep_dir: Path) -> dict | None:
    import json

    path = sweep_dir / config_dir_name(i, splan.values[i]) / "summary.json"
    if not path.exists():
        return None
    return _row(splan, i, sweep_dir, json.loads(path.read_text()))


def _row(splan: SweepPlan, i: int, sweep_dir: Path, summary: dict) -> dict:
    from pgax.stats import bootstrap_ci

    per_seed = summary.get("final_return_per_seed")
    low = high = None
    if per_seed and summary.get("status") == "finished":
        low, high = (float(x) for x in bootstrap_ci(np.asarray(per_seed)))
    return {"index": i, "values": splan.values[i], "label": _label(splan.values[i]),
            "run_dir": config_dir_name(i, splan.values[i]), "status": summary.get("status"),
            "steps": summary.get("steps"), "final_return_mean": summary.get("final_return_mean"),
            "ci95_low": low, "ci95_high": high, "final_return_per_seed": per_seed,
            "diverged": summary.get("diverged")}


def _sweep_record(splan: SweepPlan, rows: list, status: str) -> dict:
    from pgax.algorithms import config_to_dict

    finished = [r for r in rows if r is not None and r["status"] == "finished" and r["final_return_mean"] is not None]
    best = max(finished, key=lambda r: r["final_return_mean"]) if finished else None
    return {"algorithm": splan.preset.name, "env": splan.run.env, "status": status,
            "run": dataclasses.asdict(splan.run), "base_config": config_to_dict(splan.base),
            "grid": {k: [list(v) if isinstance(v, tuple) else v for v in vs] for k, vs in splan.grid.items()},
            "vmapped": list(splan.vmapped), "programs": splan.programs,
            "rows": [r for r in rows if r is not None], "best": best}


def _write_outputs(splan: SweepPlan, record: dict, sweep_dir: Path) -> None:
    from pgax.logging import read_metrics, write_json
    from pgax.plotting import plot_curves

    write_json(sweep_dir / "sweep.json", record)
    (sweep_dir / "table.txt").write_text(format_sweep_table(record) + "\n")
    curves = {}
    for r in record["rows"]:
        path = sweep_dir / r["run_dir"] / "metrics.csv"
        if path.exists():
            m = read_metrics(path)
            if m:
                curves[r["label"]] = (m["step"], m["seed"], m["episode_return_mean"])
    if curves:
        plot_curves(sweep_dir / "curves.png", curves, f"{splan.preset.name} sweep on {splan.run.env}",
                    splan.run.seeds, band="ci")


def format_sweep_table(record: dict) -> str:
    """The sweep's table as fixed-width text: one line per configuration, best final return first."""
    rows = sorted(record["rows"], key=lambda r: np.inf if r["final_return_mean"] is None else -r["final_return_mean"])
    width = max([len("configuration")] + [len(r["label"]) for r in rows])
    head = f"{'configuration':<{width}} {'final return':>12} {'95% CI':>20} {'status':>11}"
    lines = [f"{record['algorithm']} on {record['env']}: deterministic evaluation ({record['run']['eval_episodes']} "
             f"episodes per seed), mean over {record['run']['seeds']} seed(s); CI: percentile bootstrap over seeds",
             head, "-" * len(head)]
    for r in rows:
        ret = "-" if r["final_return_mean"] is None else f"{r['final_return_mean']:.1f}"
        ci = "-" if r["ci95_low"] is None else f"[{r['ci95_low']:.1f}, {r['ci95_high']:.1f}]"
        lines.append(f"{r['label']:<{width}} {ret:>12} {ci:>20} {r['status']:>11}")
    if record.get("best"):
        lines.append(f"best: {record['best']['label']} ({record['best']['final_return_mean']:.1f}), "
                     f"run folder {record['best']['run_dir']}")
    return "\n".join(lines)


def _run_program(splan: SweepPlan, group: list[int], sweep_dir: Path, stop, reporter, resume: bool, prune=None):
    """Train the configurations `group` (one program) into their run folders; (rows, exit code).

    prune: on a JAX-native env, `prune(c, steps, returns [S])` is asked after each chunk for each
    configuration `group[c]` not yet pruned (its training return per seed after `steps` env steps per
    seed); True marks it pruned ("pruned_at_step" in its summary). The program stops once every one of
    its configurations is pruned; one pruned beside unpruned ones trains on with them.
    """
    from pgax.experiment import plan_run, run_experiment

    plans = [plan_run(splan.preset, splan.run, splan.configs[i]) for i in group]
    dirs = [sweep_dir / config_dir_name(i, splan.values[i]) for i in group]
    if not plans[0].driver_kind == "jax":  # a Gymnasium env: each configuration is its own run
        i, run_dir = group[0], dirs[0]
        has_checkpoint = (run_dir / "checkpoints" / "latest").is_dir() and any((run_dir / "checkpoints" / "latest").iterdir())
        summary = run_experiment(splan.preset, splan.run, splan.configs[i], run_dir,
                                 resume="latest" if resume and has_checkpoint else None, reporter=reporter)
        return [_row(splan, i, sweep_dir, summary)], summary["exit_code"]
    return _run_vmapped(splan, group, plans, dirs, sweep_dir, stop, reporter, resume, prune)


def _run_vmapped(splan: SweepPlan, group: list[int], plans: list, dirs: list[Path], sweep_dir: Path, stop, reporter,
                 resume: bool, prune=None):
    import jax

    from pgax import checkpoints
    from pgax.experiment import (EXIT_DIVERGED, EXIT_ERROR, EXIT_OK, SIGNAL_EXIT, _checkpoint_meta, _describe_error,
                                 _plot, parse_interval, run_config)
    from pgax.logging import MetricsWriter, write_json, write_yaml
    from pgax.train import HEALTH, find_nonfinite, jax_driver, train_loop

    run, preset = splan.run, splan.preset
    p0, C, S = plans[0], len(group), run.seeds
    configs = [splan.configs[i] for i in group]
    hyper = {k: np.repeat(np.array([getattr(c, k) for c in configs], np.float32), S) for k in splan.vmapped}

    def agent_for(h):
        return preset.make_agent(dataclasses.replace(configs[0], **h), p0.env, p0.num_iterations)

    gamma = "gamma" if "gamma" in hyper else getattr(configs[0], "gamma", 0.99)
    driver = jax_driver(agent_for, p0.env, num_envs=configs[0].num_envs, num_steps=configs[0].num_steps,
                        seeds=p0.seeds * C, chunk_iterations=p0.chunk, normalize_obs=run.normalize_obs,
                        normalize_reward=run.normalize_reward, gamma=gamma, hyper=hyper, devices=run.devices)
    rows_of = [slice(c * S, (c + 1) * S) for c in range(C)]

    def part(tree, c):
        return jax.tree_util.tree_map(lambda x: x[rows_of[c]], tree)

    t0 = time.perf_counter()
    reporter.status("compiling")
    state = driver.init()
    start, offsets = 0, [None] * C
    stores = [checkpoints.CheckpointStore(d / "checkpoints" / "latest", keep=run.keep_checkpoints) for d in dirs] \
        if resume else None
    steps = [s.latest() for s in stores] if stores else []
    if stores and all(x is not None for x in steps) and len(set(steps)) == 1:
        start = steps[0]
        parts = [store.restore(start, "state", part(state, c)) for c, store in enumerate(stores)]
        state = jax.tree_util.tree_map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *parts)
        offsets = [store.meta(start)["metrics_offset"] for store in stores]
    else:
        if stores:
            for store in stores:
                store.close()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        stores = None
    for d, plan in zip(dirs, plans):
        d.mkdir(parents=True, exist_ok=True)
        write_yaml(d / "config.yaml", run_config(plan))
    stores = stores or [checkpoints.CheckpointStore(d / "checkpoints" / "latest", keep=run.keep_checkpoints)
                        for d in dirs]
    writers = [MetricsWriter(d / "metrics.csv", p0.seeds, p0.batch_size, resume_at=offsets[c])
               for c, d in enumerate(dirs)]
    driver.compile(state)
    compile_seconds = time.perf_counter() - t0
    every_iterations, every_seconds = parse_interval(run.checkpoint_every)
    track = {"saved": start, "time": time.perf_counter()}
    diverged: list = [None] * C
    pruned: list = [None] * C
    steps_total = p0.num_iterations * p0.batch_size

    def save_all(state, done):
        for c in range(C):
            meta = _checkpoint_meta(plans[c], done, writers[c].offset, 0, None, None)
            policy = {"params": part(state.agent.params, c), "obs_stats": part(state.obs_stats, c)}
            stores[c].save(done, part(state, c), policy, meta)
        track["saved"], track["time"] = done, time.perf_counter()

    def run_(state, start_, count, stop_):  # rows that diverge are recorded, the others train on
        state, metrics, k = inner_run(state, start_, count, stop_)
        metrics = dict(metrics)
        metrics["_row_health"] = metrics.pop(HEALTH)
        return state, metrics, k

    inner_run = driver.run
    driver = driver._replace(run=run_)

    def on_chunk(done, metrics, chunk_state):
        health = metrics.pop("_row_health")
        for c in range(C):
            writers[c].append(done, {k: v[rows_of[c]] for k, v in metrics.items()})
            bad = find_nonfinite(health[rows_of[c]], p0.seeds, done - health.shape[1] + 1)
            if bad is not None and diverged[c] is None:
                diverged[c] = bad
            if prune is not None and pruned[c] is None and diverged[c] is None and \
                    prune(c, done * p0.batch_size, metrics["episode_return_mean"][rows_of[c], -1]):
                pruned[c] = done * p0.batch_size
        reporter.update(done * p0.batch_size, metrics["episode_return_mean"][:, -1])
        due = (every_iterations is not None and done - track["saved"] >= every_iterations) or (
            every_seconds is not None and time.perf_counter() - track["time"] >= every_seconds)
        if due and done < p0.num_iterations:
            save_all(chunk_state, done)

    reporter.start(steps_total, C * S)
    result = train_loop(driver, state, start=start, num_iterations=p0.num_iterations, chunk_iterations=p0.chunk,
                        chunk_seconds=run.chunk_seconds, on_chunk=on_chunk,
                        stop=lambda: stop() or all(x is not None for x in pruned),
                        align=[every_iterations] if every_iterations else [])
    if result.iterations_done > track["saved"] or not stores[0].steps():
        save_all(result.state, result.iterations_done)
    status, code = "finished", EXIT_OK
    if result.error is not None:
        status, code = "error", EXIT_ERROR
        reporter.error(f"pgax: error at iteration {result.iterations_done + 1}: {_describe_error(result.error)}; the "
                       f"completed iterations are checkpointed in each configuration's folder")
    elif all(x is not None for x in pruned) and result.stopped and not stop():
        status = "pruned"
    elif result.interrupted or result.stopped:
        status = "interrupted"
        code = SIGNAL_EXIT.get(stop.requested or "SIGINT", 130)
    returns = None
    if status == "finished" and run.eval_episodes:
        reporter.status("evaluating")
        returns = driver.evaluate(result.state, run.eval_episodes)
    reporter.stop()
    for s in stores:
        s.close()
    for w in writers:
        w.close()
    train_seconds = result.train_seconds
    rows = []
    for c, i in enumerate(group):
        summary: dict[str, Any] = {
            "algorithm": preset.name, "env": run.env, "steps": result.iterations_done * p0.batch_size,
            "steps_requested": run.steps, "seeds": S, "seed_values": p0.seeds, "status": status,
            "interrupted": status == "interrupted", "final_return_mean": None, "final_return_per_seed": None,
            "eval_episodes": run.eval_episodes, "best_eval_return": None,
            "checkpoint": str(dirs[c] / "checkpoints" / "latest" / str(result.iterations_done)),
            "resumed_from": start if start else None,
            "steps_per_second": (result.iterations_done - start) * p0.batch_size * S * C / train_seconds
            if train_seconds > 0 else float("nan"),
            "compile_seconds": compile_seconds, "train_seconds": train_seconds,
            "wall_seconds": time.perf_counter() - t0, "sweep": {"values": splan.values[i], "program_rows": C * S}}
        if pruned[c] is not None:
            summary["status"], summary["pruned_at_step"] = "pruned", pruned[c]
        if diverged[c] is not None:
            summary["status"] = "diverged"
            summary["diverged"] = {"iteration": diverged[c].iteration, "seeds": list(diverged[c].seeds),
                                   "what": list(diverged[c].what)}
            reporter.error(f"pgax: configuration {_label(splan.values[i])} diverged: {diverged[c].describe()}")
        elif returns is not None:
            per_seed = returns[rows_of[c]].mean(axis=1)
            summary["final_return_mean"] = float(per_seed.mean())
            summary["final_return_per_seed"] = per_seed.tolist()
        summary["exit_code"] = EXIT_DIVERGED if summary["status"] == "diverged" else code
        write_json(dirs[c] / "summary.json", summary)
        _plot(dirs[c], preset.name, run.env, S, run.curve_smoothing)
        rows.append(_row(splan, i, sweep_dir, summary))
    if status == "finished":
        sps = rows and (result.iterations_done - start) * p0.batch_size * S * C / max(train_seconds, 1e-9)
        reporter.say(f"pgax: {C} configuration(s) × {S} seed(s) in {train_seconds:.1f} s ({sps:,.0f} steps/s, "
                     f"compile {compile_seconds:.1f} s)")
    return rows, code


def load_sweep(sweep_dir: str | Path):
    """(preset, RunOptions, base config, grid) of a sweep folder's sweep.json, for `--resume`."""
    import json

    from pgax.algorithms import get_preset
    from pgax.experiment import RunOptions

    path = Path(sweep_dir) / "sweep.json"
    if not path.exists():
        raise ConfigError(f"{sweep_dir} has no sweep.json; give the folder a `pgax sweep` run wrote")
    record = json.loads(path.read_text())
    preset = get_preset(record["algorithm"])
    run = RunOptions(**record["run"])
    fields = {f.name: f for f in dataclasses.fields(preset.config_type)}
    base = dataclasses.replace(preset.config_type(), **{
        k: tuple(v) if isinstance(v, list) else v for k, v in record["base_config"].items() if k in fields})
    grid = {k: [tuple(v) if isinstance(v, list) else v for v in vs] for k, vs in record["grid"].items()}
    return preset, run, base, grid


def say_table(record: dict, sweep_dir: Path, say=print) -> None:
    say("")
    say(format_sweep_table(record))
    say(f"\nresults in {sweep_dir} (sweep.json, table.txt, curves.png, one run folder per configuration)")


__all__ = ["MAX_CONFIGS", "SweepPlan", "expand_grid", "format_sweep_table", "load_sweep", "parse_grid_values",
           "plan_sweep", "run_sweep", "split_keys"]
