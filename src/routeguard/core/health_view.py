"""The read-only health protocol the engine decides with, and a static implementation.

The live tracker (:mod:`routeguard.core.health`) implements the same protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from routeguard.core.model import HealthConfig

__all__ = ["HEALTHY", "HealthState", "HealthView", "ModelHealth", "StaticHealth"]


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    PROBING = "probing"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class ModelHealth:
    """A model's health as judged under one policy's thresholds, at one instant."""

    state: HealthState
    since: float = float("-inf")  # when the state began (epoch seconds)
    detail: str = ""  # the figures that put it there, e.g. "error_rate 0.62 > 0.50 over 60s"
    p95_latency_s: float | None = None  # observed over the window, None without samples
    probe_admitted: bool = False  # PROBING: a permit of the probe budget is free right now
    requests_last_min: int = 0  # for rpm quotas
    tokens_last_min: int = 0  # for tpm quotas
    cooldown_left_s: float | None = None  # UNHEALTHY: time until probing starts
    trouble_since: float | None = None  # when the model last left healthy (None while healthy)
    by_quality: bool = False  # DEGRADED on its quality figure (rejection reason `quality`)
    probes_left: int | None = None  # PROBING: permits left in this probing period

    @property
    def failing_since(self) -> float:
        """Start of the current episode of trouble, for a fallback's ``after``."""
        return self.trouble_since if self.trouble_since is not None else self.since


HEALTHY = ModelHealth(HealthState.HEALTHY)
_ANY_CONFIG = HealthConfig()


class HealthView(Protocol):
    """What the engine may ask about health. Implementations must not block."""

    def model_health(self, policy: str, config: HealthConfig, model: str, now: float) -> ModelHealth:
        """The state of ``model`` judged with ``policy``'s ``config`` at time ``now``."""
        ...

    def peek_state(self, policy: str, model: str) -> HealthState:
        """The last judged state, without judging again (cheap; used for the informational backups list)."""
        ...

    def total_judged(self, model: str) -> int:
        """Judged outcomes of ``model`` so far (never ages): the evidence a canary step needs."""
        ...


class StaticHealth:
    """A fixed health picture: ``{model: state}`` or ``{(policy, model): ModelHealth}``."""

    __slots__ = ("_by_model", "_by_pair")

    def __init__(
        self,
        by_model: Mapping[str, HealthState | ModelHealth] | None = None,
        by_pair: Mapping[tuple[str, str], ModelHealth] | None = None,
    ) -> None:
        self._by_model: dict[str, ModelHealth] = {
            m: (h if isinstance(h, ModelHealth) else ModelHealth(h)) for m, h in (by_model or {}).items()
        }
        self._by_pair: dict[tuple[str, str], ModelHealth] = dict(by_pair or {})

    def model_health(self, policy: str, config: HealthConfig, model: str, now: float) -> ModelHealth:
        found = self._by_pair.get((policy, model))
        if found is not None:
            return found
        return self._by_model.get(model, HEALTHY)

    def peek_state(self, policy: str, model: str) -> HealthState:
        return self.model_health(policy, _ANY_CONFIG, model, 0.0).state

    def total_judged(self, model: str) -> int:
        return 0
