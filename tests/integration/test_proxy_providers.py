"""The proxy, driven by the official `openai` SDK, onto every endpoint type at once (tests/support/mixed.py):
Anthropic-typed models seen as OpenAI chat (plain, streamed, tool calls both ways), error types → §4 class →
retry / fallback / pass-through, a stream that breaks after output, usage → tpm quota and cost, Azure's
content filter, a LiteLLM-backed model, and /v1/embeddings and /v1/responses under the same governance."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from support.anthropic_upstream import (
    AnthropicServer,
    anthropic_server,
    error_reply,
    stream_error,
    text_reply,
    tool_reply,
)
from support.mixed import ANTHROPIC_MODEL, mixed_bundle
from support.openai_apis import OpenAIApisServer, apis_server
from support.service import Service, run_service, write_bundle
from support.upstream import UpstreamServer, ok, overloaded, tool_call

MESSAGES: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOLS: list[Any] = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]


@dataclass
class Stack:
    svc: Service
    client: openai.OpenAI
    claude: AnthropicServer
    openai_up: UpstreamServer
    apis: OpenAIApisServer

    def reset(self) -> None:
        self.claude.app.requests.clear()
        self.claude.set(ANTHROPIC_MODEL, text_reply())
        self.claude.set("claude-quota", text_reply())
        self.openai_up.reset()
        self.apis.app.calls.clear()
        self.apis.app.chat.reset()
        for model in ("gpt-4o-eu", "gpt-resp-up", "embed-up", "embed-eu"):
            self.apis.set(model, "ok")


@pytest.fixture(scope="module")
def stack(upstream_session: UpstreamServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("mixed")
    with anthropic_server() as claude, apis_server() as apis:
        raw = mixed_bundle(upstream_session.base_url, claude.url, apis.url)
        config = write_bundle(tmp / "bundle.yaml", raw)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("RG_TEST_ANTHROPIC_KEY", "sk-ant-e2e")
            mp.setenv("RG_TEST_AZURE_KEY", "azure-e2e")
            mp.setenv("RG_TEST_LITELLM_KEY", "sk-litellm-e2e")
            with run_service(f"sqlite:///{tmp / 'store.db'}", config=config) as svc:
                client = openai.OpenAI(base_url=svc.url + "/v1", api_key="x", max_retries=0)
                try:
                    yield Stack(svc, client, claude, upstream_session, apis)
                finally:
                    client.close()


@pytest.fixture
def px(stack: Stack) -> Stack:
    stack.reset()
    return stack


# ---------------------------------------------------------------- Anthropic-typed models, seen as OpenAI
def test_plain_chat_onto_anthropic(px: Stack) -> None:
    raw = px.client.chat.completions.with_raw_response.create(
        model="assistant", messages=[{"role": "system", "content": "Be brief."}, *MESSAGES], max_tokens=100)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from Claude"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 25
    assert raw.headers["x-routeguard-model"] == "claude" and raw.headers["x-routeguard-fallback"] == "false"
    assert float(raw.headers["x-routeguard-cost-usd"]) == pytest.approx((25 * 3.0 + 12 * 15.0) / 1e6)
    [(body, headers)] = px.claude.requests
    assert body["model"] == ANTHROPIC_MODEL and body["system"] == [{"type": "text", "text": "Be brief."}]
    assert headers["x-api-key"] == "sk-ant-e2e"


def test_streamed_chat_onto_anthropic(px: Stack) -> None:
    px.claude.set(ANTHROPIC_MODEL, text_reply("Sunny and 18 degrees"))
    chunks = list(px.client.chat.completions.create(model="assistant", messages=MESSAGES, stream=True,
                                                    stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Sunny and 18 degrees"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 37


def test_tool_calls_both_ways_onto_anthropic(px: Stack) -> None:
    px.claude.set(ANTHROPIC_MODEL, tool_reply("get_weather", {"location": "Paris"}))
    first = px.client.chat.completions.create(model="assistant", messages=MESSAGES, tools=TOOLS,
                                              tool_choice={"type": "function", "function": {"name": "get_weather"}})
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = message.tool_calls or []
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"location": "Paris"}
    px.claude.set(ANTHROPIC_MODEL, text_reply("It is 18C in Paris."))
    history = [*MESSAGES, message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "18C, sunny"}]
    second = px.client.chat.completions.create(model="assistant", messages=history, tools=TOOLS)
    assert second.choices[0].message.content == "It is 18C in Paris."
    sent = px.claude.requests[0][0]
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert sent["tools"][0]["name"] == "get_weather" and "input_schema" in sent["tools"][0]
    turns = px.claude.requests[1][0]["messages"]
    assert turns[1]["content"][-1] == {"type": "tool_use", "id": call.id, "name": "get_weather",
                                       "input": {"location": "Paris"}}
    assert turns[2]["content"][0]["type"] == "tool_result" and turns[2]["content"][0]["tool_use_id"] == call.id


def test_streamed_tool_call_onto_anthropic(px: Stack) -> None:
    px.claude.set(ANTHROPIC_MODEL, tool_reply("get_weather", {"location": "Lyon"}, text=""))
    chunks = list(px.client.chat.completions.create(model="assistant", messages=MESSAGES, tools=TOOLS, stream=True))
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert deltas[0].function is not None and deltas[0].function.name == "get_weather"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function is not None)
    assert json.loads(arguments) == {"location": "Lyon"}


def test_overloaded_529_falls_over_before_output(px: Stack) -> None:
    px.claude.set(ANTHROPIC_MODEL, error_reply(529, "overloaded_error"))
    raw = px.client.chat.completions.with_raw_response.create(model="assistant", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == "Hello from upstream"
    assert raw.headers["x-routeguard-model"] == "gpt" and raw.headers["x-routeguard-fallback"] == "true"
    assert px.claude.count(ANTHROPIC_MODEL) == 2  # retry.attempts: 2 on the same model first
    assert px.openai_up.count("gpt-up") == 1


def test_rate_limit_is_retried_on_the_same_model(px: Stack) -> None:
    px.claude.set(ANTHROPIC_MODEL, error_reply(429, "rate_limit_error", {"retry-after": "0"}), text_reply())
    raw = px.client.chat.completions.with_raw_response.create(model="assistant", messages=MESSAGES)
    assert raw.headers["x-routeguard-model"] == "claude" and raw.headers["x-routeguard-fallback"] == "false"
    assert px.claude.count(ANTHROPIC_MODEL) == 2 and px.openai_up.count("gpt-up") == 0


@pytest.mark.parametrize(("error_type", "status", "sdk_error"), [
    ("invalid_request_error", 400, openai.BadRequestError),
    ("authentication_error", 401, openai.AuthenticationError),
    ("not_found_error", 404, openai.NotFoundError),
])
def test_non_retryable_errors_pass_through(px: Stack, error_type: str, status: int,
                                           sdk_error: type[openai.APIStatusError]) -> None:
    px.claude.set(ANTHROPIC_MODEL, error_reply(status, error_type))
    with pytest.raises(sdk_error) as caught:
        px.client.chat.completions.create(model="assistant", messages=MESSAGES)
    assert caught.value.status_code == status and caught.value.code == error_type
    assert caught.value.response.headers["x-routeguard-model"] == "claude"
    assert px.claude.count(ANTHROPIC_MODEL) == 1 and px.openai_up.count("gpt-up") == 0


def test_stream_that_breaks_after_output_never_falls_back(px: Stack) -> None:
    px.claude.set(ANTHROPIC_MODEL, stream_error(after=5))  # overloaded_error after two text deltas
    received = ""
    with pytest.raises(openai.APIError) as caught:
        for chunk in px.client.chat.completions.create(model="assistant", messages=MESSAGES, stream=True):
            received += (chunk.choices[0].delta.content or "") if chunk.choices else ""
    assert received and "Hello from Claude".startswith(received)
    assert "partial_output" in str(caught.value.code) or "overloaded" in str(caught.value.body)
    assert px.openai_up.count("gpt-up") == 0


def test_stream_error_before_output_falls_back(px: Stack) -> None:
    px.claude.set(ANTHROPIC_MODEL, stream_error(after=2, error_type="overloaded_error"))  # start, ping, error
    raw = px.client.chat.completions.with_raw_response.create(model="assistant", messages=MESSAGES, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "Hello from upstream" and raw.headers["x-routeguard-model"] == "gpt"


def test_usage_counts_toward_the_tpm_quota(px: Stack) -> None:
    first = px.client.chat.completions.with_raw_response.create(model="quota", messages=[{"role": "user",
                                                                                          "content": "hi"}])
    assert first.headers["x-routeguard-model"] == "claude-quota"
    # 25 + 12 tokens reported by the upstream; with this request's estimate the next one passes tpm 40
    second = px.client.chat.completions.with_raw_response.create(model="quota", messages=[{"role": "user",
                                                                                           "content": "hi"}])
    assert second.headers["x-routeguard-model"] == "gpt" and second.headers["x-routeguard-fallback"] == "true"
    decision = px.svc.client().post("/v1/route", json={"agent": "quota", "estimated_tokens": {"input": 8}}).json()
    assert {"model": "claude-quota", "reason": "quota_exhausted"}.items() <= decision["rejected"][0].items()


def test_langchain_chat_openai_onto_anthropic(px: Stack) -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="assistant", base_url=px.svc.url + "/v1", api_key="x", max_retries=0)
    assert llm.invoke("What is the weather in Paris?").content == "Hello from Claude"
    px.claude.set(ANTHROPIC_MODEL, text_reply("Streamed by Claude"))
    assert "".join(str(part.content) for part in llm.stream("Weather?")) == "Streamed by Claude"
    px.claude.set(ANTHROPIC_MODEL, tool_reply("get_weather", {"location": "Paris"}))
    called = llm.bind_tools(TOOLS).invoke("Weather in Paris?")
    assert [(c["name"], c["args"]) for c in called.tool_calls] == [("get_weather", {"location": "Paris"})]


def test_a_stream_without_usage_still_counts_toward_tpm(px: Stack) -> None:
    hi = [{"role": "user", "content": "hi"}]
    first = px.client.chat.completions.with_raw_response.create(model="quota-openai", messages=hi, stream=True)
    assert [c.usage for c in first.parse()] == [None] * 5  # the client did not ask for usage: none was sent
    assert first.headers["x-routeguard-model"] == "gpt-quota"
    # counted as the input estimate (4) + one token per output chunk (4): the next request's 4 pass tpm 10
    second = px.client.chat.completions.with_raw_response.create(model="quota-openai", messages=hi)
    assert second.headers["x-routeguard-model"] == "gpt"


# ---------------------------------------------------------------- Azure and LiteLLM
def test_azure_deployment_and_content_filter(px: Stack) -> None:
    raw = px.client.chat.completions.with_raw_response.create(model="azure-agent", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == "Hello from upstream"
    path, query, headers, _ = px.apis.calls[-1]
    assert (path, query) == ("/openai/deployments/gpt-4o-eu/chat/completions", "api-version=2024-10-21")
    assert headers["api-key"] == "azure-e2e"
    px.apis.set("gpt-4o-eu", "filtered_prompt")
    with pytest.raises(openai.BadRequestError) as caught:
        px.client.chat.completions.create(model="azure-agent", messages=MESSAGES)
    assert caught.value.code == "content_filter"
    assert px.openai_up.count("gpt-up") == 0  # content_filter is not a fallback trigger by default
    px.apis.set("gpt-4o-eu", "error:503")
    raw = px.client.chat.completions.with_raw_response.create(model="azure-agent", messages=MESSAGES)
    assert raw.headers["x-routeguard-model"] == "gpt"


def test_content_filter_as_a_named_fallback_trigger(px: Stack) -> None:
    px.apis.set("gpt-4o-eu", "filtered_answer")
    raw = px.client.chat.completions.with_raw_response.create(model="azure-filtered", messages=MESSAGES)
    assert raw.headers["x-routeguard-model"] == "gpt" and raw.headers["x-routeguard-fallback"] == "true"
    px.apis.set("gpt-4o-eu", "error:503")  # overloaded is not among this fallback's triggers: terminal action
    with pytest.raises(openai.InternalServerError) as caught:
        px.client.chat.completions.create(model="azure-filtered", messages=MESSAGES)
    assert isinstance(caught.value.body, dict) and caught.value.body["action"] == "suspend"
    assert px.openai_up.count("gpt-up") == 1


@pytest.mark.skipif(importlib.util.find_spec("litellm") is None, reason="the litellm extra is not installed")
def test_litellm_backed_model(px: Stack) -> None:
    px.openai_up.set("litellm-up", ok("via litellm", chunks=2))
    raw = px.client.chat.completions.with_raw_response.create(model="litellm-agent", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == "via litellm"
    assert raw.headers["x-routeguard-model"] == "via-litellm"
    chunks = list(px.client.chat.completions.create(model="litellm-agent", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "via litellm"
    px.openai_up.set("litellm-up", tool_call("get_weather", '{"location": "Nice"}'))
    called = px.client.chat.completions.create(model="litellm-agent", messages=MESSAGES, tools=TOOLS)
    assert (called.choices[0].message.tool_calls or [])[0].function.name == "get_weather"
    px.openai_up.set("litellm-up", overloaded())
    raw = px.client.chat.completions.with_raw_response.create(model="litellm-agent", messages=MESSAGES)
    assert raw.headers["x-routeguard-model"] == "gpt" and raw.headers["x-routeguard-fallback"] == "true"


# ---------------------------------------------------------------- /v1/embeddings
def test_embeddings_through_the_proxy(px: Stack) -> None:
    raw = px.client.embeddings.with_raw_response.create(model="embed-agent", input=["ward round", "triage"])
    result = raw.parse()
    assert [d.embedding for d in result.data] == [[0.25, -0.5, 0.125], [0.5, -0.5, 0.125]]
    assert raw.headers["x-routeguard-model"] == "embedder" and "x-routeguard-cost-usd" in raw.headers
    path, _, _, body = px.apis.calls[-1]
    assert path == "/v1/embeddings" and body["model"] == "embed-up"
    px.apis.set("embed-up", "error:503")
    raw = px.client.embeddings.with_raw_response.create(model="embed-agent", input="triage")
    assert raw.headers["x-routeguard-model"] == "embedder-azure" and raw.headers["x-routeguard-fallback"] == "true"
    assert px.apis.calls[-1][0] == "/openai/deployments/embed-eu/embeddings"


def test_embeddings_input_is_checked_and_stream_is_not_forwarded(px: Stack) -> None:
    with px.svc.client() as http:
        missing = http.post("/v1/embeddings", json={"model": "embed-agent"})
        assert missing.status_code == 400 and missing.json()["error"]["message"].startswith("input:")
        ok_ = http.post("/v1/embeddings", json={"model": "embed-agent", "input": "x", "stream": True})
        assert ok_.status_code == 200 and ok_.headers["content-type"].startswith("application/json")
    assert "stream" not in px.apis.calls[-1][3] and len(px.apis.calls) == 1


def test_embeddings_need_a_policy_whose_ceiling_allows_them(px: Stack) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        px.client.embeddings.create(model="assistant", input="hello")
    assert caught.value.code == "capability_not_allowed" and "embeddings" in caught.value.message
    assert px.claude.requests == [] and px.openai_up.requests == []


def test_embeddings_onto_models_without_the_capability_get_the_terminal_action(px: Stack) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        px.client.embeddings.create(model="mixed-agent", input="hello")
    err = caught.value
    assert err.status_code == 503 and err.response.headers["x-should-retry"] == "false"
    assert isinstance(err.body, dict) and err.body["action"] == "suspend"
    assert "missing_capability" in err.body["reason"]
    assert px.openai_up.requests == []
    chat = px.client.chat.completions.with_raw_response.create(model="mixed-agent", messages=MESSAGES)
    assert chat.headers["x-routeguard-model"] == "gpt"  # the same policy serves chat


# ---------------------------------------------------------------- /v1/responses
def test_responses_native_plain_and_streamed(px: Stack) -> None:
    raw = px.client.responses.with_raw_response.create(model="responder", input="Say hello")
    response = raw.parse()
    assert response.output_text == "Hello from responses" and raw.headers["x-routeguard-model"] == "gpt-resp"
    assert px.apis.calls[-1][0] == "/v1/responses" and px.apis.calls[-1][3]["model"] == "gpt-resp-up"
    events = list(px.client.responses.create(model="responder", input="Say hello", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello from responses"


def test_responses_fall_back_onto_anthropic_through_the_bridge(px: Stack) -> None:
    px.apis.set("gpt-resp-up", "error:503")
    raw = px.client.responses.with_raw_response.create(model="responder", input="Say hello",
                                                       instructions="Be brief.")
    assert raw.headers["x-routeguard-model"] == "claude" and raw.headers["x-routeguard-fallback"] == "true"
    response = raw.parse()
    assert response.output_text == "Hello from Claude" and response.usage is not None
    assert response.usage.input_tokens == 25
    assert px.claude.requests[-1][0]["system"] == [{"type": "text", "text": "Be brief."}]
    px.claude.set(ANTHROPIC_MODEL, tool_reply("get_weather", {"location": "Paris"}, text=""))
    with px.client.responses.stream(model="responder", input="Weather?", tools=[{
            "type": "function", "name": "get_weather", "parameters": TOOLS[0]["function"]["parameters"],
            "strict": False}]) as stream:
        final = stream.get_final_response()
    [call] = [item for item in final.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"location": "Paris"}


def test_responses_stream_that_breaks_after_output(px: Stack) -> None:
    px.apis.set("gpt-resp-up", "stream_break:6")
    with pytest.raises(openai.APIError):
        for _ in px.client.responses.create(model="responder", input="Say hello", stream=True):
            pass
    assert px.claude.requests == []
