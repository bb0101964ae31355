"""Deployments through the proxy (the `openai` SDK onto the fake upstream): one model, several endpoints —
the deployment that answered in `x-routeguard-deployment`, failover inside the model before any fallback,
residency per deployment, the fallback only when no deployment can serve; each deployment's own breaker (the
policy's thresholds: 3 failures in a row), the model ejected only when every deployment fails, and decisions,
outcomes, the ledger, metrics and the audit naming the deployment."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from routeguard.core.findings import BundleError
from routeguard.core.parse import parse_bundle
from support.service import Service, run_service, today_plus, write_bundle
from support.upstream import UpstreamServer, overloaded

MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def bundle(url: str) -> dict[str, Any]:
    expires = today_plus(365).isoformat()
    model = {"provider": "acme", "capabilities": ["text"], "clearance": "internal",
             "regions": ["eu-west-2", "eu-central-1"]}
    return {
        "models": {
            "triage": {**model, "endpoint": {"type": "openai", "base_url": url, "model": "tri-main"},
                       "deployments": [
                           {"name": "london-2", "endpoint": {"type": "openai", "base_url": url, "model": "tri-b"},
                            "regions": ["eu-west-2"]},
                           {"name": "frankfurt", "endpoint": {"type": "openai", "base_url": url, "model": "tri-de"},
                            "regions": ["eu-central-1"], "weight": 2},
                           {"name": "drained", "endpoint": {"type": "openai", "base_url": url, "model": "tri-x"},
                            "weight": 0}]},
            "backup": {**model, "endpoint": {"type": "openai", "base_url": url, "model": "backup-up"}},
        },
        "profiles": {"p": {"requires": ["text"], "data_class": "internal"}},
        "approvals": [{"model": m, "profile": "p", "by": "gov", "evidence": "E", "expires": expires}
                      for m in ("triage", "backup")],
        "policies": {"agent": {"profile": "p", "primary": "triage", "fallbacks": ["backup"], "retry": {"attempts": 1},
                               "health": {"min_samples": 1000, "consecutive_failures": 3}}},
    }


@pytest.fixture
def svc(tmp_path: Path, upstream: UpstreamServer) -> Iterator[tuple[Service, openai.OpenAI]]:
    config = write_bundle(tmp_path / "bundle.yaml", bundle(upstream.base_url))
    with run_service(f"sqlite:///{tmp_path / 'store.db'}", config=config) as service:
        client = openai.OpenAI(base_url=service.url + "/v1", api_key="x", max_retries=0)
        yield service, client
        client.close()


def ask(client: openai.OpenAI, region: str | None = None) -> dict[str, str]:
    extra = {"x-routeguard-region": region} if region else {}
    raw = client.chat.completions.with_raw_response.create(model="agent", messages=MESSAGES, extra_headers=extra)
    assert raw.parse().choices[0].message.content == "Hello from upstream"
    return dict(raw.headers)


def test_spread_over_deployments_names_the_one_that_answered(svc: tuple[Service, openai.OpenAI],
                                                            upstream: UpstreamServer) -> None:
    _, client = svc
    seen = {ask(client)["x-routeguard-deployment"] for _ in range(40)}
    assert seen == {"main", "london-2", "frankfurt"}
    raw = client.chat.completions.with_raw_response.create(model="agent", messages=MESSAGES, stream=True,
                                                           extra_headers={"x-routeguard-region": "eu-central-1"})
    assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices) == "Hello from upstream"
    assert raw.headers["x-routeguard-deployment"] in ("main", "frankfurt")
    assert upstream.count("tri-x") == 0 and upstream.count("backup-up") == 0


def test_residency_per_deployment(svc: tuple[Service, openai.OpenAI], upstream: UpstreamServer) -> None:
    _, client = svc
    for _ in range(20):
        assert ask(client, "eu-central-1")["x-routeguard-deployment"] in ("main", "frankfurt")
    assert upstream.count("tri-b") == 0


def test_failover_inside_the_model_before_any_fallback(svc: tuple[Service, openai.OpenAI],
                                                       upstream: UpstreamServer) -> None:
    _, client = svc
    upstream.set("tri-main", overloaded())
    for _ in range(40):
        headers = ask(client, "eu-central-1")
        assert headers["x-routeguard-model"] == "triage" and headers["x-routeguard-deployment"] == "frankfurt"
        assert headers["x-routeguard-fallback"] == "false"
    assert upstream.count("backup-up") == 0
    assert upstream.count("tri-main") == 3  # its own breaker left it out after three failures in a row


def test_fallback_only_when_no_deployment_can_serve(svc: tuple[Service, openai.OpenAI],
                                                    upstream: UpstreamServer) -> None:
    _, client = svc
    upstream.set("tri-main", overloaded())
    upstream.set("tri-b", overloaded())
    headers = ask(client, "eu-west-2")
    assert headers["x-routeguard-model"] == "backup" and headers["x-routeguard-fallback"] == "true"
    assert "x-routeguard-deployment" not in headers
    assert upstream.count("tri-main") == 1 and upstream.count("tri-b") == 1 and upstream.count("tri-de") == 0


def test_deployment_regions_must_lie_inside_the_model_regions() -> None:
    raw = bundle("http://127.0.0.1:1/v1")
    raw["models"]["triage"]["deployments"][0]["regions"] = ["us-east-1"]
    raw["models"]["triage"]["deployments"][1]["name"] = "main"
    with pytest.raises(BundleError) as info:
        parse_bundle(raw)
    found = {(f.code, f.path) for f in info.value.findings}
    assert ("region_not_allowed", "models.triage.deployments[0].regions") in found
    assert ("schema", "models.triage.deployments[1].name") in found


def _eventually(check: Any, timeout_s: float = 5.0) -> Any:
    """Poll ``check`` until it returns something truthy (the audit and the ledger are written off the request)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def _states(http: httpx.Client) -> tuple[str, dict[str, str]]:
    """triage's state under `agent`, and each of its deployments' states, from GET /v1/health."""
    triage = http.get("/v1/health").json()["models"]
    entry = next(m for m in triage if m["model"] == "triage") if isinstance(triage, list) else triage["triage"]
    deployments = {d: v["policies"]["agent"]["state"] for d, v in entry["deployments"].items() if v["policies"]}
    return entry["policies"].get("agent", {"state": "healthy"})["state"], deployments  # no outcomes yet: healthy


def test_one_failing_deployment_is_ejected_alone_and_named_everywhere(
        svc: tuple[Service, openai.OpenAI], upstream: UpstreamServer) -> None:
    service, client = svc
    upstream.set("tri-main", overloaded())
    for _ in range(40):
        assert ask(client, "eu-central-1")["x-routeguard-deployment"] == "frankfurt"
    with service.client() as http:
        model_state, deployments = _states(http)
        assert model_state == "healthy"  # one deployment failing never ejects the model
        assert deployments["main"] == "unhealthy" and deployments.get("frankfurt", "healthy") == "healthy"
        decision = http.post("/v1/route", json={"agent": "agent", "region": "eu-central-1"}).json()
        assert decision["model"] == "triage" and decision["deployment"] == "frankfurt"  # main is out
        metrics = http.get("/metrics").text
        assert 'agent_routing_deployment_health{deployment="main",model="triage",policy="agent"} 3.0' in metrics
        assert re.search(r'agent_routing_deployment_requests_total\{deployment="frankfurt",model="triage",'
                         r'policy="agent"\} 40\.0', metrics)

        def ejected() -> list[dict[str, Any]]:
            records = http.get("/v1/audit", params={"kind": "health.changed"}).json()["records"]
            return [r for r in records if r.get("deployment") == "main" and r.get("to_state") == "unhealthy"]

        assert [r["model"] for r in _eventually(ejected)] == ["triage"]
        service.state.ledger.flush()
        rows = [json.loads(line) for line in
                http.get("/v1/outcomes/export", params={"format": "jsonl"}).text.splitlines()]
        served = [r for r in rows if r["model"] == "triage" and r["ok"]]
        assert len(served) == 40 and {r["deployment"] for r in served} == {"frankfurt"}


def test_model_ejected_only_when_every_deployment_fails(svc: tuple[Service, openai.OpenAI],
                                                       upstream: UpstreamServer) -> None:
    service, client = svc
    upstream.set("tri-main", overloaded())
    upstream.set("tri-b", overloaded())  # eu-west-2 is served by main and london-2 only
    for _ in range(6):
        headers = ask(client, "eu-west-2")
        assert headers["x-routeguard-model"] == "backup" and headers["x-routeguard-fallback"] == "true"
    assert upstream.count("tri-main") == 3 and upstream.count("tri-b") == 3  # then the model was out
    with service.client() as http:
        model_state, deployments = _states(http)
        assert model_state == "unhealthy"
        assert deployments["main"] == deployments["london-2"] == "unhealthy"

        def fallbacks() -> list[dict[str, Any]]:
            return [r for r in http.get("/v1/audit", params={"kind": "health.changed"}).json()["records"]
                    if r.get("deployment") is None and r.get("model") == "triage" and r.get("to_state") == "unhealthy"]

        assert _eventually(fallbacks)


def test_outcomes_name_the_deployment(svc: tuple[Service, openai.OpenAI]) -> None:
    service, _client = svc
    with service.client() as http:
        named = {http.post("/v1/route", json={"agent": "agent", "region": "eu-west-2"}).json()["deployment"]
                 for _ in range(30)}
        assert named == {"main", "london-2"}  # weighted over the healthy ones in the request's region
        failure = {"model": "triage", "ok": False, "error": "overloaded", "deployment": "london-2", "policy": "agent"}
        assert http.post("/v1/outcomes", json=[failure] * 3).status_code == 202
        model_state, deployments = _states(http)
        assert (model_state, deployments["london-2"]) == ("healthy", "unhealthy")
        named = {http.post("/v1/route", json={"agent": "agent", "region": "eu-west-2"}).json()["deployment"]
                 for _ in range(10)}
        assert named == {"main"}
        bad = http.post("/v1/outcomes", json={**failure, "deployment": "nowhere"})
        assert bad.status_code == 422 and "deployment" in bad.json()["error"]["message"]
        service.state.ledger.flush()
        rows = [json.loads(line) for line in
                http.get("/v1/outcomes/export", params={"format": "jsonl"}).text.splitlines()]
        assert [r["deployment"] for r in rows if r["model"] == "triage"] == ["london-2"] * 3
