"""The proxy through the official `openai` SDK, against real upstream HTTP servers: serving, headers, what
passes through, failover on retryable errors only, errors in OpenAI's shape, legacy single-model mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest

from support.proxy import AGENT, MESSAGES, UP, openai_client, proxy_service
from support.service import run_service
from support.upstream import UpstreamServer, bad_request, ok, overloaded, tool_call

TOOLS: list[Any] = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                           "parameters": {"type": "object",
                                                          "properties": {"city": {"type": "string"}}}}}]


def test_primary_serves_with_headers_and_fields_pass_through(tmp_path: Path, upstream: UpstreamServer) -> None:
    with proxy_service(tmp_path, upstream) as px:
        raw = px.client.chat.completions.with_raw_response.create(
            model=AGENT, messages=MESSAGES, temperature=0.2, n=1, stop=["\n\n"], user="u-17",
            response_format={"type": "json_object"}, max_tokens=200,
            metadata={"tenant": "acme", "data_class": "internal", "tags": "ward,eu", "ticket": "T-9"},
            extra_headers={"x-routeguard-region": "eu-west-2"},
        )
        completion = raw.parse()
        assert completion.choices[0].message.content == "Hello from upstream"
        assert raw.headers["x-routeguard-model"] == "alpha"
        assert raw.headers["x-routeguard-fallback"] == "false"
        assert raw.headers["x-routeguard-policy-version"] == "1"
        assert raw.headers["x-routeguard-policy"] == AGENT
        assert len(raw.headers["x-routeguard-trace-id"]) >= 16
        sent = upstream.requests[-1]
        assert sent.model == UP["alpha"] and upstream.count(UP["beta"]) == 0
        body = sent.body
        assert body["metadata"] == {"ticket": "T-9"}  # routeguard's keys stay here, the rest goes on
        assert (body["temperature"], body["n"], body["stop"], body["user"]) == (0.2, 1, ["\n\n"], "u-17")
        assert body["response_format"] == {"type": "json_object"} and body["max_tokens"] == 200
        assert body["messages"] == MESSAGES and "stream" not in body


def test_models_lists_the_agents(tmp_path: Path, upstream: UpstreamServer) -> None:
    with proxy_service(tmp_path, upstream) as px:
        listed = px.client.models.list()
        assert [m.id for m in listed.data] == [AGENT]
        assert listed.data[0].object == "model" and listed.data[0].owned_by == "routeguard"
        with px.http() as http:
            assert http.get("/v1/chat/completions").status_code == 405


def test_503_fails_over_unseen_and_the_dead_primary_is_left_once_down(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    upstream.set(UP["alpha"], overloaded())
    with proxy_service(tmp_path, upstream) as px:
        models = []
        for _ in range(8):
            raw = px.client.chat.completions.with_raw_response.create(model=AGENT, messages=MESSAGES)
            assert raw.parse().choices[0].message.content == "Hello from upstream"
            assert raw.headers["x-routeguard-fallback"] == "true"
            models.append(raw.headers["x-routeguard-model"])
        assert models == ["beta"] * 8
        # min_samples 3, error rate 0.5: the primary is tried until it is declared down, then never
        assert upstream.count(UP["alpha"]) == 3
        assert upstream.count(UP["beta"]) == 8


def test_400_is_passed_through_without_fallback(tmp_path: Path, upstream: UpstreamServer) -> None:
    upstream.set(UP["alpha"], bad_request())
    with proxy_service(tmp_path, upstream) as px:
        with pytest.raises(openai.BadRequestError) as caught:
            px.client.chat.completions.create(model=AGENT, messages=MESSAGES, temperature=3)
        err = caught.value
        assert err.status_code == 400
        assert err.code == "invalid_value" and err.param == "temperature"
        assert isinstance(err.body, dict) and err.body["message"].startswith("Invalid value for 'temperature'")
        assert err.response.headers["x-routeguard-model"] == "alpha"
        assert err.response.headers["x-routeguard-policy-version"] == "1"
        assert upstream.count(UP["alpha"]) == 1 and upstream.count(UP["beta"]) == 0


def test_unknown_agent_is_404_in_openai_shape(tmp_path: Path, upstream: UpstreamServer) -> None:
    with proxy_service(tmp_path, upstream) as px:
        with pytest.raises(openai.NotFoundError) as caught:
            px.client.chat.completions.create(model="no-such-agent", messages=MESSAGES)
        body = caught.value.response.json()
        assert body["error"]["code"] == "unknown_agent"
        assert body["error"]["type"] == "invalid_request_error" and "no-such-agent" in body["error"]["message"]
        with pytest.raises(openai.UnprocessableEntityError) as bad:
            px.client.chat.completions.create(model=AGENT, messages=MESSAGES, metadata={"data_class": "secret"})
        assert bad.value.response.json()["error"]["code"] == "unknown_data_class"
        assert upstream.counts == {}


def test_tool_calls_pass_through_plain_and_streamed(tmp_path: Path, upstream: UpstreamServer) -> None:
    upstream.set(UP["alpha"], tool_call("get_weather", '{"city": "Paris"}'))
    with proxy_service(tmp_path, upstream) as px:
        completion = px.client.chat.completions.create(
            model=AGENT, messages=MESSAGES, tools=TOOLS, tool_choice="auto", parallel_tool_calls=False)
        [call] = completion.choices[0].message.tool_calls or []
        assert call.type == "function" and call.id == "call_up1"
        assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')
        assert completion.choices[0].finish_reason == "tool_calls"
        body = upstream.requests[-1].body
        assert body["tools"] == TOOLS and body["tool_choice"] == "auto" and body["parallel_tool_calls"] is False
        arguments, finish = "", None
        for chunk in px.client.chat.completions.create(model=AGENT, messages=MESSAGES, tools=TOOLS, stream=True):
            for choice in chunk.choices:
                for delta in choice.delta.tool_calls or ():
                    arguments += (delta.function.arguments or "") if delta.function else ""
                finish = choice.finish_reason or finish
        assert arguments == '{"city": "Paris"}' and finish == "tool_calls"
        assert upstream.count(UP["beta"]) == 0


async def test_async_client_plain_and_stream(tmp_path: Path, upstream: UpstreamServer) -> None:
    upstream.set(UP["alpha"], ok("Asynchronous hello", chunks=4))
    with proxy_service(tmp_path, upstream) as px:
        completion = await px.aclient.chat.completions.create(model=AGENT, messages=MESSAGES)
        assert completion.choices[0].message.content == "Asynchronous hello"
        pieces = []
        stream = await px.aclient.chat.completions.create(
            model=AGENT, messages=MESSAGES, stream=True, stream_options={"include_usage": True})
        async for chunk in stream:
            pieces += [c.delta.content or "" for c in chunk.choices]
        assert "".join(pieces) == "Asynchronous hello"
        assert upstream.requests[-1].body["stream"] is True
        assert upstream.requests[-1].body["stream_options"] == {"include_usage": True}
        await px.aclient.close()


def test_legacy_single_model_mode(tmp_path: Path, upstream: UpstreamServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEGUARD_MODEL", "legacy-up")
    monkeypatch.setenv("ROUTEGUARD_BASE_URL", upstream.base_url)
    monkeypatch.setenv("ROUTEGUARD_PROVIDER", "local")
    with run_service(f"sqlite:///{tmp_path / 'store.db'}", legacy_env=True) as svc:
        client = openai_client(svc.url + "/v1")
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        assert raw.parse().choices[0].message.content == "Hello from upstream"
        assert raw.headers["x-routeguard-model"] == "legacy-up"
        assert raw.headers["x-routeguard-policy"] == "default"
        assert raw.headers["x-routeguard-policy-version"] == "legacy"
        streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="anything", messages=MESSAGES, stream=True) if c.choices)
        assert streamed == "Hello from upstream"
        assert upstream.counts == {"legacy-up": 2}
        client.close()
