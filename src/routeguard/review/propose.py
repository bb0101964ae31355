"""Choose routing changes on the learn split.

1. Pre-checks: classes that cannot or must not be re-routed (unrouted, A/B test, too little data) or that
   need a human (privacy tier, deprecation) get no proposal.
2. Under-served classes (current quality below ``(1 - tolerance) ×`` the best approved candidate, or below
   an explicit target, and significantly so) move to the cheapest approved model that restores them.
3. Over-served classes: greedily, by savings per (shrunk) quality lost, move classes to cheaper approved
   models while the lower 95 % bound of overall quality (paired, stratified bootstrap over tasks) stays within
   the tolerance of the baseline and no class loses more than the per-class limit (point estimate); see
   :mod:`downgrade`.
Inside the anti-flapping window a class moves only on much stronger evidence (``strong_alpha``).
"""

from __future__ import annotations

import numpy as np

from routeguard.review.analyze import EvalMatrix
from routeguard.review.candidates import ClassContext
from routeguard.review.downgrade import pair_all, select_downgrades
from routeguard.review.plan import (
    ClassData,
    ClassPlan,
    Escalation,
    Plan,
    Status,
    class_data,
    significantly_better,
)
from routeguard.review.settings import ReviewSettings
from routeguard.review.stats import IntArray

__all__ = [
    "ClassData",
    "ClassPlan",
    "Escalation",
    "Plan",
    "Status",
    "class_data",
    "learn_figures",
    "propose",
    "significantly_better",
]


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
            pair_all(p, d, matrix, rng, s)
            _under_served(p, d, matrix, s)
    total = sum(plans[c].ctx.volume for c in data) or 1.0
    weights = {c: plans[c].ctx.volume / total for c in data}
    plan = Plan(list(plans.values()), data, weights, (1.0, 1.0), 0.0)
    select_downgrades(plan, matrix, s)
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
