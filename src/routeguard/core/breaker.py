"""The breaker of one (policy, model) pair as one pure step function (resilience4j's shape).

``step(breaker, signal, now, cfg) -> (breaker, transition | None)``: the state is an immutable
:class:`Breaker`, a signal is one of :class:`Look` (judge the figures), :class:`ProbeTaken`,
:class:`ProbeEnded`, :class:`CheckEnded` (an active health check) or :class:`Override` (an operator's
``up`` with ``override: true``), and there is one handler per state. Every edge is checked against
:data:`TRANSITIONS`. No clock, no I/O: the caller passes ``now`` and the figures.

Rules (CONTRACT §1 "Ejection, probing and recovery"):

* any state but unhealthy/probing → **unhealthy** on ``consecutive_failures`` provider failures in a row,
  error or timeout rate past its threshold on ≥ ``min_samples``, or a ``down`` signal — at once (no dwell);
* **unhealthy** for its cooldown: ``cooldown_s × 2^(ejections-1)`` capped at ``cooldown_max_s``; an ejection
  by a ``down`` signal has no cooldown of its own (the signal decides). An override or a successful active
  check ends the cooldown at once; a failed check extends it;
* **probing**: a budget of ``probes`` permits per probing period, ``max_probes_in_flight`` at a time. Any
  success of the model counts (traced or not, a successful check too); ``probes`` successes → healthy
  (or degraded/stale as the figures and signal say), at once. One provider failure re-ejects with the next,
  longer cooldown; a permit whose outcome has not come within ``probe_timeout_s`` re-ejects without growing it;
* **healthy ↔ degraded** is damped by ``min_dwell_s`` (the only edge it damps) and by hysteresis: a degraded
  pair leaves only when every figure that held it is judged again on ``min_samples`` and lies below half its
  threshold (silence is not evidence); while the window lacks that evidence it admits probes;
* **stale** when an external signal expired without renewal (treated as degraded by the engine);
* the ejection count halves for every ``cooldown_max_s`` spent healthy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple

from routeguard.core.health_machine import (
    TRANSITIONS,
    ExternalSignal,
    Figures,
    IllegalHealthTransition,
    Proof,
    SignalStatus,
)
from routeguard.core.health_rules import (
    degraded_proof,
    proven,
    quiet,
    rest_state,
    secs,
    signal_text,
    unhealthy_reasons,
)
from routeguard.core.health_view import HealthState
from routeguard.core.model import HealthConfig

__all__ = [
    "Baseline",
    "Breaker",
    "CheckEnded",
    "Look",
    "Override",
    "ProbeEnded",
    "ProbeTaken",
    "Signal",
    "Step",
    "cooldown_for",
    "probe_admitted",
    "step",
]

_H, _D, _U, _P, _S = (
    HealthState.HEALTHY,
    HealthState.DEGRADED,
    HealthState.UNHEALTHY,
    HealthState.PROBING,
    HealthState.STALE,
)
_NEG_INF = -math.inf


class Baseline(NamedTuple):
    """The window's never-aging totals when a probing period closed: judge only what came after."""

    at: float
    judged: int
    failures: int
    timeouts: int


@dataclass(frozen=True, slots=True)
class Breaker:
    """The immutable state of one (policy, model) pair."""

    state: HealthState = _H
    since: float = _NEG_INF
    detail: str = ""
    ejections: int = 0
    decay_anchor: float = _NEG_INF
    cooldown_until: float = _NEG_INF
    signal_ejected: bool = False
    permits: int = 0  # PROBING: permits handed out this probing period (the budget used)
    successes: int = 0  # PROBING: successes this period (probes and checks)
    in_flight: tuple[float, ...] = ()  # start times of permits whose outcome has not come
    failure: str | None = None  # PROBING: a failed probe, re-ejects at the next look
    grow: bool = True  # whether that re-ejection grows the cooldown (not for a probe that timed out)
    trouble_since: float | None = None  # when the pair last left HEALTHY
    proof: Proof = Proof.NONE  # DEGRADED: the figures that held it there this episode
    unproven: bool = False  # DEGRADED: the window lacks the evidence to judge them: probes admitted
    baseline: Baseline | None = None
    quality: bool = False  # DEGRADED on the quality figure


@dataclass(frozen=True, slots=True)
class Look:
    """Judge the pair on the figures and the effective external signal."""

    figures: Figures
    signal: ExternalSignal | None
    totals: tuple[int, int, int] = (0, 0, 0)  # the window's never-aging judged, failures, timeouts


@dataclass(frozen=True, slots=True)
class ProbeTaken:
    """A decision took a probe permit."""


@dataclass(frozen=True, slots=True)
class ProbeEnded:
    """An outcome of the model arrived: True success, False provider failure, None says nothing."""

    succeeded: bool | None
    error: str = "failure"


@dataclass(frozen=True, slots=True)
class CheckEnded:
    """An active health check ended."""

    ok: bool
    error: str = "failure"
    interval_s: float = 15.0


@dataclass(frozen=True, slots=True)
class Override:
    """An operator's external ``up`` with ``override: true``: end the cooldown now."""

    source: str = "operator"


Signal = Look | ProbeTaken | ProbeEnded | CheckEnded | Override


class Step(NamedTuple):
    breaker: Breaker
    moved: tuple[HealthState, HealthState, str] | None  # (from, to, detail) when the state changed


def cooldown_for(ejections: int, cfg: HealthConfig) -> float:
    exponent = min(max(ejections, 1) - 1, 62)
    return float(min(cfg.cooldown_s * 2.0**exponent, cfg.cooldown_max_s))


def probe_admitted(b: Breaker, cfg: HealthConfig, now: float) -> bool:
    """A decision may take a permit now (PROBING within budget and in-flight limit, or DEGRADED unproven)."""
    in_flight = sum(1 for t in b.in_flight if now - t < cfg.probe_timeout_s)
    if in_flight >= cfg.max_probes_in_flight:
        return False
    if b.state is _P:
        return b.failure is None and b.permits < cfg.probes and b.successes < cfg.probes
    return b.state is _D and b.unproven


def step(b: Breaker, signal: Signal, now: float, cfg: HealthConfig) -> Step:
    """The pair's next state for one signal."""
    if isinstance(signal, Look):
        return _LOOK[b.state](b, signal, now, cfg)
    if isinstance(signal, ProbeTaken):
        return Step(replace(b, permits=b.permits + (b.state is _P), in_flight=(*b.in_flight, now)), None)
    if isinstance(signal, ProbeEnded):
        return Step(_probe_ended(b, signal), None)
    if isinstance(signal, CheckEnded):
        return _check_ended(b, signal, now, cfg)
    if b.state is _U:  # Override
        return _move(replace(b, signal_ejected=False), _P, now, f"cooldown ended by {signal.source} override", cfg)
    return Step(b, None)


# ----------------------------------------------------------------- handlers, one per state
def _look_healthy(b: Breaker, look: Look, now: float, cfg: HealthConfig) -> Step:
    if b.ejections:
        b = _decay(b, now, cfg.cooldown_max_s)
    s = look.signal
    if (s is None or (s.status is SignalStatus.UP and now < s.expires_at(cfg.stale_after_s))) and quiet(
        cfg, look.figures
    ):
        return Step(b, None)  # the common case, checked cheaply
    ejected = _ejection(b, look, now, cfg)
    if ejected is not None:
        return ejected
    to, detail, quality = rest_state(_H, cfg, look.figures, look.signal, now)
    if to is _H or (to is _D and now - b.since < cfg.min_dwell_s):
        return Step(b, None)
    return _move(replace(b, quality=quality), to, now, detail, cfg, look)


def _look_degraded(b: Breaker, look: Look, now: float, cfg: HealthConfig) -> Step:
    ejected = _ejection(b, look, now, cfg)
    if ejected is not None:
        return ejected
    fig = look.figures
    to, detail, quality = rest_state(_D, cfg, fig, look.signal, now, b.proof)
    if to is _H and now - b.since < cfg.min_dwell_s:
        to = _D
    if to is not _D:
        return _move(b, to, now, detail, cfg, look)
    proof = b.proof | degraded_proof(cfg, fig)
    unproven = not proven(cfg, fig, proof)
    if proof != b.proof or unproven != b.unproven or quality != b.quality:
        b = replace(b, proof=proof, unproven=unproven, quality=quality or b.quality)
    return Step(b, None)


def _look_stale(b: Breaker, look: Look, now: float, cfg: HealthConfig) -> Step:
    ejected = _ejection(b, look, now, cfg)
    if ejected is not None:
        return ejected
    to, detail, quality = rest_state(_S, cfg, look.figures, look.signal, now)
    return Step(b, None) if to is _S else _move(replace(b, quality=quality), to, now, detail, cfg, look)


def _look_unhealthy(b: Breaker, look: Look, now: float, cfg: HealthConfig) -> Step:
    if _down(look, now, cfg) or now < b.cooldown_until:
        return Step(b, None)
    if b.signal_ejected:
        return _move(b, _P, now, "external signal no longer down; probing", cfg)
    return _move(b, _P, now, f"cooldown {secs(b.cooldown_until - b.since)} over; probing", cfg)


def _look_probing(b: Breaker, look: Look, now: float, cfg: HealthConfig) -> Step:
    if _down(look, now, cfg) and look.signal is not None:
        return _move(b, _U, now, signal_text(look.signal), cfg, by_signal=True)
    if b.failure is not None:
        return _move(b, _U, now, b.failure, cfg, grow=b.grow)
    if any(now - t >= cfg.probe_timeout_s for t in b.in_flight):
        detail = f"probe without an outcome after {secs(cfg.probe_timeout_s)}"
        return _move(b, _U, now, detail, cfg, grow=False)
    if b.successes < cfg.probes:
        return Step(b, None)
    # The outcomes that opened the breaker are not held against it again (the baseline does that).
    fig = look.figures
    fresh = Figures(fig.window_s, 0, 0, 0, 0, fig.p95_latency_s, fig.latency_samples, 0, None)
    to, detail, quality = rest_state(_H, cfg, fresh, look.signal, now)
    text = f"{b.successes} probes succeeded" + (f"; {detail}" if detail else "")
    judged, failures, timeouts = look.totals
    closed = replace(b, baseline=Baseline(now, judged, failures, timeouts), quality=quality)
    return _move(closed, to, now, text, cfg, look)


_LOOK = {_H: _look_healthy, _D: _look_degraded, _S: _look_stale, _U: _look_unhealthy, _P: _look_probing}


# ----------------------------------------------------------------- the other signals
def _probe_ended(b: Breaker, ended: ProbeEnded) -> Breaker:
    in_flight = b.in_flight[1:] if b.in_flight else ()
    if b.state is not _P:
        return replace(b, in_flight=in_flight) if b.in_flight else b
    if ended.succeeded is True:
        return replace(b, in_flight=in_flight, successes=b.successes + 1)
    if ended.succeeded is False:
        failure = b.failure or f"probe failed: {ended.error}"
        return replace(b, in_flight=in_flight, failure=failure, grow=b.grow if b.failure else True)
    # a client error says nothing about the model: its permit goes back to the budget
    return replace(b, in_flight=in_flight, permits=max(0, b.permits - 1))


def _check_ended(b: Breaker, check: CheckEnded, now: float, cfg: HealthConfig) -> Step:
    if b.state is _U:
        if not check.ok:
            if b.signal_ejected:
                return Step(b, None)
            return Step(replace(b, cooldown_until=max(b.cooldown_until, now + check.interval_s)), None)
        if b.signal_ejected:
            return Step(b, None)  # the signal decides while it holds
        moved = _move(b, _P, now, "active health check succeeded; probing", cfg)
        return Step(replace(moved.breaker, successes=1), moved.moved)
    if b.state is _P:
        return Step(_probe_ended(replace(b, in_flight=(now, *b.in_flight)), ProbeEnded(check.ok, check.error)), None)
    return Step(b, None)


# ----------------------------------------------------------------- helpers
def _down(look: Look, now: float, cfg: HealthConfig) -> bool:
    s = look.signal
    return s is not None and s.status.value == "down" and now < s.expires_at(cfg.stale_after_s)


def _ejection(b: Breaker, look: Look, now: float, cfg: HealthConfig) -> Step | None:
    reasons = unhealthy_reasons(cfg, look.figures)
    if _down(look, now, cfg) and look.signal is not None:
        return _move(b, _U, now, "; ".join([*reasons, signal_text(look.signal)]), cfg, by_signal=not reasons)
    if reasons:
        return _move(b, _U, now, "; ".join(reasons), cfg)
    return None


def _decay(b: Breaker, now: float, period_s: float) -> Breaker:
    """Halve the ejection count per ``period_s`` spent healthy."""
    if b.ejections == 0 or period_s <= 0:
        return b
    periods = int((now - b.decay_anchor) // period_s)
    if periods <= 0:
        return b
    ejections = b.ejections >> periods if periods < 63 else 0
    return replace(b, ejections=ejections, decay_anchor=b.decay_anchor + periods * period_s)


def _move(
    b: Breaker,
    to: HealthState,
    now: float,
    detail: str,
    cfg: HealthConfig,
    look: Look | None = None,
    *,
    by_signal: bool = False,
    grow: bool = True,
) -> Step:
    """Take the edge to ``to``; IllegalHealthTransition when it is not in the table."""
    if to not in TRANSITIONS[b.state]:
        raise IllegalHealthTransition(f"{b.state.value} -> {to.value} is not a health transition")
    frm = b.state
    changes: dict[str, object] = {"state": to, "since": now, "detail": detail}
    changes["trouble_since"] = None if to is _H else (b.trouble_since if b.trouble_since is not None else now)
    if to is _U:
        changes.update(signal_ejected=by_signal, baseline=None, failure=None, grow=True, in_flight=())
        if by_signal:
            changes["cooldown_until"] = now
        else:
            ejections = b.ejections + 1 if grow else max(b.ejections, 1)
            changes.update(ejections=ejections, cooldown_until=now + cooldown_for(ejections, cfg))
    elif to is _P:
        changes.update(permits=0, successes=0, in_flight=(), failure=None, grow=True)
    if to is _H:
        changes["decay_anchor"] = now
    if frm in (_P, _D) and to is not _P:
        changes["in_flight"] = ()
    if frm is _D or to is _D:
        changes.update(proof=Proof.NONE, unproven=False)
    if to is _D and look is not None:
        proof = degraded_proof(cfg, look.figures)
        changes.update(proof=proof, unproven=not proven(cfg, look.figures, proof))
    if to is not _D:
        changes["quality"] = False
    return Step(replace(b, **changes), (frm, to, detail))  # type: ignore[arg-type]
