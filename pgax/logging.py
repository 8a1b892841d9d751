"""The run folder: config.yaml, metrics.csv, summary.json (curve.png is drawn by pgax.plotting).

Layer 3. Rows are appended and flushed as each chunk of training finishes, so an interrupted run
keeps every completed iteration on disk.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
from pathlib import Path

import numpy as np
import yaml

# The columns every algorithm's metrics.csv starts with, in this order; NaN where an algorithm
# does not produce a quantity. Further metrics follow in alphabetical order.
CORE_COLUMNS = ("step", "seed", "episode_return_mean", "policy_loss", "value_loss", "entropy", "approx_kl",
                "clip_fraction", "explained_variance", "grad_norm")


def make_run_dir(out: str | Path, algorithm: str, env_id: str, now: _dt.datetime | None = None) -> Path:
    """Create and return `out/<YYYYmmdd-HHMMSS>-<algorithm>-<env>/` (a suffix is added on a clash)."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    safe_env = env_id.replace("/", "_").replace(":", "_")
    base = Path(out) / f"{stamp}-{algorithm}-{safe_env}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


def write_yaml(path: Path, data: dict) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


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
    path.write_text(json.dumps(_json_safe(data), indent=2) + "\n")


class MetricsWriter:
    """Appends one row per iteration per seed to metrics.csv."""

    def __init__(self, path: Path, seeds: list[int], steps_per_iteration: int):
        self.path, self.seeds, self.steps_per_iteration = path, list(seeds), steps_per_iteration
        self._file = None
        self._writer = None
        self.columns: list[str] | None = None

    def append(self, iterations_done: int, metrics: dict[str, np.ndarray]) -> None:
        """metrics: name -> [num_seeds, k] for the k iterations ending at `iterations_done`."""
        if self._writer is None:
            extra = sorted(k for k in metrics if k not in CORE_COLUMNS)
            self.columns = list(CORE_COLUMNS) + extra
            self._file = open(self.path, "w", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow(self.columns)
        k = next(iter(metrics.values())).shape[1]
        first = iterations_done - k + 1
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
                self._writer.writerow(row)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def read_metrics(path: Path) -> dict[str, np.ndarray]:
    """metrics.csv as columns of floats."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return {}
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}
