"""Automatic safe mode from the decision API: fallback decisions and their reported outcomes feed it."""

from __future__ import annotations

from typing import Any

from routeguard.core.events import Event, SafeModeChanged
from routeguard.runtime import Router


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def raw() -> dict[str, Any]:
    models = {m: {"capabilities": ["text"], "clearance": "internal", "trusted": m == "c"} for m in ("a", "b", "c")}
    return {
        "models": models,
        "profiles": {"p": {"requires": ["text"], "data_class": "internal"}},
        "approvals": [{"model": m, "profile": "p"} for m in models],
        "policies": {"agent": {"profile": "p", "primary": "a", "fallbacks": ["b", "c"],
                               "health": {"consecutive_failures": 3, "min_samples": 3}}},
        "safe_mode": {"auto": {"fallback_failure_rate": 0.2, "window": "60s", "min_samples": 5}},
    }


def test_failing_fallbacks_reported_through_the_api_engage_safe_mode_within_the_window() -> None:
    clock = Clock()
    router = Router.from_bundle(raw(), clock=clock)
    events: list[Event] = []
    router.subscribe(events.append)
    for _ in range(4):
        clock.now += 1
        router.report({"model": "a", "ok": False, "error": "overloaded"})
    engaged_at = None
    for i in range(10):
        clock.now += 1
        decision = router.decide({"agent": "agent"})
        router.note_decision(decision)
        if router.safe_mode.global_on:
            engaged_at = engaged_at or i
            break
        assert decision.status.value == "fallback"
        router.report({"trace_id": decision.trace_id, "model": decision.model, "ok": False, "error": "server_error"})
    assert router.safe_mode.global_on and engaged_at is not None and engaged_at <= 6
    (change,) = [e for e in events if isinstance(e, SafeModeChanged)]
    assert change.automatic and "fallback failure rate" in change.reason
    assert router.decide({"agent": "agent"}).rejected[0].reason in {"safe_mode", "unhealthy"}
    assert all(r.reason != "safe_mode" or r.model != "c" for r in router.decide({"agent": "agent"}).rejected)


def test_successful_fallbacks_do_not_engage_safe_mode() -> None:
    clock = Clock()
    router = Router.from_bundle(raw(), clock=clock)
    for _ in range(4):
        clock.now += 1
        router.report({"model": "a", "ok": False, "error": "overloaded"})
    for _ in range(30):
        clock.now += 1
        decision = router.decide({"agent": "agent"})
        router.note_decision(decision)
        router.report({"trace_id": decision.trace_id, "model": decision.model, "ok": True, "latency_ms": 50})
    assert not router.safe_mode.global_on
