"""Verification by replay on the held-out split: does the proposal keep quality where it did not learn?

Per affected class, a stratified sample of its held-out tasks (all of them unless capped) is replayed through
the baseline and the proposed model: McNemar for right/wrong, paired bootstrap for scores, cost and latency.
Overall: quality kept as a share of baseline, cost and latency deltas, each with a 95 % interval (stratified
paired bootstrap). At most two replay-and-adjust passes per class:

1. the proposal as learnt is replayed (its overall figure is the untouched held-out result); a move whose
   class loses significantly more than the per-class limit fails, and that model is ruled out for the class;
2. adjust: the moves to cheaper models are chosen again on the learn and replay evidence combined (twice the
   tasks per class: fewer lucky classes in, fewer unlucky ones out), and the classes whose proposal changed
   are replayed; an upgrade that failed tries its next alternative. What fails then is reverted.

Last, while overall quality kept on the replay is below ``1 - tolerance``, the move that lost most there is
reverted. After the adjustment the replay figures are no longer independent of the decision: the first-pass
figure is, and an honest final figure needs tasks the review never saw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from routeguard.review.analyze import EvalMatrix
from routeguard.review.downgrade import reselect
from routeguard.review.plan import ClassPlan, Plan, Status, significantly_better
from routeguard.review.propose import learn_figures
from routeguard.review.settings import ReviewSettings
from routeguard.review.stats import (
    FloatArray,
    IntArray,
    Interval,
    Paired,
    bootstrap_class_means,
    paired_difference,
)

__all__ = ["ClassReplay", "OverallReplay", "Verification", "replay_totals", "verify"]

MAX_PASSES = 2  # replay-and-adjust passes per class (the bound)


@dataclass(frozen=True, slots=True)
class ClassReplay:
    model: str  # the proposed model replayed
    n: int
    quality: Paired
    cost: Paired
    latency: Paired | None
    passed: bool
    why: str
    attempt: int
    beyond_limit: bool = False  # passed, but the class's point loss on replay exceeds the per-class limit

    def to_dict(self) -> dict[str, object]:
        return {
            "model": self.model,
            "attempt": self.attempt,
            "n": self.n,
            "quality": self.quality.to_dict(),
            "cost_per_task_usd": self.cost.to_dict(),
            "latency_ms": self.latency.to_dict() if self.latency else None,
            "verdict": "pass" if self.passed else "fail",
            "beyond_limit_not_significant": self.beyond_limit,
            "why": self.why,
        }


@dataclass(frozen=True, slots=True)
class OverallReplay:
    tasks: int
    baseline_quality: float
    proposal_quality: float
    kept: Interval  # proposal quality / baseline quality
    saving: Interval  # 1 - proposal cost / baseline cost
    baseline_cost_per_task: float
    proposal_cost_per_task: float
    latency_delta_ms: Interval | None

    def to_dict(self) -> dict[str, object]:
        return {
            "tasks": self.tasks,
            "baseline_quality": round(float(self.baseline_quality), 6),
            "proposal_quality": round(float(self.proposal_quality), 6),
            "quality_kept": self.kept.to_dict(),
            "cost_saving": self.saving.to_dict(),
            "baseline_cost_per_task_usd": round(float(self.baseline_cost_per_task), 9),
            "proposal_cost_per_task_usd": round(float(self.proposal_cost_per_task), 9),
            "latency_delta_ms": self.latency_delta_ms.to_dict() if self.latency_delta_ms else None,
        }


@dataclass(slots=True)
class Verification:
    first_pass: OverallReplay  # the proposal as learnt, before any adjustment: an untouched held-out figure
    final: OverallReplay
    passed: bool
    replays: dict[str, list[ClassReplay]] = field(default_factory=dict)  # per class, one per attempt
    notes: list[str] = field(default_factory=list)


def _sample(matrix: EvalMatrix, held: IntArray, plan: ClassPlan, cap: int | None, seed: int) -> IntArray:
    idx = matrix.class_tasks(plan.ctx.index, held)
    idx = idx[~np.isnan(matrix.quality[idx, matrix.model_index(plan.ctx.current or "")])]
    if cap is not None and idx.size > cap:
        rng = np.random.default_rng([seed, plan.ctx.index])
        idx = np.sort(rng.choice(idx, size=cap, replace=False))
    return idx


def _replay(
    matrix: EvalMatrix,
    idx: IntArray,
    plan: ClassPlan,
    attempt: int,
    s: ReviewSettings,
    rng: np.random.Generator,
) -> ClassReplay:
    cur, new = matrix.model_index(plan.ctx.current or ""), matrix.model_index(plan.proposed or "")
    quality = paired_difference(matrix.quality[idx, cur], matrix.quality[idx, new], rng, s.resamples)
    cost = paired_difference(matrix.cost[idx, cur], matrix.cost[idx, new], rng, s.resamples)
    lat = None
    if not np.isnan(matrix.latency[idx][:, [cur, new]]).all():
        lat = paired_difference(matrix.latency[idx, cur], matrix.latency[idx, new], rng, s.resamples)
    base, prop = quality.baseline.value, quality.proposal.value
    beyond = False
    if quality.n == 0:
        passed, why = False, f"no held-out tasks evaluated on both {plan.ctx.current} and {plan.proposed}"
    elif plan.status is Status.UPGRADE:
        passed = prop > base
        why = f"quality {base:.3f} -> {prop:.3f} on replay" + ("" if passed else ": no improvement")
    else:
        loss = (base - prop) / base if base > 0 else 0.0
        worse = significantly_better(_swap(quality), s.alpha)
        limit = s.limit_for(plan.ctx.task_class)
        passed = loss <= limit or not worse
        why = f"class quality {base:.3f} -> {prop:.3f} on replay ({-loss:+.1%})"
        if not passed:
            why += f": a significant loss beyond the per-class limit {limit:.1%}"
        elif loss > limit:
            beyond = True
            why += f": beyond the per-class limit {limit:.1%} but not significantly worse"
    if quality.mcnemar_p is not None:
        why += f"; McNemar p={quality.mcnemar_p:.2g}, n={quality.n}"
    return ClassReplay(plan.proposed or "", quality.n, quality, cost, lat, passed, why, attempt, beyond)


def _swap(p: Paired) -> Paired:
    """The same comparison read the other way round (is the baseline better than the proposal?)."""
    d = p.difference
    flipped = Interval(-d.value, -d.high, -d.low, d.method)
    discordant = (p.discordant[1], p.discordant[0]) if p.discordant is not None else None
    return Paired(p.n, p.proposal, p.baseline, flipped, p.mcnemar_p, discordant, p.std_difference)


def _overall(
    matrix: EvalMatrix, plan: Plan, samples: dict[int, IntArray], s: ReviewSettings, rng: np.random.Generator
) -> OverallReplay:
    """Stratified paired bootstrap of overall quality, cost and latency: baseline vs the plan as it stands."""
    num_q = den_q = num_c = den_c = 0.0
    boots_q_new = boots_q_cur = boots_c_new = boots_c_cur = np.zeros(s.resamples)
    lat_boot = np.zeros(s.resamples)
    lat_point, lat_weight, tasks = 0.0, 0.0, 0
    by_index = {p.ctx.index: p for p in plan.classes}
    for c, idx in samples.items():
        p, w = by_index[c], plan.weights.get(c, 0.0)
        if idx.size == 0 or w == 0.0:
            continue
        cur, new = matrix.model_index(p.ctx.current or ""), matrix.model_index(p.routed_to or "")
        cols = np.column_stack(
            [
                matrix.quality[idx, cur],
                matrix.quality[idx, new],
                matrix.cost[idx, cur],
                matrix.cost[idx, new],
                matrix.latency[idx, new] - matrix.latency[idx, cur],
            ]
        )
        tasks += int(idx.size)
        point = _column_means(cols)
        b = bootstrap_class_means(cols, rng, s.resamples)
        den_q, num_q = den_q + w * point[0], num_q + w * point[1]
        den_c, num_c = den_c + w * point[2], num_c + w * point[3]
        boots_q_cur, boots_q_new = boots_q_cur + w * b[:, 0], boots_q_new + w * b[:, 1]
        boots_c_cur, boots_c_new = boots_c_cur + w * b[:, 2], boots_c_new + w * b[:, 3]
        if not np.isnan(cols[:, 4]).all():
            lat_point, lat_weight = lat_point + w * float(np.nanmean(cols[:, 4])), lat_weight + w
            lat_boot = lat_boot + w * np.nan_to_num(b[:, 4])
    kept_b = boots_q_new / boots_q_cur
    save_b = 1 - boots_c_new / boots_c_cur
    kept = Interval(num_q / den_q if den_q else math.nan, *_ci(kept_b), "stratified paired bootstrap")
    saving = Interval(1 - num_c / den_c if den_c else math.nan, *_ci(save_b), "stratified paired bootstrap")
    latency = None
    if lat_weight > 0:
        lb = lat_boot / lat_weight
        latency = Interval(lat_point / lat_weight, *_ci(lb), "stratified paired bootstrap")
    return OverallReplay(tasks, float(den_q), float(num_q), kept, saving, float(den_c), float(num_c), latency)


def _column_means(cols: FloatArray) -> FloatArray:
    present = ~np.isnan(cols)
    n = present.sum(axis=0)
    return np.where(n > 0, np.where(present, cols, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan)


def _ci(values: FloatArray) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    return (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))) if v.size else (math.nan, math.nan)


def _revert(p: ClassPlan, why: str) -> None:
    p.reasons.append(f"failed verification: {why}")
    if p.status is Status.MOVE_CHEAPER and p.proposed:
        p.rejected.add(p.proposed)
    p.status, p.proposed = Status.FAILED_VERIFICATION, None


def _rebalance(
    matrix: EvalMatrix,
    plan: Plan,
    samples: dict[int, IntArray],
    replays: dict[str, list[ClassReplay]],
    s: ReviewSettings,
    rng: np.random.Generator,
    notes: list[str],
) -> OverallReplay:
    """Revert downgrades, worst held-out loss first, until overall quality kept is within the tolerance."""
    overall = _overall(matrix, plan, samples, s, rng)
    moved = [p for p in plan.classes if p.status is Status.MOVE_CHEAPER and p.ctx.task_class in replays]

    def loss(p: ClassPlan) -> float:
        r = replays[p.ctx.task_class][-1].quality
        return plan.weights.get(p.ctx.index, 0.0) * (r.baseline.value - r.proposal.value)

    for p in sorted(moved, key=lambda p: (-loss(p), p.ctx.task_class)):
        if overall.kept.value >= 1 - s.tolerance:
            break
        _revert(
            p,
            f"overall quality kept on replay {overall.kept.value:.1%} < {1 - s.tolerance:.1%}; this class "
            "lost the most",
        )
        notes.append(f"{p.ctx.task_class}: reverted to bring overall quality back within the tolerance")
        overall = _overall(matrix, plan, samples, s, rng)
    return overall


def _samples(plan: Plan, matrix: EvalMatrix, held: IntArray, s: ReviewSettings) -> dict[int, IntArray]:
    return {
        p.ctx.index: _sample(matrix, held, p, s.sample_per_class if p.changed else None, s.seed)
        for p in plan.classes
        if p.ctx.index in plan.data
    }


def replay_totals(plan: Plan, matrix: EvalMatrix, held: IntArray, s: ReviewSettings) -> OverallReplay:
    """Overall held-out figures of the plan as it stands (no adjustment)."""
    return _overall(matrix, plan, _samples(plan, matrix, held, s), s, np.random.default_rng(s.seed + 2))


def _pass(
    matrix: EvalMatrix,
    pending: list[ClassPlan],
    samples: dict[int, IntArray],
    replays: dict[str, list[ClassReplay]],
    s: ReviewSettings,
    rng: np.random.Generator,
    notes: list[str],
) -> list[ClassPlan]:
    """Replay ``pending``; revert what fails, except upgrades with an untried alternative (returned)."""
    retry: list[ClassPlan] = []
    for p in pending:
        done = replays.setdefault(p.ctx.task_class, [])
        r = _replay(matrix, samples[p.ctx.index], p, len(done) + 1, s, rng)
        done.append(r)
        if r.passed:
            continue
        if p.status is Status.UPGRADE and len(done) < MAX_PASSES and p.alternatives:
            nxt = p.alternatives[0]
            notes.append(f"{p.ctx.task_class}: {p.proposed} failed replay ({r.why}); trying {nxt}")
            p.proposed = p.alternatives.pop(0)
            retry.append(p)
        else:
            _revert(p, r.why)
    return retry


def verify(plan: Plan, matrix: EvalMatrix, held: IntArray, s: ReviewSettings) -> Verification:
    """Replay the plan on ``held`` and adjust it in place (at most two passes per class)."""
    rng = np.random.default_rng(s.seed + 1)
    samples = _samples(plan, matrix, held, s)
    replays: dict[str, list[ClassReplay]] = {}
    notes: list[str] = []
    first = _overall(matrix, plan, samples, s, rng)
    pending = [p for p in plan.classes if p.changed and p.ctx.index in samples]
    retry = _pass(matrix, pending, samples, replays, s, rng, notes)
    learnt = {p.ctx.index: p.routed_to for p in plan.classes}
    evidence = [plan.data[c].idx for c in plan.data] + [samples[c] for c in plan.data if c in samples]
    reselect(plan, matrix, np.unique(np.concatenate(evidence)) if evidence else held[:0], s)
    plan.adjusted = learn_figures(plan, matrix)
    for p in plan.classes:
        c = p.ctx.index
        if p.routed_to != learnt[c] and p.status is Status.KEEP and c in samples:
            notes.append(f"{p.ctx.task_class}: move withdrawn on learn + replay evidence")
        elif p.routed_to != learnt[c] and p.status is Status.MOVE_CHEAPER:
            notes.append(f"{p.ctx.task_class}: moved to {p.proposed} on learn + replay evidence")
    adjusted = [
        p
        for p in plan.classes
        if p.status is Status.MOVE_CHEAPER and p.ctx.index in samples and p.routed_to != learnt[p.ctx.index]
    ]
    _pass(matrix, [*retry, *adjusted], samples, replays, s, rng, notes)
    final = _rebalance(matrix, plan, samples, replays, s, rng, notes)
    passed = final.kept.value >= 1 - s.tolerance
    if not passed:
        notes.append("the proposal as adjusted still loses more than the tolerance on replay")
    return Verification(first, final, passed, replays, notes)
