"""OpenAIHTTPProvider against a real HTTP server on 127.0.0.1 (tests/support/upstream.py)."""

from __future__ import annotations

import socket
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx
import pytest

from routeguard.core.errors import ErrorClass, ProviderError, StreamBroken
from routeguard.execution.providers import Provider
from routeguard.execution.providers.openai_http import OpenAIHTTPProvider, make_client
from support.upstream import (
    UpstreamServer,
    bad_request,
    context_length_exceeded,
    error,
    hang,
    ok,
    overloaded,
    rate_limited,
    server_error_html,
    stream_breaks_after,
    stream_error_event,
    stream_fails_before_first_chunk,
    stream_without_finish,
    tool_call,
)

E = ErrorClass
MODEL = "up-model"
REQUEST: dict[str, Any] = {"model": "triage-agent", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(trust_env=False) as c:
        yield c


@pytest.fixture
def provider(upstream: UpstreamServer, client: httpx.AsyncClient) -> OpenAIHTTPProvider:
    return OpenAIHTTPProvider("triage-v3", upstream.base_url, MODEL, api_key_env="RG_TEST_KEY", client=client)


async def collect(provider: OpenAIHTTPProvider, request: dict[str, Any] | None = None,
                  timeout_s: float = 5.0) -> tuple[list[dict[str, Any]], ProviderError | None]:
    chunks: list[dict[str, Any]] = []
    try:
        async for chunk in provider.stream(request or REQUEST, timeout_s=timeout_s):
            chunks.append(chunk)
    except ProviderError as exc:
        return chunks, exc
    return chunks, None


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_is_a_provider(provider: OpenAIHTTPProvider) -> None:
    assert isinstance(provider, Provider)


async def test_complete_passes_fields_through_and_replaces_model(
    provider: OpenAIHTTPProvider, upstream: UpstreamServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RG_TEST_KEY", "sk-test-123")
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    request = {**REQUEST, "tools": tools, "tool_choice": "auto", "temperature": 0.2, "seed": 7,
               "response_format": {"type": "json_object"}, "metadata": {"tenant": "acme"}, "stream": True,
               "stream_options": {"include_usage": True}}
    result = await provider.complete(request, timeout_s=5)
    assert result["choices"][0]["message"]["content"] == "Hello from upstream"
    assert result["object"] == "chat.completion"
    [seen] = upstream.requests
    assert seen.model == MODEL
    assert seen.body["tools"] == tools
    assert seen.body["tool_choice"] == "auto"
    assert seen.body["temperature"] == 0.2
    assert seen.body["response_format"] == {"type": "json_object"}
    assert seen.body["metadata"] == {"tenant": "acme"}
    assert "stream" not in seen.body and "stream_options" not in seen.body
    assert seen.headers["authorization"] == "Bearer sk-test-123"
    assert request["model"] == "triage-agent"  # the caller's dict is not modified


async def test_no_authorization_header_when_key_env_unset(
    upstream: UpstreamServer, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RG_TEST_KEY", raising=False)
    p = OpenAIHTTPProvider("m", upstream.base_url + "/", MODEL, api_key_env="RG_TEST_KEY", client=client,
                           extra_headers={"x-tenant": "acme"})
    await p.complete(REQUEST, timeout_s=5)
    [seen] = upstream.requests
    assert "authorization" not in seen.headers
    assert seen.headers["x-tenant"] == "acme"


async def test_tool_call_response(provider: OpenAIHTTPProvider, upstream: UpstreamServer) -> None:
    upstream.set(MODEL, tool_call("get_weather", '{"city": "Paris"}'))
    result = await provider.complete(REQUEST, timeout_s=5)
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "get_weather",
                                                              "arguments": '{"city": "Paris"}'}


@pytest.mark.parametrize(("behaviour", "error_class", "status", "retry_after"), [
    (overloaded(), E.OVERLOADED, 503, None),
    (rate_limited(retry_after="2"), E.RATE_LIMIT, 429, 2.0),
    (bad_request(), E.BAD_REQUEST, 400, None),
    (context_length_exceeded(), E.CONTEXT_WINDOW, 400, None),
    (server_error_html(), E.SERVER_ERROR, 500, None),
    (error(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                           "code": "invalid_api_key"}}), E.AUTH, 401, None),
    (error(404, {"error": {"message": "no such model", "type": "invalid_request_error",
                           "code": "model_not_found"}}), E.NOT_FOUND, 404, None),
], ids=["503", "429", "400", "context", "html500", "401", "404"])
async def test_http_errors_are_classified(
    provider: OpenAIHTTPProvider, upstream: UpstreamServer, behaviour: Any, error_class: ErrorClass,
    status: int, retry_after: float | None,
) -> None:
    upstream.set(MODEL, behaviour)
    with pytest.raises(ProviderError) as info:
        await provider.complete(REQUEST, timeout_s=5)
    err = info.value
    assert err.error_class is error_class
    assert err.status == status
    assert err.model == "triage-v3"
    assert err.classified.retry_after_s == retry_after
    assert err.body is not None
    # the same failure on a streaming request is a plain ProviderError (nothing was streamed)
    upstream.set(MODEL, behaviour)
    chunks, exc = await collect(provider)
    assert chunks == []
    assert type(exc) is ProviderError
    assert exc.error_class is error_class


async def test_hanging_upstream_times_out(provider: OpenAIHTTPProvider, upstream: UpstreamServer) -> None:
    upstream.set(MODEL, hang(5))
    with pytest.raises(ProviderError) as info:
        await provider.complete(REQUEST, timeout_s=0.2)
    assert info.value.error_class is E.TIMEOUT
    assert info.value.retryable


async def test_stream_hang_before_headers_times_out(
    provider: OpenAIHTTPProvider, upstream: UpstreamServer
) -> None:
    upstream.set(MODEL, hang(5))
    chunks, exc = await collect(provider, timeout_s=0.2)
    assert chunks == []
    assert type(exc) is ProviderError
    assert exc.error_class is E.TIMEOUT


async def test_stream_idle_gap_times_out(provider: OpenAIHTTPProvider, upstream: UpstreamServer) -> None:
    upstream.set(MODEL, ok("abcdef", chunks=3, chunk_gap_s=1.0))
    chunks, exc = await collect(provider, timeout_s=0.2)
    assert len(chunks) == 1
    assert isinstance(exc, StreamBroken)
    assert exc.error_class is E.TIMEOUT
    assert exc.chunks_received == 1


async def test_connection_refused(client: httpx.AsyncClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = OpenAIHTTPProvider("gone", f"http://127.0.0.1:{port}/v1", MODEL, client=client)
    with pytest.raises(ProviderError) as info:
        await p.complete(REQUEST, timeout_s=2)
    assert info.value.error_class is E.CONNECTION
    assert info.value.retryable
    chunks, exc = await collect(p)
    assert chunks == [] and isinstance(exc, ProviderError) and exc.error_class is E.CONNECTION


async def test_stream_ok(provider: OpenAIHTTPProvider, upstream: UpstreamServer) -> None:
    upstream.set(MODEL, ok("Hello, world", chunks=4))
    request = {**REQUEST, "stream_options": {"include_usage": True}}
    chunks, exc = await collect(provider, request)
    assert exc is None
    assert text_of(chunks) == "Hello, world"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    [seen] = upstream.requests
    assert seen.body["stream"] is True
    assert seen.body["stream_options"] == {"include_usage": True}
    assert seen.headers["accept"] == "text/event-stream"


async def test_stream_tool_call(provider: OpenAIHTTPProvider, upstream: UpstreamServer) -> None:
    upstream.set(MODEL, tool_call("lookup", '{"id": 42}'))
    chunks, exc = await collect(provider)
    assert exc is None
    deltas = [c["choices"][0]["delta"] for c in chunks]
    calls = [tc for d in deltas for tc in d.get("tool_calls", [])]
    assert calls[0]["function"]["name"] == "lookup"
    assert "".join(tc["function"]["arguments"] for tc in calls) == '{"id": 42}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_breaks_after_n_chunks(provider: OpenAIHTTPProvider, upstream: UpstreamServer) -> None:
    upstream.set(MODEL, stream_breaks_after(3))
    chunks, exc = await collect(provider)
    assert len(chunks) == 3
    assert isinstance(exc, StreamBroken)
    assert exc.error_class is E.CONNECTION
    assert exc.chunks_received == 3
    assert exc.model == "triage-v3"


async def test_stream_fails_before_first_chunk(
    provider: OpenAIHTTPProvider, upstream: UpstreamServer
) -> None:
    upstream.set(MODEL, stream_fails_before_first_chunk())
    chunks, exc = await collect(provider)
    assert chunks == []
    assert isinstance(exc, StreamBroken)
    assert exc.chunks_received == 0
    assert exc.retryable


async def test_stream_without_finish_or_done_is_broken(
    provider: OpenAIHTTPProvider, upstream: UpstreamServer
) -> None:
    upstream.set(MODEL, stream_without_finish(chunks=3))
    chunks, exc = await collect(provider)
    assert len(chunks) == 4  # role + 3 content chunks
    assert isinstance(exc, StreamBroken)
    assert exc.chunks_received == 4
    assert exc.error_class is E.SERVER_ERROR


async def test_stream_error_event_mid_stream(provider: OpenAIHTTPProvider, upstream: UpstreamServer) -> None:
    body = {"error": {"message": "Overloaded", "type": "overloaded_error"}}
    upstream.set(MODEL, stream_error_event(after=2, body=body))
    chunks, exc = await collect(provider)
    assert len(chunks) == 2
    assert isinstance(exc, StreamBroken)
    assert exc.error_class is E.OVERLOADED
    assert exc.body == body
    assert exc.chunks_received == 2


async def test_consumer_stopping_early_releases_the_connection(
    provider: OpenAIHTTPProvider, upstream: UpstreamServer
) -> None:
    upstream.set(MODEL, ok("abcdefgh", chunks=8))
    for _ in range(3):
        stream = provider.stream(REQUEST, timeout_s=5)
        assert isinstance(stream, AsyncGenerator)
        async with aclosing(stream):
            async for _chunk in stream:
                break
    assert (await provider.complete(REQUEST, timeout_s=5))["choices"]
    assert upstream.count(MODEL) == 4


async def test_own_client_is_closed_shared_client_is_not(
    upstream: UpstreamServer, client: httpx.AsyncClient
) -> None:
    shared = OpenAIHTTPProvider("a", upstream.base_url, MODEL, client=client)
    await shared.aclose()
    assert not client.is_closed
    own = OpenAIHTTPProvider("b", upstream.base_url, MODEL)
    await own.complete(REQUEST, timeout_s=5)
    await own.aclose()
    assert own._client.is_closed


async def test_retry_then_ok_sequence(provider: OpenAIHTTPProvider, upstream: UpstreamServer) -> None:
    upstream.set(MODEL, overloaded(), ok("second"))
    with pytest.raises(ProviderError):
        await provider.complete(REQUEST, timeout_s=5)
    assert (await provider.complete(REQUEST, timeout_s=5))["choices"][0]["message"]["content"] == "second"
    assert (await provider.complete(REQUEST, timeout_s=5))["choices"][0]["message"]["content"] == "second"
    assert upstream.counts == {MODEL: 3}


async def test_stream_request_answered_with_plain_json_is_converted() -> None:
    completion = {"id": "c1", "object": "chat.completion", "created": 1, "model": MODEL,
                  "choices": [{"index": 0, "message": {"role": "assistant", "content": "whole"},
                               "finish_reason": "stop"}]}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=completion)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as c:
        p = OpenAIHTTPProvider("m", "http://upstream.invalid/v1", MODEL, client=c)
        chunks, exc = await collect(p)
    assert exc is None
    assert text_of(chunks) == "whole"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
