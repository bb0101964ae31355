"""Route state: exactly one RouteChanged per change of the serving model, complete fields, none for probes,
a canary ramp is one change plus steps."""

from __future__ import annotations

from typing import Any

from routeguard.core.events import CanaryStepped, Event, RouteChanged
from routeguard.runtime import Router


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def bundle(**policy: Any) -> dict[str, Any]:
    models = {
        name: {"capabilities": ["text"], "clearance": "restricted", "regions": ["eu"], "trusted": True}
        for name in ("a", "b", "c")
    }
    base = {
        "profile": "p",
        "primary": "a",
        "fallbacks": [{"model": "b", "on": ["unavailable", "degraded", "retryable"]}, {"model": "c"}],
        "health": {"min_samples": 4, "cooldown": "10s", "min_dwell": "1s", "probes": 2, "consecutive_failures": 3},
        "notify": ["gov"],
    }
    base.update(policy)
    return {
        "models": models,
        "profiles": {
            "p": {"requires": ["text"], "capabilities": ["text"], "data_class": "internal", "regions": ["eu"]}
        },
        "approvals": [{"model": m, "profile": "p", "by": "gov", "evidence": f"EV-{m}"} for m in models],
        "notifiers": {"gov": {"type": "webhook", "url": "http://127.0.0.1:1/hook"}},
        "policies": {"agent": base},
    }


def setup(**policy: Any) -> tuple[Router, Clock, list[Event]]:
    clock = Clock()
    router = Router.from_bundle(bundle(**policy), clock=clock)
    events: list[Event] = []
    router.subscribe(events.append)
    return router, clock, events


def changes(events: list[Event]) -> list[RouteChanged]:
    return [e for e in events if isinstance(e, RouteChanged)]


def fail(router: Router, clock: Clock, model: str, n: int, error: str = "overloaded") -> None:
    for _ in range(n):
        clock.now += 0.5
        router.report({"model": model, "ok": False, "error": error, "latency_ms": 20})


CTX = {"agent": "agent"}


def test_an_outage_is_exactly_one_change_with_complete_fields() -> None:
    router, clock, events = setup()
    fail(router, clock, "a", 10)
    for _ in range(5):
        clock.now += 0.2
        assert router.decide(CTX).model == "b"
    (change,) = changes(events)
    assert (change.policy, change.scope, change.from_model, change.to_model) == ("agent", "all", "a", "b")
    assert "a unhealthy" in change.reason and "consecutive failures" in change.reason
    assert change.verification == {
        "approved": True,
        "approval_ref": "EV-b",
        "capabilities_within_primary": True,
        "clearance_ok": True,
        "residency_ok": True,
    }
    assert change.expected_duration_s == 10.0  # the cooldown left
    assert change.notify == ("gov",)
    payload = change.to_dict()
    assert {"ts", "policy", "scope", "from_model", "to_model", "reason", "verification", "expected_duration"} <= set(
        payload
    )
    assert payload["expected_duration"] == "10s"


def test_probes_are_not_changes_but_the_switch_back_is() -> None:
    router, clock, events = setup()
    fail(router, clock, "a", 10)
    clock.now += 11  # cooldown over: a is probing
    probes = 0
    for _ in range(6):
        decision = router.decide(CTX)
        if decision.probe:
            probes += 1
            assert decision.model == "a"
            assert len(changes(events)) == 1, "a probe is not a routing change"
        router.report({"trace_id": decision.trace_id, "model": decision.model, "ok": True, "latency_ms": 30})
        clock.now += 0.6
    assert probes >= 2
    clock.now += 2
    assert router.decide(CTX).model == "a"
    assert [(c.from_model, c.to_model) for c in changes(events)] == [("a", "b"), ("b", "a")]
    assert "preferred again" in changes(events)[1].reason


def test_everything_down_is_one_change_to_the_terminal_action_and_back() -> None:
    router, clock, events = setup(fallbacks=[{"model": "b"}], terminal={"action": "human_queue", "queue": "q"})
    fail(router, clock, "a", 10)
    fail(router, clock, "b", 10)
    for _ in range(3):
        assert router.decide(CTX).status.value == "terminal"
    assert [(c.from_model, c.to_model) for c in changes(events)] == [("a", "b"), ("b", None)]
    to_terminal = changes(events)[1]
    assert to_terminal.terminal_action == "human_queue"
    assert to_terminal.to_dict()["to_model"] is None


def test_safe_mode_moves_the_route_to_a_trusted_model_once() -> None:
    raw = bundle()
    raw["models"]["a"]["trusted"] = False
    clock = Clock()
    router = Router.from_bundle(raw, clock=clock)
    events: list[Event] = []
    router.subscribe(events.append)
    router.set_safe_mode(True, reason="incident 42")
    router.set_safe_mode(True, reason="again")  # no change, no event
    assert router.decide(CTX).model == "b"
    assert [(c.from_model, c.to_model) for c in changes(events)] == [("a", "b")]
    assert "safe_mode" in changes(events)[0].reason
    assert sum(1 for e in events if e.event == "agent.routing.safe_mode") == 1


def test_a_canary_ramp_is_one_change_plus_steps() -> None:
    router, clock, events = setup(
        canary={"percent": 25, "step": "10s"},
        health={
            "min_samples": 4,
            "degraded_error_rate": 0.2,
            "error_rate": 0.9,
            "min_dwell": "1s",
            "consecutive_failures": 50,
        },
    )
    # a degrades (errors above the degraded rate, below the unhealthy one): a proactive, unforced move
    for i in range(20):
        clock.now += 0.1
        router.report({"model": "a", "ok": i % 3 != 0, "error": None if i % 3 else "server_error"})
    router.refresh()
    (change,) = changes(events)
    assert (change.from_model, change.to_model, change.canary_percent) == ("a", "b", 25)
    share = sum(router.decide({"agent": "agent", "tenant": f"t{i}"}).model == "b" for i in range(400)) / 400
    assert 0.1 < share < 0.4, share  # about 25 % of requests go to the new model at first
    clock.now += 10
    router.refresh()
    assert [e for e in events if isinstance(e, CanaryStepped)] == []  # a step needs evidence: the ramp holds
    assert 0.1 < sum(router.decide({"agent": "agent", "tenant": f"t{i}"}).model == "b" for i in range(400)) / 400 < 0.4
    for _ in range(3):
        for _ in range(4):  # min_samples good outcomes on the new model since the last step
            router.report({"model": "b", "ok": True, "latency_ms": 20})
        clock.now += 10
        router.refresh()
    steps = [e.percent for e in events if isinstance(e, CanaryStepped)]
    assert steps == [50, 100]
    assert len(changes(events)) == 1  # the ramp is one routing change
    assert all(router.decide(CTX).model == "b" for _ in range(20))


def test_a_canary_never_holds_traffic_on_an_old_model_over_its_quota() -> None:
    raw = bundle(canary={"percent": 50, "step": "10s"},
                 health={"min_samples": 4, "degraded_error_rate": 0.2, "error_rate": 0.9, "min_dwell": "1s",
                         "consecutive_failures": 50})
    raw["models"]["a"]["limits"] = {"rpm": 30}
    clock = Clock()
    router = Router.from_bundle(raw, clock=clock)
    events: list[Event] = []
    router.subscribe(events.append)
    for i in range(20):
        clock.now += 0.1
        router.report({"model": "a", "ok": i % 3 != 0, "error": None if i % 3 else "server_error"})
    router.refresh()
    assert changes(events)[0].canary_percent == 50
    for _ in range(15):  # a reaches its rpm quota (35 requests in the last minute)
        router.report({"model": "a", "ok": True, "latency_ms": 5})
    decisions = [router.decide({"agent": "agent", "tenant": f"t{i}"}) for i in range(200)]
    assert all(d.model == "b" for d in decisions)  # the canary share held on `a` is not served over quota
    assert all(any(r.model == "a" and r.reason == "quota_exhausted" for r in d.rejected) for d in decisions)
