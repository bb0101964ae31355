"""Deployment health on the Router (CONTRACT §1 ``deployments``): each deployment on its own breaker under the
policy's thresholds, the model unhealthy only when no deployment can serve, decisions naming a deployment
(weighted, region first, only healthy ones), outcomes naming one, and the executor failing over inside the model
before any fallback."""

from __future__ import annotations

import random
from typing import Any

import pytest

from routeguard import Router
from routeguard.core.context import RoutingError
from routeguard.core.deployment import Spot, choose, deployment_key, split_key
from routeguard.core.events import Event, FallbackUsed, HealthChanged
from routeguard.core.outcome import Outcome
from routeguard.execution.providers import FakeProvider
from support.service import today_plus

REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def raw_bundle() -> dict[str, Any]:
    expires = today_plus(365).isoformat()
    model = {"provider": "acme", "capabilities": ["text"], "clearance": "internal",
             "regions": ["eu-west-2", "eu-central-1"]}
    ep = {"type": "openai", "base_url": "http://127.0.0.1:1/v1"}
    return {
        "models": {
            "triage": {**model, "endpoint": {**ep, "model": "a"},
                       "deployments": [{"name": "london-2", "endpoint": {**ep, "model": "b"}, "regions": ["eu-west-2"]},
                                       {"name": "frankfurt", "endpoint": {**ep, "model": "c"},
                                        "regions": ["eu-central-1"], "weight": 2}]},
            "backup": {**model, "endpoint": {**ep, "model": "z"}},
        },
        "profiles": {"p": {"requires": ["text"], "data_class": "internal"}},
        "approvals": [{"model": m, "profile": "p", "by": "gov", "evidence": "E", "expires": expires}
                      for m in ("triage", "backup")],
        "policies": {"agent": {"profile": "p", "primary": "triage", "fallbacks": ["backup"], "retry": {"attempts": 1},
                               "health": {"min_samples": 1000, "consecutive_failures": 3}}},
    }


def make_router() -> tuple[Router, Clock, list[Event]]:
    clock = Clock()
    router = Router.from_bundle(raw_bundle(), clock=clock)
    events: list[Event] = []
    router.subscribe(events.append)
    return router, clock, events


def states(router: Router) -> tuple[str, dict[str, str]]:
    entry = router.health()["triage"]
    deps = {d: v["policies"].get("agent", {"state": "healthy"})["state"] for d, v in entry["deployments"].items()}
    return entry["policies"].get("agent", {"state": "healthy"})["state"], deps


def fail(deployment: str) -> Outcome:
    return Outcome(model="triage", ok=False, error="overloaded", deployment=deployment, policy="agent")


def test_keys_and_weighted_choice() -> None:
    assert split_key(deployment_key("m", "d")) == ("m", "d") and split_key("m") == ("m", None)
    spots = (Spot("main", None, 1), Spot("eu", frozenset({"eu-west-2"}), 3), Spot("off", None, 0))
    assert choose(spots, "eu-west-2", lambda _n: True, 0.0) == "main"
    assert choose(spots, "eu-west-2", lambda _n: True, 0.5) == "eu"
    assert choose(spots, "us-east-1", lambda _n: True, 0.9) == "main"  # 'eu' runs elsewhere, 'off' is drained
    assert choose(spots, None, lambda n: n == "off", 0.5) is None


def test_outcome_and_decision_carry_the_deployment() -> None:
    out = Outcome.from_dict({"model": "triage", "ok": True, "deployment": "london-2"})
    assert out.deployment == "london-2"
    with pytest.raises(RoutingError, match="deployment"):
        Outcome.from_dict({"model": "triage", "ok": True, "deployment": ""})
    router, _clock, _events = make_router()
    decision = router.decide({"agent": "agent", "region": "eu-central-1"})
    assert decision.to_dict()["deployment"] in ("main", "frankfurt")
    named = {router.decide({"agent": "agent", "region": "eu-west-2"}).deployment for _ in range(50)}
    assert named == {"main", "london-2"}


def test_one_deployment_failing_never_ejects_the_model_all_failing_does() -> None:
    router, _clock, events = make_router()
    for _ in range(3):
        router.report(fail("london-2"))
    model_state, deps = states(router)
    assert model_state == "healthy" and deps["london-2"] == "unhealthy"
    moved = [e for e in events if isinstance(e, HealthChanged)]
    assert [(e.model, e.deployment, e.to_state) for e in moved] == [("triage", "london-2", "unhealthy")]
    assert {router.decide({"agent": "agent", "region": "eu-west-2"}).deployment for _ in range(20)} == {"main"}
    for _ in range(3):
        router.report(fail("main"))
    assert states(router)[0] == "healthy"  # frankfurt can still serve
    for _ in range(3):
        router.report(fail("frankfurt"))  # the third leaves none able to serve: it counts for the model
    assert states(router)[0] == "healthy"  # one model-level failure so far (consecutive_failures: 3)
    for _ in range(2):
        router.report(fail("frankfurt"))
    assert states(router)[0] == "unhealthy"
    decision = router.decide({"agent": "agent"})
    assert decision.model == "backup" and "deployment" not in decision.to_dict()  # backup has no deployments


async def test_executor_fails_over_inside_the_model_then_falls_back() -> None:
    router, _clock, events = make_router()
    a, b, c = FakeProvider("a", default="overloaded"), FakeProvider("b"), FakeProvider("c")
    backup = FakeProvider("z")
    sets = router.executor.providers
    sets.register("backup", backup)
    triage = router.table.bundle.models["triage"]
    ds = sets.get(triage)
    for member, provider in zip(ds.members, (a, b, c), strict=True):  # type: ignore[attr-defined]
        member.provider = provider
    ds._rng = random.Random(3)  # type: ignore[attr-defined]
    for _ in range(30):
        _completion, served = await router.executor.complete_served(
            router.context({"agent": "agent", "region": "eu-west-2"}), REQUEST)
        assert (served.model, served.deployment) == ("triage", "london-2")
    assert a.calls == 3 and backup.calls == 0  # main's own breaker left it out after three failures
    assert states(router) == ("healthy", {"main": "unhealthy", "london-2": "healthy", "frankfurt": "healthy"})
    b.default = "overloaded"
    _completion, served = await router.executor.complete_served(
        router.context({"agent": "agent", "region": "eu-west-2"}), REQUEST)
    assert served.model == "backup" and backup.calls == 1
    hops = [e for e in events if isinstance(e, FallbackUsed)]
    assert [(e.from_model, e.from_deployment) for e in hops] == [("triage", "london-2")]
