"""Calibrating a learned primary's threshold (CONTRACT §7) on scores the training never saw.

For every candidate threshold the whole traffic of the policy is replayed on paper: a task goes weak when its
class may go weak and its out-of-fold score clears the threshold, else strong. Quality kept (routed quality
over all-strong quality) and cost saving get percentile intervals from one shared paired bootstrap over tasks.
The chosen threshold is the one that saves most among those whose *lower* 95 % bound of quality kept stays
within the tolerance (``kept_low >= 1 - tolerance``); when none does, nothing moves (threshold 1.0 keeps every
request on strong). The whole curve is reported so an owner can pick a more conservative point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routeguard.review.stats import FloatArray, Interval

__all__ = ["CurvePoint", "Outcomes", "bootstrap_weights", "choose", "curve", "replay_figures"]

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

    def to_dict(self) -> dict[str, object]:
        return {
            "threshold": round(self.threshold, 6),
            "weak_share": round(self.weak_share, 4),
            "n": self.n,
            "quality_kept": self.quality_kept.to_dict(),
            "cost_saving": self.cost_saving.to_dict(),
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


def curve(out: Outcomes, scores: FloatArray, eligible: np.ndarray, weights: FloatArray) -> list[CurvePoint]:
    """Quality and cost against the threshold: thresholds at the 0, 1, … 100 % quantiles of eligible scores."""
    pool = scores[eligible]
    cuts = sorted({*(float(t) for t in np.quantile(pool, _GRID)), 1.0}) if len(pool) else [1.0]
    points = []
    for t in cuts:
        weak = eligible & (scores >= t)
        kept, saving = replay_figures(out, weak, weights)
        points.append(CurvePoint(min(max(t, 0.0), 1.0), float(weak.mean()) if len(weak) else 0.0, len(out),
                                 kept, saving))
    return points


def choose(points: list[CurvePoint], tolerance: float) -> CurvePoint | None:
    """The point that saves most with ``quality_kept.low >= 1 - tolerance``; None when no point qualifies."""
    ok = [p for p in points if p.quality_kept.low >= 1.0 - tolerance and p.weak_share > 0]
    if not ok:
        return None
    return max(ok, key=lambda p: (p.cost_saving.value, p.threshold))
