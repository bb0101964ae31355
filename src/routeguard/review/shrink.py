"""Empirical-Bayes shrinkage of per-class quality differences toward their pooled difference.

Ranking moves by each class's raw difference favours classes that were lucky on the learn split (the
winner's curse): the smaller the class, the more its raw difference is noise. A random-effects model treats
the true differences of the classes as drawn from one normal distribution N(mu, tau²), estimates mu and tau²
from all the classes (DerSimonian–Laird method of moments) and replaces each raw difference by its
posterior mean ``mu + tau² / (tau² + se²) × (raw - mu)``: a precise class keeps its own figure, a noisy one
leans on the pooled difference. Nothing here knows what the classes or models are.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["Observed", "Shrunk", "shrink", "standard_errors"]

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Observed:
    """One class's paired difference: mean over n tasks and the per-task variance of the difference."""

    mean: float
    variance: float
    n: int


@dataclass(frozen=True, slots=True)
class Shrunk:
    value: float  # posterior mean of the class's difference
    raw: float
    own_weight: float  # share of the class's own figure in ``value`` (1 = not shrunk)


def standard_errors(observed: Mapping[K, Observed]) -> dict[K, float]:
    """Squared standard error of each mean, the per-task variance smoothed with one pseudo-task at the pooled
    variance, so that a class with no disagreement in its sample does not count as infinitely precise."""
    usable = [o for o in observed.values() if o.n > 0]
    pooled = sum(o.variance for o in usable) / len(usable) if usable else 0.0
    return {
        k: ((o.n - 1) * o.variance + pooled) / o.n / o.n if o.n > 0 else float("inf")
        for k, o in observed.items()
    }


def shrink(observed: Mapping[K, Observed], min_classes: int) -> dict[K, Shrunk]:
    """Posterior means of the differences; unshrunk when fewer than ``min_classes`` classes can be pooled or
    their spread cannot be estimated."""
    se2 = standard_errors(observed)
    keys = [k for k in observed if 0.0 < se2[k] < float("inf")]
    plain = {k: Shrunk(o.mean, o.mean, 1.0) for k, o in observed.items()}
    if len(keys) < max(min_classes, 2):
        return plain
    d = {k: observed[k].mean for k in keys}
    w = {k: 1.0 / se2[k] for k in keys}
    sw = sum(w.values())
    mu_fixed = sum(w[k] * d[k] for k in keys) / sw
    q = sum(w[k] * (d[k] - mu_fixed) ** 2 for k in keys)
    denom = sw - sum(x * x for x in w.values()) / sw
    tau2 = max(0.0, (q - (len(keys) - 1)) / denom) if denom > 0 else 0.0
    w_re = {k: 1.0 / (se2[k] + tau2) for k in keys}
    mu = sum(w_re[k] * d[k] for k in keys) / sum(w_re.values())
    for k in keys:
        b = tau2 / (tau2 + se2[k])
        plain[k] = Shrunk(mu + b * (d[k] - mu), d[k], b)
    return plain
