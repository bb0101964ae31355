"""Calibrating a learned primary's threshold (CONTRACT §7) on scores the training never saw.

For every candidate threshold the whole traffic of the policy is replayed on paper: a task goes weak when its
class may go weak and its out-of-fold score clears the threshold, else strong. Quality kept (routed quality
over all-strong quality) and cost saving get percentile intervals from one shared paired bootstrap over tasks.
The chosen threshold is the one that saves most among those whose *lower* 95 % bound of quality kept stays
within the tolerance (``kept_low >= 1 - tolerance``); when none does, nothing moves (threshold 1.0 keeps every
request on strong). The whole curve is reported so an owner can pick a more conservative point.

No class may lose more than the per-class limit of its own quality (point estimate, as in the per-class review):
at each threshold, a class past it keeps only its best requests (highest saving per expected loss) up to the
limit, and the point records the smallest ratio admitted per capped class — the artifact turns it into a class
weight so that the served score clears the threshold for exactly those requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from routeguard.review.stats import FloatArray, Interval

__all__ = ["ClassCap", "CurvePoint", "Outcomes", "bootstrap_weights", "choose", "curve", "replay_figures"]

_GRID = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Per task: quality and cost on each arm (the strong arm is the baseline)."""

    q_strong: FloatArray
    q_weak: FloatArray
    c_strong: FloatArray
    c_weak: FloatArray

    def __len__(self) -> int:
        return len(self.q_strong)


@dataclass(frozen=True, slots=True)
class CurvePoint:
    threshold: float
    weak_share: float
    n: int
    quality_kept: Interval
    cost_saving: Interval
    caps: dict[str, float] = field(default_factory=dict)  # capped class -> smallest saving/(1-p) ratio admitted

    def to_dict(self) -> dict[str, object]:
        return {
            "threshold": round(self.threshold, 6),
            "weak_share": round(self.weak_share, 4),
            "n": self.n,
            "quality_kept": self.quality_kept.to_dict(),
            "cost_saving": self.cost_saving.to_dict(),
            "capped_classes": sorted(self.caps),
        }


def bootstrap_weights(n: int, resamples: int, rng: np.random.Generator) -> FloatArray:
    """Multinomial resample counts (resamples × n): row b says how often each task appears in resample b."""
    if n == 0:
        return np.zeros((resamples, 0))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)


def replay_figures(out: Outcomes, weak: np.ndarray, weights: FloatArray) -> tuple[Interval, Interval]:
    """(quality kept, cost saving) of routing ``weak`` tasks to the weak arm, with bootstrap intervals."""
    q = np.where(weak, out.q_weak, out.q_strong)
    c = np.where(weak, out.c_weak, out.c_strong)
    base_q, base_c = out.q_strong.sum(), out.c_strong.sum()
    kept = float(q.sum() / base_q) if base_q > 0 else 1.0
    saving = float(1 - c.sum() / base_c) if base_c > 0 else 0.0
    if weights.shape[1] == 0:
        return Interval(kept, kept, kept, "none"), Interval(saving, saving, saving, "none")
    bq, bbase = weights @ q, weights @ out.q_strong
    bc, bcbase = weights @ c, weights @ out.c_strong
    kept_b = np.divide(bq, bbase, out=np.ones_like(bq), where=bbase > 0)
    save_b = 1 - np.divide(bc, bcbase, out=np.ones_like(bc), where=bcbase > 0)
    method = "paired bootstrap percentile"
    return (
        Interval(kept, float(np.quantile(kept_b, 0.025)), float(np.quantile(kept_b, 0.975)), method),
        Interval(saving, float(np.quantile(save_b, 0.025)), float(np.quantile(save_b, 0.975)), method),
    )


@dataclass(frozen=True, slots=True)
class ClassCap:
    """The per-class limit: ``classes`` per task, ``ratio`` = saving / (1 - p) per task, the share ``limit``
    (``limits`` overrides it for named classes)."""

    classes: np.ndarray
    ratio: FloatArray
    limit: float
    limits: dict[str, float] = field(default_factory=dict)


def _cap(out: Outcomes, weak: np.ndarray, cap: ClassCap) -> tuple[np.ndarray, dict[str, float]]:
    weak = weak.copy()
    caps: dict[str, float] = {}
    loss = out.q_strong - out.q_weak
    for klass in np.unique(cap.classes[weak]):
        in_class = cap.classes == klass
        budget = cap.limits.get(str(klass), cap.limit) * out.q_strong[in_class].sum()
        moved = np.flatnonzero(weak & in_class)
        if loss[moved].sum() <= budget:
            continue
        order = moved[np.argsort(-cap.ratio[moved], kind="stable")]
        keep = int(np.searchsorted(np.cumsum(loss[order]), budget, side="right"))
        weak[order[keep:]] = False
        caps[str(klass)] = float(cap.ratio[order[keep - 1]]) if keep > 0 else float("inf")
    return weak, caps


def curve(
    out: Outcomes, scores: FloatArray, eligible: np.ndarray, weights: FloatArray, cap: ClassCap | None = None
) -> list[CurvePoint]:
    """Quality and cost against the threshold: thresholds at the 0, 1, … 100 % quantiles of eligible scores."""
    pool = scores[eligible]
    cuts = sorted({*(float(t) for t in np.quantile(pool, _GRID)), 1.0}) if len(pool) else [1.0]
    points = []
    for t in cuts:
        weak = eligible & (scores >= t)
        caps: dict[str, float] = {}
        if cap is not None:
            weak, caps = _cap(out, weak, cap)
        kept, saving = replay_figures(out, weak, weights)
        points.append(CurvePoint(min(max(t, 0.0), 1.0), float(weak.mean()) if len(weak) else 0.0, len(out),
                                 kept, saving, caps))
    return points


def choose(points: list[CurvePoint], tolerance: float) -> CurvePoint | None:
    """The point that saves most with ``quality_kept.low >= 1 - tolerance``; None when no point qualifies."""
    ok = [p for p in points if p.quality_kept.low >= 1.0 - tolerance and p.weak_share > 0]
    if not ok:
        return None
    return max(ok, key=lambda p: (p.cost_saving.value, p.threshold))
