"""GET /metrics after a scripted outage through the proxy, parsed with prometheus_client's own parser:
decisions, fallbacks, hit rate, model health, safe mode, publish latency — and never a tenant label."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from support.proxy import AGENT, MESSAGES, UP, poll, proxy_bundle, proxy_service
from support.upstream import UpstreamServer, overloaded


def scrape(url: str) -> list[Sample]:
    r = httpx.get(url + "/metrics", timeout=30)  # no auth
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(r.text) for s in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples called `name` whose labels include `labels`."""
    found = [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert found, f"no sample {name}{labels}"
    return sum(s.value for s in found)


def test_metrics_after_a_scripted_outage(tmp_path: Path, upstream: UpstreamServer) -> None:
    upstream.set(UP["alpha"], overloaded())
    with proxy_service(tmp_path, upstream) as px:
        for i in range(10):
            tenant = f"tenant-{i}"
            px.client.chat.completions.create(model=AGENT, messages=MESSAGES, metadata={"tenant": tenant})
        with px.http() as http:
            assert http.post("/v1/route", json={"agent": AGENT, "tenant": "acme"}).status_code == 200
            samples = scrape(px.svc.url)
            primary = value(samples, "agent_routing_decisions_total", policy=AGENT, status="primary")
            fallback = value(samples, "agent_routing_decisions_total", policy=AGENT, status="fallback")
            assert (primary, fallback) == (3, 8)  # alpha chosen until declared down (3 calls), then beta
            assert value(samples, "agent_routing_decision_latency_seconds_count", policy=AGENT) == 11
            assert value(samples, "agent_routing_fallback_total", policy=AGENT, from_model="alpha",
                         result="succeeded") == 3
            assert value(samples, "agent_routing_requests_total", policy=AGENT, model="beta") == 10
            # hit: served by the first model its decision chose — missed by the 3 requests alpha failed
            assert value(samples, "agent_routing_hit_rate", policy=AGENT) == 0.7
            assert value(samples, "agent_routing_model_health", policy=AGENT, model="alpha") == 3  # unhealthy
            assert value(samples, "agent_routing_routing_changes_total", policy=AGENT) == 1
            assert value(samples, "agent_routing_safe_mode_active", scope="global") == 0
            assert all("tenant" not in s.labels for s in samples)
            assert not any("tenant-" in str(s.labels) or "acme" in str(s.labels) for s in samples)

            on = http.post("/v1/safe-mode", json={"enabled": True, "reason": "drill"})
            assert on.status_code == 200, on.text
            assert value(scrape(px.svc.url), "agent_routing_safe_mode_active", scope="global") == 1

            bob = {"x-routeguard-principal": "bob"}
            upload = http.post("/v1/policies", json={"config": proxy_bundle(upstream.base_url)},
                               headers={"x-routeguard-principal": "alice"})
            version = upload.json()["version"]
            assert http.post(f"/v1/policies/{version}/approve", json={}, headers=bob).status_code == 200
            assert http.post(f"/v1/policies/{version}/publish", json={}, headers=bob).status_code == 200
            after = scrape(px.svc.url)
            assert value(after, "agent_routing_policy_publish_latency_seconds_count") == 1
            # the ticker keeps model health in step with the tracker
            poll(lambda: value(scrape(px.svc.url), "agent_routing_model_health", policy=AGENT, model="beta") == 0,
                 "beta reported healthy")
