"""Outcome quality as a health signal (AG-163 4.8), `limits.tpm` counting served tokens, operator overrides,
per-source signals."""

from __future__ import annotations

from typing import Any

import pytest

from routeguard.core.events import Event, RouteChanged
from routeguard.execution.providers.fake import FakeProvider, Step
from routeguard.runtime import Router

CTX = {"agent": "agent"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


def bundle(health: dict[str, Any] | None = None, limits: dict[str, Any] | None = None) -> dict[str, Any]:
    models: dict[str, Any] = {m: {"capabilities": ["text"], "clearance": "internal", "endpoint": {"type": "fake"}}
                              for m in ("a", "b")}
    if limits:
        models["a"]["limits"] = limits
    return {
        "models": models,
        "profiles": {"p": {"requires": ["text"], "capabilities": ["text"], "data_class": "internal"}},
        "approvals": [{"model": m, "profile": "p", "by": "gov"} for m in models],
        "policies": {
            "agent": {
                "profile": "p",
                "primary": "a",
                "fallbacks": [{"model": "b", "on": ["unavailable", "degraded", "retryable"]}],
                "health": health or {"min_dwell": "1s"},
            }
        },
    }


def setup(**kw: Any) -> tuple[Router, Clock, list[Event]]:
    clock = Clock()
    router = Router.from_bundle(bundle(**kw), clock=clock)
    events: list[Event] = []
    router.subscribe(events.append)
    return router, clock, events


def test_thirty_low_quality_outcomes_move_traffic_to_the_fallback_with_reason_quality() -> None:
    router, clock, events = setup(health={"quality": {"min": 0.8, "min_samples": 20}, "min_dwell": "1s"})
    for i in range(30):
        clock.now += 0.1
        router.report({"model": "a", "ok": True, "latency_ms": 100, "quality": 0.2})
        if i == 18:  # below min_samples scored outcomes the figure is not judged
            assert router.decide(CTX).model == "a"
    decision = router.decide(CTX)
    assert decision.model == "b"
    (rejection,) = [r for r in decision.rejected if r.model == "a"]
    assert rejection.reason == "quality" and "quality 0.20 < 0.80" in rejection.detail
    (change,) = [e for e in events if isinstance(e, RouteChanged)]
    assert (change.from_model, change.to_model) == ("a", "b") and "quality" in change.reason


def test_quality_recovers_on_evidence_past_the_hysteresis_bar() -> None:
    router, clock, _ = setup(health={"quality": {"min": 0.8, "min_samples": 10}, "min_dwell": "1s",
                                     "window": "30s"})
    for _ in range(10):
        clock.now += 0.1
        router.report({"model": "a", "ok": True, "quality": 0.3})
    assert router.decide(CTX).model == "b"
    clock.now += 31  # the bad scores age out, but silence is not evidence: still degraded, probed for scores
    decision = router.decide(CTX)
    assert decision.model == "b" or decision.probe
    for _ in range(12):  # probes of a degraded model bring fresh scores, above the hysteresis bar (0.9)
        clock.now += 0.5
        router.report({"model": "a", "ok": True, "quality": 0.95})
    clock.now += 1
    assert router.decide(CTX).model == "a"


@pytest.mark.parametrize("quality", [1.5, -0.1, float("nan")])
def test_quality_outside_0_1_is_refused_before_anything_counts(quality: float) -> None:
    router, _, _ = setup()
    with pytest.raises(ValueError, match="quality"):
        router.report({"model": "a", "ok": True, "quality": quality})
    assert router.health()["a"]["figures"] is None  # nothing was counted


async def test_tpm_counts_the_tokens_of_served_calls_from_the_upstream_usage() -> None:
    router, _, _ = setup(limits={"tpm": 1000})
    router.executor.register("a", FakeProvider("a", default=Step(prompt_tokens=300, completion_tokens=150)))
    router.executor.register("b", FakeProvider("b"))
    request = {"messages": [{"role": "user", "content": "hi"}]}
    ctx = {**CTX, "estimated_tokens": {"input": 300, "output": 150}}
    served = [(await router.complete(ctx, request))["model"] for _ in range(3)]
    assert router.health()["a"]["figures"]["tokens_last_min"] >= 900
    assert served[:2] == ["a", "a"] and served[2] == "b"  # the third would pass 1000 tokens in the minute
    decision = router.decide(ctx)
    assert any(r.model == "a" and r.reason == "quota_exhausted" for r in decision.rejected)


def test_signals_are_kept_per_source_and_the_worst_unexpired_one_wins() -> None:
    router, clock, _ = setup()
    router.signal("a", "down", ttl_s=600, source="registry")
    router.signal("a", "up", ttl_s=600, source="statuspage")
    assert router.decide(CTX).model == "b"  # down from one source beats up from another
    assert router.withdraw_signal("a", "registry")
    assert not router.withdraw_signal("a", "registry")
    clock.now += 1
    decision = router.decide(CTX)
    assert decision.model == "a" and decision.probe  # up from statuspage: the cooldown of a signal ends, probing


def test_an_operator_override_ends_a_cooldown_at_once() -> None:
    router, clock, _ = setup(health={"cooldown": "5m", "min_dwell": "1s"})
    for _ in range(5):
        router.report({"model": "a", "ok": False, "error": "server_error"})
    assert router.decide(CTX).model == "b"
    clock.now += 10
    assert router.decide(CTX).model == "b"  # 5 minutes of cooldown left
    router.signal("a", "up", ttl_s=60, source="ops", override=True)
    decision = router.decide(CTX)
    assert decision.model == "a" and decision.probe


def test_a_signal_ttl_beyond_24h_is_refused() -> None:
    router, _, _ = setup()
    with pytest.raises(ValueError, match="ttl"):
        router.signal("a", "down", ttl_s=1e23, source="ops")
