"""The per (policy, model) health state machine: its transition table and its rules.

Pure: no clock, no I/O. :class:`routeguard.core.health.HealthTracker` feeds it figures; the rules
below are applied by :func:`routeguard.core.health_rules.due_transition`.

Rules (thresholds from the policy's :class:`HealthConfig`):

* healthy/degraded/stale → **unhealthy**: ``consecutive_failures`` provider failures in a row (even
  below ``min_samples``), error rate ≥ ``error_rate`` or timeout rate ≥ ``timeout_rate`` over the
  window with ≥ ``min_samples`` judged outcomes, or an external ``down`` signal.
* otherwise → **stale** when the model's external signal expired (its ttl, else ``stale_after_s``).
* otherwise → **degraded**: error rate ≥ ``degraded_error_rate`` or p95 ≥ ``p95_latency_s`` (when set)
  with ≥ ``min_samples``, or an external ``degraded`` signal.
* **Hysteresis**: a degraded model leaves only when every figure is below ``HEALTH_HYSTERESIS`` ×
  its degraded threshold.
* **Recovery by evidence, not silence**: a pair degraded on its figures remembers which of them
  (:class:`Proof`: error rate, p95) stood at or above half their threshold, judged on ≥
  ``min_samples``, during the episode, and leaves only when the window again holds ≥ ``min_samples``
  samples of them (judged outcomes; latency samples for p95) — the bar that put it there — with every
  figure below half its threshold. A model that lost its traffic (the route moved away) therefore
  stays degraded as its window empties (no new edge: degraded → degraded). While the window lacks
  that evidence the pair admits probes, ``max_probes_in_flight`` at a time (as a half-open breaker),
  so about ``min_samples`` per window. A probe is an ordinary outcome in the window: a failed or slow
  one holds the pair degraded through the figures themselves. Not ``probes`` successes: three samples
  cannot measure a p95 or a 5 % error rate. A pair degraded only by an external ``degraded`` signal
  owes no figures: it leaves when the signal does. A **stale** pair admits no probes: it leaves only
  on a new signal.
* unhealthy → **probing** once its cooldown is over and no ``down`` signal holds it. Cooldown is
  ``cooldown_s × 2^(ejections-1)`` capped at ``cooldown_max_s``; an ejection by a ``down`` signal has
  no cooldown and is not counted (the signal decides: ``up``, or its expiry, starts probing).
* probing → **healthy** (or degraded/stale, per signal) after ``probes`` successful probes in a row;
  a failed probe (a provider-side failure) → unhealthy with the next, longer cooldown. After it
  closes, the policy judges only outcomes recorded since (the window's older failures are not held
  against it again) until a full window has passed.
* **Decay**: the ejection count halves for every ``cooldown_max_s`` spent healthy.
* **Minimum dwell**: no pair changes state within ``min_dwell_s`` of its previous change — no
  exception. A change that falls due sooner is held and made at the first look after the dwell, if
  still due. While a failed probe's reopening is held, no further probe is admitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Flag, StrEnum, auto
from typing import NamedTuple

from routeguard.core.health_view import HealthState, ModelHealth
from routeguard.core.model import HealthConfig

__all__ = [
    "TRANSITIONS",
    "ExternalSignal",
    "Figures",
    "HealthTransition",
    "IllegalHealthTransition",
    "PairState",
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


class SignalStatus(StrEnum):
    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class ExternalSignal:
    """The latest external signal for a model (a newer one replaces it, whatever its source)."""

    status: SignalStatus
    at: float
    ttl_s: float | None
    source: str

    def expires_at(self, stale_after_s: float) -> float:
        return self.at + (self.ttl_s if self.ttl_s is not None else stale_after_s)


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


@dataclass(slots=True)
class _Baseline:
    at: float
    judged: int
    failures: int
    timeouts: int


@dataclass(slots=True)
class PairState:
    """Mutable state of one (policy, model) pair."""

    state: HealthState = HealthState.HEALTHY
    since: float = -math.inf
    detail: str = ""
    config: HealthConfig | None = None  # the thresholds it was last judged with
    ejections: int = 0
    decay_anchor: float = -math.inf
    cooldown_until: float = -math.inf
    signal_ejected: bool = False
    probe_successes: int = 0
    probes_in_flight: list[float] = field(default_factory=list)  # start times
    probe_failure: str | None = None  # a failed probe's reopening, held by the dwell
    baseline: _Baseline | None = None
    # The last ModelHealth handed out and what it was built from: reused while nothing changed.
    view: ModelHealth | None = None
    view_key: tuple[object, ...] = ()
    trouble_since: float | None = None  # when the pair last left HEALTHY (the episode a fallback's `after` waits on)
    proof: Proof = Proof.NONE  # DEGRADED: the figures that held it there this episode
    unproven: bool = False  # DEGRADED: the window lacks the evidence to judge them: probes are admitted

    def move(
        self, to: HealthState, now: float, detail: str, config: HealthConfig, *, by_signal: bool
    ) -> None:
        """Take the edge to ``to``; IllegalHealthTransition when it is not in the table."""
        if to not in TRANSITIONS[self.state]:
            raise IllegalHealthTransition(f"{self.state.value} -> {to.value} is not a health transition")
        leaving = self.state
        self.state, self.since, self.detail = to, now, detail
        if to is HealthState.HEALTHY:
            self.trouble_since = None
        elif self.trouble_since is None:
            self.trouble_since = now
        if to is _U:
            self._eject(now, config, by_signal=by_signal)
        elif to is _P:
            self.probe_successes, self.probe_failure = 0, None
            self.probes_in_flight.clear()
        if to is _H:
            self.decay_anchor = now
        if leaving in (_P, _D):
            self.probes_in_flight.clear()
        if leaving is _D or to is _D:
            self.proof, self.unproven = Proof.NONE, False

    def _eject(self, now: float, config: HealthConfig, *, by_signal: bool) -> None:
        self.signal_ejected = by_signal
        self.baseline = None
        if by_signal:
            self.cooldown_until = now
            return
        self.ejections += 1
        exponent = min(self.ejections - 1, 62)
        self.cooldown_until = now + min(config.cooldown_s * 2.0**exponent, config.cooldown_max_s)

    def close_baseline(self, now: float, judged: int, failures: int, timeouts: int) -> None:
        """From now on (for one window) judge only outcomes after this point."""
        self.baseline = _Baseline(now, judged, failures, timeouts)

    def decay(self, now: float, period_s: float) -> None:
        """Halve the ejection count per ``period_s`` spent healthy."""
        if self.state is not _H or self.ejections == 0 or period_s <= 0:
            return
        periods = int((now - self.decay_anchor) // period_s)
        if periods > 0:
            self.ejections = self.ejections >> periods if periods < 63 else 0
            self.decay_anchor += periods * period_s

    def expire_probes(self, now: float, probe_timeout_s: float) -> None:
        """Free the slots of probes whose outcome never came."""
        in_flight = self.probes_in_flight
        while in_flight and now - in_flight[0] >= probe_timeout_s:
            in_flight.pop(0)

    def probe_admitted(self, max_in_flight: int) -> bool:
        """PROBING (unless a failed probe's reopening is held) or DEGRADED without evidence; a slot free."""
        if len(self.probes_in_flight) >= max_in_flight:
            return False
        return self.probe_failure is None if self.state is _P else self.state is _D and self.unproven

    def probe_result(self, succeeded: bool | None, error: str) -> None:
        """A probe ended: True = success, False = provider failure, None = says nothing (client error).

        A degraded pair's probe only frees its slot: its outcome is judged with the window's figures.
        """
        if self.probes_in_flight:
            self.probes_in_flight.pop(0)
        if self.state is not _P:
            return
        if succeeded is True:
            self.probe_successes += 1
        elif succeeded is False and self.probe_failure is None:
            self.probe_failure = f"probe failed: {error}"

