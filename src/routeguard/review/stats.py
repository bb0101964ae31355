"""Small, dependency-light statistics for the review loop (numpy only, seeded, no globals).

Intervals are two-sided 95 % unless a level is given: Wilson for 0/1 rates, percentile bootstrap for
scores, exact McNemar for paired right/wrong outcomes, paired bootstrap for differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "FloatArray",
    "IntArray",
    "Interval",
    "Paired",
    "bootstrap_class_means",
    "bootstrap_mean_interval",
    "is_binary",
    "mcnemar_exact",
    "mean_interval",
    "paired_difference",
    "percentile",
    "wilson_interval",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Interval:
    """A point estimate with its interval and the method that made it."""

    value: float
    low: float
    high: float
    method: str

    def to_dict(self) -> dict[str, object]:
        return {"value": _r(self.value), "low": _r(self.low), "high": _r(self.high), "method": self.method}


@dataclass(frozen=True, slots=True)
class Paired:
    """A paired comparison of a proposal against a baseline on the same tasks."""

    n: int
    baseline: Interval
    proposal: Interval
    difference: Interval  # proposal - baseline, paired bootstrap
    mcnemar_p: float | None  # exact McNemar p-value when both are 0/1
    discordant: tuple[int, int] | None  # (baseline right & proposal wrong, baseline wrong & proposal right)
    std_difference: float  # standard deviation of the per-task difference

    def to_dict(self) -> dict[str, object]:
        return {
            "n": self.n,
            "baseline": self.baseline.to_dict(),
            "proposal": self.proposal.to_dict(),
            "difference": self.difference.to_dict(),
            "mcnemar_p": _r(self.mcnemar_p) if self.mcnemar_p is not None else None,
            "discordant": list(self.discordant) if self.discordant is not None else None,
            "variance_difference": _r(self.std_difference**2),
        }


def _r(x: float) -> float | None:
    """Six significant digits (costs per task are tiny numbers); None for NaN."""
    return None if x is None or math.isnan(x) else float(f"{float(x):.6g}")


def is_binary(values: FloatArray) -> bool:
    """True when every (non-NaN) value is 0 or 1."""
    v = values[~np.isnan(values)]
    return bool(v.size) and bool(np.all((v == 0.0) | (v == 1.0)))


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a 0/1 rate; (nan, nan) for n == 0."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(values: FloatArray, q: float) -> float:
    """The q-th percentile (0..100) ignoring NaN; nan when there is nothing."""
    v = values[~np.isnan(values)]
    return float(np.percentile(v, q)) if v.size else math.nan


def bootstrap_mean_interval(
    values: FloatArray, rng: np.random.Generator, resamples: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (NaN ignored)."""
    v = values[~np.isnan(values)]
    if v.size == 0:
        return math.nan, math.nan
    if v.size == 1 or np.all(v == v[0]):
        return float(v[0]), float(v[0])
    idx = rng.integers(0, v.size, size=(resamples, v.size))
    means = v[idx].mean(axis=1)
    alpha = (1 - level) / 2 * 100
    return float(np.percentile(means, alpha)), float(np.percentile(means, 100 - alpha))


def mean_interval(values: FloatArray, rng: np.random.Generator, resamples: int) -> Interval:
    """Mean with a 95 % interval: Wilson for 0/1 values, bootstrap for scores."""
    v = values[~np.isnan(values)]
    if v.size == 0:
        return Interval(math.nan, math.nan, math.nan, "none")
    mean = float(v.mean())
    if is_binary(v):
        lo, hi = wilson_interval(float(v.sum()), int(v.size))
        return Interval(mean, lo, hi, "wilson")
    lo, hi = bootstrap_mean_interval(v, rng, resamples)
    return Interval(mean, lo, hi, "bootstrap")


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for discordant counts ``b`` and ``c`` (binomial, p = 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    log_half_n = n * math.log(0.5)
    log_terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n for i in range(k + 1)
    ]
    top = max(log_terms)
    tail = math.exp(top) * sum(math.exp(t - top) for t in log_terms)
    return min(1.0, 2.0 * tail)


def paired_difference(
    baseline: FloatArray, proposal: FloatArray, rng: np.random.Generator, resamples: int
) -> Paired:
    """Paired comparison over the tasks where both have a value."""
    ok = ~np.isnan(baseline) & ~np.isnan(proposal)
    a, b = baseline[ok], proposal[ok]
    n = int(a.size)
    base_i = mean_interval(a, rng, resamples)
    prop_i = mean_interval(b, rng, resamples)
    if n == 0:
        nan = Interval(math.nan, math.nan, math.nan, "none")
        return Paired(0, base_i, prop_i, nan, None, None, math.nan)
    d = b - a
    lo, hi = bootstrap_mean_interval(d, rng, resamples)
    diff = Interval(float(d.mean()), lo, hi, "paired-bootstrap")
    p_value: float | None = None
    discordant: tuple[int, int] | None = None
    if is_binary(a) and is_binary(b):
        worse = int(np.sum((a == 1) & (b == 0)))
        better = int(np.sum((a == 0) & (b == 1)))
        discordant = (worse, better)
        p_value = mcnemar_exact(worse, better)
    return Paired(n, base_i, prop_i, diff, p_value, discordant, float(d.std(ddof=1)) if n > 1 else 0.0)


def bootstrap_class_means(matrix: FloatArray, rng: np.random.Generator, resamples: int) -> FloatArray:
    """Bootstrap means of every column of ``matrix`` (tasks × models), resampling tasks (rows) jointly.

    Returns an array (resamples × models). Resampling rows keeps the comparison paired: each resample
    draws the same tasks for every model. Missing values (NaN) are left out of that model's mean.
    """
    n = matrix.shape[0]
    if n == 0:
        return np.full((resamples, matrix.shape[1]), np.nan)
    idx = rng.integers(0, n, size=(resamples, n))
    if not np.isnan(matrix).any():
        out: FloatArray = matrix[idx].mean(axis=1)
        return out
    picked = matrix[idx]
    present = ~np.isnan(picked)
    sums = np.where(present, picked, 0.0).sum(axis=1)
    counts = present.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        means: FloatArray = sums / counts
    return means
