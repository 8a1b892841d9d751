"""The `pgax` command.

Layer 4.

    pgax train ALGO [--config FILE.yaml] [--env ID] [--steps N] [--seeds K] [--seed S] [--out DIR] [hyperparameters...]
    pgax list

The options of `pgax train ALGO` are generated (with tyro) from `RunOptions` and the algorithm's
typed config, so every hyperparameter is a flag (`--clip-eps`, `--lr`, ...) with its docstring as
help. Bad input exits with status 2 and one line naming the problem and the fix.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from pgax.errors import ConfigError

USAGE = """usage: pgax COMMAND ...

commands:
  train ALGO              train an algorithm on an environment (pgax train ALGO --help for its options)
  compare ALGO[,ALGO...]  train several algorithms on one environment; table with 95% CIs and a PNG
  list                    list the algorithms and environments
  check-env ENV           check that a Gymnasium env (id or module:Class) works with pgax

examples:
  pgax train ppo --env CartPole-v1 --steps 500000 --seeds 3
  pgax compare ppo,trpo,a2c --env CartPole-v1 --steps 300000 --seeds 5
"""


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
    """First seed; the run uses seeds seed, seed+1, ..., seed+seeds-1."""
    out: str = "runs"
    """Folder in which the run folder <date-time>-<algo>-<env>/ is created."""
    eval_episodes: int = 100
    """Episodes per seed of the final deterministic evaluation (0 skips it)."""
    chunk_iterations: int = 0
    """Training iterations per compiled chunk between progress updates (0: automatic)."""
    progress: bool = True
    """Show the live progress bar."""
    driver: str = "auto"
    """Rollout driver: auto (jax for `pgax list` ids, else gymnasium), jax, gymnasium, gymnasium-async."""
    env_workers: int | None = None
    """Worker processes of --driver gymnasium-async besides the main one, at most seeds × num_envs (that many:
    a worker per env copy, the main process only runs the policy). Default: a worker per copy while there are
    fewer copies than cores, else one per core besides the main one. Evaluation uses fewer when it has fewer copies."""
    normalize_obs: bool = False
    """Running observation normalisation, clipped at 10 (gymnasium drivers; see docs/gymnasium.md)."""
    normalize_reward: bool = False
    """Scale rewards by the running std of the discounted return, clipped at 10 (gymnasium drivers)."""

    def validate(self) -> None:
        for name in ("steps", "seeds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"--{name} must be a positive integer, got {getattr(self, name)}")
        if self.eval_episodes < 0:
            raise ConfigError(f"--eval-episodes must be >= 0 (0 skips evaluation), got {self.eval_episodes}")
        if self.chunk_iterations < 0:
            raise ConfigError(f"--chunk-iterations must be >= 0 (0: automatic), got {self.chunk_iterations}")
        from pgax.envs.gymnasium_env import DRIVERS
        if self.driver not in DRIVERS:
            raise ConfigError(f"--driver {self.driver!r} is not known; use one of {', '.join(DRIVERS)}")
        if self.env_workers is not None and self.driver != "gymnasium-async":
            raise ConfigError("--env-workers sets the worker processes of --driver gymnasium-async; "
                              "add --driver gymnasium-async (or drop --env-workers)")
        if self.env_workers is not None and self.env_workers < 0:
            raise ConfigError(f"--env-workers must be >= 0, got {self.env_workers}")


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
        raise ConfigError(f"unknown command {command!r}; use one of: train, compare, list, check-env (pgax --help)")
    except ConfigError as e:
        return fail(str(e))
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
    from pgax.spaces import Discrete

    if isinstance(space, Discrete):
        return f"Discrete({space.n})"
    return f"Box{space.shape} in [{min(space.low):g}, {max(space.high):g}]"


def parse_train_args(args: list[str]):
    """(preset, RunOptions, algorithm config) from the arguments after `pgax train`."""
    from pgax.algorithms import PRESETS, get_preset

    if not args or args[0].startswith("-"):
        if args and args[0] in ("-h", "--help"):
            print("usage: pgax train ALGO [OPTIONS]\n\nalgorithms: " + ", ".join(PRESETS))
            raise SystemExit(0)
        raise ConfigError("name an algorithm: pgax train ALGO [OPTIONS], ALGO one of: " + ", ".join(PRESETS))
    preset = get_preset(args[0])
    rest, config_path = _pop_config_flag(args[1:])
    run_default, algo_default = RunOptions(), preset.config_type()
    if config_path is not None:
        run_default, algo_default = load_config_file(config_path, preset, run_default, algo_default)
    command_type = dataclasses.make_dataclass(
        f"Train{preset.name.title()}",
        [("run", Annotated[RunOptions, tyro.conf.OmitArgPrefixes], dataclasses.field(default_factory=RunOptions)),
         ("algo", Annotated[preset.config_type, tyro.conf.OmitArgPrefixes],
          dataclasses.field(default_factory=preset.config_type))],
        frozen=True,
    )
    parsed = tyro.cli(command_type, args=rest, prog=f"pgax train {preset.name}",
                      description=preset.summary + " (also: --config FILE.yaml sets defaults for every option)",
                      default=command_type(run=run_default, algo=algo_default))
    parsed.run.validate()
    parsed.algo.validate()
    return preset, parsed.run, parsed.algo


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
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path} must hold a mapping of option: value, got {type(data).__name__}")
    if "config" in data and isinstance(data["config"], dict):  # a run folder's config.yaml
        algorithm = data.get("algorithm")
        if algorithm is not None and algorithm != preset.name:
            raise ConfigError(f"--config {path} is a run of {algorithm!r}, not {preset.name!r}; "
                              f"use `pgax train {algorithm} --config {path}`")
        flat = {**(data.get("run") or {}), **data["config"]}
    else:
        flat = {k: v for k, v in data.items() if k != "algorithm"}
    run_fields = {f.name: f for f in dataclasses.fields(RunOptions)}
    algo_fields = {f.name: f for f in dataclasses.fields(preset.config_type)}
    run_values, algo_values = {}, {}
    for key, value in flat.items():
        name = str(key).replace("-", "_")
        if isinstance(value, list):
            value = tuple(value)
        if name in algo_fields:
            algo_values[name] = value
        elif name in run_fields:
            run_values[name] = value
        else:
            raise ConfigError(f"--config {path}: unknown option {key!r} for {preset.name}; "
                              f"see `pgax train {preset.name} --help`")
    for fields, values in ((run_fields, run_values), (algo_fields, algo_values)):
        for name, value in values.items():
            default = getattr(run_default if fields is run_fields else algo_default, name)
            if isinstance(default, bool) != isinstance(value, bool) or (
                    isinstance(default, (int, float)) and not isinstance(value, (int, float))) or (
                    isinstance(default, str) and not isinstance(value, str)):
                raise ConfigError(f"--config {path}: {name} should be like {default!r}, got {value!r}")
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                values[name] = float(value)
    return dataclasses.replace(run_default, **run_values), dataclasses.replace(algo_default, **algo_values)


def train_command(args: list[str]) -> int:
    preset, run, config = parse_train_args(args)
    summary = run_training(preset, run, config)
    return 130 if summary["interrupted"] else 0


def run_training(preset, run: RunOptions, config, run_dir: Path | None = None) -> dict:
    """Train `preset` with `config` as `run` asks, write the run folder, return summary.json's dict.

    `run_dir`: the folder to write (created if needed); default `run.out/<date-time>-<algo>-<env>/`.
    """
    import jax
    import numpy as np

    from pgax import __version__, envs
    from pgax.algorithms import config_to_dict
    from pgax.logging import MetricsWriter, make_run_dir, write_json, write_yaml
    from pgax.train import default_chunk_iterations, evaluate, evaluate_host, train, train_host

    t_wall = time.perf_counter()
    driver = envs.resolve_driver(run.env, run.driver)
    if driver == "jax" and (run.normalize_obs or run.normalize_reward):
        raise ConfigError("--normalize-obs/--normalize-reward are done by the gymnasium drivers; "
                          "add --driver gymnasium (or drop the flags)")
    env = envs.make(run.env) if driver == "jax" else envs.make_checked_gymnasium(run.env)
    batch_size = config.num_envs * config.num_steps
    num_iterations = run.steps // batch_size
    if num_iterations == 0:
        raise ConfigError(f"--steps {run.steps} is less than one batch of num_envs × num_steps = {batch_size}; "
                          f"raise --steps to at least {batch_size}")
    copies = run.seeds * config.num_envs
    if run.env_workers is not None and run.env_workers > copies:
        raise ConfigError(f"--env-workers {run.env_workers} is more than the seeds × num_envs = {copies} env copies; "
                          f"use at most {copies}")
    seeds = list(range(run.seed, run.seed + run.seeds))
    agent = preset.make_agent(config, env, num_iterations)
    chunk = run.chunk_iterations or default_chunk_iterations(num_iterations)

    if run_dir is None:
        run_dir = make_run_dir(run.out, preset.name, run.env)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
    write_yaml(run_dir / "config.yaml", {
        "algorithm": preset.name,
        "env": run.env,
        "run": dataclasses.asdict(run),
        "config": config_to_dict(config),
        "derived": {"batch_size": batch_size, "iterations": num_iterations,
                    "steps_per_seed": num_iterations * batch_size, "seeds": seeds,
                    "chunk_iterations": chunk, "driver": driver},
        "versions": {"pgax": __version__, "jax": jax.__version__},
        "device": str(jax.devices()[0]),
    })
    writer = MetricsWriter(run_dir / "metrics.csv", seeds, batch_size)
    print(f"pgax: training {preset.name} on {run.env}: {run.seeds} seed(s) × {num_iterations * batch_size:,} steps "
          f"→ {run_dir}")

    progress = _Progress(num_iterations * batch_size, run.seeds, enabled=run.progress)
    with progress:
        progress.status("compiling")

        def on_chunk(done: int, metrics: dict[str, np.ndarray]) -> None:
            writer.append(done, metrics)
            progress.update(done * batch_size, metrics["episode_return_mean"][:, -1])

        if driver == "jax":
            result = train(agent, env, num_envs=config.num_envs, num_steps=config.num_steps,
                           num_iterations=num_iterations, seeds=seeds, chunk_iterations=chunk,
                           on_chunk=on_chunk)
        else:
            result = train_host(agent, env, num_envs=config.num_envs, num_steps=config.num_steps,
                                num_iterations=num_iterations, seeds=seeds, chunk_iterations=chunk,
                                on_chunk=on_chunk, asynchronous=driver == "gymnasium-async",
                                num_workers=run.env_workers,
                                normalize_obs=run.normalize_obs, normalize_reward=run.normalize_reward,
                                gamma=getattr(config, "gamma", 0.99))
            if run.normalize_obs or run.normalize_reward:  # the statistics, per seed (load_stats restores them)
                from pgax.envs.normalize import save_stats
                save_stats(run_dir / "normalization.npz", {"obs": result.state.rollout.obs_stats,
                                                           "reward": result.state.rollout.reward_scale})
    writer.close()
    steps_done = result.iterations_done * batch_size
    if result.interrupted:
        print(f"pgax: interrupted after {steps_done:,} steps per seed; the completed iterations are saved")

    eval_returns = None
    if run.eval_episodes and not result.interrupted:
        if driver == "jax":
            eval_returns = evaluate(agent, env, result.state.agent.params, jax.random.PRNGKey(run.seed + 10_000),
                                    run.eval_episodes)
        else:  # observation statistics frozen at their end-of-training values
            eval_returns = evaluate_host(agent, env, result.state.agent.params, result.state.rollout.obs_stats,
                                         seeds, run.eval_episodes, asynchronous=driver == "gymnasium-async",
                                         num_workers=run.env_workers)
        per_seed = eval_returns.mean(axis=1)
        print(f"evaluation: mean return {per_seed.mean():.1f} over {run.seeds} seed(s) × {run.eval_episodes} "
              f"episodes (deterministic policy); per seed: {', '.join(f'{x:.1f}' for x in per_seed)}")

    total_seconds = time.perf_counter() - t_wall
    train_sps = steps_done * run.seeds / result.train_seconds if result.train_seconds > 0 else float("nan")
    summary = {
        "algorithm": preset.name,
        "env": run.env,
        "steps": steps_done,
        "steps_requested": run.steps,
        "seeds": run.seeds,
        "seed_values": seeds,
        "final_return_mean": float(eval_returns.mean()) if eval_returns is not None else None,
        "final_return_per_seed": eval_returns.mean(axis=1).tolist() if eval_returns is not None else None,
        "eval_episodes": run.eval_episodes,
        "steps_per_second": train_sps,
        "compile_seconds": result.compile_seconds,
        "train_seconds": result.train_seconds,
        "wall_seconds": total_seconds,
        "interrupted": result.interrupted,
        "finished_at": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    write_json(run_dir / "summary.json", summary)
    _plot(run_dir, preset.name, run.env, run.seeds)
    print(f"pgax: {steps_done * run.seeds:,} steps in {result.train_seconds:.1f} s ({train_sps:,.0f} steps/s, "
          f"compile {result.compile_seconds:.1f} s, wall {total_seconds:.1f} s); results in {run_dir}")
    summary["run_dir"] = str(run_dir)
    return summary


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
    rows, curves, interrupted = [], {}, False
    for preset, config in chosen:
        summary = run_training(preset, run, config, run_dir=out / preset.name)
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
    if curves:
        plot_curves(out / "comparison.png", curves, f"{run.env}", run.seeds, band="ci")
    write_json(out / "comparison.json", {"env": run.env, "steps_requested": run.steps, "seeds": run.seeds,
                                          "eval_episodes": run.eval_episodes, "rows": rows})
    print()
    print(format_comparison(rows, run.env, run.seeds, run.eval_episodes))
    print(f"\nresults in {out} (comparison.png, comparison.json, one folder per algorithm)")
    return 130 if interrupted else 0


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


def _plot(run_dir: Path, algorithm: str, env_id: str, num_seeds: int) -> None:
    from pgax.logging import read_metrics
    from pgax.plotting import plot_curves

    metrics_path = run_dir / "metrics.csv"
    if not metrics_path.exists():
        return
    m = read_metrics(metrics_path)
    if not m:
        return
    plot_curves(run_dir / "curve.png", {algorithm: (m["step"], m["seed"], m["episode_return_mean"])},
                f"{algorithm} on {env_id}", num_seeds)


class _Progress:
    """The live progress bar: steps per seed, steps/s over all seeds (excluding compilation), mean
    episode return over seeds, elapsed and remaining time."""

    def __init__(self, total_steps: int, num_seeds: int, enabled: bool):
        self.enabled, self.num_seeds = enabled, num_seeds
        self.total = total_steps
        self._start = None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(bar_width=6),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
                TextColumn("{task.fields[sps]} steps/s"), TextColumn("return {task.fields[ret]}"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(compact=True),
            )
            self._task = self._bar.add_task("compiling", total=total_steps, sps="-", ret="-")

    def __enter__(self):
        if self.enabled:
            self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._bar.__exit__(*exc)
        return False

    def status(self, text: str) -> None:
        if self.enabled:
            self._bar.update(self._task, description=text)

    def update(self, steps: int, returns) -> None:
        import numpy as np

        now = time.perf_counter()
        if self._start is None:  # first chunk delivered: rate is measured from here on
            self._start, self._first_chunk_steps = now, steps
        if not self.enabled:
            return
        elapsed = now - self._start
        rate = (steps - self._first_chunk_steps) * self.num_seeds / elapsed if elapsed > 0 else float("nan")
        finite = np.asarray(returns)[np.isfinite(returns)]
        ret = f"{finite.mean():.1f}" if finite.size else "-"
        self._bar.update(self._task, completed=steps, description="",
                         sps=f"{rate:,.0f}" if np.isfinite(rate) else "-", ret=ret)
