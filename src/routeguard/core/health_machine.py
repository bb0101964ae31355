"""The per (policy, model) health state machine: its transition table and its rules.

Pure: no clock, no I/O. :class:`routeguard.core.health.HealthTracker` feeds it figures.

Rules (thresholds from the policy's :class:`HealthConfig`):

* healthy/degraded/stale → **unhealthy**: ``consecutive_failures`` provider failures in a row (even
  below ``min_samples``), error rate ≥ ``error_rate`` or timeout rate ≥ ``timeout_rate`` over the
  window with ≥ ``min_samples`` judged outcomes, or an external ``down`` signal.
* otherwise → **stale** when the model's external signal expired (its ttl, else ``stale_after_s``).
* otherwise → **degraded**: error rate ≥ ``degraded_error_rate`` or p95 ≥ ``p95_latency_s`` (when set)
  with ≥ ``min_samples``, or an external ``degraded`` signal.
* **Hysteresis**: a degraded model leaves only when every figure is below ``HEALTH_HYSTERESIS`` ×
  its degraded threshold, or the window holds fewer than ``min_samples`` (no evidence: a model with
  no outcomes is healthy).
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
from enum import StrEnum
from typing import NamedTuple

from routeguard.core import defaults as D
from routeguard.core.health_view import HealthState, ModelHealth
from routeguard.core.model import HealthConfig

__all__ = [
    "TRANSITIONS",
    "ExternalSignal",
    "Figures",
    "HealthTransition",
    "IllegalHealthTransition",
    "PairState",
    "SignalStatus",
    "due_transition",
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
        if leaving is _P:
            self.probes_in_flight.clear()

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
        return self.state is _P and self.probe_failure is None and len(self.probes_in_flight) < max_in_flight

    def probe_result(self, succeeded: bool | None, error: str) -> None:
        """A probe ended: True = success, False = provider failure, None = says nothing (client error)."""
        if self.probes_in_flight:
            self.probes_in_flight.pop(0)
        if succeeded is True:
            self.probe_successes += 1
        elif succeeded is False and self.probe_failure is None:
            self.probe_failure = f"probe failed: {error}"


def _secs(value: float) -> str:
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.1f}s"


def _over(fig: Figures) -> str:
    return f"over {fig.window_s:g}s ({fig.judged} samples)"


def _quiet(cfg: HealthConfig, fig: Figures) -> bool:
    """No figure reaches a degraded or unhealthy threshold (the common case, checked cheaply)."""
    if fig.streak >= cfg.consecutive_failures:
        return False
    if fig.judged and fig.judged >= cfg.min_samples:
        rate = fig.failures / fig.judged
        if rate >= cfg.degraded_error_rate or rate >= cfg.error_rate:
            return False
        if fig.timeouts / fig.judged >= cfg.timeout_rate:
            return False
    threshold = cfg.p95_latency_s
    return (
        threshold is None
        or fig.p95_latency_s is None
        or fig.latency_samples < cfg.min_samples
        or fig.p95_latency_s < threshold
    )


def _unhealthy_reasons(cfg: HealthConfig, fig: Figures) -> list[str]:
    reasons: list[str] = []
    if fig.streak >= cfg.consecutive_failures:
        reasons.append(f"{fig.streak} consecutive failures")
    if fig.judged and fig.judged >= cfg.min_samples:
        rate = fig.failures / fig.judged
        if rate >= cfg.error_rate:
            reasons.append(f"error_rate {rate:.2f} >= {cfg.error_rate:.2f} {_over(fig)}")
        timeouts = fig.timeouts / fig.judged
        if timeouts >= cfg.timeout_rate:
            reasons.append(f"timeout_rate {timeouts:.2f} >= {cfg.timeout_rate:.2f} {_over(fig)}")
    return reasons


def _degraded_reasons(cfg: HealthConfig, fig: Figures, factor: float) -> list[str]:
    reasons: list[str] = []
    if fig.judged and fig.judged >= cfg.min_samples:
        rate, threshold = fig.failures / fig.judged, cfg.degraded_error_rate * factor
        if rate >= threshold:
            reasons.append(f"error_rate {rate:.2f} >= {threshold:.2f} {_over(fig)}")
    p95, threshold_s = fig.p95_latency_s, cfg.p95_latency_s
    if threshold_s is None or p95 is None or fig.latency_samples < cfg.min_samples:
        return reasons
    if p95 >= threshold_s * factor:
        reasons.append(
            f"p95 {_secs(p95)} >= {_secs(threshold_s * factor)} over {fig.window_s:g}s"
            f" ({fig.latency_samples} samples)"
        )
    return reasons


def _signal_text(signal: ExternalSignal) -> str:
    return f"external signal {signal.status.value} from {signal.source}"


def due_transition(
    pair: PairState, cfg: HealthConfig, fig: Figures, signal: ExternalSignal | None, now: float
) -> tuple[HealthState, str, bool] | None:
    """The change the rules call for now, dwell aside: ``(to_state, detail, by_signal)`` or None."""
    state = pair.state
    expired = down = False
    if signal is not None:
        expired = now >= signal.expires_at(cfg.stale_after_s)
        down = not expired and signal.status is SignalStatus.DOWN
    if (
        state is _H
        and not expired
        and (signal is None or signal.status is SignalStatus.UP)
        and _quiet(cfg, fig)
    ):
        return None
    if state is _U:
        if down or now < pair.cooldown_until:
            return None
        if pair.signal_ejected:
            return _P, "external signal no longer down; probing", False
        return _P, f"cooldown {_secs(pair.cooldown_until - pair.since)} over; probing", False
    if state is _P:
        if down and signal is not None:
            return _U, _signal_text(signal), True
        if pair.probe_failure is not None:
            return _U, pair.probe_failure, False
        if pair.probe_successes < cfg.probes:
            return None
        # The outcomes that opened the breaker are not held against it again (see the baseline).
        fresh = Figures(fig.window_s, 0, 0, 0, 0, fig.p95_latency_s, fig.latency_samples)
        to, detail = _rest_state(_H, cfg, fresh, signal, expired, now)
        return to, f"{pair.probe_successes} probes succeeded" + (f"; {detail}" if detail else ""), False
    reasons = _unhealthy_reasons(cfg, fig)
    if down and signal is not None:
        return _U, "; ".join([*reasons, _signal_text(signal)]), not reasons
    if reasons:
        return _U, "; ".join(reasons), False
    to, detail = _rest_state(state, cfg, fig, signal, expired, now)
    return None if to is state else (to, detail, False)


def _rest_state(
    current: HealthState,
    cfg: HealthConfig,
    fig: Figures,
    signal: ExternalSignal | None,
    expired: bool,
    now: float,
) -> tuple[HealthState, str]:
    """Healthy, degraded or stale — the state of a model that is not ejected."""
    if expired and signal is not None:
        ago = now - signal.expires_at(cfg.stale_after_s)
        return _S, f"signal {signal.status.value} from {signal.source} expired {ago:.0f}s ago"
    factor = D.HEALTH_HYSTERESIS if current is _D else 1.0
    reasons = _degraded_reasons(cfg, fig, factor)
    if signal is not None and signal.status is SignalStatus.DEGRADED:
        reasons.append(_signal_text(signal))
    if reasons:
        return _D, "; ".join(reasons)
    if current is _D:
        if fig.judged < cfg.min_samples:
            return _H, f"fewer than {cfg.min_samples} samples over {fig.window_s:g}s"
        below = [f"error_rate {fig.failures / fig.judged:.3f} < {cfg.degraded_error_rate * factor:.3f}"]
        if cfg.p95_latency_s is not None and fig.p95_latency_s is not None:
            below.append(f"p95 {_secs(fig.p95_latency_s)} < {_secs(cfg.p95_latency_s * factor)}")
        return _H, f"{', '.join(below)} {_over(fig)}"
    if current is _S and signal is not None:
        return _H, f"{_signal_text(signal)} renewed"
    return _H, ""
