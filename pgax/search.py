"""Hyperparameter search: `pgax sweep ALGO --search random|optuna --trials N --space KEY=LOW:HIGH[:log]`.

Layer 3 (running), on top of pgax.sweep. Optuna (https://optuna.org) samples the trials and prunes them;
pgax trains them:

- the space maps hyperparameters to ranges or choices (`parse_space`): `lr=1e-5:1e-2:log` (a float,
  log-uniform), `clip_eps=0.1:0.3` (uniform), `epochs=2:10` (an integer field: integers),
  `hidden_sizes=64x64,128x128` or `anneal_lr=true,false` (a choice);
- `random` uses Optuna's RandomSampler, `optuna` its TPESampler, both seeded by `--seed`;
- trials are asked in batches of `--batch`: a batch's configurations are grouped into programs exactly
  as a grid's are (`sweep.plan_configs`), so on a JAX-native env the float keys of a batch are one more
  vmapped axis of one compiled program. The batch is told when it finishes; the next batch is sampled
  knowing every earlier result;
- the objective is the final deterministic evaluation return, mean over seeds (maximised);
- pruning (`--pruner median`, Optuna's MedianPruner): after each chunk a trial reports its training
  return (mean over seeds) at the last of ten equally spaced steps it has passed, and is pruned when
  it is below the median of the completed trials there (not before 30% of the steps, and not before
  5 trials completed). A program stops once all its trials are pruned; a pruned trial beside unpruned
  ones in a vmapped program trains on with them, so its results are still recorded;
- a sampled configuration that is invalid (e.g. minibatches that do not divide the batch) is told
  FAIL with its one-line reason, and the search goes on;
- the study lives in the sweep folder (study.journal, Optuna's JournalStorage), appended as each trial
  is told; `pgax sweep --resume SWEEP_DIR` keeps every told trial, continues the interrupted ones from
  their checkpoints and asks the rest.

The sweep folder is a sweep's: sweep.json (with a "search" entry: the space, the sampler and each
trial's state), table.txt, curves.png and one run folder per trial.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from pathlib import Path
from typing import Any

from pgax.errors import ConfigError

METHODS = ("random", "optuna")
PRUNERS = ("median", "none")
RUNGS = 10
"""Pruning compares trials at RUNGS equally spaced steps of a run."""
WARMUP = 0.3
"""No trial is pruned in the first WARMUP fraction of its steps."""
STARTUP_TRIALS = 5
"""No trial is pruned before this many trials completed."""
STUDY_FILE = "study.journal"


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched hyperparameter: a range [low, high] (log-uniform if `log`) or a list of choices."""

    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple | None = None
    integer: bool = False

    def spec(self) -> str:
        """The dimension as written on the command line (`lr=1e-05:0.01:log`, `epochs=2,4`)."""
        from pgax.sweep import _show

        if self.choices is not None:
            return f"{self.name}={','.join(_show(c) for c in self.choices)}"
        return f"{self.name}={self.low}:{self.high}" + (":log" if self.log else "")

    def distribution(self):
        """The Optuna distribution (choices are encoded as their index: tuples are not Optuna values)."""
        import optuna

        if self.choices is not None:
            return optuna.distributions.CategoricalDistribution(list(range(len(self.choices))))
        if self.integer:
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log)
        return optuna.distributions.FloatDistribution(float(self.low), float(self.high), log=self.log)

    def value(self, param):
        """The hyperparameter's value for Optuna's parameter `param`."""
        if self.choices is not None:
            return self.choices[int(param)]
        return int(param) if self.integer else float(param)


def parse_space(config_type: type, key: str, text: Any) -> Dimension:
    """One `--space KEY=SPEC` (or a sweep file's `space: {KEY: SPEC}`): `LOW:HIGH`, `LOW:HIGH:log` for a
    number field (integers for an integer field), or choices `V1,V2,...` (a YAML list) of any field."""
    from pgax.algorithms.core import typed_value
    from pgax.sweep import _parse_text, field_name, parse_grid_values

    if isinstance(text, list) or (isinstance(text, str) and ":" not in text):
        name, choices = parse_grid_values(config_type, key, text)
        return Dimension(name, choices=tuple(choices))
    where = f"--space {key}"
    name = field_name(config_type, key, where)
    default = getattr(config_type(), name)
    parts = str(text).split(":")
    if type(default) not in (int, float) or len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        kind = "a number field" if type(default) in (int, float) else f"{name} (not a number)"
        raise ConfigError(f"{where}={text}: write LOW:HIGH or LOW:HIGH:log for {kind}, or choices V1,V2,... "
                          f"(e.g. --space lr=1e-5:1e-2:log)")
    low, high = (typed_value(name, _parse_text(v.strip(), default), default, where) for v in parts[:2])
    log = len(parts) == 3
    if not low < high:
        raise ConfigError(f"{where}={text}: LOW must be below HIGH")
    if log and low <= 0:
        raise ConfigError(f"{where}={text}: a log range needs LOW > 0")
    return Dimension(name, low, high, log, integer=type(default) is int)


@dataclasses.dataclass(frozen=True)
class Search:
    """A search before anything is trained."""

    preset: Any
    run: Any
    base: Any
    space: dict[str, Dimension]
    method: str
    trials: int
    batch: int
    pruner: str

    def describe(self) -> dict:
        return {"method": self.method, "trials": self.trials, "batch": self.batch, "pruner": self.pruner,
                "space": [d.spec() for d in self.space.values()]}


def plan_search(preset, run, base, space: dict[str, Dimension], method: str, trials: int, batch: int,
                pruner: str) -> Search:
    """Validate the search's settings (before anything compiles)."""
    if method not in METHODS:
        raise ConfigError(f"--search {method}: use one of {', '.join(METHODS)}")
    if pruner not in PRUNERS:
        raise ConfigError(f"--pruner {pruner}: use one of {', '.join(PRUNERS)}")
    if not space:
        raise ConfigError("--search needs at least one --space KEY=LOW:HIGH[:log] or KEY=V1,V2 "
                          "(or a --sweep FILE.yaml with a space)")
    if trials < 1 or batch < 1:
        raise ConfigError(f"--trials and --batch take whole numbers ≥ 1, got {trials} and {batch}")
    run.validate()
    base.validate()
    if run.eval_episodes < 1:
        raise ConfigError("--search maximises the final evaluation return; give --eval-episodes ≥ 1")
    _import_optuna()
    return Search(preset, run, base, dict(space), method, trials, min(batch, trials), pruner)


def _import_optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("--search needs Optuna, which is not installed; install it with "
                          "`pip install 'pgax[search]'` (or `pip install optuna`)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_study(search: Search, sweep_dir: Path):
    """The search's Optuna study in `sweep_dir` (created, or loaded to resume)."""
    optuna = _import_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(sweep_dir / STUDY_FILE)))
    sampler = (optuna.samplers.RandomSampler(seed=search.run.seed) if search.method == "random"
               else optuna.samplers.TPESampler(seed=search.run.seed))
    steps = search.run.steps
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=int(WARMUP * steps))
              if search.pruner == "median" else optuna.pruners.NopPruner())
    return optuna.create_study(study_name="pgax", storage=storage, sampler=sampler, pruner=pruner,
                               direction="maximize", load_if_exists=True)


def trial_values(search: Search, params: dict) -> dict:
    """The hyperparameter values of a trial's Optuna parameters."""
    return {k: d.value(params[k]) for k, d in search.space.items()}


def run_search(search: Search, sweep_dir: Path, *, reporter=None, resume: bool = False, stop_when=None,
               backend=None) -> dict:
    """Ask, train and tell the search's trials in batches into `sweep_dir`; returns sweep.json's dict (with
    "exit_code"). Each program's trials are told, and sweep.json rewritten, as the program ends.

    resume: continue the trials asked but not told (interrupted, or stopped by an error) from their
    checkpoints before asking new ones. backend: a `distributed.Backend` (default local); on Ray a batch's
    programs run at once, and each reports to the study file from its worker.
    """
    import optuna
    from optuna.trial import TrialState

    from pgax.experiment import EXIT_OK, Reporter, StopSignals
    from pgax.logging import write_json
    from pgax.distributed import Backend, run_programs, session
    from pgax.sweep import SweepPlan, _Stop, _read_row, _write_outputs, plan_configs

    reporter = reporter or Reporter()
    backend = backend or Backend()
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    study = open_study(search, sweep_dir)
    dists = {k: d.distribution() for k, d in search.space.items()}
    state = {"vmapped": None, "invalid": {}}
    exit_code, t0 = EXIT_OK, time.perf_counter()

    def sweep_plan(members=None):
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        values = [trial_values(search, t.params) for t in trials]
        if members is None:
            configs = [dataclasses.replace(search.base, **v) for v in values]
            return SweepPlan(search.preset, search.run, search.base, {}, configs, values, state["vmapped"] or (), [])
        return plan_configs(search.preset, search.run, search.base, {}, values, list(search.space), members=members,
                            vmapped=state["vmapped"])

    def write(status: str) -> dict:
        splan = sweep_plan()
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        rows = [_read_row(splan, t.number, sweep_dir) for t in trials]
        record = _search_record(search, splan, rows, trials, state["invalid"], status)
        _write_outputs(splan, record, sweep_dir)
        return record

    interrupted = False
    with StopSignals(reporter.say) as signals, session(backend, reporter.say):
        stop = _Stop(signals, stop_when)
        while not (interrupted or stop()):
            trials = study.get_trials(deepcopy=False)
            waiting = [optuna.trial.Trial(study, t._trial_id) for t in trials if t.state == TrialState.RUNNING]
            batch, continuing = (waiting, True) if waiting and resume else ([], False)
            if not batch:
                count = min(search.batch, search.trials - len(trials))
                if count <= 0:
                    break
                batch = [study.ask(dists) for _ in range(count)]
            values = sweep_plan().values
            members = []
            for trial in batch:
                error = _invalid(search, values[trial.number])
                if error:
                    state["invalid"][trial.number] = error
                    study.tell(trial, state=TrialState.FAIL)
                    reporter.error(f"pgax: trial {trial.number} ({_label(values[trial.number])}) is not a valid "
                                   f"configuration: {error}; told FAIL")
                else:
                    members.append(trial.number)
            if not members:
                continue
            splan = sweep_plan(members)
            state["vmapped"] = splan.vmapped
            by_number = {t.number: t for t in batch}
            reporter.say(f"pgax: trials {members[0]}..{members[-1]} of {search.trials}: {len(splan.programs)} "
                         f"program(s)" + (f", vmapped over {', '.join(splan.vmapped)}" if splan.vmapped else ""))
            ids = {t.number: t._trial_id for t in batch}
            prune_for = None if search.pruner == "none" else (
                lambda group: functools.partial(make_pruner, search, str(sweep_dir), [ids[i] for i in group]))
            for group, rows, code in run_programs(splan, splan.programs, sweep_dir, backend=backend, stop=stop,
                                                  reporter=reporter, resume=continuing, prune_for=prune_for):
                exit_code = exit_code or code
                for i, row in zip(group, rows):
                    _tell(study, by_number[i], row)
                interrupted = interrupted or any(r["status"] in ("interrupted", "error") for r in rows)
                write("running")
            interrupted = interrupted or stop()
            resume = False
    trials = study.get_trials(deepcopy=False)
    done = len(trials) >= search.trials and all(t.state.is_finished() for t in trials)
    record = write("finished" if done else "interrupted")
    record["wall_seconds"] = time.perf_counter() - t0
    record["backend"] = dataclasses.asdict(backend)
    write_json(sweep_dir / "sweep.json", record)
    record["exit_code"] = exit_code
    return record


def _label(values: dict) -> str:
    from pgax.sweep import _label as label

    return label(values)


def _invalid(search: Search, values: dict) -> str | None:
    try:
        dataclasses.replace(search.base, **values).validate()
    except ConfigError as e:
        return str(e)
    return None


def make_pruner(search: Search, sweep_dir: str, trial_ids: list[int]):
    """The `prune` callback of sweep._run_program for one program's trials (Optuna trial ids), reporting
    to the study file in `sweep_dir`: made where the program runs (this process or a Ray worker)."""
    import optuna

    study = open_study(search, Path(sweep_dir))
    return _pruner(search, [optuna.trial.Trial(study, i) for i in trial_ids])


def _pruner(search: Search, trials: list):
    reported = [0] * len(trials)
    steps = search.run.steps

    def prune(c: int, done_steps: int, returns) -> bool:
        rung = min(RUNGS, done_steps * RUNGS // max(steps, 1))
        value = float(returns.mean())
        if rung <= reported[c] or not math.isfinite(value):
            return False
        reported[c] = rung
        trials[c].report(value, rung * steps // RUNGS)
        return trials[c].should_prune()

    return prune


def _tell(study, trial, row: dict) -> None:
    from optuna.trial import TrialState

    if row["status"] == "finished" and row["final_return_mean"] is not None:
        study.tell(trial, row["final_return_mean"])
    elif row["status"] == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    elif row["status"] in ("diverged", "finished"):
        study.tell(trial, state=TrialState.FAIL)  # diverged, or finished without an evaluation
    # interrupted or stopped by an error: left RUNNING, so that --resume continues it


def _search_record(search: Search, splan, rows: list, trials: list, invalid: dict, status: str) -> dict:
    from pgax.sweep import _sweep_record

    record = _sweep_record(splan, rows, status)
    from pgax.algorithms import config_to_dict

    record["base_config"] = config_to_dict(search.base)
    record["grid"] = {}
    record["search"] = {**search.describe(), "trials_told": sum(t.state.is_finished() for t in trials),
                        "trials": [{"number": t.number, "state": t.state.name, "value": t.value,
                                    "values": trial_values(search, t.params),
                                    "intermediate": {str(k): v for k, v in sorted(t.intermediate_values.items())},
                                    **({"invalid": invalid[t.number]} if t.number in invalid else {})}
                                   for t in sorted(trials, key=lambda t: t.number)]}
    return record


def load_search(sweep_dir: str | Path) -> Search | None:
    """The Search of a sweep folder written by `--search` (None for a grid sweep), for `--resume`."""
    from pgax.sweep import load_sweep

    path = Path(sweep_dir) / "sweep.json"
    record = json.loads(path.read_text()) if path.exists() else {}
    if "search" not in record:
        return None
    preset, run, base, _ = load_sweep(sweep_dir)
    spec = record["search"]
    space = {}
    for text in spec["space"]:
        key, _, value = text.partition("=")
        dim = parse_space(preset.config_type, key, value)
        space[dim.name] = dim
    return plan_search(preset, run, base, space, spec["method"], spec["trials"], spec["batch"], spec["pruner"])


__all__ = ["Dimension", "METHODS", "PRUNERS", "Search", "load_search", "open_study", "parse_space", "plan_search",
           "run_search", "trial_values"]
