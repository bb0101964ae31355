"""Exact timelines of the health state machine (defaults unless a test says otherwise).

Defaults: window 60s, min_samples 10, error_rate 0.5, degraded 0.2, timeout 0.5, cooldown 30s ×2 up to 300s,
probes 3, min_dwell 10s, stale_after 300s, 5 consecutive failures, 1 probe in flight.
"""

from __future__ import annotations

import pytest

from routeguard.core.breaker import Breaker, _move
from routeguard.core.health import (
    TRANSITIONS,
    HealthTracker,
    HealthTransition,
    IllegalHealthTransition,
)
from routeguard.core.health_view import HEALTHY, HealthState, HealthView
from routeguard.core.model import HealthConfig

H, D, U, P, S = (
    HealthState.HEALTHY,
    HealthState.DEGRADED,
    HealthState.UNHEALTHY,
    HealthState.PROBING,
    HealthState.STALE,
)
CFG = HealthConfig()


def tracker(cfg: HealthConfig = CFG) -> HealthTracker:
    return HealthTracker({"p": cfg})


def fail(
    t: HealthTracker,
    now: float,
    error_class: str = "server_error",
    probe: bool = False,
    policy: str | None = None,
) -> None:
    t.record("m", ok=False, error_class=error_class, latency_s=1.0, now=now, probe=probe, policy=policy)


def ok(t: HealthTracker, now: float, probe: bool = False, policy: str | None = None) -> None:
    t.record("m", ok=True, latency_s=0.2, now=now, probe=probe, policy=policy)


def state(t: HealthTracker, now: float, cfg: HealthConfig = CFG, policy: str = "p") -> HealthState:
    return t.model_health(policy, cfg, "m", now).state


def edges(t: HealthTracker) -> list[tuple[HealthState, HealthState, float]]:
    return [(x.from_state, x.to_state, x.at) for x in t.drain_transitions()]


def eject_at_104(t: HealthTracker) -> None:
    """Five provider failures at t=100..104 open the breaker at 104 (cooldown until 134)."""
    for i in range(5):
        fail(t, 100.0 + i)
        assert state(t, 100.0 + i) is (U if i == 4 else H)


def probe(t: HealthTracker, now: float, success: bool) -> None:
    assert t.begin_probe("p", "m", now)
    if success:
        ok(t, now + 0.5, probe=True, policy="p")
    else:
        fail(t, now + 0.5, probe=True, policy="p")


def test_a_model_without_outcomes_is_healthy() -> None:
    t = tracker()
    assert t.model_health("p", CFG, "never-seen", 5.0) is HEALTHY
    view: HealthView = t
    assert view.model_health("p", CFG, "m", 5.0).state is H


def test_opens_after_consecutive_failures_even_below_min_samples() -> None:
    t = tracker()
    eject_at_104(t)
    health = t.model_health("p", CFG, "m", 104.0)
    assert (health.state, health.since, health.detail) == (U, 104.0, "5 consecutive failures")
    assert health.cooldown_left_s == 30.0
    assert edges(t) == [(H, U, 104.0)]


def test_stays_open_for_the_cooldown_then_half_opens() -> None:
    t = tracker()
    eject_at_104(t)
    health = t.model_health("p", CFG, "m", 133.5)
    assert health.state is U and health.cooldown_left_s == pytest.approx(0.5)
    assert not health.probe_admitted
    assert not t.begin_probe("p", "m", 133.5)
    health = t.model_health("p", CFG, "m", 134.0)
    assert (health.state, health.detail, health.probe_admitted) == (P, "cooldown 30.0s over; probing", True)


def test_closes_at_once_after_the_configured_good_probes() -> None:
    t = tracker()
    eject_at_104(t)
    assert state(t, 134.0) is P
    assert t.begin_probe("p", "m", 134.0)
    assert not t.model_health("p", CFG, "m", 134.1).probe_admitted  # one probe in flight at most
    assert not t.begin_probe("p", "m", 134.1)
    ok(t, 134.5)  # any success of the model counts, traced or not
    probe(t, 135.0, success=True)
    assert state(t, 135.6) is P
    probe(t, 136.0, success=True)  # the third success closes it then and there: no dwell on a recovery
    health = t.model_health("p", CFG, "m", 136.5)
    assert (health.state, health.detail) == (H, "3 probes succeeded")
    assert edges(t) == [(H, U, 104.0), (U, P, 134.0), (P, H, 136.5)]


def test_the_probe_budget_admits_at_most_probes_requests_per_probing_period() -> None:
    cfg = HealthConfig(max_probes_in_flight=3)
    t = tracker(cfg)
    for i in range(5):
        fail(t, float(i))
    assert state(t, 4.0, cfg) is U
    assert state(t, 34.0, cfg) is P
    assert [t.begin_probe("p", "m", 34.0 + i * 0.1) for i in range(5)] == [True, True, True, False, False]
    assert t.model_health("p", cfg, "m", 34.5).probes_left == 0
    ok(t, 35.0)
    ok(t, 35.1)
    assert state(t, 35.2, cfg) is P and not t.begin_probe("p", "m", 35.2)  # budget spent, one outcome owed
    ok(t, 35.3)
    assert state(t, 35.3, cfg) is H


def test_a_failed_probe_reopens_at_once_with_cooldown_doubling_up_to_the_cap() -> None:
    t = tracker()
    eject_at_104(t)
    opened_at, cooldown = 104.0, 30.0
    for expected in (60.0, 120.0, 240.0, 300.0, 300.0):
        probing_at = opened_at + cooldown
        assert state(t, probing_at - 0.01) is U
        assert state(t, probing_at) is P
        probe(t, probing_at, success=False)  # fails at probing_at + 0.5: re-ejected then, no dwell
        opened_at, cooldown = probing_at + 0.5, expected
        health = t.model_health("p", CFG, "m", opened_at)
        assert (health.state, health.detail) == (U, "probe failed: server_error")
        assert health.cooldown_left_s == expected


def test_the_ejection_count_halves_per_cooldown_max_of_healthy_time() -> None:
    def twice_ejected_then_closed() -> HealthTracker:
        t = tracker()
        eject_at_104(t)  # ejection 1: 30s
        assert state(t, 134.0) is P
        probe(t, 134.0, success=False)
        assert state(t, 144.0) is U  # ejection 2: 60s
        assert state(t, 204.0) is P
        for now in (204.0, 205.0, 206.0):
            probe(t, now, success=True)
        assert state(t, 214.0) is H
        return t

    t = twice_ejected_then_closed()
    for i in range(5):
        fail(t, 230.0 + i)
    assert t.model_health("p", CFG, "m", 234.0).cooldown_left_s == 120.0  # ejection 3, no decay yet

    t = twice_ejected_then_closed()
    assert state(t, 500.0) is H
    for i in range(5):
        fail(t, 514.0 + i)  # healthy since 214: one 300s period -> 2 ejections halve to 1
    assert t.model_health("p", CFG, "m", 518.0).cooldown_left_s == 60.0  # ejection 2 again


def test_old_failures_are_not_held_against_a_closed_breaker() -> None:
    cfg = HealthConfig(consecutive_failures=1000)
    t = tracker(cfg)
    for i in range(10):
        fail(t, float(i))
    health = t.model_health("p", cfg, "m", 9.0)
    assert (health.state, health.detail) == (U, "error_rate 1.00 >= 0.50 over 60s (10 samples)")
    assert state(t, 39.0, cfg) is P
    for now in (39.0, 40.0, 41.0):
        probe(t, now, success=True)
    assert state(t, 49.0, cfg) is H  # window still holds 10 failures and 3 successes
    assert state(t, 60.0, cfg) is H
    for i in range(10):
        fail(t, 61.0 + i * 0.1)  # but new failures count
    assert state(t, 62.0, cfg) is U


def test_per_policy_thresholds_and_cooldowns_on_shared_figures() -> None:
    strict = HealthConfig(error_rate=0.3, consecutive_failures=1000)
    lenient = HealthConfig(error_rate=0.9, degraded_error_rate=0.8, consecutive_failures=1000)
    t = HealthTracker({"strict": strict, "lenient": lenient})
    for i in range(10):
        t.record("m", ok=i >= 4, error_class=None if i >= 4 else "timeout", now=float(i))
    assert t.model_health("strict", strict, "m", 10.0).state is U
    assert t.model_health("lenient", lenient, "m", 10.0).state is H


def test_minimum_dwell_damps_only_healthy_and_degraded_never_an_ejection() -> None:
    t = tracker()
    ok(t, 0.0)
    t.signal("m", "degraded", 9.0, source="ops")
    assert t.model_health("p", CFG, "m", 9.0).detail == "external signal degraded from ops"
    t.signal("m", "up", 12.0, source="ops")
    assert state(t, 12.0) is D  # degraded since 9: back to healthy only after the dwell
    assert state(t, 19.0) is H
    t.signal("m", "down", 20.0, source="ops")
    assert state(t, 20.0) is U  # an ejection is never delayed
    assert edges(t) == [(H, D, 9.0), (D, H, 19.0), (H, U, 20.0)]


def test_down_signal_ejects_without_cooldown_and_up_starts_probing() -> None:
    t = tracker()
    t.signal("m", "down", 10.0, ttl_s=600, source="statuspage")
    health = t.model_health("p", CFG, "m", 10.0)
    assert (health.state, health.detail) == (U, "external signal down from statuspage")
    assert health.cooldown_left_s is None
    assert state(t, 500.0) is U  # the signal holds it, cooldown or not
    t.signal("m", "up", 501.0, ttl_s=600, source="statuspage")
    health = t.model_health("p", CFG, "m", 501.0)
    assert (health.state, health.detail) == (P, "external signal no longer down; probing")


def test_goes_stale_when_a_signal_expires_and_recovers_on_renewal() -> None:
    t = tracker()
    t.signal("m", "up", 0.0, ttl_s=30.0, source="statuspage")
    assert state(t, 29.9) is H
    health = t.model_health("p", CFG, "m", 30.0)
    assert (health.state, health.detail) == (S, "signal up from statuspage expired 0s ago")
    t.signal("m", "up", 35.0, ttl_s=30.0, source="statuspage")
    health = t.model_health("p", CFG, "m", 35.0)  # a renewal ends staleness at once
    assert (health.state, health.detail) == (H, "external signal up from statuspage renewed")


def test_a_signal_without_ttl_expires_after_the_policys_stale_after() -> None:
    quick = HealthConfig(stale_after_s=60.0)
    t = HealthTracker({"slow": CFG, "quick": quick})
    t.signal("m", "degraded", 0.0)
    assert state(t, 0.0, quick, "quick") is D
    assert state(t, 60.0, quick, "quick") is S
    assert state(t, 60.0, CFG, "slow") is D
    assert state(t, 299.0, CFG, "slow") is D
    assert state(t, 300.0, CFG, "slow") is S


def test_an_expired_down_signal_probes_then_stays_stale_never_silently_healthy() -> None:
    t = tracker()
    t.signal("m", "down", 0.0, ttl_s=30.0, source="statuspage")
    assert state(t, 0.0) is U
    assert state(t, 30.0) is P
    for now in (30.0, 31.0, 32.0):
        probe(t, now, success=True)
    health = t.model_health("p", CFG, "m", 40.0)
    assert health.state is S  # closed at 32.5, on the third success
    assert health.detail == "3 probes succeeded; signal down from statuspage expired 2s ago"


def test_probes_in_flight_are_bounded_and_a_lost_probe_reejects_without_growing_the_cooldown() -> None:
    cfg = HealthConfig(max_probes_in_flight=2, probe_timeout_s=10.0)
    t = tracker(cfg)
    for i in range(5):
        fail(t, float(i))
    assert state(t, 4.0, cfg) is U
    assert state(t, 34.0, cfg) is P
    assert t.begin_probe("p", "m", 34.0)
    assert t.model_health("p", cfg, "m", 34.0).probe_admitted
    assert t.begin_probe("p", "m", 35.0)
    assert not t.model_health("p", cfg, "m", 35.0).probe_admitted
    assert not t.begin_probe("p", "m", 36.0)
    ok(t, 36.5)  # frees one
    assert t.begin_probe("p", "m", 37.0)
    assert state(t, 44.9, cfg) is P
    health = t.model_health("p", cfg, "m", 45.0)  # the probe of 35.0 never answered within the timeout
    assert (health.state, health.detail) == (U, "probe without an outcome after 10.0s")
    assert health.cooldown_left_s == 30.0  # not grown


def test_a_client_error_probe_neither_closes_nor_reopens() -> None:
    t = tracker()
    eject_at_104(t)
    assert state(t, 134.0) is P
    assert t.begin_probe("p", "m", 134.0)
    fail(t, 135.0, "bad_request", probe=True)  # policy None: every probing policy of the model
    health = t.model_health("p", CFG, "m", 150.0)
    assert health.state is P and health.probe_admitted


def test_transitions_are_buffered_in_order_and_drained_once() -> None:
    t = tracker()
    eject_at_104(t)
    drained = t.drain_transitions()
    assert drained == [HealthTransition("p", "m", H, U, 104.0, "5 consecutive failures")]
    assert t.drain_transitions() == []


def test_the_transition_table_refuses_an_illegal_edge() -> None:
    assert TRANSITIONS[U] == frozenset({P})
    assert set(TRANSITIONS) == set(HealthState)
    with pytest.raises(IllegalHealthTransition, match="healthy -> probing"):
        _move(Breaker(), P, 1.0, "", CFG)


def test_states_snapshot_judges_every_pair() -> None:
    t = HealthTracker({"a": CFG, "b": HealthConfig(consecutive_failures=2)})
    fail(t, 1.0)
    fail(t, 2.0)
    t.signal("other", "up", 2.0, source="ops")
    snapshot = t.states(3.0)
    assert sorted(snapshot) == ["m", "other"]
    assert snapshot["m"].policies["a"].state is H
    assert snapshot["m"].policies["b"].state is U
    assert snapshot["m"].figures is not None and snapshot["m"].figures.consecutive_failures == 2
    assert snapshot["other"].figures is None and snapshot["other"].signal is not None
    assert [x.policy for x in t.drain_transitions()] == ["b"]


def test_configure_keeps_figures_and_states() -> None:
    t = tracker()
    eject_at_104(t)
    t.configure({"p": CFG, "q": CFG})
    assert state(t, 110.0) is U
    assert state(t, 110.0, CFG, "q") is U


def test_time_never_goes_backwards() -> None:
    t = tracker()
    eject_at_104(t)
    health = t.model_health("p", CFG, "m", 50.0)  # treated as 104
    assert health.state is U and health.cooldown_left_s == 30.0


def test_bad_input_is_refused() -> None:
    t = tracker()
    with pytest.raises(ValueError, match="unknown error class"):
        t.record("m", ok=False, error_class="Timeout", now=1.0)
    with pytest.raises(ValueError):
        t.signal("m", "sideways", 1.0)
    with pytest.raises(ValueError):
        t.signal("m", "up", 1.0, ttl_s=-1.0)
