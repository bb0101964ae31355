"""The rules of the health machine (:mod:`routeguard.core.health_machine`) as pure functions.

:func:`due_transition` says which edge the figures and the signal call for now (the dwell aside);
:func:`degraded_proof` and :func:`proven` are the evidence a degraded pair needs to leave.
"""

from __future__ import annotations

from routeguard.core import defaults as D
from routeguard.core.health_machine import ExternalSignal, Figures, PairState, Proof, SignalStatus
from routeguard.core.health_view import HealthState
from routeguard.core.model import HealthConfig

__all__ = ["degraded_proof", "due_transition", "proven"]

_H, _D, _U, _P, _S = (
    HealthState.HEALTHY,
    HealthState.DEGRADED,
    HealthState.UNHEALTHY,
    HealthState.PROBING,
    HealthState.STALE,
)


def degraded_proof(cfg: HealthConfig, fig: Figures) -> Proof:
    """The figures judged (on ≥ ``min_samples``) at or above half their degraded threshold."""
    proof = Proof.NONE
    if fig.judged >= cfg.min_samples and fig.failures / fig.judged >= cfg.degraded_error_rate * D.HEALTH_HYSTERESIS:
        proof |= Proof.ERROR_RATE
    threshold_s, p95 = cfg.p95_latency_s, fig.p95_latency_s
    if (
        threshold_s is not None
        and p95 is not None
        and fig.latency_samples >= cfg.min_samples
        and p95 >= threshold_s * D.HEALTH_HYSTERESIS
    ):
        proof |= Proof.P95
    return proof


def proven(cfg: HealthConfig, fig: Figures, proof: Proof) -> bool:
    """The window holds the samples to judge again every figure in ``proof``."""
    if proof is Proof.NONE:
        return True
    if fig.judged < cfg.min_samples:
        return False
    return Proof.P95 not in proof or cfg.p95_latency_s is None or fig.latency_samples >= cfg.min_samples


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
    to, detail = _rest_state(state, cfg, fig, signal, expired, now, pair.proof)
    return None if to is state else (to, detail, False)


def _rest_state(
    current: HealthState,
    cfg: HealthConfig,
    fig: Figures,
    signal: ExternalSignal | None,
    expired: bool,
    now: float,
    proof: Proof = Proof.NONE,
) -> tuple[HealthState, str]:
    """Healthy, degraded or stale — the state of a model that is not ejected.

    ``proof``: the figures that held a degraded model there; it stays degraded until the window holds
    the samples to judge them again (silence is not evidence).
    """
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
        if not proven(cfg, fig, proof):
            return _D, ""
        if fig.judged < cfg.min_samples:  # only a signal held it, and it no longer does
            return _H, f"fewer than {cfg.min_samples} samples over {fig.window_s:g}s"
        below = [f"error_rate {fig.failures / fig.judged:.3f} < {cfg.degraded_error_rate * factor:.3f}"]
        if cfg.p95_latency_s is not None and fig.p95_latency_s is not None:
            below.append(f"p95 {_secs(fig.p95_latency_s)} < {_secs(cfg.p95_latency_s * factor)}")
        return _H, f"{', '.join(below)} {_over(fig)}"
    if current is _S and signal is not None:
        return _H, f"{_signal_text(signal)} renewed"
    return _H, ""
