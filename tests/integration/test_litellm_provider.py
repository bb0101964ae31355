"""LiteLLMProvider against the fake OpenAI upstream on 127.0.0.1, through LiteLLM's ``openai/`` route with
``api_base`` (no internet): answers, streams, tool calls, and LiteLLM's exceptions classified into §4."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import Any

import pytest

from routeguard.core.errors import ErrorClass, ProviderError, StreamBroken

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # as the provider does: no egress on import
pytest.importorskip("litellm")

from routeguard.execution.providers.litellm_provider import LiteLLMProvider
from support.upstream import (
    UpstreamServer,
    context_length_exceeded,
    error,
    hang,
    ok,
    overloaded,
    rate_limited,
    stream_breaks_after,
    tool_call,
)

E = ErrorClass
UP = "up-model"
REQUEST: dict[str, Any] = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def provider(upstream: UpstreamServer, monkeypatch: pytest.MonkeyPatch) -> LiteLLMProvider:
    monkeypatch.setenv("RG_LITELLM_KEY", "sk-litellm")
    return LiteLLMProvider("via-litellm", f"openai/{UP}", base_url=upstream.base_url, api_key_env="RG_LITELLM_KEY",
                           params={"max_retries": 0})


async def test_complete(provider: LiteLLMProvider, upstream: UpstreamServer) -> None:
    answer = await provider.complete({**REQUEST, "temperature": 0.1}, timeout_s=10)
    assert answer["choices"][0]["message"]["content"] == "Hello from upstream"
    assert answer["usage"]["prompt_tokens"] == 12 and answer["usage"]["completion_tokens"] == 5
    [seen] = upstream.requests
    assert seen.model == UP and seen.body["temperature"] == 0.1
    assert seen.headers["authorization"] == "Bearer sk-litellm"


async def test_stream(provider: LiteLLMProvider, upstream: UpstreamServer) -> None:
    upstream.set(UP, ok("Hello, world", chunks=4))
    chunks = [c async for c in provider.stream(REQUEST, timeout_s=10)]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "Hello, world"
    assert any(c["choices"] and c["choices"][0].get("finish_reason") == "stop" for c in chunks)
    assert upstream.requests[0].body["stream"] is True


async def test_tool_calls_both_ways(provider: LiteLLMProvider, upstream: UpstreamServer) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    upstream.set(UP, tool_call("lookup", '{"id": 42}'))
    history = [*REQUEST["messages"],
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_0", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "call_0", "content": "none found"}]
    answer = await provider.complete({"model": "a", "messages": history, "tools": tools}, timeout_s=10)
    [call] = answer["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "lookup", "arguments": '{"id": 42}'}
    sent = upstream.requests[0].body
    assert sent["tools"] == tools and sent["messages"][2]["tool_call_id"] == "call_0"


@pytest.mark.parametrize(("behaviour", "error_class"), [
    (rate_limited(retry_after="2"), E.RATE_LIMIT),
    (overloaded(), E.OVERLOADED),
    (context_length_exceeded(), E.CONTEXT_WINDOW),
    (error(401, {"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}}),
     E.AUTH),
    (error(404, {"error": {"message": "no model", "type": "invalid_request_error", "code": "model_not_found"}}),
     E.NOT_FOUND),
    (error(500, {"error": {"message": "boom", "type": "server_error", "code": None}}), E.SERVER_ERROR),
    (error(400, {"error": {"message": "bad temperature", "type": "invalid_request_error", "code": None}}),
     E.BAD_REQUEST),
], ids=["429", "503", "context", "401", "404", "500", "400"])
async def test_exceptions_are_classified(provider: LiteLLMProvider, upstream: UpstreamServer, behaviour: Any,
                                         error_class: ErrorClass) -> None:
    upstream.set(UP, behaviour)
    with pytest.raises(ProviderError) as info:
        await provider.complete(REQUEST, timeout_s=10)
    assert info.value.error_class is error_class
    assert info.value.model == "via-litellm"
    assert info.value.body["error"]["code"] == error_class.value
    assert upstream.count(UP) == 1  # LiteLLM's own retries are off: routeguard decides


async def test_timeout_and_connection(provider: LiteLLMProvider, upstream: UpstreamServer) -> None:
    upstream.set(UP, hang(5))
    with pytest.raises(ProviderError) as info:
        await provider.complete(REQUEST, timeout_s=0.5)
    assert info.value.error_class is E.TIMEOUT
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = LiteLLMProvider("gone", f"openai/{UP}", base_url=f"http://127.0.0.1:{port}/v1",
                           api_key_env="RG_LITELLM_KEY", params={"max_retries": 0})
    with pytest.raises(ProviderError) as info:
        await gone.complete(REQUEST, timeout_s=5)
    assert info.value.error_class is E.CONNECTION


async def test_stream_that_breaks_after_output(provider: LiteLLMProvider, upstream: UpstreamServer) -> None:
    upstream.set(UP, stream_breaks_after(3, chunks=5))
    got: list[dict[str, Any]] = []
    with pytest.raises(StreamBroken) as info:
        async for chunk in provider.stream(REQUEST, timeout_s=10):
            got.append(chunk)
    assert info.value.chunks_received == len(got) > 0


def test_import_routeguard_does_not_load_litellm() -> None:
    code = ("import sys, routeguard; from routeguard.execution.executor import Executor; "
            "from routeguard.execution.providers import build; print('litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
