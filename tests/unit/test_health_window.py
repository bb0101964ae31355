"""The figures health is judged on: windows, error and timeout rates, p95, hysteresis, quotas."""

from __future__ import annotations

import pytest

from routeguard.core.health import HealthTracker
from routeguard.core.health_view import HealthState
from routeguard.core.health_window import (
    CLIENT_ERROR_CLASSES,
    PROVIDER_FAILURE_CLASSES,
    ModelWindow,
    OutcomeKind,
)
from routeguard.core.model import HealthConfig

H, D, U = HealthState.HEALTHY, HealthState.DEGRADED, HealthState.UNHEALTHY
NO_STREAK = HealthConfig(consecutive_failures=1000)


def record(
    t: HealthTracker, now: float, error: str | None = None, latency_s: float = 0.2, tokens: int = 0
) -> None:
    t.record("m", ok=error is None, error_class=error, latency_s=latency_s, now=now, tokens=tokens)


def test_failure_classes_split_provider_side_from_client_errors() -> None:
    assert {"timeout", "connection", "rate_limit", "overloaded", "server_error"} == PROVIDER_FAILURE_CLASSES
    assert {"context_window", "content_filter", "auth", "bad_request", "not_found"} == CLIENT_ERROR_CLASSES


def test_client_errors_never_eject_nor_break_a_streak() -> None:
    t = HealthTracker({"p": HealthConfig()})
    for i, error in enumerate(sorted(CLIENT_ERROR_CLASSES) * 10):
        record(t, i * 0.1, error)
    health = t.model_health("p", HealthConfig(), "m", 5.0)
    assert health.state is H and health.requests_last_min == 50
    figures = t.states(5.0)["m"].figures
    assert figures is not None and (figures.judged, figures.failures, figures.error_rate) == (0, 0, 0.0)
    for i, error in enumerate(["timeout"] * 4 + ["auth"] + ["connection"]):
        record(t, 6.0 + i, error)
    assert t.model_health("p", HealthConfig(), "m", 12.0).detail == "5 consecutive failures"


def test_a_success_breaks_the_streak() -> None:
    t = HealthTracker()
    for i, error in enumerate(["server_error"] * 4 + [None] + ["server_error"] * 4):
        record(t, float(i), error)
    assert t.model_health("p", HealthConfig(), "m", 9.0).state is H  # 9 samples < min_samples too


def test_min_samples_are_respected() -> None:
    t = HealthTracker()
    for i in range(9):
        record(t, float(i), "overloaded")
        assert t.model_health("p", NO_STREAK, "m", float(i)).state is H
    record(t, 9.0, "overloaded")
    health = t.model_health("p", NO_STREAK, "m", 9.0)
    assert (health.state, health.detail) == (U, "error_rate 1.00 >= 0.50 over 60s (10 samples)")


def test_timeouts_are_judged_apart() -> None:
    cfg = HealthConfig(timeout_rate=0.2, error_rate=0.9, degraded_error_rate=0.9, consecutive_failures=1000)
    t = HealthTracker()
    for i in range(10):
        record(t, float(i), "timeout" if i in (2, 5, 8) else None)
    health = t.model_health("p", cfg, "m", 9.0)
    assert (health.state, health.detail) == (U, "timeout_rate 0.30 >= 0.20 over 60s (10 samples)")


def test_degrades_on_p95_latency_with_zero_errors() -> None:
    cfg = HealthConfig(p95_latency_s=5.0)
    t = HealthTracker()
    for i in range(9):
        record(t, float(i), latency_s=6.2)
    assert t.model_health("p", cfg, "m", 8.0).state is H  # 9 latency samples < min_samples
    record(t, 9.0, latency_s=6.2)
    health = t.model_health("p", cfg, "m", 9.0)
    assert (health.state, health.detail) == (D, "p95 6.2s >= 5.0s over 60s (10 samples)")
    assert health.p95_latency_s == pytest.approx(6.2)
    for _ in range(200):
        record(t, 19.0, latency_s=2.6)  # p95 2.6s: below 5.0 but not below half of it
    assert t.model_health("p", cfg, "m", 19.0).state is D
    for _ in range(5000):
        record(t, 20.0, latency_s=1.0)  # the 210 slow ones are now under 5 %
    health = t.model_health("p", cfg, "m", 20.0)
    assert health.state is H and health.p95_latency_s == pytest.approx(1.0)
    assert health.detail == "error_rate 0.000 < 0.100, p95 1.0s < 2.5s over 60s (5210 samples)"


def test_recovers_only_below_half_the_threshold_that_entered() -> None:
    t = HealthTracker()
    for i in range(10):
        record(t, float(i), "server_error" if i in (4, 9) else None)
    health = t.model_health("p", NO_STREAK, "m", 9.0)
    assert (health.state, health.detail) == (D, "error_rate 0.20 >= 0.20 over 60s (10 samples)")
    for _ in range(3):
        record(t, 20.0)
    assert t.model_health("p", NO_STREAK, "m", 20.0).state is D  # 0.15: would not enter, does not leave
    for _ in range(7):
        record(t, 21.0)
    assert t.model_health("p", NO_STREAK, "m", 21.0).state is D  # 0.10
    record(t, 22.0)
    health = t.model_health("p", NO_STREAK, "m", 22.0)
    assert (health.state, health.detail) == (H, "error_rate 0.095 < 0.100 over 60s (21 samples)")
    fresh = HealthTracker()
    for i in range(20):
        record(fresh, float(i), "server_error" if i in (4, 9, 14) else None)
    assert fresh.model_health("p", NO_STREAK, "m", 20.0).state is H  # 0.15 never entered degraded


def test_degraded_without_evidence_left_stays_degraded_and_admits_probes() -> None:
    t = HealthTracker()
    for i in range(10):
        record(t, float(i), "server_error" if i < 3 else None)
    assert t.model_health("p", NO_STREAK, "m", 9.0).state is D
    health = t.model_health("p", NO_STREAK, "m", 59.9)  # all 10 still in the window
    assert health.state is D and not health.probe_admitted
    health = t.model_health("p", NO_STREAK, "m", 60.0)  # the outcome of second 0 left: 9 samples
    assert health.state is D and health.probe_admitted  # silence is not evidence: probe it
    assert t.model_health("p", NO_STREAK, "m", 600.0).state is D


def test_outcomes_age_out_of_the_window_by_whole_seconds() -> None:
    t = HealthTracker()
    for _ in range(3):
        record(t, 0.5, "connection", tokens=10)
    figures = t.states(59.9)["m"].figures
    assert figures is not None and figures.failures == 3 and figures.tokens_last_min == 30
    figures = t.states(60.0)["m"].figures
    assert figures is not None and (figures.failures, figures.requests_last_min) == (0, 0)


def test_requests_and_tokens_in_the_last_minute() -> None:
    t = HealthTracker()
    for _ in range(3):
        record(t, 0.0, tokens=100)
    for _ in range(2):
        record(t, 30.0, "rate_limit", tokens=50)
    health = t.model_health("p", HealthConfig(), "m", 30.0)
    assert (health.requests_last_min, health.tokens_last_min) == (5, 400)
    health = t.model_health("p", HealthConfig(), "m", 60.0)
    assert (health.requests_last_min, health.tokens_last_min) == (2, 100)
    health = t.model_health("p", HealthConfig(), "m", 90.0)
    assert (health.requests_last_min, health.tokens_last_min) == (0, 0)


def test_a_longer_policy_window_is_retained() -> None:
    long = HealthConfig(window_s=120.0, consecutive_failures=1000)
    t = HealthTracker({"long": long})
    for i in range(10):
        record(t, float(i), "server_error")
    assert t.model_health("short", NO_STREAK, "m", 100.0).state is H
    health = t.model_health("long", long, "m", 100.0)
    assert (health.state, health.detail) == (U, "error_rate 1.00 >= 0.50 over 120s (10 samples)")


def test_window_quantiles_and_growth() -> None:
    window = ModelWindow(0.0)
    for i in range(100):
        window.add(float(i) / 10, OutcomeKind.OK, timeout=False, latency_s=0.01 * (i + 1), tokens=0)
    counts = window.counts(60.0, 10.0)
    p50, p95 = counts.latency_quantile(0.5), counts.latency_quantile(0.95)
    assert p50 is not None and p95 is not None
    assert 0.50 * 0.91 <= p50 <= 0.50 * 1.09 and 0.95 * 0.91 <= p95 <= 0.95 * 1.09  # within a bin width
    window.retain(300.0)
    assert window.counts(300.0, 10.0).latency_samples == 100
    assert window.counts(60.0, 68.0).latency_samples == 10  # second 9 only
    assert window.counts(60.0, 1000.0).latency_quantile(0.95) is None
