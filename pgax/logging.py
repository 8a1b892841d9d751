"""The run folder's files: config.yaml, metrics.csv, eval.csv, TensorBoard events, summary.json
(curve.png is drawn by pgax.plotting, checkpoints/ by pgax.checkpoints).

Layer 3. Rows are appended and flushed as each chunk of training finishes, whole rows at a time, so
an interrupted run keeps every completed iteration on disk and no file ends in a partial row.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
from pathlib import Path

import numpy as np
import yaml

# The columns every algorithm's metrics.csv starts with, in this order; NaN where an algorithm
# does not produce a quantity. Further metrics follow in alphabetical order.
CORE_COLUMNS = ("step", "seed", "episode_return_mean", "policy_loss", "value_loss", "entropy", "approx_kl",
                "clip_fraction", "explained_variance", "grad_norm")


def make_run_dir(out: str | Path, algorithm: str, env_id: str, now: _dt.datetime | None = None) -> Path:
    """Create and return `out/<YYYYmmdd-HHMMSS>-<algorithm>-<env>/` (a suffix -2, -3, ... is added
    on a clash). Race-free: the folder is claimed by `mkdir`, so runs started together each get
    their own. An `out` that cannot hold folders raises ConfigError naming it."""
    from pgax.errors import ConfigError

    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    safe_env = env_id.replace("/", "_").replace(":", "_")
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        base = Path(out) / f"{stamp}-{algorithm}-{safe_env}"
        for n in range(1, 10_000):
            path = base if n == 1 else base.with_name(f"{base.name}-{n}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as e:
        raise ConfigError(f"--out {out}: cannot create a run folder there ({e.strerror or e}); "
                          "choose a writable folder") from None
    raise ConfigError(f"--out {out}: 10,000 run folders named {base.name} already; choose another --out")


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path` and rename it over `path`: readers see the old
    file or the new one, never a part."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_yaml(path: Path, data: dict) -> None:
    write_atomic(path, yaml.safe_dump(data, sort_keys=False))


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(_json_safe(data), indent=2) + "\n")


class CsvWriter:
    """An append-only CSV file written whole rows at a time.

    Each `write_rows` is one `write` of complete lines followed by a flush; if it fails (disk full)
    the file is cut back to where it was, so the file never ends in a partial row. `offset` is the
    byte length of the complete rows so far: checkpoints record it and a resumed run truncates the
    file back to it (`resume_at`)."""

    def __init__(self, path: Path, header: list[str] | None = None, resume_at: int | None = None):
        self.path, self.columns = Path(path), header
        if resume_at is not None and self.path.exists():
            with open(self.path, "r+b") as f:
                f.truncate(resume_at)
            self._file = open(self.path, "ab")
            self.offset = resume_at
            if resume_at > 0 and self.columns is None:
                with open(self.path, newline="") as f:
                    self.columns = next(csv.reader(f))
        else:
            self._file = open(self.path, "wb")
            self.offset = 0
        if self.offset == 0 and self.columns is not None:
            self.write_rows([])

    def write_rows(self, rows: list[list]) -> None:
        lines = []
        if self.offset == 0:
            lines.append(",".join(self.columns))
        lines.extend(",".join(str(v) for v in row) for row in rows)
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode()
        try:
            self._file.write(data)
            self._file.flush()
        except OSError:
            self._file.close()
            with open(self.path, "r+b") as f:
                f.truncate(self.offset)
            self._file = open(self.path, "ab")
            raise
        self.offset += len(data)

    def close(self) -> None:
        self._file.close()


class MetricsWriter:
    """Appends one row per iteration per seed to metrics.csv (columns CORE_COLUMNS, then the
    algorithm's other metrics in alphabetical order)."""

    def __init__(self, path: Path, seeds: list[int], steps_per_iteration: int, resume_at: int | None = None):
        self.path, self.seeds, self.steps_per_iteration = path, list(seeds), steps_per_iteration
        self._resume_at = resume_at
        self._csv: CsvWriter | None = None
        if resume_at:
            self._csv = CsvWriter(path, resume_at=resume_at)

    @property
    def columns(self) -> list[str] | None:
        return None if self._csv is None else self._csv.columns

    @property
    def offset(self) -> int:
        return 0 if self._csv is None else self._csv.offset

    def append(self, iterations_done: int, metrics: dict[str, np.ndarray]) -> None:
        """metrics: name -> [num_seeds, k] for the k iterations ending at `iterations_done`."""
        if self._csv is None:
            extra = sorted(k for k in metrics if k not in CORE_COLUMNS)
            self._csv = CsvWriter(self.path, list(CORE_COLUMNS) + extra)
        k = next(iter(metrics.values())).shape[1]
        first = iterations_done - k + 1
        rows = []
        for j in range(k):
            step = (first + j) * self.steps_per_iteration
            for i, seed in enumerate(self.seeds):
                row = []
                for col in self.columns:
                    if col == "step":
                        row.append(step)
                    elif col == "seed":
                        row.append(seed)
                    elif col in metrics:
                        row.append(f"{float(metrics[col][i, j]):.6g}")
                    else:
                        row.append("nan")
                rows.append(row)
        self._csv.write_rows(rows)

    def close(self) -> None:
        if self._csv is not None:
            self._csv.close()


EVAL_COLUMNS = ("step", "seed", "return_mean", "return_std", "return_min", "return_max")


class EvalWriter:
    """eval.csv: one row per seed per periodic evaluation (deterministic policy)."""

    def __init__(self, path: Path, seeds: list[int], resume_at: int | None = None):
        self.seeds = list(seeds)
        self._csv = CsvWriter(path, list(EVAL_COLUMNS), resume_at=resume_at)

    @property
    def offset(self) -> int:
        return self._csv.offset

    def append(self, step: int, returns: np.ndarray) -> None:
        """returns [num_seeds, episodes] of one evaluation after `step` env steps per seed."""
        self._csv.write_rows([[step, seed, f"{r.mean():.6g}", f"{r.std():.6g}", f"{r.min():.6g}", f"{r.max():.6g}"]
                              for seed, r in zip(self.seeds, np.asarray(returns))])

    def close(self) -> None:
        self._csv.close()


class TensorBoardWriter:
    """TensorBoard event files under RUN/tensorboard/ (tensorboardX): per iteration the mean over
    seeds of every metric as `train/<name>`, and each periodic evaluation's mean return as
    `eval/return_mean`; the x axis is env steps per seed. A resumed run purges the events after its
    checkpoint (`purge_step`), so TensorBoard shows one curve."""

    def __init__(self, directory: Path, steps_per_iteration: int, purge_step: int | None = None):
        from tensorboardX import SummaryWriter

        self.steps_per_iteration = steps_per_iteration
        self._writer = SummaryWriter(logdir=str(directory), purge_step=purge_step, flush_secs=30)

    def append(self, iterations_done: int, metrics: dict[str, np.ndarray]) -> None:
        k = next(iter(metrics.values())).shape[1]
        for j in range(k):
            step = (iterations_done - k + 1 + j) * self.steps_per_iteration
            for name, values in metrics.items():
                column = np.asarray(values[:, j], dtype=np.float64)
                finite = column[np.isfinite(column)]
                if finite.size:
                    self._writer.add_scalar(f"train/{name}", float(finite.mean()), step)

    def append_eval(self, step: int, returns: np.ndarray) -> None:
        self._writer.add_scalar("eval/return_mean", float(np.mean(returns)), step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """metrics.csv (or eval.csv) as columns of floats; a last line without its newline is ignored."""
    text = Path(path).read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}
