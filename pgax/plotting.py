"""PNG plots of learning curves (matplotlib, headless).

Layer 4.
"""

from __future__ import annotations

from pathlib import Path

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def curve_over_seeds(step: np.ndarray, seed: np.ndarray, value: np.ndarray):
    """Rows (step, seed, value) → (steps [K], mean [K], low [K], high [K]) over seeds, NaN-aware.

    The band is the minimum and maximum over seeds at each step.
    """
    steps, table = seed_table(step, seed, value)
    keep = ~np.all(np.isnan(table), axis=0)
    table, steps = table[:, keep], steps[keep]
    with warnings.catch_warnings():  # all-NaN columns were dropped above; single NaNs are skipped
        warnings.simplefilter("ignore", RuntimeWarning)
        return steps, np.nanmean(table, 0), np.nanmin(table, 0), np.nanmax(table, 0)


def seed_table(step: np.ndarray, seed: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows (step, seed, value) → (steps [K], table [num_seeds, K]) with NaN where a seed has no value."""
    steps, seeds = np.unique(step), np.unique(seed)
    table = np.full((len(seeds), len(steps)), np.nan)
    for i, s in enumerate(seeds):
        mask = seed == s
        table[i, np.searchsorted(steps, step[mask])] = value[mask]
    return steps, table


def smooth_per_seed(step: np.ndarray, seed: np.ndarray, value: np.ndarray, window: int) -> np.ndarray:
    """Each row's value replaced by the trailing mean of its seed's last `window` values (by step,
    NaNs skipped; NaN while a seed has none yet): y_k = mean(x_{k−w+1..k}). window 1 is the identity."""
    if window <= 1:
        return np.asarray(value, float)
    out = np.full(len(value), np.nan)
    for s in np.unique(seed):
        idx = np.flatnonzero(seed == s)
        idx = idx[np.argsort(step[idx], kind="stable")]
        x = np.asarray(value, float)[idx]
        finite = np.isfinite(x)
        sums = np.concatenate([[0.0], np.cumsum(np.where(finite, x, 0.0))])
        counts = np.concatenate([[0], np.cumsum(finite)])
        k = np.arange(1, len(x) + 1)
        lo = np.maximum(k - window, 0)
        n = counts[k] - counts[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[idx] = np.where(n > 0, (sums[k] - sums[lo]) / n, np.nan)
    return out


def curve_ci_over_seeds(step: np.ndarray, seed: np.ndarray, value: np.ndarray, confidence: float = 0.95):
    """Rows (step, seed, value) → (steps, mean, low, high): mean over seeds and its percentile
    bootstrap confidence interval at each step (steps where no seed has a value are dropped)."""
    from pgax.stats import bootstrap_ci

    steps, table = seed_table(step, seed, value)
    keep = ~np.all(np.isnan(table), axis=0)
    steps, table = steps[keep], table[:, keep]
    mean, low, high = (np.empty(len(steps)) for _ in range(3))
    for k in range(len(steps)):
        column = table[:, k][np.isfinite(table[:, k])]
        mean[k] = column.mean()
        low[k], high[k] = bootstrap_ci(column, confidence, resamples=2000, seed=k)
    return steps, mean, low, high


def plot_curves(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], title: str,
                num_seeds: int, band: str = "minmax") -> None:
    """One line per label (mean over seeds) with a shaded band; written to `path`.

    band: "minmax" (minimum and maximum over seeds) or "ci" (95% percentile-bootstrap confidence
    interval of the mean over seeds).
    """
    if band not in ("minmax", "ci"):
        raise ValueError(f"plot_curves: band must be 'minmax' or 'ci', got {band!r}")
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for label, (step, seed, value) in curves.items():
        if band == "ci":
            steps, mean, low, high = curve_ci_over_seeds(step, seed, value)
        else:
            steps, mean, low, high = curve_over_seeds(step, seed, value)
        (line,) = ax.plot(steps, mean, label=label, lw=1.8)
        if num_seeds > 1:
            ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episode return")
    what = "95% bootstrap CI" if band == "ci" else "min–max"
    band = f"mean and {what} over {num_seeds} seeds" if num_seeds > 1 else "1 seed"
    ax.set_title(f"{title} ({band})", fontsize=10)
    ax.grid(alpha=0.3)
    if len(curves) > 4:  # many lines (a sweep): the legend beside the axes, not over the curves
        fig.set_size_inches(11, 4.2)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    else:
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
