"""Statistics for comparing runs: bootstrap confidence intervals over seeds.

Layer 0 (numpy only, host side).
"""

from __future__ import annotations

import numpy as np


def bootstrap_ci(values, confidence: float = 0.95, resamples: int = 10_000, seed: int = 0,
                 axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap confidence interval of the mean of `values` along `axis`.

        resample n values with replacement B times, take each resample's mean, and return the
        (1 − c)/2 and (1 + c)/2 quantiles of those B means.

    Args:
        values: array with n ≥ 1 samples along `axis` (e.g. one final return per seed); NaNs are
            not allowed (drop them first).
        confidence: c in (0, 1).
        resamples: B.
        seed: the resampling's random seed, so a table is reproducible.
    Returns:
        (low, high), each of the shape of `values` without `axis`. With n = 1 both equal the value.
    """
    x = np.moveaxis(np.asarray(values, dtype=float), axis, 0)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"bootstrap_ci: confidence must lie in (0, 1), got {confidence}")
    n = x.shape[0]
    if n == 0:
        raise ValueError("bootstrap_ci: no values")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(resamples, n))
    means = x[index].mean(axis=1)  # [B, ...]
    tail = (1.0 - confidence) / 2.0
    return np.quantile(means, tail, axis=0), np.quantile(means, 1.0 - tail, axis=0)
