"""The `pgax` command.

Layer 4.

    pgax train ALGO [--config FILE.yaml] [--env ID] [--steps N] [--seeds K] [--seed S] [--out DIR] [hyperparameters...]
    pgax resume RUN_DIR [--steps TOTAL]
    pgax eval RUN_DIR [--checkpoint best|latest|STEP] [--episodes N] [--stochastic] [--video FILE]
    pgax compare ALGO[,ALGO...] [run options]
    pgax sweep ALGO --grid KEY=V1,V2 [--grid ...] [--sweep FILE.yaml] [run options] | pgax sweep --resume SWEEP_DIR
    pgax list
    pgax check-env ENV

The options of `pgax train ALGO` are generated (with tyro) from `RunOptions` and the algorithm's
typed config, so every hyperparameter is a flag (`--clip-eps`, `--lr`, ...) with its docstring as
help. Bad input exits with status 2 and one line naming the problem and the fix; the other exit
codes are `pgax.experiment.EXIT_CODES` (listed by `pgax --help`). The runs themselves are
`pgax.experiment`'s; this module parses and prints.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from pgax.errors import ConfigError
from pgax.experiment import EXIT_CODES, Reporter, RunOptions, run_experiment

USAGE = """usage: pgax COMMAND ...

commands:
  train ALGO              train an algorithm on an environment (pgax train ALGO --help for its options)
  resume RUN_DIR          continue a run from its checkpoint (after Ctrl-C, kill, preemption; or with more --steps)
  eval RUN_DIR            evaluate a run's checkpoint; --video records an episode
  compare ALGO[,ALGO...]  train several algorithms on one environment; table with 95% CIs and a PNG
  sweep ALGO --grid K=V,V  a grid of hyperparameters × seeds, one compiled program per shape (pgax sweep --help)
  list                    list the algorithms and environments
  check-env ENV           check that a Gymnasium env (id or module:Class) works with pgax

examples:
  pgax train ppo --env CartPole-v1 --steps 500000 --seeds 3
  pgax compare ppo,trpo,a2c --env CartPole-v1 --steps 300000 --seeds 5
  pgax sweep ppo --env CartPole-v1 --steps 100000 --seeds 4 --grid lr=1e-4,3e-4,1e-3 --grid clip_eps=0.1,0.2
  pgax resume runs/20261201-120000-ppo-CartPole-v1
  pgax eval runs/20261201-120000-ppo-CartPole-v1 --episodes 20

exit codes:
""" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items()) + "\n"


def fail(message: str) -> int:
    print(f"pgax: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "train":
            return train_command(rest)
        if command == "list":
            return list_command()
        if command == "compare":
            return compare_command(rest)
        if command == "check-env":
            return check_env_command(rest)
        if command == "resume":
            return resume_command(rest)
        if command == "eval":
            return eval_command(rest)
        if command == "sweep":
            return sweep_command(rest)
        raise ConfigError(f"unknown command {command!r}; use one of: train, resume, eval, compare, sweep, list, check-env "
                          "(pgax --help)")
    except ConfigError as e:
        return fail(str(e))
    except KeyboardInterrupt:  # before a run started (env check, parsing) or after it ended: nothing to keep
        print("pgax: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`pgax list | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 1


def list_command() -> int:
    from pgax.algorithms import PRESETS
    from pgax.envs import list_envs

    print("algorithms:")
    for name, preset in PRESETS.items():
        print(f"  {name:<24} {preset.summary}")
    print("environments:")
    for env_id, summary in list_envs().items():
        print(f"  {env_id:<24} {summary}")
    print(f"  {'<any Gymnasium id>':<24} Hopper-v5, LunarLander-v3, ... or module:Class: the host driver "
          "(docs/gymnasium.md)")
    return 0


def check_env_command(args: list[str]) -> int:
    """`pgax check-env ENV`: problems one per line, exit 2 when there is one (warnings do not fail)."""
    if len(args) != 1 or args[0].startswith("-"):
        if args and args[0] in ("-h", "--help"):
            print("usage: pgax check-env ENV   (a Gymnasium id such as Hopper-v5, module:Class, or a pgax list id)")
            return 0
        raise ConfigError("name one environment: pgax check-env ENV")
    import gymnasium

    from pgax import envs

    env_id = args[0]
    if envs.resolve_driver(env_id) == "jax" and env_id not in gymnasium.registry:
        env = envs.make(env_id)
        print(f"{env_id}: ok: JAX-native (pgax list), observation dim {env.observation_space.dim}, "
              f"action {_describe_space(env.action_space)}")
        return 0
    from pgax.envs.gymnasium_env import check_gymnasium_env, make_gymnasium

    errors, warnings = check_gymnasium_env(env_id)
    for w in warnings:
        print(f"{env_id}: warning: {w.removeprefix('WARN: ')}")
    for e in errors:
        print(f"{env_id}: error: {e}", file=sys.stderr)
    if errors:
        return 2
    env = make_gymnasium(env_id)
    print(f"{env_id}: ok: Gymnasium env, observation dim {env.observation_space.dim}, action "
          f"{_describe_space(env.action_space)}, time limit {env.max_episode_steps}")
    return 0


def _describe_space(space) -> str:
    from pgax.spaces import Discrete, MultiDiscrete

    if isinstance(space, Discrete):
        return f"Discrete({space.n})"
    if isinstance(space, MultiDiscrete):
        return f"MultiDiscrete({list(space.nvec)})"
    return f"Box{space.shape} in [{min(space.low):g}, {max(space.high):g}]"


def parse_train_args(args: list[str], defaults: tuple[dict, str] | None = None, command: str = "train"):
    """(preset, RunOptions, algorithm config) from the arguments after `pgax train`; `defaults`: a mapping of
    option values (and the name its errors start with) under --config and the flags."""
    from pgax.algorithms import PRESETS, get_preset

    if not args or args[0].startswith("-"):
        if args and args[0] in ("-h", "--help"):
            print(f"usage: pgax {command} ALGO [OPTIONS]\n\nalgorithms: " + ", ".join(PRESETS))
            raise SystemExit(0)
        raise ConfigError(f"name an algorithm: pgax {command} ALGO [OPTIONS], ALGO one of: " + ", ".join(PRESETS))
    preset = get_preset(args[0])
    check_renamed_flags(args[1:], preset.config_type)
    rest, config_path = _pop_config_flag(args[1:])
    run_default, algo_default = RunOptions(), preset.config_type()
    if defaults is not None:
        run_default, algo_default = apply_config_mapping(defaults[0], defaults[1], preset, run_default, algo_default)
    if config_path is not None:
        run_default, algo_default = load_config_file(config_path, preset, run_default, algo_default)
    command_type = dataclasses.make_dataclass(
        f"Train{preset.name.title()}",
        [("run", Annotated[RunOptions, tyro.conf.OmitArgPrefixes], dataclasses.field(default_factory=RunOptions)),
         ("algo", Annotated[preset.config_type, tyro.conf.OmitArgPrefixes],
          dataclasses.field(default_factory=preset.config_type))],
        frozen=True,
    )
    parsed = tyro.cli(command_type, args=rest, prog=f"pgax {command} {preset.name}",
                      description=preset.summary + " (also: --config FILE.yaml sets defaults for every option)",
                      default=command_type(run=run_default, algo=algo_default))
    parsed.run.validate()
    parsed.algo.validate()
    return preset, parsed.run, parsed.algo


def check_renamed_flags(args: list[str], config_type: type) -> None:
    """A ConfigError naming the new flag for a flag whose config field was renamed (`RENAMED_FIELDS`)."""
    from pgax.algorithms.core import current_name, flag

    for arg in args:
        if arg.startswith("--"):
            name = arg[2:].split("=", 1)[0].replace("-", "_")
            new = current_name(config_type, name)
            if new != name:
                raise ConfigError(f"--{flag(name)} is now called --{flag(new)}; use --{flag(new)}")


def _pop_config_flag(args: list[str]) -> tuple[list[str], str | None]:
    """Remove `--config FILE` / `--config=FILE` from `args`; returns (the rest, FILE or None)."""
    rest, path, i = [], None, 0
    while i < len(args):
        if args[i] == "--config":
            if i + 1 >= len(args):
                raise ConfigError("--config needs a file: --config FILE.yaml")
            path, i = args[i + 1], i + 2
        elif args[i].startswith("--config="):
            path, i = args[i].split("=", 1)[1], i + 1
        else:
            rest.append(args[i])
            i += 1
    return rest, path


def load_config_file(path: str, preset, run_default: RunOptions, algo_default):
    """(RunOptions, algorithm config) with the values of a YAML file over the defaults.

    The file is either flat (`lr: 3.0e-4`, `env: Pendulum-v1`, ...: each key a field of the run
    options or of the algorithm's config) or a run folder's `config.yaml` (keys `run` and `config`),
    so a saved run can be repeated with `--config runs/<run>/config.yaml`. Flags on the command line
    override the file. Unknown keys are an error naming the key.
    """
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"--config {path}: no such file; give the path of a YAML file")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {path} is not valid YAML ({str(e).splitlines()[0]}); fix the file") from None
    return apply_config_mapping(data, f"--config {path}", preset, run_default, algo_default)


def apply_config_mapping(data, where: str, preset, run_default: RunOptions, algo_default):
    """`load_config_file`'s work on the loaded mapping; `where` starts each error line."""
    from pgax.algorithms.core import current_name, typed_value

    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a mapping of option: value, got {type(data).__name__}")
    if "config" in data and isinstance(data["config"], dict):  # a run folder's config.yaml
        algorithm = data.get("algorithm")
        if algorithm is not None and algorithm != preset.name:
            raise ConfigError(f"{where} is a run of {algorithm!r}, not {preset.name!r}; "
                              f"use `pgax train {algorithm} {where}`")
        flat = {**(data.get("run") or {}), **data["config"]}
    else:
        flat = {k: v for k, v in data.items() if k != "algorithm"}
    run_fields = {f.name: f for f in dataclasses.fields(RunOptions)}
    algo_fields = {f.name: f for f in dataclasses.fields(preset.config_type)}
    run_values, algo_values = {}, {}
    for key, value in flat.items():
        name = current_name(preset.config_type, str(key).replace("-", "_"))
        if isinstance(value, list):
            value = tuple(value)
        if name in algo_fields:
            algo_values[name] = value
        elif name in run_fields:
            run_values[name] = value
        else:
            raise ConfigError(f"{where}: unknown option {key!r} for {preset.name}; "
                              f"see `pgax train {preset.name} --help`")
    for fields, values in ((run_fields, run_values), (algo_fields, algo_values)):
        for name, value in values.items():
            default = getattr(run_default if fields is run_fields else algo_default, name)
            values[name] = typed_value(name, value, default, where)
    return dataclasses.replace(run_default, **run_values), dataclasses.replace(algo_default, **algo_values)


def train_command(args: list[str]) -> int:
    preset, run, config = parse_train_args(args)
    return run_training(preset, run, config)["exit_code"]


def run_training(preset, run: RunOptions, config, run_dir: Path | None = None) -> dict:
    """`pgax.experiment.run_experiment` with the progress bar; returns summary.json's dict."""
    return run_experiment(preset, run, config, run_dir, reporter=_Progress(run.progress))


RESUME_USAGE = """usage: pgax resume RUN_DIR [--steps TOTAL] [--checkpoint latest|best|STEP] [--no-progress]

Continues a run in place from its checkpoint: metrics.csv and eval.csv are cut back to the
checkpoint's rows and training goes on to TOTAL steps per seed (default: the run's own --steps).
JAX-native envs continue bit-identically to the uninterrupted run; Gymnasium envs continue with
fresh env resets and the normaliser statistics restored (docs/runs.md).
"""

EVAL_USAGE = """usage: pgax eval RUN_DIR [--checkpoint best|latest|STEP] [--episodes N] [--stochastic] [--video FILE]

Evaluates a run's policy (every seed) on fresh env copies: the mean return per seed over N episodes
(default 10) of the deterministic policy (--stochastic: sampling). --video FILE.gif|.mp4 records
seed 0's first episode (Gymnasium envs that render rgb_array frames).
"""


def _options(args: list[str], usage: str, flags: dict[str, type]) -> tuple[str, dict]:
    """(RUN_DIR, {flag: value}) of `pgax resume|eval RUN_DIR [--flag VALUE | --switch]...`."""
    if args and args[0] in ("-h", "--help"):
        print(usage)
        raise SystemExit(0)
    if not args or args[0].startswith("-"):
        raise ConfigError(f"name the run folder: {usage.splitlines()[0].removeprefix('usage: ')}")
    run_dir, values, i = args[0], {}, 1
    while i < len(args):
        name, _, inline = args[i].partition("=")
        key = name.removeprefix("--").replace("-", "_")
        if not name.startswith("--") or key not in flags:
            raise ConfigError(f"unknown option {args[i]!r}; {usage.splitlines()[0]}")
        kind = flags[key]
        if kind is bool:
            values[key], i = True, i + 1
            continue
        text, i = _option_value(args, i, name, inline if inline else None)
        if kind is int:
            try:
                values[key] = int(text)
            except ValueError:
                raise ConfigError(f"{name} takes a whole number, got {text!r}") from None
        else:
            values[key] = text
    return run_dir, values


def resume_command(args: list[str]) -> int:
    from pgax.experiment import resume_experiment

    run_dir, opts = _options(args, RESUME_USAGE, {"steps": int, "checkpoint": str, "no_progress": bool})
    summary = resume_experiment(run_dir, steps=opts.get("steps"), checkpoint=opts.get("checkpoint", "latest"),
                                reporter=_Progress(not opts.get("no_progress", False)))
    return summary["exit_code"]


def eval_command(args: list[str]) -> int:
    from pgax.experiment import evaluate_run

    run_dir, opts = _options(args, EVAL_USAGE, {"checkpoint": str, "episodes": int, "stochastic": bool,
                                                "video": str})
    evaluate_run(run_dir, checkpoint=opts.get("checkpoint", "best"), episodes=opts.get("episodes", 10),
                 stochastic=opts.get("stochastic", False), video=opts.get("video"))
    return 0


COMPARE_USAGE = """usage: pgax compare ALGO[,ALGO...] [--config ALGO=FILE.yaml ...] [run options]

Trains each algorithm (its seeds vmapped, one algorithm after another) on the same environment for
the same steps and seeds, then prints a table (final deterministic-evaluation return: mean over
seeds and its 95% bootstrap confidence interval; training steps/s; wall time) and writes
<out>/<date-time>-compare-<env>/ with comparison.png (learning curves: mean and 95% bootstrap band
per algorithm), comparison.json, and one run folder per algorithm.

--config ALGO=FILE   hyperparameters of ALGO from a YAML file (its algorithm fields; repeatable).
run options          as for `pgax train` (--env, --steps, --seeds, --seed, --out, --eval-episodes, ...).
"""


def parse_compare_args(args: list[str]):
    """([(preset, config)], RunOptions) from the arguments after `pgax compare`."""
    from pgax.algorithms import get_preset

    if not args or args[0] in ("-h", "--help"):
        if args:
            print(COMPARE_USAGE)
            raise SystemExit(0)
        raise ConfigError("name the algorithms: pgax compare ALGO[,ALGO...] [OPTIONS] (pgax compare --help)")
    if args[0].startswith("-"):
        raise ConfigError("name the algorithms first: pgax compare ALGO[,ALGO...] [OPTIONS]")
    names = [n.strip() for n in args[0].split(",") if n.strip()]
    if len(set(names)) != len(names):
        raise ConfigError(f"each algorithm once, please: got {args[0]!r}")
    presets = [get_preset(n) for n in names]
    rest, files = [], {}
    i = 1
    while i < len(args):
        arg = args[i]
        if arg == "--config" or arg.startswith("--config="):
            value = args[i + 1] if arg == "--config" and i + 1 < len(args) else arg.partition("=")[2]
            i += 2 if arg == "--config" else 1
            algo, sep, path = value.partition("=")
            if not sep or algo not in names:
                raise ConfigError(f"--config for compare takes ALGO=FILE.yaml with ALGO one of {', '.join(names)}; "
                                  f"got {value!r}")
            files[algo] = path
        else:
            rest.append(arg)
            i += 1
    run = tyro.cli(RunOptions, args=rest, prog="pgax compare ALGO[,ALGO...]", description=COMPARE_USAGE)
    run.validate()
    chosen = []
    for preset in presets:
        config = preset.config_type()
        if preset.name in files:
            _, config = load_config_file(files[preset.name], preset, RunOptions(), config)
        config.validate()
        chosen.append((preset, config))
    return chosen, run


def compare_command(args: list[str]) -> int:
    import numpy as np

    from pgax.logging import make_run_dir, read_metrics, write_json
    from pgax.plotting import plot_curves
    from pgax.stats import bootstrap_ci

    chosen, run = parse_compare_args(args)
    out = make_run_dir(run.out, "compare", run.env)
    print(f"pgax: comparing {', '.join(p.name for p, _ in chosen)} on {run.env}: {run.seeds} seed(s) × "
          f"{run.steps:,} steps each → {out}")
    rows, curves, interrupted, exit_code = [], {}, False, 0
    for preset, config in chosen:
        summary = run_training(preset, run, config, run_dir=out / preset.name)
        exit_code = exit_code or (summary["exit_code"] if summary["status"] != "finished" else 0)
        metrics = read_metrics(out / preset.name / "metrics.csv") if (out / preset.name / "metrics.csv").exists() else {}
        if metrics:
            curves[preset.name] = (metrics["step"], metrics["seed"], metrics["episode_return_mean"])
        per_seed = summary["final_return_per_seed"]
        row = {"algorithm": preset.name, "steps": summary["steps"], "seeds": run.seeds,
               "final_return_mean": summary["final_return_mean"], "ci95_low": None, "ci95_high": None,
               "final_return_per_seed": per_seed, "steps_per_second": summary["steps_per_second"],
               "compile_seconds": summary["compile_seconds"], "wall_seconds": summary["wall_seconds"]}
        if per_seed:
            low, high = bootstrap_ci(np.asarray(per_seed))
            row["ci95_low"], row["ci95_high"] = float(low), float(high)
        rows.append(row)
        if summary["interrupted"]:
            interrupted = True
            print("pgax: comparison interrupted; the table covers the algorithms trained so far")
            break
        if summary["status"] != "finished":
            print(f"pgax: {preset.name} ended {summary['status']}; going on with the other algorithms")
    if curves:
        plot_curves(out / "comparison.png", curves, f"{run.env}", run.seeds, band="ci")
    write_json(out / "comparison.json", {"env": run.env, "steps_requested": run.steps, "seeds": run.seeds,
                                          "eval_episodes": run.eval_episodes, "rows": rows})
    print()
    print(format_comparison(rows, run.env, run.seeds, run.eval_episodes))
    print(f"\nresults in {out} (comparison.png, comparison.json, one folder per algorithm)")
    return exit_code


SWEEP_USAGE = """usage: pgax sweep ALGO --grid KEY=V1,V2,... [--grid ...] [--sweep FILE.yaml] [--max-configs N]
                  [--config FILE.yaml] [run options] [hyperparameters]
       pgax sweep ALGO --search random|optuna --trials N --space KEY=LOW:HIGH[:log] [--space ...]
                  [--batch N] [--pruner median|none] [run options] [hyperparameters]
       pgax sweep --resume SWEEP_DIR

Trains every configuration of the grid (the Cartesian product of the --grid values) for --seeds seeds on
one environment. On a JAX-native env, float hyperparameters the preset takes as program inputs (learning
rates, clip range, λ, γ, coefficients, KL sizes, ...) are one more vmapped axis beside the seeds, so
they share one compiled program; any other key (sizes, counts, switches) makes one program per value.
Writes <out>/<date-time>-sweep-ALGO-<env>/ with sweep.json, table.txt (final deterministic return per
configuration: mean over seeds, 95% bootstrap CI; the best first), curves.png and one run folder per
configuration (pgax eval / pgax resume work on it).

--grid KEY=V1,V2     values of one hyperparameter (numbers, true/false, strings, sizes as 64x64); repeatable.
--sweep FILE.yaml    a mapping `grid: {KEY: [V1, V2]}` (or `space: {KEY: LOW:HIGH}` with `search:`,
                     `trials:`, ...); its other keys set options as --config does.
--max-configs N      refuse grids of more than N configurations (default 1024).
--search METHOD      sample --trials configurations from the --space with Optuna instead of a grid:
                     random (RandomSampler) or optuna (TPESampler); the objective is the final
                     deterministic return, mean over seeds. Needs optuna (pip install 'pgax[search]').
--space KEY=SPEC     a searched hyperparameter: LOW:HIGH (uniform; integers for an integer field),
                     LOW:HIGH:log (log-uniform) or choices V1,V2,...; repeatable.
--trials N           trials of the search (default 16).
--batch N            trials asked at once and trained together (one program per shape; default 8).
--pruner NAME        median (Optuna's MedianPruner on the training return at ten equally spaced steps;
                     default) or none.
--resume SWEEP_DIR   continue a sweep: programs whose configurations all finished are skipped, an
                     interrupted one continues from its checkpoints (a search keeps its told trials).
--backend NAME       local (default: programs one after another in this process) or ray (each program
                     a Ray task; the sweep folder must be on storage every node sees). Needs ray
                     (pip install 'pgax[ray]'). Also allowed with --resume.
--address ADDR       the Ray cluster to use (`ray start --head` prints it); default: start a local one.
--task-cpus N, --task-gpus F   Ray resources of each task (default 1 CPU, 0 GPUs; 0.25 shares a GPU by 4).
--retries N          times Ray runs a task again after its worker died, from its checkpoints (default 2).
run options, hyperparameters: as for `pgax train ALGO` (their values are the grid's or space's base).
"""

SEARCH_DEFAULTS = {"search": None, "trials": 16, "batch": 8, "pruner": "median"}


def _option_value(args: list[str], i: int, name: str, inline: str | None, hint: str = "") -> tuple[str, int]:
    """(the value of option `args[i]`, the index after it): `inline` from `--name=value`, else the next argument."""
    if inline is not None:
        return inline, i + 1
    if i + 1 < len(args):
        return args[i + 1], i + 2
    raise ConfigError(f"{name} needs a value{hint}")


def _whole_number(name: str, value) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} takes a whole number, got {value!r}") from None


def _number(name: str, value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} takes a number, got {value!r}") from None


def _key_values(texts: list, items: list, flag: str, form: str, example: str) -> list:
    """items + (KEY, VALUES) of each `flag KEY=VALUES`."""
    for text in texts:
        key, sep, values = text.partition("=")
        if not sep:
            raise ConfigError(f"{flag} {text!r}: write {flag} KEY={form} (e.g. {flag} {example})")
        items.append((key, values))
    return items


def sweep_command(args: list[str]) -> int:
    import yaml

    from pgax import search as search_, sweep
    from pgax.logging import make_run_dir

    if args and args[0] in ("-h", "--help"):
        print(SWEEP_USAGE)
        return 0
    from pgax.distributed import Backend, preflight

    rest, grid_args, space_args, sweep_file, max_configs, resume, i = [], [], [], None, sweep.MAX_CONFIGS, None, 0
    options: dict = {}
    where: dict = {}
    while i < len(args):
        name, eq, inline = args[i].partition("=")
        if name in ("--backend", "--address", "--task-cpus", "--task-gpus", "--retries"):
            value, i = _option_value(args, i, name, inline if eq else None, " (pgax sweep --help)")
            where[name[2:].replace("-", "_")] = value
        elif name in ("--grid", "--sweep", "--max-configs", "--resume", "--space", "--search", "--trials", "--batch",
                      "--pruner"):
            value, i = _option_value(args, i, name, inline if eq else None, " (pgax sweep --help)")
            if name == "--grid":
                grid_args.append(value)
            elif name == "--space":
                space_args.append(value)
            elif name == "--sweep":
                sweep_file = value
            elif name == "--resume":
                resume = value
            elif name == "--max-configs":
                max_configs = _whole_number(name, value)
            else:
                options[name[2:]] = value
        else:
            rest.append(args[i])
            i += 1
    backend = Backend(name=where.get("backend", "local"), address=where.get("address"),
                      task_cpus=_number("--task-cpus", where.get("task_cpus", 1.0)),
                      task_gpus=_number("--task-gpus", where.get("task_gpus", 0.0)),
                      retries=_whole_number("--retries", where.get("retries", 2)))
    backend.validate()
    preflight(backend)
    if resume is not None:
        if rest or grid_args or space_args or sweep_file or options:
            raise ConfigError("pgax sweep --resume SWEEP_DIR takes no other options but where to run (--backend, "
                              "--address, --task-cpus, --task-gpus, --retries); the sweep's own are kept")
        out = Path(resume)
        found = search_.load_search(out)
        if found is not None:
            print(f"pgax: resuming the {found.method} search of {found.preset.name} on {found.run.env} in {out}")
            record = search_.run_search(found, out, reporter=_Progress(found.run.progress), resume=True,
                                        backend=backend)
            sweep.say_table(record, out)
            return record["exit_code"]
        preset, run, base, grid = sweep.load_sweep(resume)
        size = int(np.prod([len(v) for v in grid.values()]))
        splan = sweep.plan_sweep(preset, run, base, grid, max_configs=max(max_configs, size))
        print(f"pgax: resuming the sweep of {preset.name} on {run.env} in {out}")
    else:
        defaults, file_grid, file_space = None, {}, {}
        if sweep_file is not None:
            path = Path(sweep_file)
            try:
                data = yaml.safe_load(path.read_text()) if path.is_file() else None
            except yaml.YAMLError as e:
                raise ConfigError(f"--sweep {sweep_file} is not valid YAML ({str(e).splitlines()[0]}); fix the file") \
                    from None
            if not isinstance(data, dict) or not (isinstance(data.get("grid"), dict) or isinstance(data.get("space"), dict)):
                raise ConfigError(f"--sweep {sweep_file}: give a YAML file holding a mapping `grid: {{KEY: [V1, V2]}}` "
                                  "or `space: {KEY: LOW:HIGH}`")
            file_grid, file_space = data.pop("grid", None) or {}, data.pop("space", None) or {}
            for key in SEARCH_DEFAULTS:
                if key in data:
                    options.setdefault(key, data.pop(key))
            defaults = (data, f"--sweep {sweep_file}")
        preset, run, base = parse_train_args(rest, defaults=defaults, command="sweep")
        settings = {**SEARCH_DEFAULTS, **options}
        if settings["search"] is not None or space_args or file_space:
            if grid_args or file_grid:
                raise ConfigError("give either a grid (--grid) or a search (--search with --space), not both")
            if settings["search"] is None:
                raise ConfigError("--space needs --search random|optuna (a grid takes --grid KEY=V1,V2)")
            space: dict = {}
            items = [(str(k), v) for k, v in file_space.items()]
            for key, values in _key_values(space_args, items, "--space", "LOW:HIGH[:log]", "lr=1e-5:1e-2:log"):
                dim = search_.parse_space(preset.config_type, key, values)
                if dim.name in space:
                    raise ConfigError(f"--space {key}: {dim.name} is given twice; give each hyperparameter once")
                space[dim.name] = dim
            found = search_.plan_search(preset, run, base, space, str(settings["search"]),
                                        _whole_number("--trials", settings["trials"]),
                                        _whole_number("--batch", settings["batch"]), str(settings["pruner"]))
            out = make_run_dir(run.out, f"search-{preset.name}", run.env)
            print(f"pgax: {found.method} search of {preset.name} on {run.env}: {found.trials} trial(s) × {run.seeds} "
                  f"seed(s) × {run.steps:,} steps in batches of {found.batch}; space: "
                  f"{' '.join(d.spec() for d in space.values())} → {out}")
            record = search_.run_search(found, out, reporter=_Progress(run.progress), backend=backend)
            sweep.say_table(record, out)
            return record["exit_code"]
        extra = [f"--{k}" for k in options]
        if extra:
            raise ConfigError(f"{', '.join(extra)} belong to a search; add --search random|optuna and --space KEY=...")
        grid: dict = {}
        items = [(str(k), v if isinstance(v, list) else [v]) for k, v in file_grid.items()]
        for key, values in _key_values(grid_args, items, "--grid", "V1,V2,...", "lr=1e-4,3e-4"):
            name, parsed = sweep.parse_grid_values(preset.config_type, key, values)
            if name in grid:
                raise ConfigError(f"--grid {key}: {name} is given twice; give each hyperparameter's values once")
            grid[name] = parsed
        splan = sweep.plan_sweep(preset, run, base, grid, max_configs=max_configs)
        out = make_run_dir(run.out, f"sweep-{preset.name}", run.env)
        vm = f"; vmapped: {', '.join(splan.vmapped)}" if splan.vmapped else ""
        print(f"pgax: sweeping {preset.name} on {run.env}: {len(splan.configs)} configuration(s) × {run.seeds} seed(s) "
              f"× {run.steps:,} steps in {len(splan.programs)} program(s){vm} → {out}")
    record = sweep.run_sweep(splan, out, reporter=_Progress(splan.run.progress), resume=resume is not None,
                             backend=backend)
    sweep.say_table(record, out)
    return record["exit_code"]


def format_comparison(rows: list[dict], env_id: str, num_seeds: int, eval_episodes: int) -> str:
    """The comparison table as fixed-width text."""
    head = f"{'algorithm':<20} {'final return':>12} {'95% CI':>20} {'steps/s':>10} {'wall s':>8}"
    lines = [f"{env_id}: deterministic evaluation ({eval_episodes} episodes per seed), mean over {num_seeds} seed(s); "
             "CI: percentile bootstrap over seeds", head, "-" * len(head)]
    for r in rows:
        ret = "-" if r["final_return_mean"] is None else f"{r['final_return_mean']:.1f}"
        ci = "-" if r["ci95_low"] is None else f"[{r['ci95_low']:.1f}, {r['ci95_high']:.1f}]"
        sps = r["steps_per_second"]
        sps = f"{sps:,.0f}" if sps is not None and np.isfinite(sps) else "-"
        lines.append(f"{r['algorithm']:<20} {ret:>12} {ci:>20} {sps:>10} {r['wall_seconds']:>8.1f}")
    return "\n".join(lines)


class _Progress(Reporter):
    """The live progress bar: steps per seed, steps/s over all seeds (excluding compilation), mean
    episode return over seeds, elapsed and remaining time. Lines are printed above it."""

    def __init__(self, enabled: bool):
        super().__init__(self._say)
        self.enabled = enabled
        self._start = None
        self._bar = None

    def _say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, flush=True)

    def start(self, total_steps: int, num_seeds: int) -> None:
        self.num_seeds, self.total = num_seeds, total_steps
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(bar_width=6),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
                TextColumn("{task.fields[sps]} steps/s"), TextColumn("return {task.fields[ret]}"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(compact=True),
            )
            self._task = self._bar.add_task("compiling", total=total_steps, sps="-", ret="-")
            self._bar.start()

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def status(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    def update(self, steps: int, returns) -> None:
        import numpy as np

        now = time.perf_counter()
        if self._start is None:  # first chunk delivered: rate is measured from here on
            self._start, self._first_chunk_steps = now, steps
        if self._bar is None:
            return
        elapsed = now - self._start
        rate = (steps - self._first_chunk_steps) * self.num_seeds / elapsed if elapsed > 0 else float("nan")
        finite = np.asarray(returns)[np.isfinite(returns)]
        ret = f"{finite.mean():.1f}" if finite.size else "-"
        self._bar.update(self._task, completed=steps, description="",
                         sps=f"{rate:,.0f}" if np.isfinite(rate) else "-", ret=ret)
