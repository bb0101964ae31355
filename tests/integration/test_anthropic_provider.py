"""AnthropicProvider against a fake of the Messages API on 127.0.0.1 (tests/support/anthropic_upstream.py):
OpenAI chat in, Messages on the wire, OpenAI shapes back — plain, streamed, tool calls both ways, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from routeguard.core.errors import ErrorClass, ProviderError, StreamBroken
from routeguard.execution.providers import Provider
from routeguard.execution.providers.anthropic import AnthropicProvider
from routeguard.execution.providers.transport import Transport, make_transport
from support.anthropic_upstream import (
    STATUS_OF,
    AnthropicServer,
    anthropic_server,
    error_reply,
    stream_breaks,
    stream_ends_early,
    stream_error,
    text_reply,
    tool_reply,
)

E = ErrorClass
MODEL = "claude-sonnet-4-5"
REQUEST: dict[str, Any] = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}
IMAGE_URL = "data:image/png;base64,{}"
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def server() -> Iterator[AnthropicServer]:
    with anthropic_server() as s:
        yield s


@pytest.fixture
def up(server: AnthropicServer) -> AnthropicServer:
    server.app.requests.clear()
    server.set(MODEL, text_reply())
    return server


@pytest.fixture(params=["lean", "httpx"])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    client = make_transport(request.param, trust_env=False)
    yield client
    await client.aclose()


@pytest.fixture
def provider(up: AnthropicServer, transport: Transport, monkeypatch: pytest.MonkeyPatch) -> AnthropicProvider:
    monkeypatch.setenv("RG_ANTHROPIC_KEY", "sk-ant-test")
    return AnthropicProvider("claude", MODEL, base_url=up.url, api_key_env="RG_ANTHROPIC_KEY", client=transport)


async def collect(provider: AnthropicProvider, request: dict[str, Any]) -> tuple[list[dict[str, Any]],
                                                                                  ProviderError | None]:
    chunks: list[dict[str, Any]] = []
    try:
        async for chunk in provider.stream(request, timeout_s=5):
            chunks.append(chunk)
    except ProviderError as exc:
        return chunks, exc
    return chunks, None


def test_is_a_provider(provider: AnthropicProvider) -> None:
    assert isinstance(provider, Provider)


async def test_plain_call_translates_request_and_answer(provider: AnthropicProvider, up: AnthropicServer) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                               "parameters": {"type": "object",
                                                              "properties": {"location": {"type": "string"}}}}}]
    request = {
        "model": "assistant", "temperature": 0.3, "max_tokens": 300, "stop": "END", "user": "u-1", "seed": 7,
        "tools": tools, "tool_choice": "required", "parallel_tool_calls": False,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "What is in this image, and the weather?"},
                                         {"type": "image_url", "image_url": {"url": IMAGE_URL.format(PIXEL)}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather",
                                                                  "arguments": '{"location": "Paris"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
            {"role": "user", "content": "Thanks. And now?"},
        ],
    }
    answer = await provider.complete(request, timeout_s=5)
    [(body, headers)] = up.requests
    assert headers["x-api-key"] == "sk-ant-test"
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    assert body["model"] == MODEL
    assert body["system"] == [{"type": "text", "text": "You are terse."}]
    assert body["max_tokens"] == 300 and body["temperature"] == 0.3
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-1"}
    assert "seed" not in body and "stream" not in body
    assert body["tools"] == [{"name": "get_weather", "description": "Weather in a city",
                              "input_schema": tools[0]["function"]["parameters"]}]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    first, call, results = body["messages"]
    assert first["content"][1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                               "data": PIXEL}}
    assert call["content"] == [{"type": "tool_use", "id": "call_1", "name": "get_weather",
                                "input": {"location": "Paris"}}]
    assert results["content"][0] == {"type": "tool_result", "tool_use_id": "call_1",
                                     "content": [{"type": "text", "text": "18C and sunny"}]}
    assert results["content"][1] == {"type": "text", "text": "Thanks. And now?"}
    assert answer["object"] == "chat.completion"
    assert answer["model"] == MODEL
    choice = answer["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hello from Claude"}
    assert choice["finish_reason"] == "stop"
    assert answer["usage"]["prompt_tokens"] == 25 and answer["usage"]["completion_tokens"] == 12
    assert answer["usage"]["total_tokens"] == 37


async def test_default_max_tokens_and_url_forms(up: AnthropicServer, transport: Transport) -> None:
    for base in (up.url, up.url + "/v1", up.url + "/v1/"):
        p = AnthropicProvider("claude", MODEL, base_url=base, max_tokens=64, client=transport)
        await p.complete(REQUEST, timeout_s=5)
    assert [body["max_tokens"] for body, _ in up.requests] == [64, 64, 64]
    assert all("x-api-key" not in headers for _, headers in up.requests)


async def test_tool_use_answer_becomes_tool_calls(provider: AnthropicProvider, up: AnthropicServer) -> None:
    up.set(MODEL, tool_reply("get_weather", {"location": "Paris", "unit": "celsius"}))
    answer = await provider.complete(REQUEST, timeout_s=5)
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "Let me check."
    [call] = choice["message"]["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9" and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris", "unit": "celsius"}


@pytest.mark.parametrize(("stop", "finish"), [("max_tokens", "length"), ("stop_sequence", "stop"),
                                              ("refusal", "content_filter"), ("end_turn", "stop")])
async def test_stop_reasons(provider: AnthropicProvider, up: AnthropicServer, stop: str, finish: str) -> None:
    up.set(MODEL, text_reply(stop_reason=stop))
    assert (await provider.complete(REQUEST, timeout_s=5))["choices"][0]["finish_reason"] == finish
    up.set(MODEL, text_reply(stop_reason=stop))
    chunks, exc = await collect(provider, REQUEST)
    assert exc is None and chunks[-1]["choices"][0]["finish_reason"] == finish


async def test_stream_text(provider: AnthropicProvider, up: AnthropicServer) -> None:
    up.set(MODEL, text_reply("Hello, streaming world", output_tokens=9))
    chunks, exc = await collect(provider, REQUEST)
    assert exc is None
    assert up.requests[0][0]["stream"] is True
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "Hello, streaming world"
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["prompt_tokens"] == 25 and last["usage"]["completion_tokens"] == 9


async def test_stream_usage_chunk_when_asked(provider: AnthropicProvider, up: AnthropicServer) -> None:
    chunks, exc = await collect(provider, {**REQUEST, "stream_options": {"include_usage": True}})
    assert exc is None
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and "usage" not in chunks[-2]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 37


async def test_stream_tool_use_with_json_deltas(provider: AnthropicProvider, up: AnthropicServer) -> None:
    up.set(MODEL, tool_reply("get_weather", {"location": "San Francisco, CA"}, text=""))
    chunks, exc = await collect(provider, REQUEST)
    assert exc is None
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls") or ()]
    assert calls[0] == {"index": 0, "id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                        "function": {"name": "get_weather", "arguments": ""}}
    arguments = "".join(tc["function"]["arguments"] for tc in calls)
    assert json.loads(arguments) == {"location": "San Francisco, CA"}
    assert len(calls) == 3  # the start, then two input_json_delta fragments
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(("error_type", "error_class"), [
    ("invalid_request_error", E.BAD_REQUEST), ("authentication_error", E.AUTH), ("permission_error", E.AUTH),
    ("not_found_error", E.NOT_FOUND), ("request_too_large", E.CONTEXT_WINDOW), ("rate_limit_error", E.RATE_LIMIT),
    ("api_error", E.SERVER_ERROR), ("overloaded_error", E.OVERLOADED),
])
async def test_error_types_are_classified(provider: AnthropicProvider, up: AnthropicServer, error_type: str,
                                          error_class: ErrorClass) -> None:
    status = STATUS_OF[error_type]
    headers = {"retry-after": "3"} if status == 429 else {}
    up.set(MODEL, error_reply(status, error_type, headers))
    with pytest.raises(ProviderError) as info:
        await provider.complete(REQUEST, timeout_s=5)
    err = info.value
    assert err.error_class is error_class and err.status == status and err.model == "claude"
    assert err.classified.retry_after_s == (3.0 if status == 429 else None)
    # what the proxy hands on is OpenAI-shaped, its code the Anthropic error type
    assert err.body == {"error": {"message": f"fake {error_type}", "type": error_type, "param": None,
                                  "code": error_type}}
    up.set(MODEL, error_reply(status, error_type, headers))
    chunks, exc = await collect(provider, REQUEST)
    assert chunks == [] and type(exc) is ProviderError and exc.error_class is error_class


async def test_overloaded_mid_stream_after_output(provider: AnthropicProvider, up: AnthropicServer) -> None:
    up.set(MODEL, stream_error(after=5))  # message_start, ping, block start, two text deltas
    chunks, exc = await collect(provider, REQUEST)
    assert isinstance(exc, StreamBroken)
    assert exc.error_class is E.OVERLOADED
    assert exc.chunks_received == len(chunks) == 3
    assert any(c["choices"][0]["delta"].get("content") for c in chunks)


async def test_error_event_before_output(provider: AnthropicProvider, up: AnthropicServer) -> None:
    up.set(MODEL, stream_error(after=2, error_type="api_error"))  # message_start, ping
    chunks, exc = await collect(provider, REQUEST)
    assert isinstance(exc, StreamBroken) and exc.error_class is E.SERVER_ERROR
    assert [c["choices"][0]["delta"] for c in chunks] == [{"role": "assistant", "content": ""}]


async def test_stream_that_breaks(provider: AnthropicProvider, up: AnthropicServer) -> None:
    up.set(MODEL, stream_breaks(after=4))
    chunks, exc = await collect(provider, REQUEST)
    assert isinstance(exc, StreamBroken) and exc.error_class is E.CONNECTION
    assert exc.chunks_received == len(chunks) == 2


async def test_stream_ending_without_stop_reason_is_broken(provider: AnthropicProvider, up: AnthropicServer) -> None:
    up.set(MODEL, stream_ends_early(after=7))  # every text delta, then the body ends: no message_delta
    chunks, exc = await collect(provider, REQUEST)
    assert isinstance(exc, StreamBroken) and exc.error_class is E.SERVER_ERROR
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello from Claude"


async def test_requests_anthropic_cannot_carry_are_refused(provider: AnthropicProvider, up: AnthropicServer) -> None:
    with pytest.raises(ProviderError) as info:
        await provider.complete({**REQUEST, "n": 2}, timeout_s=5)
    assert info.value.error_class is E.BAD_REQUEST and info.value.status == 400
    bad = {"model": "a", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}
    with pytest.raises(ProviderError) as info:
        await provider.complete(bad, timeout_s=5)
    assert "input_audio" in str(info.value)
    assert up.requests == []  # nothing was sent
