"""The figure judgments of the health machine, as pure functions (the machine: :mod:`routeguard.core.breaker`).

:func:`unhealthy_reasons` says what ejects a model, :func:`rest_state` which of healthy, degraded or stale a
model that is not ejected is in; :func:`degraded_proof` and :func:`proven` are the evidence a degraded pair
needs to leave (hysteresis: every figure that held it must be judged again, on ``min_samples``, below half
its threshold).
"""

from __future__ import annotations

from routeguard.core import defaults as D
from routeguard.core.health_machine import ExternalSignal, Figures, Proof, SignalStatus
from routeguard.core.health_view import HealthState
from routeguard.core.model import HealthConfig

__all__ = ["degraded_proof", "proven", "quiet", "rest_state", "secs", "signal_text", "unhealthy_reasons"]

_H, _D, _S = HealthState.HEALTHY, HealthState.DEGRADED, HealthState.STALE


def _quality_bad(cfg: HealthConfig, fig: Figures, factor: float) -> bool:
    """The mean score is below ``min`` (factor 1), or not yet back within half the gap (factor 0.5)."""
    minimum, mean = cfg.quality_min, fig.quality_mean
    if minimum is None or mean is None or fig.quality_n < cfg.quality_min_samples:
        return False
    return 1.0 - mean > (1.0 - minimum) * factor


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
    if _quality_bad(cfg, fig, D.HEALTH_HYSTERESIS):
        proof |= Proof.QUALITY
    return proof


def proven(cfg: HealthConfig, fig: Figures, proof: Proof) -> bool:
    """The window holds the samples to judge again every figure in ``proof``."""
    if proof is Proof.NONE:
        return True
    if Proof.QUALITY in proof and fig.quality_n < cfg.quality_min_samples:
        return False
    if Proof.ERROR_RATE in proof and fig.judged < cfg.min_samples:
        return False
    return Proof.P95 not in proof or cfg.p95_latency_s is None or fig.latency_samples >= cfg.min_samples


def secs(value: float) -> str:
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.1f}s"


def _over(fig: Figures) -> str:
    return f"over {fig.window_s:g}s ({fig.judged} samples)"


def quiet(cfg: HealthConfig, fig: Figures) -> bool:
    """No figure reaches a degraded or unhealthy threshold (the common case, checked cheaply)."""
    if fig.streak >= cfg.consecutive_failures:
        return False
    if fig.judged and fig.judged >= cfg.min_samples:
        rate = fig.failures / fig.judged
        if rate >= cfg.degraded_error_rate or rate >= cfg.error_rate:
            return False
        if fig.timeouts / fig.judged >= cfg.timeout_rate:
            return False
    if cfg.quality_min is not None and _quality_bad(cfg, fig, 1.0):
        return False
    threshold = cfg.p95_latency_s
    return (
        threshold is None
        or fig.p95_latency_s is None
        or fig.latency_samples < cfg.min_samples
        or fig.p95_latency_s < threshold
    )


def unhealthy_reasons(cfg: HealthConfig, fig: Figures) -> list[str]:
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


def _degraded_reasons(cfg: HealthConfig, fig: Figures, factor: float) -> tuple[list[str], bool]:
    """The reasons a model is degraded, and whether quality is one of them."""
    reasons: list[str] = []
    if fig.judged and fig.judged >= cfg.min_samples:
        rate, threshold = fig.failures / fig.judged, cfg.degraded_error_rate * factor
        if rate >= threshold:
            reasons.append(f"error_rate {rate:.2f} >= {threshold:.2f} {_over(fig)}")
    p95, threshold_s = fig.p95_latency_s, cfg.p95_latency_s
    if threshold_s is not None and p95 is not None and fig.latency_samples >= cfg.min_samples and (
        p95 >= threshold_s * factor
    ):
        reasons.append(
            f"p95 {secs(p95)} >= {secs(threshold_s * factor)} over {fig.window_s:g}s ({fig.latency_samples} samples)"
        )
    quality = _quality_bad(cfg, fig, factor)
    if quality and cfg.quality_min is not None and fig.quality_mean is not None:
        bar = 1.0 - (1.0 - cfg.quality_min) * factor
        reasons.append(f"quality {fig.quality_mean:.2f} < {bar:.2f} over {fig.window_s:g}s ({fig.quality_n} scored)")
    return reasons, quality


def signal_text(signal: ExternalSignal) -> str:
    return f"external signal {signal.status.value} from {signal.source}"


def rest_state(
    current: HealthState,
    cfg: HealthConfig,
    fig: Figures,
    signal: ExternalSignal | None,
    now: float,
    proof: Proof = Proof.NONE,
) -> tuple[HealthState, str, bool]:
    """Healthy, degraded or stale — the state of a model that is not ejected — with its detail and
    whether quality holds it degraded.

    ``proof``: the figures that held a degraded model there; it stays degraded until the window holds
    the samples to judge them again (silence is not evidence).
    """
    if signal is not None and now >= signal.expires_at(cfg.stale_after_s):
        ago = now - signal.expires_at(cfg.stale_after_s)
        return _S, f"signal {signal.status.value} from {signal.source} expired {ago:.0f}s ago", False
    if current is _H and (signal is None or signal.status is SignalStatus.UP) and quiet(cfg, fig):
        return _H, "", False
    factor = D.HEALTH_HYSTERESIS if current is _D else 1.0
    reasons, quality = _degraded_reasons(cfg, fig, factor)
    if signal is not None and signal.status is SignalStatus.DEGRADED:
        reasons.append(signal_text(signal))
    if reasons:
        return _D, "; ".join(reasons), quality
    if current is _D:
        if not proven(cfg, fig, proof):
            return _D, "", False
        if fig.judged < cfg.min_samples and Proof.QUALITY not in proof:  # only a signal held it
            return _H, f"fewer than {cfg.min_samples} samples over {fig.window_s:g}s", False
        below = [f"error_rate {fig.failures / fig.judged:.3f} < {cfg.degraded_error_rate * factor:.3f}"] if (
            fig.judged
        ) else []
        if cfg.p95_latency_s is not None and fig.p95_latency_s is not None:
            below.append(f"p95 {secs(fig.p95_latency_s)} < {secs(cfg.p95_latency_s * factor)}")
        if fig.quality_mean is not None and cfg.quality_min is not None:
            below.append(f"quality {fig.quality_mean:.2f}")
        return _H, f"{', '.join(below)} {_over(fig)}", False
    if current is _S and signal is not None:
        return _H, f"{signal_text(signal)} renewed", False
    return _H, "", False
