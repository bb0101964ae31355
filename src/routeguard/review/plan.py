"""What a review proposes, per class and overall, and the per-class evidence it rests on."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from statistics import NormalDist

import numpy as np

from routeguard.review.analyze import EvalMatrix
from routeguard.review.candidates import ClassContext
from routeguard.review.stats import FloatArray, IntArray, Paired, bootstrap_class_means

__all__ = [
    "ClassData",
    "ClassPlan",
    "Escalation",
    "Plan",
    "Status",
    "class_data",
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
    """Figures of one class on the evidence in use (learn, or learn + replay): tasks where the current model
    was evaluated."""

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
    paired: dict[str, Paired] = field(default_factory=dict)  # each candidate vs the current model
    alternatives: list[str] = field(default_factory=list)  # upgrades: fallbacks for a failed replay
    over_served: bool = False
    evidence: str = "learn"  # what ``paired`` and the decision rest on: "learn" or "learn + replay"
    n_evidence: int = 0
    learn_paired: dict[str, Paired] | None = None  # ``paired`` on the learn split, once re-selected
    shrunk: dict[str, float] = field(default_factory=dict)  # candidate -> shrunk quality difference
    rejected: set[str] = field(default_factory=set)  # cheaper models that failed their replay
    base_reasons: int = -1  # reasons recorded before the selection of cheaper moves

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
    adjusted: tuple[tuple[float, float], float] | None = None  # the same on learn + replay, once adjusted


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
