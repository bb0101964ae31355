"""Choose routing changes on the learn split.

1. Pre-checks: classes that cannot or must not be re-routed (unrouted, A/B test, too little data) or that
   need a human (privacy tier, deprecation) get no proposal.
2. Under-served classes (current quality below ``(1 - tolerance) ×`` the best approved candidate, or below
   an explicit target, and significantly so) move to the cheapest approved model that restores them.
3. Over-served classes: greedily, by savings per quality lost, move classes to cheaper approved models while
   the lower 95 % bound of overall quality (paired, stratified bootstrap over tasks) stays within the
   tolerance of the baseline and no class loses more than the per-class limit (point estimate).
Inside the anti-flapping window a class moves only on much stronger evidence (``strong_alpha``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from statistics import NormalDist

import numpy as np

from routeguard.review.analyze import EvalMatrix
from routeguard.review.candidates import ClassContext
from routeguard.review.settings import ReviewSettings
from routeguard.review.stats import FloatArray, IntArray, Paired, bootstrap_class_means, paired_difference

__all__ = [
    "ClassData",
    "ClassPlan",
    "Escalation",
    "Plan",
    "Status",
    "class_data",
    "propose",
    "significantly_better",
]


class Status(StrEnum):
    MOVE_CHEAPER = "move_cheaper"  # over-served: a cheaper approved model is as good
    UPGRADE = "upgrade"  # under-served: a stronger approved model restores quality
    KEEP = "keep"
    INSUFFICIENT_DATA = "insufficient_data"
    ESCALATED = "escalated"  # needs a human: privacy tier, deprecation, trade beyond tolerance
    UNROUTED = "unrouted"
    FAILED_VERIFICATION = "failed_verification"


class Escalation(StrEnum):
    PRIVACY_TIER = "privacy_tier"
    DEPRECATION = "deprecation"
    QUALITY_TRADE = "quality_vs_cost_trade"
    APPROVAL_NEEDED = "approval_needed"


@dataclass(slots=True)
class ClassData:
    """Learn-split figures of one class: tasks where the current model was evaluated."""

    idx: IntArray
    mean: FloatArray  # per model (NaN when not evaluated)
    count: IntArray  # evaluations per model
    cost: FloatArray  # mean cost per task per model
    boots: FloatArray  # resamples × models


@dataclass(slots=True)
class ClassPlan:
    ctx: ClassContext
    status: Status = Status.KEEP
    proposed: str | None = None
    reasons: list[str] = field(default_factory=list)
    escalation: Escalation | None = None
    n_learn: int = 0
    paired: dict[str, Paired] = field(default_factory=dict)  # learn: each candidate vs the current model
    alternatives: list[str] = field(default_factory=list)  # fallbacks for a failed replay, best first
    over_served: bool = False

    @property
    def changed(self) -> bool:
        return self.proposed is not None and self.proposed != self.ctx.current

    @property
    def routed_to(self) -> str | None:
        return self.proposed if self.changed else self.ctx.current


@dataclass(slots=True)
class Plan:
    classes: list[ClassPlan]
    data: dict[int, ClassData]
    weights: dict[int, float]  # traffic share per class index (classes with data)
    learn_kept: tuple[float, float]  # overall quality kept on the learn split: point, lower 95 % bound
    learn_saving: float  # share of baseline cost saved on the learn split


def significantly_better(p: Paired, alpha: float) -> bool:
    """The proposal beats the baseline: exact McNemar for 0/1 outcomes, a paired z-test for scores."""
    if p.n == 0:
        return False
    if p.mcnemar_p is not None and p.discordant is not None:
        return p.discordant[1] > p.discordant[0] and p.mcnemar_p < alpha
    z = NormalDist().inv_cdf(1 - alpha / 2)
    return p.difference.value - z * p.std_difference / math.sqrt(p.n) > 0


def class_data(
    matrix: EvalMatrix, subset: IntArray, ctx: ClassContext, rng: np.random.Generator, resamples: int
) -> ClassData | None:
    if ctx.current is None or ctx.current not in matrix.models:
        return None
    cur = matrix.model_index(ctx.current)
    idx = matrix.class_tasks(ctx.index, subset)
    idx = idx[~np.isnan(matrix.quality[idx, cur])]
    if idx.size == 0:
        return None
    q = matrix.quality[idx]
    count = (~np.isnan(q)).sum(axis=0).astype(np.int64)
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, np.nansum(q, axis=0) / np.maximum(count, 1), np.nan)
        costs = matrix.cost[idx]
        cost_n = (~np.isnan(costs)).sum(axis=0)
        cost = np.where(cost_n > 0, np.nansum(costs, axis=0) / np.maximum(cost_n, 1), np.nan)
    return ClassData(idx, mean, count, cost, bootstrap_class_means(q, rng, resamples))


def _prechecks(plan: ClassPlan, data: ClassData | None, s: ReviewSettings) -> None:
    ctx = plan.ctx
    if ctx.blockers:
        plan.status = Status.UNROUTED if ctx.policy is None else Status.KEEP
        plan.reasons.extend(ctx.blockers)
    elif ctx.privacy_gap:
        plan.status, plan.escalation = Status.ESCALATED, Escalation.PRIVACY_TIER
        plan.reasons.append(ctx.privacy_gap)
    elif ctx.deprecation:
        plan.status, plan.escalation = Status.ESCALATED, Escalation.DEPRECATION
        plan.reasons.append(ctx.deprecation + ": choosing its replacement needs a human decision")
    elif data is None:
        plan.status = Status.INSUFFICIENT_DATA
        plan.reasons.append(f"no evaluations of the current model {ctx.current}")
    elif data.idx.size < s.min_class_n:
        plan.status = Status.INSUFFICIENT_DATA
        plan.reasons.append(
            f"only {data.idx.size} learn tasks (< {s.min_class_n}): too few to change anything"
        )


def _pair_all(
    plan: ClassPlan, data: ClassData, matrix: EvalMatrix, rng: np.random.Generator, s: ReviewSettings
) -> None:
    cur = matrix.model_index(plan.ctx.current or "")
    for check in plan.ctx.candidates:
        if check.model == plan.ctx.current or check.model not in matrix.models:
            continue
        m = matrix.model_index(check.model)
        if data.count[m] >= s.min_class_n:
            plan.paired[check.model] = paired_difference(
                matrix.quality[data.idx, cur], matrix.quality[data.idx, m], rng, s.resamples
            )


def _under_served(plan: ClassPlan, data: ClassData, matrix: EvalMatrix, s: ReviewSettings) -> None:
    ctx, cur = plan.ctx, matrix.model_index(plan.ctx.current or "")
    alpha = s.strong_alpha if ctx.recent else s.alpha
    eligible = [m for m in ctx.eligible if m in plan.paired]
    q = {m: float(data.mean[matrix.model_index(m)]) for m in plan.paired}
    q_cur = float(data.mean[cur])
    best = max((q[m] for m in eligible), default=q_cur)
    target = s.quality_target if s.quality_target is not None else (1 - s.tolerance) * max(best, q_cur)
    # a forbidden model that would beat everything allowed by more than the tolerance: the class needs a human
    blocked = [m for m in plan.paired if m not in eligible and q[m] * (1 - s.tolerance) > max(best, q_cur)]
    blocked = [m for m in blocked if significantly_better(plan.paired[m], alpha)]
    if blocked:
        _escalate_blocked(plan, max(blocked, key=lambda m: (q[m], m)), q_cur, max(q[m] for m in blocked))
        return
    if q_cur >= target:
        return
    restoring = [m for m in eligible if q[m] >= target and significantly_better(plan.paired[m], alpha)]
    if not restoring:
        others = [m for m in plan.paired if m not in eligible and q[m] >= target]
        others = [m for m in others if significantly_better(plan.paired[m], alpha)]
        if others:
            _escalate_blocked(plan, others[0], q_cur, q[others[0]])
        elif s.quality_target is not None and all(q[m] < target for m in eligible):
            plan.status, plan.escalation = Status.ESCALATED, Escalation.QUALITY_TRADE
            plan.reasons.append(
                f"quality {q_cur:.3f} is below the target {target:.3f} and no approved model reaches it "
                f"(best {best:.3f}): accepting lower quality or approving a new model is a human decision"
            )
        else:
            plan.reasons.append(
                f"quality {q_cur:.3f} below target {target:.3f}, but no significant improvement"
            )
        return
    choice = min(restoring, key=lambda m: (float(data.cost[matrix.model_index(m)]), -q[m], m))
    cost = float(data.cost[matrix.model_index(choice)])
    if ctx.budget_usd is not None and cost > ctx.budget_usd:
        plan.status, plan.escalation = Status.ESCALATED, Escalation.QUALITY_TRADE
        plan.reasons.append(
            f"{choice} restores quality ({q_cur:.3f} -> {q[choice]:.3f}) but costs ${cost:.5f} per task, "
            f"above the policy budget ${ctx.budget_usd:.5f}: a quality-versus-cost trade for a human"
        )
        return
    plan.status, plan.proposed = Status.UPGRADE, choice
    p = plan.paired[choice]
    plan.reasons.append(
        f"under-served: {ctx.current} {q_cur:.3f} < target {target:.3f}; {choice} {q[choice]:.3f} "
        f"(McNemar p={p.mcnemar_p:.2g})"
        if p.mcnemar_p is not None
        else f"under-served: {ctx.current} {q_cur:.3f} < target {target:.3f}; {choice} {q[choice]:.3f}"
    )
    plan.alternatives = sorted(
        (m for m in restoring if m != choice), key=lambda m: (float(data.cost[matrix.model_index(m)]), m)
    )


def _escalate_blocked(plan: ClassPlan, model: str, q_cur: float, q_other: float) -> None:
    check = plan.ctx.check(model)
    reasons = ", ".join(check.reasons) if check else "not allowed"
    privacy = check is not None and check.privacy_blocked
    plan.status = Status.ESCALATED
    plan.escalation = Escalation.PRIVACY_TIER if privacy else Escalation.APPROVAL_NEEDED
    what = "a privacy-tier or residency change" if privacy else "an approval"
    plan.reasons.append(
        f"only {model} ({reasons}) would restore quality ({q_cur:.3f} -> {q_other:.3f}); that needs {what}, "
        "which is a human decision"
    )


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


def _downgrades(plans: dict[int, ClassPlan], plan: Plan, matrix: EvalMatrix, s: ReviewSettings) -> None:
    base = {c: matrix.model_index(p.routed_to or "") for c, p in plans.items() if c in plan.data}
    gate = _Gate(plan.data, plan.weights, base)
    pairs: list[tuple[tuple[int, float, str, str], int, int, float]] = []
    for c, p in plans.items():
        if p.status is not Status.KEEP or c not in plan.data:
            continue
        d, cur = plan.data[c], base[c]
        if p.ctx.volume <= 0:
            p.reasons.append("no traffic in the telemetry: nothing to save")
            continue
        cheaper = [m for m in p.ctx.eligible if m in p.paired and d.cost[matrix.model_index(m)] < d.cost[cur]]
        if not cheaper:
            p.reasons.append("no cheaper approved model evaluated" + _blocked_note(p))
            continue
        for name in cheaper:
            m = matrix.model_index(name)
            loss = (d.mean[cur] - d.mean[m]) / d.mean[cur] if d.mean[cur] > 0 else 0.0
            if loss > s.class_limit:
                p.reasons.append(
                    f"{name} would lose {loss:.1%} of this class's quality (limit {s.class_limit:.1%})"
                )
                continue
            if p.ctx.recent and not _strong(d, cur, m, s):
                p.reasons.append(
                    f"changed recently ({p.ctx.recent.detail}); evidence for {name} not strong enough"
                )
                continue
            p.over_served = True
            saving = p.ctx.volume * float(d.cost[cur] - d.cost[m])
            lost = plan.weights[c] * float(d.mean[cur] - d.mean[m])
            key = (
                (0, -saving, p.ctx.task_class, name)
                if lost <= 0
                else (1, -saving / lost, p.ctx.task_class, name)
            )
            pairs.append((key, c, m, saving))
    chosen: dict[int, float] = {}
    for _key, c, m, saving in sorted(pairs):
        if chosen.get(c, -1.0) >= saving:
            continue
        kept, low, num, point = gate.trial(c, m)
        name = matrix.models[m]
        if low < 1 - s.tolerance:
            plans[c].reasons.append(
                f"overall gate: moving to {name} would put the lower bound of overall quality at {low:.1%} "
                f"of baseline (< {1 - s.tolerance:.1%})"
            )
            continue
        gate.accept(c, m, num, point)
        previous = plans[c].proposed
        chosen[c] = saving
        p = plans[c]
        p.status, p.proposed = Status.MOVE_CHEAPER, name
        p.reasons = [r for r in p.reasons if not r.startswith("overall gate")]
        share = float(plan.data[c].cost[m] / plan.data[c].cost[base[c]])
        p.reasons.append(
            f"over-served: {name} keeps {p.paired[name].proposal.value:.3f} vs "
            f"{p.paired[name].baseline.value:.3f} at {share:.0%} of the cost; overall lower bound "
            f"{low:.1%} (point {kept:.1%})"
        )
        if previous and previous != name:
            p.alternatives.insert(0, previous)
    for (
        c,
        p,
    ) in plans.items():  # cheaper-but-acceptable models, best quality first, for the replay's adjust pass
        if p.status is Status.MOVE_CHEAPER and c in plan.data:
            d, cur = plan.data[c], base[c]
            prop = matrix.model_index(p.proposed or "")
            others = [
                m
                for m in p.ctx.eligible
                if m in p.paired
                and m != p.proposed
                and d.cost[prop] < d.cost[matrix.model_index(m)] < d.cost[cur]
            ]
            p.alternatives = sorted(
                set(p.alternatives) | set(others), key=lambda m: -d.mean[matrix.model_index(m)]
            )


def _strong(d: ClassData, cur: int, m: int, s: ReviewSettings) -> bool:
    """Much stronger evidence: the (1 - strong_alpha) bound of the class's loss stays within the tolerance."""
    diff = d.boots[:, m] - d.boots[:, cur]
    z = NormalDist().inv_cdf(1 - s.strong_alpha / 2)
    return float(np.nanmean(diff) - z * np.nanstd(diff)) >= -s.tolerance * float(d.mean[cur])


def _blocked_note(p: ClassPlan) -> str:
    blocked = [c for c in p.ctx.candidates if not c.eligible]
    return "".join(f"; {c.model} excluded ({', '.join(c.reasons)})" for c in blocked)


def propose(matrix: EvalMatrix, learn: IntArray, contexts: list[ClassContext], s: ReviewSettings) -> Plan:
    rng = np.random.default_rng(s.seed)
    plans = {ctx.index: ClassPlan(ctx) for ctx in contexts}
    data: dict[int, ClassData] = {}
    for c, p in plans.items():
        d = class_data(matrix, learn, p.ctx, rng, s.resamples)
        if d is not None and not p.ctx.blockers:
            data[c] = d
            p.n_learn = int(d.idx.size)
        _prechecks(p, d, s)
        if d is not None and p.status is Status.KEEP and not p.ctx.blockers:
            _pair_all(p, d, matrix, rng, s)
            _under_served(p, d, matrix, s)
    total = sum(plans[c].ctx.volume for c in data) or 1.0
    weights = {c: plans[c].ctx.volume / total for c in data}
    plan = Plan(list(plans.values()), data, weights, (1.0, 1.0), 0.0)
    _downgrades(plans, plan, matrix, s)
    plan.learn_kept, plan.learn_saving = learn_figures(plan, matrix)
    return plan


def learn_figures(plan: Plan, matrix: EvalMatrix) -> tuple[tuple[float, float], float]:
    """Overall quality kept (point, lower 95 % bound) and cost saved, on the learn split."""
    cur = {
        p.ctx.index: matrix.model_index(p.ctx.current or "") for p in plan.classes if p.ctx.index in plan.data
    }
    new = {
        p.ctx.index: matrix.model_index(p.routed_to or "") for p in plan.classes if p.ctx.index in plan.data
    }
    if not cur:
        return (1.0, 1.0), 0.0
    w, d = plan.weights, plan.data
    num = sum(w[c] * d[c].boots[:, new[c]] for c in cur)
    den = sum(w[c] * d[c].boots[:, cur[c]] for c in cur)
    point = sum(w[c] * d[c].mean[new[c]] for c in cur) / sum(w[c] * d[c].mean[cur[c]] for c in cur)
    cost_new = sum(w[c] * d[c].cost[new[c]] for c in cur)
    cost_cur = sum(w[c] * d[c].cost[cur[c]] for c in cur)
    return (float(point), float(np.nanpercentile(num / den, 2.5))), float(1 - cost_new / cost_cur)
