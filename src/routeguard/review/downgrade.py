"""Over-served classes: choose the set of moves to cheaper approved models.

Greedily, by savings per unit of expected quality lost, a class moves while the lower 95 % bound of overall
quality kept (paired, stratified bootstrap over tasks) stays within the tolerance of the baseline and the
class loses no more than the per-class limit (its point estimate). The expected loss used for the order is
the class's difference shrunk toward the pooled difference of all candidate classes (:mod:`shrink`), so the
classes that merely look good by luck of a small sample are tried last; the gate and the per-class limit use
the figures exactly as stated. :func:`reselect` runs the same choice again on learn + replay evidence.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from routeguard.review.analyze import EvalMatrix
from routeguard.review.plan import ClassData, ClassPlan, Plan, Status, class_data
from routeguard.review.settings import ReviewSettings
from routeguard.review.shrink import Observed, shrink
from routeguard.review.stats import FloatArray, IntArray, paired_difference

__all__ = ["pair_all", "reselect", "select_downgrades"]

Move = tuple[tuple[int, float, str, str], int, int, float]


class _Gate:
    """Overall quality of an assignment against the baseline, per bootstrap resample (vectorised)."""

    def __init__(self, data: dict[int, ClassData], weights: dict[int, float], base: dict[int, int]) -> None:
        self.data, self.w, self.assign = data, weights, dict(base)
        resamples = next(iter(data.values())).boots.shape[0] if data else 1
        self.num: FloatArray = np.zeros(resamples)
        for c in data:
            self.num = self.num + weights[c] * data[c].boots[:, base[c]]
        self.den = self.num.copy()
        self.num_point = float(sum(weights[c] * float(data[c].mean[base[c]]) for c in data))
        self.den_point = self.num_point or 1.0

    def trial(self, c: int, m: int) -> tuple[float, float, FloatArray, float]:
        d, w, old = self.data[c], self.w[c], self.assign[c]
        num = self.num + w * (d.boots[:, m] - d.boots[:, old])
        point = float(self.num_point + w * (d.mean[m] - d.mean[old]))
        ratio = num / self.den
        return point / self.den_point, float(np.nanpercentile(ratio, 2.5)), num, point

    def accept(self, c: int, m: int, num: FloatArray, point: float) -> None:
        self.assign[c], self.num, self.num_point = m, num, point


def pair_all(
    plan: ClassPlan, data: ClassData, matrix: EvalMatrix, rng: np.random.Generator, s: ReviewSettings
) -> None:
    """Paired comparison of every evaluated candidate against the current model, on ``data``'s tasks."""
    cur = matrix.model_index(plan.ctx.current or "")
    plan.paired = {}
    for check in plan.ctx.candidates:
        if check.model == plan.ctx.current or check.model not in matrix.models:
            continue
        m = matrix.model_index(check.model)
        if data.count[m] >= s.min_class_n:
            plan.paired[check.model] = paired_difference(
                matrix.quality[data.idx, cur], matrix.quality[data.idx, m], rng, s.resamples
            )
    plan.n_evidence = int(data.idx.size)


def _shrunk(plans: dict[int, ClassPlan], s: ReviewSettings) -> None:
    """Shrink each candidate's difference within the classes that share its (current, candidate) pair."""
    groups: dict[tuple[str, str], dict[int, Observed]] = {}
    for c, p in plans.items():
        for name, pr in p.paired.items():
            groups.setdefault((p.ctx.current or "", name), {})[c] = Observed(
                pr.difference.value, pr.std_difference**2 if pr.n > 1 else 0.0, pr.n
            )
    for (_cur, name), observed in groups.items():
        for c, est in shrink(observed, s.shrink_min_classes).items():
            plans[c].shrunk[name] = est.value


def _moves(plans: dict[int, ClassPlan], plan: Plan, matrix: EvalMatrix, s: ReviewSettings) -> list[Move]:
    out: list[Move] = []
    for c, p in plans.items():
        d, cur = plan.data[c], matrix.model_index(p.ctx.current or "")
        if p.ctx.volume <= 0:
            p.reasons.append("no traffic in the telemetry: nothing to save")
            continue
        cheaper = [
            m
            for m in p.ctx.eligible
            if m in p.paired and m not in p.rejected and d.cost[matrix.model_index(m)] < d.cost[cur]
        ]
        if not cheaper:
            p.reasons.append("no cheaper approved model evaluated" + _blocked_note(p))
            continue
        for name in cheaper:
            m = matrix.model_index(name)
            loss = (d.mean[cur] - d.mean[m]) / d.mean[cur] if d.mean[cur] > 0 else 0.0
            limit = s.limit_for(p.ctx.task_class)
            if loss > limit:
                p.reasons.append(
                    f"{name} would lose {loss:.1%} of this class's quality (limit {limit:.1%})"
                )
                continue
            if p.ctx.recent and not _strong(d, cur, m, s):
                p.reasons.append(
                    f"changed recently ({p.ctx.recent.detail}); evidence for {name} not strong enough"
                )
                continue
            p.over_served = True
            saving = p.ctx.volume * float(d.cost[cur] - d.cost[m])
            lost = -plan.weights[c] * p.shrunk.get(name, float(d.mean[m] - d.mean[cur]))
            rank = (0, -saving) if lost <= 0 else (1, -saving / lost)
            key = (rank[0], rank[1], p.ctx.task_class, name)
            out.append((key, c, m, saving))
    return out


def select_downgrades(plan: Plan, matrix: EvalMatrix, s: ReviewSettings) -> None:
    """Move over-served classes (status KEEP, with data) to cheaper approved models, within the gate."""
    by_index = {p.ctx.index: p for p in plan.classes}
    base = {c: matrix.model_index(by_index[c].routed_to or "") for c in plan.data}
    gate = _Gate(plan.data, plan.weights, base)
    plans = {c: by_index[c] for c in plan.data if by_index[c].status is Status.KEEP}
    for p in plans.values():
        p.base_reasons = len(p.reasons) if p.base_reasons < 0 else p.base_reasons
    _shrunk(plans, s)
    chosen: dict[int, float] = {}
    for _key, c, m, saving in sorted(_moves(plans, plan, matrix, s)):
        if chosen.get(c, -1.0) >= saving:
            continue
        kept, low, num, point = gate.trial(c, m)
        p, name = plans[c], matrix.models[m]
        if low < 1 - s.tolerance:
            p.reasons.append(
                f"overall gate: moving to {name} would put the lower bound of overall quality at {low:.1%} "
                f"of baseline (< {1 - s.tolerance:.1%})"
            )
            continue
        gate.accept(c, m, num, point)
        chosen[c] = saving
        p.status, p.proposed = Status.MOVE_CHEAPER, name
        p.reasons = [r for r in p.reasons if not r.startswith("overall gate")]
        d = plan.data[c]
        share = float(d.cost[m] / d.cost[base[c]])
        pr = p.paired[name]
        p.reasons.append(
            f"over-served ({p.evidence}, n={pr.n}): {name} keeps {pr.proposal.value:.3f} vs "
            f"{pr.baseline.value:.3f} (shrunk difference {p.shrunk.get(name, pr.difference.value):+.3f}) at "
            f"{share:.0%} of the cost; overall lower bound {low:.1%} (point {kept:.1%})"
        )


def reselect(plan: Plan, matrix: EvalMatrix, subset: IntArray, s: ReviewSettings) -> None:
    """Choose the cheaper moves again on ``subset`` (learn + replay evidence), replacing the learnt choice.

    Classes already moved, kept or failed on a cheaper model take part (a model that failed its replay is
    left out); upgrades and escalations stay as they are. Every class's data is replaced by ``subset``'s so
    the gate weighs the whole traffic on the same evidence.
    """
    rng = np.random.default_rng(s.seed + 3)
    failures: dict[int, str] = {}
    for p in plan.classes:
        c = p.ctx.index
        if c not in plan.data:
            continue
        d = class_data(matrix, subset, p.ctx, rng, s.resamples)
        if d is None:
            continue
        plan.data[c] = d
        downgrade_failed = p.status is Status.FAILED_VERIFICATION and bool(p.rejected)
        if p.status not in (Status.KEEP, Status.MOVE_CHEAPER) and not downgrade_failed:
            continue
        if downgrade_failed:
            failures[c] = p.reasons[-1]
        learnt = f"learn split: moved to {p.proposed}" if p.changed else "learn split: kept"
        if downgrade_failed:
            learnt = f"learn split: moved to {', '.join(sorted(p.rejected))}, which failed its replay"
        p.reasons = [*p.reasons[: max(p.base_reasons, 0)], learnt]
        p.status, p.proposed, p.over_served, p.shrunk = Status.KEEP, None, False, {}
        p.learn_paired = p.paired if p.learn_paired is None else p.learn_paired
        p.evidence = "learn + replay"
        pair_all(p, d, matrix, rng, s)
        p.base_reasons = -1
    select_downgrades(plan, matrix, s)
    for c, why in failures.items():
        p = next(q for q in plan.classes if q.ctx.index == c)
        if p.status is Status.KEEP:
            p.status = Status.FAILED_VERIFICATION
            p.reasons.append(why)


def _strong(d: ClassData, cur: int, m: int, s: ReviewSettings) -> bool:
    """Much stronger evidence: the (1 - strong_alpha) bound of the class's loss stays within the tolerance."""
    diff = d.boots[:, m] - d.boots[:, cur]
    z = NormalDist().inv_cdf(1 - s.strong_alpha / 2)
    return float(np.nanmean(diff) - z * np.nanstd(diff)) >= -s.tolerance * float(d.mean[cur])


def _blocked_note(p: ClassPlan) -> str:
    blocked = [c for c in p.ctx.candidates if not c.eligible]
    return "".join(f"; {c.model} excluded ({', '.join(c.reasons)})" for c in blocked)
