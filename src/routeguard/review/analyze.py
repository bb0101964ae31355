"""Evaluation records into a task × model matrix, the held-out split, and per class × model figures."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from routeguard.core.model import Cost
from routeguard.review.load import Record
from routeguard.review.stats import FloatArray, IntArray, Interval, mean_interval, percentile

__all__ = [
    "ClassModelStats",
    "EvalMatrix",
    "build_matrix",
    "describe",
    "split_tasks",
    "telemetry_summary",
]

NOMINAL_TOKENS = (1000.0, 200.0)  # input, output: used only when neither cost nor tokens are known


@dataclass(frozen=True, slots=True)
class EvalMatrix:
    """Evaluations as arrays: one row per task, one column per model (NaN where not evaluated)."""

    task_ids: tuple[str, ...]
    classes: tuple[str, ...]  # class names, sorted
    task_class: IntArray  # index into ``classes`` per task
    models: tuple[str, ...]
    quality: FloatArray  # tasks × models
    cost: FloatArray  # tasks × models, USD per task
    latency: FloatArray  # tasks × models, ms (NaN when unknown)
    data_class: tuple[str | None, ...]  # the most sensitive data class seen per class (None = not given)
    cost_source: Mapping[str, str]  # model -> "measured" | "tokens x bundle price" | "nominal tokens x price"

    def class_tasks(self, c: int, subset: IntArray | None = None) -> IntArray:
        idx = np.flatnonzero(self.task_class == c)
        if subset is not None:
            idx = np.intersect1d(idx, subset)
        return idx.astype(np.int64)

    def model_index(self, name: str) -> int:
        return self.models.index(name)


def _cost_of(rec: Record, price: Cost | None, mean_tokens: tuple[float, float] | None) -> tuple[float, str]:
    if rec.cost_usd is not None:
        return rec.cost_usd, "measured"
    if price is None:
        return math.nan, "unknown (model not in bundle)"
    if rec.input_tokens is not None or rec.output_tokens is not None:
        return price.estimate_usd(
            int(rec.input_tokens or 0), int(rec.output_tokens or 0)
        ), "tokens x bundle price"
    tokens = mean_tokens or NOMINAL_TOKENS
    source = "class mean tokens x bundle price" if mean_tokens else "nominal 1000/200 tokens x bundle price"
    return price.estimate_usd(int(tokens[0]), int(tokens[1])), source


def build_matrix(
    records: Sequence[Record], prices: Mapping[str, Cost], data_class_rank: Mapping[str, int]
) -> EvalMatrix:
    """Pivot long-form ``records`` (every record must carry a task class) into an :class:`EvalMatrix`."""
    task_pos: dict[str, int] = {}
    task_cls: list[str] = []
    for rec in records:
        if rec.task_id not in task_pos:
            task_pos[rec.task_id] = len(task_pos)
            task_cls.append(rec.task_class or "")
    classes = tuple(sorted(set(task_cls)))
    cls_pos = {c: i for i, c in enumerate(classes)}
    models = tuple(sorted({r.model for r in records}))
    mpos = {m: i for i, m in enumerate(models)}
    shape = (len(task_pos), len(models))
    quality, cost, latency = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    tokens: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for rec in records:
        if rec.input_tokens is not None or rec.output_tokens is not None:
            tokens[rec.task_class or ""].append((rec.input_tokens or 0.0, rec.output_tokens or 0.0))
    mean_tokens = {
        c: (float(np.mean([t[0] for t in v])), float(np.mean([t[1] for t in v]))) for c, v in tokens.items()
    }
    sources: dict[str, set[str]] = defaultdict(set)
    worst: dict[str, str] = {}
    for rec in records:
        t, m = task_pos[rec.task_id], mpos[rec.model]
        quality[t, m] = rec.quality
        cost[t, m], source = _cost_of(rec, prices.get(rec.model), mean_tokens.get(rec.task_class or ""))
        sources[rec.model].add(source)
        if rec.latency_ms is not None:
            latency[t, m] = rec.latency_ms
        klass = task_cls[t]
        if rec.data_class is not None and data_class_rank.get(rec.data_class, -1) > data_class_rank.get(
            worst.get(klass, ""), -1
        ):
            worst[klass] = rec.data_class
    return EvalMatrix(
        task_ids=tuple(task_pos),
        classes=classes,
        task_class=np.array([cls_pos[c] for c in task_cls], dtype=np.int64),
        models=models,
        quality=quality,
        cost=cost,
        latency=latency,
        data_class=tuple(worst.get(c) for c in classes),
        cost_source={m: ", ".join(sorted(s)) for m, s in sources.items()},
    )


def split_tasks(matrix: EvalMatrix, holdout: float, seed: int) -> tuple[IntArray, IntArray]:
    """A stratified split (learn, held-out) of task indices: ``holdout`` of each class is held back.

    Deterministic for a seed and independent of file order (tasks are sorted by id before shuffling).
    """
    rng = np.random.default_rng(seed)
    learn: list[int] = []
    held: list[int] = []
    ids = np.array(matrix.task_ids, dtype=object)
    for c in range(len(matrix.classes)):
        idx = matrix.class_tasks(c)
        idx = idx[np.argsort(ids[idx], kind="stable")]
        idx = idx[rng.permutation(idx.size)]
        n_held = round(idx.size * holdout)
        held.extend(idx[:n_held].tolist())
        learn.extend(idx[n_held:].tolist())
    return np.array(sorted(learn), dtype=np.int64), np.array(sorted(held), dtype=np.int64)


@dataclass(frozen=True, slots=True)
class ClassModelStats:
    """Per task class × model: n, quality with its 95 % interval, latency p50/p95 and cost per task."""

    task_class: str
    model: str
    n: int
    quality: Interval
    latency_p50_ms: float
    latency_p95_ms: float
    cost_per_task_usd: float

    def to_dict(self) -> dict[str, object]:
        def r(x: float, nd: int = 3) -> float | None:
            return None if math.isnan(x) else round(x, nd)

        return {
            "task_class": self.task_class,
            "model": self.model,
            "n": self.n,
            "quality": self.quality.to_dict(),
            "latency_p50_ms": r(self.latency_p50_ms, 1),
            "latency_p95_ms": r(self.latency_p95_ms, 1),
            "cost_per_task_usd": r(self.cost_per_task_usd, 8),
        }


def _stats(
    klass: str,
    model: str,
    q: FloatArray,
    lat: FloatArray,
    cost: FloatArray,
    rng: np.random.Generator,
    resamples: int,
) -> ClassModelStats:
    present = ~np.isnan(q)
    c = cost[present & ~np.isnan(cost)]
    return ClassModelStats(
        task_class=klass,
        model=model,
        n=int(present.sum()),
        quality=mean_interval(q[present], rng, resamples),
        latency_p50_ms=percentile(lat[present], 50),
        latency_p95_ms=percentile(lat[present], 95),
        cost_per_task_usd=float(c.mean()) if c.size else math.nan,
    )


def describe(
    matrix: EvalMatrix, subset: IntArray | None, rng: np.random.Generator, resamples: int
) -> list[ClassModelStats]:
    """Figures for every class × model with at least one evaluation in ``subset`` (None = all tasks)."""
    out: list[ClassModelStats] = []
    for c, klass in enumerate(matrix.classes):
        idx = matrix.class_tasks(c, subset)
        for m, model in enumerate(matrix.models):
            q = matrix.quality[idx, m]
            if np.isnan(q).all():
                continue
            out.append(_stats(klass, model, q, matrix.latency[idx, m], matrix.cost[idx, m], rng, resamples))
    return out


def telemetry_summary(
    records: Sequence[Record], rng: np.random.Generator, resamples: int
) -> tuple[dict[str, int], list[ClassModelStats]]:
    """Production volume per class and what actually happened per class × model."""
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    volume: dict[str, int] = defaultdict(int)
    for rec in records:
        klass = rec.task_class or ""
        groups[(klass, rec.model)].append(rec)
        volume[klass] += 1
    out = []
    for (klass, model), recs in sorted(groups.items()):
        q = np.array([r.quality for r in recs], dtype=np.float64)
        lat = np.array([np.nan if r.latency_ms is None else r.latency_ms for r in recs], dtype=np.float64)
        cost = np.array([np.nan if r.cost_usd is None else r.cost_usd for r in recs], dtype=np.float64)
        out.append(_stats(klass, model, q, lat, cost, rng, resamples))
    return dict(volume), out
