"""``routeguard review --learned``: train, calibrate and verify a learned primary per policy (CONTRACT §7).

1. pair the evaluations (both arms per task), find each policy's weak arm and the classes held on strong;
2. hold back a share of the tasks by prompt hash (never used to train or calibrate);
3. on the rest: out-of-fold scores (k-fold cross-fitting) give the quality/cost curve against the threshold;
   the threshold keeps the lower 95 % bound of quality kept within the tolerance; the final model is fitted
   on all of it and written as a plain JSON artifact next to the proposal;
4. the proposal bundle must pass every check (its artifact hash included), then the held-back tasks are routed
   through it by the real Router (scoring, governance and all) and judged.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routeguard.config.load import LoadedBundle
from routeguard.review.learned_bundle import LearnedChange
from routeguard.review.learned_calibrate import ClassCap, CurvePoint, Outcomes, bootstrap_weights, choose, curve
from routeguard.review.learned_data import PolicyData, Task, heldback_mask
from routeguard.review.learned_train import cross_fit, featurize, fit_document, score_with_cost
from routeguard.review.settings import ReviewSettings

__all__ = ["PolicyResult", "train_policy"]

Progress = Callable[[str], None]


@dataclass(slots=True)
class PolicyResult:
    data: PolicyData
    learn: list[Task] = field(default_factory=list)
    heldback: list[Task] = field(default_factory=list)
    curve: list[CurvePoint] = field(default_factory=list)
    chosen: CurvePoint | None = None
    change: LearnedChange | None = None
    train_n: int = 0
    positive_share: float | None = None
    escalations: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _outcomes(data: PolicyData, tasks: list[Task]) -> Outcomes:
    s, w = data.strong, data.weak or data.strong

    def col(model: str, attr: str) -> np.ndarray:
        return np.array([getattr(t.arms[model], attr) or 0.0 for t in tasks], dtype=np.float64)

    return Outcomes(col(s, "quality"), col(w, "quality"), col(s, "cost_usd"), col(w, "cost_usd"))


def _latency_escalation(data: PolicyData, bound: float) -> dict[str, Any] | None:
    """A weak arm whose median latency exceeds the strong arm's by more than ``bound`` is escalated."""
    if data.weak is None:
        return None
    strong = [t.arms[data.strong].latency_ms for t in data.tasks if t.arms[data.strong].latency_ms is not None]
    weak = [t.arms[data.weak].latency_ms for t in data.tasks if t.arms[data.weak].latency_ms is not None]
    if len(strong) < 10 or len(weak) < 10:
        return None
    ps, pw = statistics.median(strong), statistics.median(weak)  # type: ignore[type-var]
    if ps and pw > ps * (1 + bound):  # type: ignore[operator]
        return {
            "policy": data.policy,
            "kind": "latency_regression",
            "detail": f"{data.weak} median {pw:.0f} ms vs {data.strong} {ps:.0f} ms (bound +{bound:.0%}): "
            "not proposed; a person must decide",
        }
    return None


def train_policy(
    data: PolicyData, loaded: LoadedBundle, s: ReviewSettings, artifacts_dir: Path, label: str
) -> PolicyResult:
    """Steps 2-3 for one policy; ``result.change`` is None when nothing should move."""
    res = PolicyResult(data, notes=list(data.notes))
    if data.weak is None or not data.tasks:
        res.notes.append("no paired evaluations of a weak arm: nothing to learn")
        return res
    mask = heldback_mask(data.tasks, s.learned_holdout, s.seed)
    res.learn = [t for t, h in zip(data.tasks, mask, strict=True) if not h]
    res.heldback = [t for t, h in zip(data.tasks, mask, strict=True) if h]
    esc = _latency_escalation(data, s.latency_bound)
    if esc is not None:
        res.escalations.append(esc)
        return res
    eligible = np.array([t.task_class not in data.held and bool(t.text) for t in res.learn], dtype=bool)
    idx = np.flatnonzero(eligible)
    if len(idx) < max(s.min_class_n, 2 * s.learned_folds):
        res.notes.append(f"only {len(idx)} learnable tasks with a prompt: nothing to learn")
        return res
    out = _outcomes(data, res.learn)
    y = (out.q_weak >= out.q_strong).astype(np.int64)
    feats = featurize([res.learn[i].text or "" for i in idx])
    classes = np.array([res.learn[i].task_class for i in idx])
    p = np.zeros(len(res.learn))
    p[idx] = cross_fit(feats, classes, y[idx], folds=s.learned_folds, seed=s.seed, c=s.learned_c)
    cost = _cost_section(data, loaded, res.learn, idx)
    saving = np.array([_saving(data, t, cost) for t in res.learn])
    scores = score_with_cost(p, saving, cost["scale_usd"] if cost else None)
    rng = np.random.default_rng(s.seed)
    weights = bootstrap_weights(len(res.learn), s.resamples, rng)
    cap = None
    if cost is not None:
        cap = ClassCap(np.array([t.task_class for t in res.learn]), saving / np.maximum(1.0 - p, 1e-9), s.class_limit,
                       dict(s.class_limits))
    res.curve = curve(out, scores, eligible, weights, cap)
    res.chosen = choose(res.curve, s.tolerance)
    res.train_n, res.positive_share = len(idx), float(y[idx].mean())
    if res.chosen is None:
        res.notes.append("no threshold keeps the lower 95 % bound of quality within the tolerance: stays strong")
        return res
    if cost is not None and res.chosen.caps:
        cost["class_weight"] = _class_weights(res.chosen, float(cost["scale_usd"]))
        res.notes.append(
            f"held to the per-class limit (at most {s.class_limit:.0%} of a class's quality lost, unless its own "
            "limit says otherwise): " + ", ".join(f"{k} ({s.limit_for(k):.0%})" for k in sorted(res.chosen.caps))
        )
    doc = fit_document(
        feats, classes, y[idx], c=s.learned_c, cost=cost,
        meta={"policy": data.policy, "strong": data.strong, "weak": data.weak, "label": label, "seed": s.seed,
              "classes": sorted({res.learn[i].task_class for i in idx})},
    )
    name = f"{_slug(data.policy)}.json"
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    (artifacts_dir / name).write_bytes(text)
    import hashlib

    res.change = LearnedChange(
        policy=data.policy, strong=data.strong, weak=data.weak, artifact=f"{artifacts_dir.name}/{name}",
        sha256=hashlib.sha256(text).hexdigest(), threshold=res.chosen.threshold,
        held=tuple(sorted(data.held)), classes=tuple(data.classes),
    )
    return res


def _cost_section(data: PolicyData, loaded: LoadedBundle, learn: list[Task], idx: np.ndarray) -> dict[str, Any] | None:
    """The artifact's cost model: per-token savings at the bundle's prices, typical output per class."""
    strong, weak = loaded.bundle.models[data.strong].cost, loaded.bundle.models[data.weak or data.strong].cost
    d_in = (strong.input_per_1m - weak.input_per_1m) / 1e6
    d_out = (strong.output_per_1m - weak.output_per_1m) / 1e6
    if d_in <= 0 and d_out <= 0:
        return None
    section: dict[str, Any] = {
        "input_saving_per_token": d_in,
        "output_saving_per_token": d_out,
        "chars_per_token": 4,
        "output_tokens": {k: round(v, 1) for k, v in sorted(data.typical_output.items())},
        "scale_usd": 0.0,
    }
    savings = [_saving(data, learn[i], section) for i in idx]
    section["scale_usd"] = float(statistics.median(savings)) if savings else 0.0
    return section if section["scale_usd"] > 0 else None


def _class_weights(point: CurvePoint, scale_usd: float) -> dict[str, float]:
    """Per capped class, the weight that puts exactly its admitted requests at or above the threshold.

    score >= t  <=>  w · saving / (1 - p) >= t · scale / (1 - t); the smallest admitted ratio r gives w = t·scale /
    ((1 - t) · r) (raised a hair so that request itself still clears it); a class with none admitted gets 0.
    """
    t = point.threshold
    out = {}
    for klass, ratio in sorted(point.caps.items()):
        if ratio == float("inf") or t >= 1.0:
            out[klass] = 0.0
        else:
            out[klass] = min(1.0, t * scale_usd / ((1.0 - t) * ratio) * (1 + 1e-9))
    return out


def _saving(data: PolicyData, t: Task, cost: dict[str, Any] | None) -> float:
    if cost is None:
        return 0.0
    tin, tout = data.tokens(t)
    return max(0.0, tin * float(cost["input_saving_per_token"]) + tout * float(cost["output_saving_per_token"]))


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-") or "policy"
