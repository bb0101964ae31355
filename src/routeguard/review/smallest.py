"""The smallest safe change: among proposals that meet the tolerance, prefer fewer moved classes.

The cheaper moves the review kept after replay are ranked by the saving each brings on the held-out split
(traffic-weighted); the *savings frontier* adds them one at a time, largest first, with the quality kept and the
saving of each prefix (point estimates on the held-out split). The proposal keeps the shortest prefix that
reaches ``min_saving_share`` of the full saving (default 95 %) while quality stays within the tolerance; the
other moves are withdrawn with that reason. The frontier goes into the report so an owner can pick another
point. Upgrades (a class moved to a stronger model) are never withdrawn here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from routeguard.review.analyze import EvalMatrix
from routeguard.review.plan import ClassPlan, Plan, Status
from routeguard.review.settings import ReviewSettings
from routeguard.review.stats import IntArray

__all__ = ["FrontierStep", "moves_frontier", "smallest_change"]


@dataclass(frozen=True, slots=True)
class FrontierStep:
    moves: int
    added: str | None  # the class this step moves (None: the baseline, nothing moved)
    quality_kept: float
    cost_saving: float

    def to_dict(self) -> dict[str, object]:
        return {"moves": self.moves, "added": self.added, "quality_kept": round(self.quality_kept, 6),
                "cost_saving": round(self.cost_saving, 6)}


def _means(matrix: EvalMatrix, p: ClassPlan, held: IntArray, model: str) -> tuple[float, float] | None:
    idx = matrix.class_tasks(p.ctx.index, held)
    if idx.size == 0 or model not in matrix.models:
        return None
    m = matrix.model_index(model)
    q, c = matrix.quality[idx, m], matrix.cost[idx, m]
    if np.isnan(q).all() or np.isnan(c).all():
        return None
    return float(np.nanmean(q)), float(np.nanmean(c))


def moves_frontier(plan: Plan, matrix: EvalMatrix, held: IntArray) -> tuple[list[FrontierStep], list[ClassPlan]]:
    """(the frontier, the cheaper moves in the order it adds them)."""
    base_q = base_c = 0.0
    deltas: list[tuple[float, float, ClassPlan]] = []  # (saving, quality change, class), traffic-weighted
    for p in plan.classes:
        w = plan.weights.get(p.ctx.index, 0.0)
        cur = _means(matrix, p, held, p.ctx.current or "")
        if cur is None or w == 0.0:
            continue
        base_q, base_c = base_q + w * cur[0], base_c + w * cur[1]
        if p.status is Status.MOVE_CHEAPER and p.changed:
            new = _means(matrix, p, held, p.proposed or "")
            if new is not None:
                deltas.append((w * (cur[1] - new[1]), w * (new[0] - cur[0]), p))
    deltas.sort(key=lambda d: -d[0])
    steps = [FrontierStep(0, None, 1.0, 0.0)]
    q, c = base_q, base_c
    for saving, dq, p in deltas:
        q, c = q + dq, c - saving
        steps.append(FrontierStep(len(steps), p.ctx.task_class, q / base_q if base_q else 1.0,
                                  1 - c / base_c if base_c else 0.0))
    return steps, [d[2] for d in deltas]


def smallest_change(
    plan: Plan, matrix: EvalMatrix, held: IntArray, s: ReviewSettings
) -> tuple[list[FrontierStep], list[str]]:
    """Withdraw the moves beyond the smallest safe prefix (in place); returns (frontier, withdrawn classes)."""
    steps, order = moves_frontier(plan, matrix, held)
    if len(order) <= 1 or s.min_saving_share >= 1.0:
        return steps, []
    full = steps[-1].cost_saving
    if full <= 0:
        return steps, []
    keep = next(
        (st.moves for st in steps[1:]
         if st.cost_saving >= s.min_saving_share * full and st.quality_kept >= 1 - s.tolerance),
        len(order),
    )
    withdrawn = []
    for p in order[keep:]:
        p.reasons.append(
            f"smallest safe change: the {keep} larger move(s) already give "
            f"{steps[keep].cost_saving / full:.0%} of the saving; this move is left out (see the savings frontier)"
        )
        p.status, p.proposed = Status.KEEP, None
        withdrawn.append(p.ctx.task_class)
    return steps, withdrawn
