"""Overall quality against cost on the held-out split, for the baseline, the proposal, every all-one-model
routing, and the per-class oracle (the best per-class assignments, knowing the held-out results)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from routeguard.review.analyze import EvalMatrix
from routeguard.review.propose import Plan
from routeguard.review.stats import FloatArray, IntArray

__all__ = ["Frontier", "FrontierPoint", "frontier"]


@dataclass(frozen=True, slots=True)
class FrontierPoint:
    label: str
    quality: float  # traffic-weighted mean quality
    cost_per_task_usd: float

    def to_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "quality": round(self.quality, 6),
            "cost_per_task_usd": round(self.cost_per_task_usd, 9),
        }


@dataclass(frozen=True, slots=True)
class Frontier:
    baseline: FrontierPoint
    proposal: FrontierPoint
    single_model: tuple[
        FrontierPoint, ...
    ]  # every class on one model (where allowed; else its current model)
    oracle: tuple[FrontierPoint, ...]  # per-class oracle path, from best quality to lowest cost

    def to_dict(self) -> dict[str, object]:
        return {
            "baseline": self.baseline.to_dict(),
            "proposal": self.proposal.to_dict(),
            "single_model": [p.to_dict() for p in self.single_model],
            "oracle": [p.to_dict() for p in self.oracle],
        }


def frontier(plan: Plan, matrix: EvalMatrix, held: IntArray) -> Frontier:
    classes = [p for p in plan.classes if p.ctx.index in plan.data]
    m_count = len(matrix.models)
    q = np.full((len(classes), m_count), np.nan)
    c = np.full((len(classes), m_count), np.nan)
    w = np.array([plan.weights[p.ctx.index] for p in classes])
    allowed = np.zeros((len(classes), m_count), dtype=bool)
    for i, p in enumerate(classes):
        idx = matrix.class_tasks(p.ctx.index, held)
        for m in range(m_count):
            col = matrix.quality[idx, m]
            if idx.size and not np.isnan(col).all():
                q[i, m] = float(np.nanmean(col))
                c[i, m] = float(np.nanmean(matrix.cost[idx, m]))
        for name in (*p.ctx.eligible, p.ctx.current or ""):
            if name in matrix.models:
                allowed[i, matrix.model_index(name)] = True
    allowed &= ~np.isnan(q) & ~np.isnan(c)

    def point(label: str, assign: list[int]) -> FrontierPoint:
        rows = np.arange(len(classes))
        sel_q, sel_c = q[rows, assign], c[rows, assign]
        ok = ~np.isnan(sel_q) & ~np.isnan(sel_c)
        total = float(w[ok].sum()) or math.nan
        return FrontierPoint(
            label, float((w * sel_q)[ok].sum()) / total, float((w * sel_c)[ok].sum()) / total
        )

    current = [matrix.model_index(p.ctx.current or "") for p in classes]
    routed = [matrix.model_index(p.routed_to or "") for p in classes]
    singles = []
    for m, name in enumerate(matrix.models):
        if allowed[:, m].any():
            singles.append(
                point(f"all {name}", [m if allowed[i, m] else current[i] for i in range(len(classes))])
            )
    return Frontier(
        point("baseline", current), point("proposal", routed), tuple(singles), _oracle(q, c, allowed, point)
    )


def _oracle(
    q: FloatArray,
    c: FloatArray,
    allowed: npt.NDArray[np.bool_],
    point: Callable[[str, list[int]], FrontierPoint],
) -> tuple[FrontierPoint, ...]:
    """Start each class on its best allowed model; then take the least loss per dollar saved, repeatedly."""
    n = q.shape[0]
    if n == 0:
        return ()
    qq = np.where(allowed, q, -np.inf)
    assign = [int(np.argmax(qq[i])) for i in range(n)]
    path = [point("oracle", assign)]
    while True:
        best: tuple[float, int, int] | None = None
        for i in range(n):
            for m in np.flatnonzero(allowed[i]):
                saving = c[i, assign[i]] - c[i, m]
                if saving <= 0:
                    continue
                loss = max(q[i, assign[i]] - q[i, m], 0.0)
                ratio = saving / (loss + 1e-12)
                if best is None or ratio > best[0]:
                    best = (ratio, i, int(m))
        if best is None:
            return tuple(path)
        assign[best[1]] = best[2]
        path.append(point("oracle", assign))
