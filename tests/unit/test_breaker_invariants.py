"""CONTRACT §2 invariants 6 and 7 through the Router, under any interleaving of requests, outcomes (traced or
not), probes, external signals and clock moves:

- a recovering model receives at most `probes` requests in each probing period, and no other request before
  the switch back to it is logged;
- the model serving a policy never changes without a RouteChanged (every decision that is not a probe goes
  to the model the route state says serves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from routeguard.core.events import Event, HealthChanged, RouteChanged
from routeguard.core.health_view import HealthState
from routeguard.runtime import Router

PROBES = 3
CTX = {"agent": "agent"}


def bundle(in_flight: int) -> dict[str, Any]:
    models = {m: {"capabilities": ["text"], "clearance": "internal"} for m in ("a", "b")}
    return {
        "models": models,
        "profiles": {"p": {"requires": ["text"], "capabilities": ["text"], "data_class": "internal"}},
        "approvals": [{"model": m, "profile": "p", "by": "gov"} for m in models],
        "policies": {
            "agent": {
                "profile": "p",
                "primary": "a",
                "fallbacks": [{"model": "b", "on": ["unavailable", "degraded", "retryable"]}],
                "timeout": "20s",
                "health": {"min_samples": 4, "consecutive_failures": 3, "cooldown": "5s", "cooldown_max": "40s",
                           "probes": PROBES, "probes_in_flight": in_flight, "min_dwell": "1s",
                           "degraded_error_rate": 0.3, "error_rate": 0.6},
            }
        },
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Op:
    kind: str  # request | outcome | advance | signal | toggle (the primary goes down / comes back)
    ok: bool
    traced: bool
    model: str
    dt: float
    status: str


ops = st.builds(
    Op,
    kind=st.sampled_from(["request", "request", "request", "outcome", "outcome", "advance", "signal", "toggle"]),
    ok=st.booleans(),
    traced=st.booleans(),
    model=st.sampled_from(["a", "b"]),
    dt=st.sampled_from([0.0, 0.2, 1.0, 3.0, 6.0, 21.0]),
    status=st.sampled_from(["up", "down", "degraded"]),
)


class Watch:
    """The serving model as the logged changes say, and the probes of each probing period."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.serving: str | None = "a"  # None: the terminal action serves
        self.period_probes: dict[str, int] = {}
        router.subscribe(self.on_event)

    def on_event(self, event: Event) -> None:
        if isinstance(event, RouteChanged) and event.scope == "all":
            assert event.from_model == self.serving  # one change per transition, from what served
            self.serving = event.to_model
            if event.to_model is not None:
                self.period_probes.pop(event.to_model, None)
        elif isinstance(event, HealthChanged) and event.to_state == "unhealthy":
            self.period_probes.pop(event.model, None)  # a new probing period, a new budget

    def request(self) -> tuple[str, str] | None:
        decision = self.router.decide(CTX)
        model = decision.model
        if model is None:
            assert decision.status.value == "terminal"
            return None
        if decision.probe:
            if self.router.tracker.peek_state("agent", model) is HealthState.PROBING:
                self.period_probes[model] = self.period_probes.get(model, 0) + 1
                assert self.period_probes[model] <= PROBES, "a recovering model got more than `probes` requests"
        else:
            assert model == self.serving, f"{model} served without a logged change (serving {self.serving})"
        return decision.trace_id, model


def run(stream: list[Op], in_flight: int) -> None:
    clock = Clock()
    router = Router.from_bundle(bundle(in_flight), clock=clock)
    watch = Watch(router)
    pending: list[tuple[str, str]] = []  # (trace, model) of requests whose outcome is owed
    down = False
    for op in stream:
        if op.kind == "toggle":
            down = not down
        elif op.kind == "advance":
            clock.now += op.dt
            router.refresh()
        elif op.kind == "signal":
            router.signal(op.model, op.status, ttl_s=30.0, source=f"src-{op.model}")
        elif op.kind == "request":
            served = watch.request()
            if served is not None:
                pending.append(served)
        elif pending:
            trace, model = pending.pop(-1 if op.ok else 0)
            ok = not (down and model == "a")
            outcome: dict[str, Any] = {"model": model, "ok": ok, "latency_ms": 50}
            if not ok:
                outcome["error"] = "server_error"
            if op.traced:
                outcome["trace_id"] = trace
            clock.now += op.dt / 10
            router.report(outcome)
        else:
            router.report({"model": op.model, "ok": op.ok, "error": None if op.ok else "overloaded"})


@settings(max_examples=600, deadline=None)
@given(st.lists(ops, min_size=1, max_size=120), st.sampled_from([1, 2, 3]))
def test_a_recovering_model_gets_at_most_probes_requests_and_nothing_changes_unlogged(
    stream: list[Op], in_flight: int
) -> None:
    run(stream, in_flight)


def test_an_outage_and_recovery_without_trace_ids_logs_the_switch_back_before_traffic_returns() -> None:
    clock = Clock()
    router = Router.from_bundle(bundle(1), clock=clock)
    watch = Watch(router)
    for _ in range(3):
        router.report({"model": "a", "ok": False, "error": "overloaded"})
    assert router.decide(CTX).model == "b" and watch.serving == "b"
    clock.now += 5.0
    reached_a = 0
    for _ in range(50):  # untraced successes close the probing period: never stuck in probing
        decision = router.decide(CTX)
        if decision.model == "a":
            reached_a += 1
            router.report({"model": "a", "ok": True, "latency_ms": 30})
        if watch.serving == "a":
            break
    assert watch.serving == "a" and reached_a == PROBES


def test_the_probe_budget_holds_with_several_probes_in_flight() -> None:
    clock = Clock()
    router = Router.from_bundle(bundle(3), clock=clock)
    watch = Watch(router)
    for _ in range(3):
        router.report({"model": "a", "ok": False, "error": "overloaded"})
    assert router.decide(CTX).model == "b"
    clock.now += 5.0
    first = [router.decide(CTX) for _ in range(3)]
    assert [(d.model, d.probe) for d in first] == [("a", True)] * 3  # three permits, three in flight
    router.report({"model": "a", "ok": True})
    later = [router.decide(CTX) for _ in range(5)]  # a slot is free but the budget is spent
    assert {(d.model, d.probe) for d in later} == {("b", False)}
    router.report({"model": "a", "ok": True})
    assert watch.serving == "b"
    router.report({"model": "a", "ok": True})  # the third success: the switch back is logged now
    assert watch.serving == "a"
    assert (router.decide(CTX).model, router.decide(CTX).probe) == ("a", False)
