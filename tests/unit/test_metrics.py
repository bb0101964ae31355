"""RoutingMetrics: names, labels and values scraped from `render()` (CONTRACT §5); no tenant/trace labels."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from bundles import NOW, approve, model
from prometheus_client.parser import text_string_to_metric_families

from routeguard import Router
from routeguard.core.context import SafeMode
from routeguard.core.decision import Decision, DecisionStatus
from routeguard.core.events import (
    FallbackUsed,
    HealthChanged,
    RouteChanged,
    SafeModeChanged,
    TerminalEngaged,
)
from routeguard.execution.executor import Served
from routeguard.execution.providers import FakeProvider
from routeguard.telemetry.metrics import RoutingMetrics

P = "triage-agent"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def decision(status: str = "primary", model_name: str | None = "triage-v3", policy: str = P) -> Decision:
    return Decision(
        trace_id="trace-0123456789", policy=policy, policy_version=3, policy_hash="sha256:x",
        status=DecisionStatus(status), model=model_name, arm=None, backups=("triage-v2",), degraded=False,
        safe_mode=False, terminal=None, terminal_reason=None, cost_estimate_usd=None, rejected=(),
        tenant="acme-secret-tenant",
    )


def scrape(metrics: RoutingMetrics) -> Samples:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_decisions_requests_fallbacks_and_hit_rate() -> None:
    m = RoutingMetrics()
    first = decision()
    m.observe_decision(first, 0.00004)
    m.observe_decision(decision("fallback", "triage-v2"), 0.00012)
    m.observe_served(Served(first, "triage-v3", 1, fell_back=False))
    m.observe_served(Served(first, "triage-v3", 1, fell_back=False))
    m.observe_served(Served(first, "triage-v2", 2, fell_back=True))
    m.observe_served(Served(first, None, 2, fell_back=True, terminal="human_queue"))
    m.observe_failed(P, "triage-v3", fell_back=True)
    s = scrape(m)
    assert value(s, "agent_routing_decisions_total", policy=P, status="primary") == 1
    assert value(s, "agent_routing_decisions_total", policy=P, status="fallback") == 1
    assert value(s, "agent_routing_decision_latency_seconds_count", policy=P) == 2
    assert value(s, "agent_routing_decision_latency_seconds_bucket", policy=P, le="5e-05") == 1
    assert value(s, "agent_routing_decision_latency_seconds_bucket", policy=P, le="0.00025") == 2
    assert value(s, "agent_routing_requests_total", policy=P, model="triage-v3", outcome="primary") == 2
    assert value(s, "agent_routing_requests_total", policy=P, model="triage-v2", outcome="fallback") == 1
    assert value(s, "agent_routing_requests_total", policy=P, model="none", outcome="terminal") == 1
    assert value(s, "agent_routing_requests_total", policy=P, model="none", outcome="error") == 1
    fb = "agent_routing_fallback_total"
    assert value(s, fb, policy=P, from_model="triage-v3", result="succeeded") == 1
    assert value(s, fb, policy=P, from_model="triage-v3", result="failed") == 2
    assert value(s, "agent_routing_hit_rate", policy=P) == 2 / 5


def test_hit_rate_is_a_sliding_window() -> None:
    clock = Clock()
    m = RoutingMetrics(hit_window_s=300, hit_window_max=4, clock=clock)
    first = decision()
    for _ in range(3):
        m.observe_served(Served(first, "triage-v2", 2, fell_back=True))
    assert value(scrape(m), "agent_routing_hit_rate", policy=P) == 0.0
    clock.now += 200
    for _ in range(3):
        m.observe_served(Served(first, "triage-v3", 1, fell_back=False))
    assert value(scrape(m), "agent_routing_hit_rate", policy=P) == 3 / 4  # at most the last 4 requests
    clock.now += 150  # the misses are older than 300 s now
    assert value(scrape(m), "agent_routing_hit_rate", policy=P) == 1.0
    clock.now += 301
    assert value(scrape(m), "agent_routing_hit_rate", policy=P) is None  # no requests: no series


def test_events_health_safe_mode_publish_and_outbox_age() -> None:
    m = RoutingMetrics()
    m.observe_event(RouteChanged(P, "all", "triage-v3", "triage-v2", "unhealthy", {}, 300.0, NOW))
    m.observe_event(TerminalEngaged(P, "human_queue", "no model", NOW, "trace-1", tenant="acme-tenant"))
    m.observe_event(FallbackUsed(P, "triage-v3", None, "timeout", NOW, "trace-2"))
    m(HealthChanged(P, "triage-v3", "healthy", "unhealthy", "error_rate", NOW))  # callable as a sink
    m.observe_event(HealthChanged(P, "triage-v2", "healthy", "stale", "signal expired", NOW))
    m.observe_event(SafeModeChanged(True, "incident", NOW))
    m.observe_event(SafeModeChanged(True, "tenant incident", NOW, tenant="acme-secret-tenant"))
    m.observe_event(SafeModeChanged(True, "tenant incident", NOW, tenant="globex"))
    m.observe_publish(0.12, ok=True)
    m.observe_publish(0.5, ok=False)
    m.set_outbox_age(42.5)
    s = scrape(m)
    assert value(s, "agent_routing_routing_changes_total", policy=P) == 1
    assert value(s, "agent_routing_terminal_total", policy=P, action="human_queue") == 1
    assert value(s, "agent_routing_fallback_hops_total", policy=P, from_model="triage-v3",
                 error_class="timeout") == 1
    assert value(s, "agent_routing_model_health", policy=P, model="triage-v3") == 3
    assert value(s, "agent_routing_model_health", policy=P, model="triage-v2") == 1
    assert value(s, "agent_routing_safe_mode_active", scope="global") == 1
    assert value(s, "agent_routing_safe_mode_active", scope="tenants") == 2
    assert value(s, "agent_routing_policy_publish_latency_seconds_count") == 1
    assert value(s, "agent_routing_policy_publish_failures_total") == 1
    assert value(s, "agent_routing_notification_outbox_age_seconds") == 42.5
    m.set_safe_mode(SafeMode(False, frozenset({"globex"})))
    m.sync_health({"triage-v3": {"policies": {P: {"state": "probing"}}}, "x": {"policies": {}}})
    s = scrape(m)
    assert value(s, "agent_routing_safe_mode_active", scope="global") == 0
    assert value(s, "agent_routing_safe_mode_active", scope="tenants") == 1
    assert value(s, "agent_routing_model_health", policy=P, model="triage-v3") == 2


def test_no_tenant_or_trace_label_or_value_is_ever_exported() -> None:
    m = RoutingMetrics()
    d = decision()
    m.observe_decision(d, 0.001)
    m.observe_served(Served(d, "triage-v3", 1, fell_back=False))
    m.observe_event(TerminalEngaged(P, "suspend", "x", NOW, "trace-0123456789", tenant="acme-secret-tenant"))
    m.observe_event(SafeModeChanged(True, "x", NOW, tenant="acme-secret-tenant"))
    body = m.render()[0].decode()
    assert "acme-secret-tenant" not in body and "trace-0123456789" not in body
    labels = {k for (_n, pairs) in scrape(m) for k, _v in pairs}
    assert labels <= {"policy", "model", "from_model", "status", "result", "action", "outcome", "scope",
                      "error_class", "notifier", "le"}


def test_contract_names_are_exposed_on_a_dedicated_registry() -> None:
    from prometheus_client import REGISTRY

    m = RoutingMetrics()
    names = m.sample_names()
    for name in ("agent_routing_decisions_total", "agent_routing_decision_latency_seconds_bucket",
                 "agent_routing_fallback_total", "agent_routing_hit_rate", "agent_routing_safe_mode_active",
                 "agent_routing_policy_publish_latency_seconds_bucket", "agent_routing_model_health",
                 "agent_routing_notification_outbox_age_seconds", "agent_routing_routing_changes_total",
                 "agent_routing_terminal_total", "agent_routing_requests_total",
                 "agent_routing_policy_publish_failures_total"):
        assert name in names
    assert REGISTRY.get_sample_value("agent_routing_decisions_total") is None  # not on the global registry
    RoutingMetrics()  # a second instance does not collide


def _bundle() -> dict[str, Any]:
    return {
        "models": {n: model("text") for n in ("a", "b")},
        "profiles": {"p": {"requires": ["text"], "data_class": "confidential", "regions": ["eu"]}},
        "approvals": [approve("a"), approve("b")],
        "policies": {"agent": {"profile": "p", "primary": "a", "fallbacks": ["b"],
                               "health": {"consecutive_failures": 100, "min_samples": 100}}},
    }


async def test_wired_to_a_router_and_executor() -> None:
    async def no_sleep(_s: float) -> None:
        await asyncio.sleep(0)

    router = Router.from_bundle(_bundle(), clock=lambda: NOW,
                                executor_options={"sleep": no_sleep, "rng": random.Random(0)})
    m = RoutingMetrics()
    router.subscribe(m.observe_event)
    router.executor.observers.append(m.observe_served)
    router.executor.register("a", FakeProvider("a", ["server_error", "server_error"]))
    router.executor.register("b", FakeProvider("b", []))
    request = {"messages": [{"role": "user", "content": "hi"}]}
    _completion, served = await router.executor.complete_served(router.context({"agent": "agent"}), request)
    assert served.model == "b"
    s = scrape(m)
    assert value(s, "agent_routing_fallback_total", policy="agent", from_model="a", result="succeeded") == 1
    assert value(s, "agent_routing_fallback_hops_total", policy="agent", from_model="a",
                 error_class="server_error") == 1
    assert value(s, "agent_routing_requests_total", policy="agent", model="b", outcome="fallback") == 1
    assert value(s, "agent_routing_hit_rate", policy="agent") == 0.0
