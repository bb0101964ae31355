"""The vocabulary of the health machine: states' transition table, figures, signals, transitions.

The machine itself is :func:`routeguard.core.breaker.step` (one handler per state, immutable state);
the figure judgments are :mod:`routeguard.core.health_rules`. Pure: no clock, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Flag, StrEnum, auto
from typing import NamedTuple

from routeguard.core.health_view import HealthState

__all__ = [
    "TRANSITIONS",
    "ExternalSignal",
    "Figures",
    "HealthTransition",
    "IllegalHealthTransition",
    "Proof",
    "SignalStatus",
]

_H, _D, _U, _P, _S = (
    HealthState.HEALTHY,
    HealthState.DEGRADED,
    HealthState.UNHEALTHY,
    HealthState.PROBING,
    HealthState.STALE,
)

TRANSITIONS: dict[HealthState, frozenset[HealthState]] = {
    _H: frozenset({_D, _U, _S}),
    _D: frozenset({_H, _U, _S}),
    _S: frozenset({_H, _D, _U}),
    _U: frozenset({_P}),
    _P: frozenset({_H, _D, _S, _U}),
}


class IllegalHealthTransition(ValueError):
    """An edge that is not in :data:`TRANSITIONS`."""


class Proof(Flag):
    """The figures that held a pair degraded: what it must show again, on ``min_samples``, to leave."""

    NONE = 0
    ERROR_RATE = auto()  # judged outcomes
    P95 = auto()  # latency samples
    QUALITY = auto()  # scored outcomes


class SignalStatus(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class ExternalSignal:
    """One source's latest signal for a model; per model, the worst unexpired signal of any source wins."""

    status: SignalStatus
    at: float
    ttl_s: float | None
    source: str

    def expires_at(self, stale_after_s: float) -> float:
        return self.at + (self.ttl_s if self.ttl_s is not None else stale_after_s)

    @property
    def severity(self) -> int:
        return _SEVERITY[self.status]


_SEVERITY = {SignalStatus.UP: 0, SignalStatus.DEGRADED: 1, SignalStatus.DOWN: 2}


@dataclass(frozen=True, slots=True)
class HealthTransition:
    """A (policy, model) pair changed health state at ``at``."""

    policy: str
    model: str
    from_state: HealthState
    to_state: HealthState
    at: float
    detail: str


class Figures(NamedTuple):
    """What one policy sees of a model at one instant (a tuple: cheap to build per look)."""

    window_s: float
    judged: int
    failures: int
    timeouts: int
    streak: int
    p95_latency_s: float | None
    latency_samples: int
    quality_n: int = 0
    quality_mean: float | None = None
