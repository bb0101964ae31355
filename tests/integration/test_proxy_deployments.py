"""Deployments through the proxy (the `openai` SDK onto the fake upstream): one model, several endpoints —
the deployment that answered in `x-routeguard-deployment`, failover inside the model before any fallback,
residency per deployment, and the fallback only when no deployment can serve."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
                               "health": {"min_samples": 1000, "consecutive_failures": 1000}}},
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
    for _ in range(10):
        headers = ask(client, "eu-central-1")
        assert headers["x-routeguard-model"] == "triage" and headers["x-routeguard-deployment"] == "frankfurt"
        assert headers["x-routeguard-fallback"] == "false"
    assert upstream.count("backup-up") == 0
    assert 1 <= upstream.count("tri-main") <= 3  # its own breaker left it out after three failures


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
