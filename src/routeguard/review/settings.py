"""The knobs of a review, in one immutable object (every default is here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ReviewSettings"]

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class ReviewSettings:
    """How strict a review is.

    ``tolerance`` is the share of baseline quality the traffic as a whole may lose (0.05: keep ≥ 95 %),
    judged on the lower 95 % bound of a paired bootstrap. ``per_class_limit`` caps the share one class
    may lose (point estimate); default 3 × tolerance. Moves are tried in order of savings per unit of
    expected loss, each class's difference shrunk toward the pooled difference of the classes sharing its
    model pair (empirical Bayes, at least ``shrink_min_classes`` of them); the replay then re-selects the
    moves on learn + replay evidence combined.
    """

    tolerance: float = 0.05
    per_class_limit: float | None = None
    seed: int = 0
    resamples: int = 1000  # bootstrap resamples (the gate and every interval)
    holdout: float = 0.5  # share of each class held back for verification by replay
    sample_per_class: int | None = None  # cap on the replay sample per affected class (None = all held-out)
    min_class_n: int = 10  # fewer learn tasks than this: no change for the class
    shrink_min_classes: int = 3  # fewest classes sharing a model pair to pool them (k - 1 >= 2 for tau²)
    alpha: float = 0.05  # significance for upgrades (McNemar / paired bootstrap)
    strong_alpha: float = 0.001  # the "much stronger evidence" needed inside the anti-flapping window
    quality_target: float | None = None  # absolute per-class quality target (None: (1 - tolerance) × best)
    flap_window_s: float = 7 * DAY_S
    expiry_window_s: float = 30 * DAY_S  # an approval ending this soon counts as a deprecation
    max_bad_share: float = 0.05  # share of bad input rows above which loading fails
    # --learned (CONTRACT §7): held-back replay share (by prompt hash), cross-fitting folds, inverse regularisation
    learned_holdout: float = 0.25
    learned_folds: int = 5
    learned_c: float = 3.0
    min_saving_share: float = 0.95  # smallest safe change: fewest moves reaching this share of the saving (1 = off)
    latency_bound: float = 0.2  # a proposed model slower (median) than the current one by more than this escalates
    # an owner's stricter (or looser) limit for named classes: ((task class, share), ...); others use class_limit
    class_limits: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 < self.tolerance < 1.0:
            raise ValueError(f"tolerance must be between 0 and 1, got {self.tolerance}")
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"holdout must be between 0 and 1, got {self.holdout}")
        if not 0.0 < self.learned_holdout < 1.0:
            raise ValueError(f"learned holdout must be between 0 and 1, got {self.learned_holdout}")
        if self.learned_folds < 2:
            raise ValueError(f"learned folds must be at least 2, got {self.learned_folds}")
        for name, share in self.class_limits:
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"class limit of {name} must be between 0 and 1, got {share}")
        if self.resamples < 50:
            raise ValueError(f"resamples must be at least 50, got {self.resamples}")

    @property
    def class_limit(self) -> float:
        return self.per_class_limit if self.per_class_limit is not None else 3.0 * self.tolerance

    def limit_for(self, task_class: str) -> float:
        """The per-class limit of ``task_class``: its own from ``class_limits``, else ``class_limit``."""
        return dict(self.class_limits).get(task_class, self.class_limit)

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["per_class_limit"] = self.class_limit
        out["class_limits"] = dict(self.class_limits)
        return out
