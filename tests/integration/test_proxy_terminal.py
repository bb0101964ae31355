"""Terminal actions through the proxy (503 naming the action, never retried by the SDK, a durable queue entry),
and the way back to the primary once it recovers (short cooldown, bounded polling)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

from support.proxy import AGENT, MESSAGES, UP, Proxy, poll, proxy_service
from support.upstream import UpstreamServer, ok, overloaded


def _all_down(px: Proxy) -> None:
    with px.http() as http:
        for model in ("alpha", "beta"):
            r = http.put(f"/v1/health/{model}", json={"status": "down", "source": "pager", "ttl": "10m"})
            assert r.status_code == 200, r.text


def _terminal_error(px: Proxy, **extra: Any) -> openai.APIStatusError:
    with pytest.raises(openai.InternalServerError) as caught:
        if extra.get("stream"):
            for _chunk in px.client.chat.completions.create(model=AGENT, messages=MESSAGES, **extra):
                pass
        else:
            px.client.chat.completions.create(model=AGENT, messages=MESSAGES, **extra)
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert caught.value.response.headers["x-routeguard-policy-version"] == "1"
    assert caught.value.response.headers["x-routeguard-trace-id"]
    return caught.value


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_human_queue_is_503_with_a_durable_entry(tmp_path: Path, upstream: UpstreamServer, stream: bool) -> None:
    with proxy_service(tmp_path, upstream) as px:
        _all_down(px)
        err = _terminal_error(px, stream=stream, metadata={"tenant": "acme"})
        body = err.response.json()["error"]
        assert (body["code"], body["type"], body["action"]) == ("human_queue", "routeguard_terminal", "human_queue")
        assert body["queue"] == "humans" and body["queue_entry"]
        assert "human_queue" in err.message
        with px.http() as http:
            entries = http.get("/v1/queue", params={"queue": "humans"}).json()["entries"]
        assert [str(e["id"]) for e in entries] == [str(body["queue_entry"])]  # one entry: the SDK did not retry
        assert entries[0]["policy"] == AGENT and entries[0]["request"]["messages"] == MESSAGES
        assert upstream.counts == {}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_static_response_is_503_carrying_the_configured_text(
    tmp_path: Path, upstream: UpstreamServer, stream: bool
) -> None:
    terminal = {"action": "static_response", "response": "Please call the ward on 4411."}
    with proxy_service(tmp_path, upstream, terminal=terminal) as px:
        _all_down(px)
        body = _terminal_error(px, stream=stream).response.json()["error"]
        assert (body["code"], body["action"]) == ("static_response", "static_response")
        assert body["response"] == "Please call the ward on 4411."
        assert upstream.counts == {}


def test_suspend_is_503_naming_the_action(tmp_path: Path, upstream: UpstreamServer) -> None:
    with proxy_service(tmp_path, upstream, terminal={"action": "suspend"}) as px:
        _all_down(px)
        body = _terminal_error(px).response.json()["error"]
        assert (body["code"], body["action"], body["policy"]) == ("suspend", "suspend", AGENT)
        assert "queue_entry" not in body


def test_traffic_returns_to_the_primary_after_its_cooldown(tmp_path: Path, upstream: UpstreamServer) -> None:
    upstream.set(UP["alpha"], overloaded())
    health = {"min_samples": 2, "cooldown": "1s", "min_dwell": "1s", "probes": 1}
    with proxy_service(tmp_path, upstream, health=health) as px:
        for _ in range(4):
            raw = px.client.chat.completions.with_raw_response.create(model=AGENT, messages=MESSAGES)
            assert raw.headers["x-routeguard-model"] == "beta"
        assert upstream.count(UP["alpha"]) == 2  # declared down after two failures
        upstream.set(UP["alpha"], ok("the primary again"))

        def primary_serves_the_policy() -> bool:
            px.client.chat.completions.create(model=AGENT, messages=MESSAGES)  # traffic: probes ride on requests
            with px.http() as http:
                routes = [r for r in http.get("/v1/routes").json()["routes"] if r["policy"] == AGENT]
            return [r["model"] for r in routes] == ["alpha"]

        poll(primary_serves_the_policy, "the route back to the primary")
        raw = px.client.chat.completions.with_raw_response.create(model=AGENT, messages=MESSAGES)
        assert (raw.headers["x-routeguard-model"], raw.headers["x-routeguard-fallback"]) == ("alpha", "false")
        assert raw.parse().choices[0].message.content == "the primary again"
        with px.http() as http:
            changes = http.get("/v1/audit", params={"kind": "route.changed", "policy": AGENT}).json()["records"]
        assert [(c["from_model"], c["to_model"]) for c in changes] == [("alpha", "beta"), ("beta", "alpha")]
