"""A degraded model recovers by evidence, not by silence (health machine, engine, route state).

Once routing moves away from a degraded model its window empties; that is no evidence of recovery. The
pair stays degraded and, while its window holds fewer than ``min_samples`` samples of the figures that
held it there, admits a trickle of probes; it turns healthy only when those figures, judged again on
``min_samples`` samples, are below half their thresholds. Defaults unless a test says otherwise: window
60s, min_samples 10, degraded_error_rate 0.2, min_dwell 10s, one probe in flight.
"""

from __future__ import annotations

from bundles import base, route

from routeguard.core.events import Event, HealthChanged, RouteChanged
from routeguard.core.health import HealthTracker
from routeguard.core.health_view import HealthState, ModelHealth
from routeguard.core.model import HealthConfig
from routeguard.runtime import Router

H, D, S = HealthState.HEALTHY, HealthState.DEGRADED, HealthState.STALE
CFG = HealthConfig(p95_latency_s=5.0, consecutive_failures=1000)
SLOW, SLOWISH, FAST = 9.0, 3.0, 0.3  # over the threshold; under it but over half; under half


def look(t: HealthTracker, now: float) -> ModelHealth:
    return t.model_health("p", CFG, "m", now)


def degraded_at_9() -> HealthTracker:
    """Ten 9 s answers at t=0..9: degraded on p95 at 9; then the route moves away (no more traffic)."""
    t = HealthTracker({"p": CFG})
    for i in range(10):
        t.record("m", ok=True, latency_s=SLOW, now=float(i))
    assert (look(t, 9.0).state, look(t, 9.0).detail) == (D, "p95 9.0s >= 5.0s over 60s (10 samples)")
    assert [(x.from_state, x.to_state) for x in t.drain_transitions()] == [(H, D)]
    return t


def trickle(t: HealthTracker, start: float, end: float, latency_s: float | None, error: str | None = None) -> int:
    """One look a second; every admitted probe answers 0.5 s later. Returns the probes sent."""
    sent = 0
    now = start
    while now < end:
        health = look(t, now)
        if health.probe_admitted:
            assert t.begin_probe("p", "m", now)
            assert not look(t, now).probe_admitted and not t.begin_probe("p", "m", now)  # one in flight
            t.record("m", ok=error is None, error_class=error, latency_s=latency_s, now=now + 0.5, probe=True)
            sent += 1
        now += 1.0
    return sent


def test_no_traffic_keeps_it_degraded_and_admits_a_bounded_trickle_of_probes() -> None:
    t = degraded_at_9()
    health = look(t, 59.9)
    assert health.state is D and not health.probe_admitted  # the window still holds its 10 samples
    health = look(t, 60.0)  # the sample of second 0 left: 9, too few to judge the p95 on
    assert health.state is D and health.probe_admitted
    assert look(t, 3600.0).state is D  # silence is never evidence
    assert t.drain_transitions() == []


def test_slow_probes_keep_it_degraded_then_fast_probes_heal_it_once_the_slow_ones_age_out() -> None:
    t = degraded_at_9()
    sent = trickle(t, 60.0, 180.0, SLOW)  # each probe refills the window as an older sample leaves it
    assert sent == 20  # min_samples per 60 s window (60.5..69.5, 120.5..129.5), not 10 a second
    assert look(t, 180.0).state is D
    assert [x.to_state for x in t.drain_transitions()] == []
    sent = trickle(t, 180.0, 189.0, FAST)  # recovered: fast probes replace the slow ones one by one
    assert sent == 9 and look(t, 189.0).state is D  # p95 of the window is still the slow probe of 129.5
    trickle(t, 189.0, 300.0, FAST)
    (change,) = t.drain_transitions()
    assert (change.from_state, change.to_state, change.at) == (D, H, 190.0)  # the last slow probe left
    assert change.detail == "error_rate 0.000 < 0.100, p95 300ms < 2.5s over 60s (10 samples)"


def test_probes_between_half_and_the_full_threshold_keep_it_degraded() -> None:
    t = degraded_at_9()
    trickle(t, 60.0, 400.0, SLOWISH)  # 3 s would never have degraded it; it is not enough to leave
    assert look(t, 400.0).state is D
    assert t.drain_transitions() == []


def test_failed_probes_count_against_recovery() -> None:
    t = degraded_at_9()
    trickle(t, 60.0, 69.0, FAST)  # nine fast probes, then two that fail
    trickle(t, 69.0, 71.0, None, error="server_error")
    trickle(t, 71.0, 129.0, FAST)
    health = look(t, 128.0)
    assert health.state is D and not health.probe_admitted  # 2 failures in 12: 0.17 >= half of 0.2
    trickle(t, 129.0, 140.0, FAST)
    (change,) = t.drain_transitions()
    assert change.to_state is H and change.at == 129.0  # the failure of 69.5 left: 1 in 11
    assert change.detail.startswith("error_rate 0.091 < 0.100")


def test_a_few_fast_probes_are_not_enough() -> None:
    t = degraded_at_9()
    for now in (60.0, 61.0, 62.0):  # `probes` (3) closes a breaker; a p95 needs min_samples samples
        assert look(t, now).probe_admitted and t.begin_probe("p", "m", now)
        t.record("m", ok=True, latency_s=FAST, now=now + 0.5, probe=True)
    assert look(t, 63.0).state is D


def test_degraded_by_a_signal_alone_leaves_on_the_signal_and_is_not_probed() -> None:
    t = HealthTracker({"p": CFG})
    t.signal("m", "degraded", 0.0, ttl_s=600, source="ops")
    assert look(t, 0.0).state is D
    assert not look(t, 15.0).probe_admitted and not t.begin_probe("p", "m", 15.0)
    t.signal("m", "up", 20.0, ttl_s=600, source="ops")
    assert look(t, 20.0).state is H  # no figure held it degraded: nothing to prove


def test_a_stale_model_is_not_probed_and_leaves_only_on_a_new_signal() -> None:
    t = HealthTracker({"p": CFG})
    t.signal("m", "up", 0.0, ttl_s=30, source="ops")
    assert look(t, 30.0).state is S
    assert not look(t, 500.0).probe_admitted and not t.begin_probe("p", "m", 500.0)
    assert look(t, 5000.0).state is S
    t.signal("m", "up", 5001.0, ttl_s=30, source="ops")
    assert look(t, 5001.0).state is H


def test_the_engine_sends_an_admitted_probe_to_a_degraded_model_only_when_it_would_skip_it() -> None:
    raw = base()
    raw["policies"]["agent"]["fallbacks"] = [{"model": "backup", "on": ["degraded"]}]
    admitted = {"primary": ModelHealth(D, probe_admitted=True)}
    d = route(raw, admitted)
    assert (d.model, d.probe, d.degraded, d.backups) == ("primary", True, True, ("backup",))
    assert not route(raw, {"primary": ModelHealth(D)}).probe
    assert route(raw, {"primary": ModelHealth(S, probe_admitted=True)}).model == "backup"  # stale: never
    d = route(base(), admitted)  # no fallback takes `degraded`: it serves anyway, as ordinary traffic
    assert (d.model, d.probe) == ("primary", False)


# ------------------------------------------------------------------------------------ through the router


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def router() -> tuple[Router, Clock, list[Event]]:
    models = {
        name: {"capabilities": ["text"], "clearance": "restricted", "regions": ["eu"], "trusted": True}
        for name in ("a", "b")
    }
    raw = {
        "models": models,
        "profiles": {
            "p": {"requires": ["text"], "capabilities": ["text"], "data_class": "internal", "regions": ["eu"]}
        },
        "approvals": [{"model": m, "profile": "p", "by": "gov", "evidence": f"EV-{m}"} for m in models],
        "policies": {
            "agent": {
                "profile": "p",
                "primary": "a",
                "fallbacks": [{"model": "b", "on": ["unavailable", "degraded", "retryable"]}],
                "health": {"min_samples": 10, "p95_latency": "1s", "min_dwell": "10s"},
            }
        },
    }
    clock = Clock()
    rt = Router.from_bundle(raw, clock=clock)
    events: list[Event] = []
    rt.subscribe(events.append)
    return rt, clock, events


def serve(rt: Router, clock: Clock, seconds: float, a_latency_ms: float) -> dict[str, int]:
    """10 requests a second for ``seconds``; ``a`` answers in ``a_latency_ms``, ``b`` in 200 ms."""
    served = {"a": 0, "a-probe": 0, "b": 0}
    for _ in range(int(seconds * 10)):
        clock.now += 0.1
        d = rt.decide({"agent": "agent"})
        assert d.model is not None
        served["a-probe" if d.probe else d.model] += 1
        latency = a_latency_ms if d.model == "a" else 200.0
        rt.report({"trace_id": d.trace_id, "model": d.model, "ok": True, "latency_ms": latency})
    return served


def test_route_leaves_once_and_returns_exactly_once_after_evidence_of_recovery() -> None:
    rt, clock, events = router()
    assert serve(rt, clock, 5, 200.0)["a"] == 50
    served = serve(rt, clock, 300, 3000.0)  # a slows down to 3 s for five minutes
    assert served["a"] <= 12  # until degraded (10 samples), then only probes
    assert 0 < served["a-probe"] <= 10 * 300 / 60 + 10  # about min_samples per window, not 10 a second
    assert [(c.from_model, c.to_model) for c in events if isinstance(c, RouteChanged)] == [("a", "b")]
    served = serve(rt, clock, 120, 200.0)  # a is fast again: probes prove it, the route returns
    changes = [(c.from_model, c.to_model, c.reason) for c in events if isinstance(c, RouteChanged)]
    assert [(a, b) for a, b, _ in changes] == [("a", "b"), ("b", "a")]
    assert changes[1][2] == "a preferred again (healthy)"
    assert served["a"] > 500 and served["b"] < 700
    health = [(e.model, e.from_state, e.to_state) for e in events if isinstance(e, HealthChanged)]
    assert health == [("a", "healthy", "degraded"), ("a", "degraded", "healthy")]
