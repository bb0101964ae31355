"""AzureOpenAIProvider and the OpenAI embeddings / Responses calls against fakes on 127.0.0.1
(tests/support/openai_apis.py): deployment URLs, api-version, api-key, content filter, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from routeguard.core.errors import ErrorClass, ProviderError, StreamBroken
from routeguard.execution.providers.azure import DEFAULT_API_VERSION, AzureOpenAIProvider
from routeguard.execution.providers.openai_http import OpenAIHTTPProvider
from routeguard.execution.providers.transport import Transport, make_transport
from support.openai_apis import OpenAIApisServer, apis_server
from support.upstream import tool_call

E = ErrorClass
REQUEST: dict[str, Any] = {"model": "assistant", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIApisServer]:
    with apis_server() as s:
        yield s


@pytest.fixture
def up(server: OpenAIApisServer) -> OpenAIApisServer:
    server.app.calls.clear()
    server.app.chat.reset()
    server.set("gpt-4o-eu", "ok")
    return server


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    client = make_transport("lean", trust_env=False)
    yield client
    await client.aclose()


@pytest.fixture
def azure(up: OpenAIApisServer, transport: Transport, monkeypatch: pytest.MonkeyPatch) -> AzureOpenAIProvider:
    monkeypatch.setenv("RG_AZURE_KEY", "azure-key-1")
    return AzureOpenAIProvider("gpt4o-azure", up.url + "/", "gpt-4o-eu", api_version="2024-10-21",
                               api_key_env="RG_AZURE_KEY", client=transport)


async def test_chat_goes_to_the_deployment_url_with_api_key(azure: AzureOpenAIProvider, up: OpenAIApisServer) -> None:
    answer = await azure.complete(REQUEST, timeout_s=5)
    assert answer["choices"][0]["message"]["content"] == "Hello from upstream"
    [(path, query, headers, body)] = up.calls
    assert path == "/openai/deployments/gpt-4o-eu/chat/completions"
    assert query == "api-version=2024-10-21"
    assert headers["api-key"] == "azure-key-1" and "authorization" not in headers
    assert body["model"] == "gpt-4o-eu"


async def test_default_api_version(up: OpenAIApisServer, transport: Transport) -> None:
    p = AzureOpenAIProvider("m", up.url, "gpt-4o-eu", client=transport)
    await p.complete(REQUEST, timeout_s=5)
    assert up.calls[0][1] == f"api-version={DEFAULT_API_VERSION}"


async def test_stream_and_tool_calls(azure: AzureOpenAIProvider, up: OpenAIApisServer) -> None:
    chunks = [c async for c in azure.stream(REQUEST, timeout_s=5)]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "Hello from upstream"
    up.app.chat.set("gpt-4o-eu", tool_call("lookup", '{"id": 7}'))
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    answer = await azure.complete({**REQUEST, "tools": tools}, timeout_s=5)
    [call] = answer["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "lookup", "arguments": '{"id": 7}'}
    assert up.calls[-1][3]["tools"] == tools


async def test_content_filter_on_the_prompt(azure: AzureOpenAIProvider, up: OpenAIApisServer) -> None:
    up.set("gpt-4o-eu", "filtered_prompt")
    with pytest.raises(ProviderError) as info:
        await azure.complete(REQUEST, timeout_s=5)
    assert info.value.error_class is E.CONTENT_FILTER and info.value.status == 400
    assert not info.value.retryable
    with pytest.raises(ProviderError) as info:
        _ = [c async for c in azure.stream(REQUEST, timeout_s=5)]
    assert info.value.error_class is E.CONTENT_FILTER


async def test_content_filter_on_the_answer(azure: AzureOpenAIProvider, up: OpenAIApisServer) -> None:
    up.set("gpt-4o-eu", "filtered_answer")
    with pytest.raises(ProviderError) as info:
        await azure.complete(REQUEST, timeout_s=5)
    assert info.value.error_class is E.CONTENT_FILTER
    assert info.value.body["error"]["code"] == "content_filter"


@pytest.mark.parametrize(("status", "error_class"), [(429, E.RATE_LIMIT), (503, E.OVERLOADED), (500, E.SERVER_ERROR),
                                                     (401, E.AUTH), (400, E.BAD_REQUEST)])
async def test_errors(azure: AzureOpenAIProvider, up: OpenAIApisServer, status: int, error_class: ErrorClass) -> None:
    up.set("gpt-4o-eu", f"error:{status}")
    with pytest.raises(ProviderError) as info:
        await azure.complete(REQUEST, timeout_s=5)
    assert info.value.error_class is error_class and info.value.status == status
    if status == 429:
        assert info.value.classified.retry_after_s == 1.0


async def test_embeddings_and_responses_on_azure(azure: AzureOpenAIProvider, up: OpenAIApisServer) -> None:
    vectors = await azure.embed({"model": "x", "input": ["a b", "c"]}, timeout_s=5)
    assert [d["embedding"] for d in vectors["data"]] == [[0.25, -0.5, 0.125], [0.5, -0.5, 0.125]]
    response = await azure.respond({"model": "x", "input": "hi"}, timeout_s=5)
    assert response["object"] == "response" and response["usage"]["total_tokens"] == 123
    paths = [(p, q) for p, q, _, _ in up.calls]
    assert paths == [("/openai/deployments/gpt-4o-eu/embeddings", "api-version=2024-10-21"),
                     ("/openai/deployments/gpt-4o-eu/responses", "api-version=2024-10-21")]


async def test_openai_responses_stream(up: OpenAIApisServer, transport: Transport) -> None:
    p = OpenAIHTTPProvider("m", up.url + "/v1", "gpt-4o-eu", client=transport)
    events = [e async for e in p.respond_stream({"model": "x", "input": "hi"}, timeout_s=5)]
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "Hello from responses"
    assert json.loads(json.dumps(events[-1]))["response"]["usage"]["output_tokens"] == 87
    up.set("gpt-4o-eu", "stream_break:6")
    got: list[dict[str, Any]] = []
    with pytest.raises(StreamBroken) as info:
        async for event in p.respond_stream({"model": "x", "input": "hi"}, timeout_s=5):
            got.append(event)
    assert info.value.chunks_received == len(got) == 6
