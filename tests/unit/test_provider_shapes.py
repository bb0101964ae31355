"""Pure translations: OpenAI chat ⇄ Anthropic Messages (requests, answers, stream events as the Messages
streaming reference shows them) and the Responses API over chat (requests, answers, event sequences)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from routeguard.core.errors import ErrorClass, ProviderError
from routeguard.execution.apis import response_has_output, usage_tokens
from routeguard.execution.providers.anthropic import MessagesDecoder
from routeguard.execution.providers.anthropic_shapes import from_message, to_messages_request
from routeguard.execution.responses_bridge import chat_request, response_events, response_from_completion


def test_system_and_developer_messages_and_role_merging() -> None:
    body = to_messages_request({"messages": [
        {"role": "developer", "content": "Rule one."},
        {"role": "system", "content": [{"type": "text", "text": "Rule two."}]},
        {"role": "user", "content": "a"}, {"role": "user", "content": "b"},
        {"role": "assistant", "content": ""},  # empty text blocks are not sent (the API refuses them)
        {"role": "assistant", "content": "c"},
    ]}, "claude-x")
    assert body["system"] == [{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Rule two."}]
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                             {"type": "text", "text": "b"}]},
                                {"role": "assistant", "content": [{"type": "text", "text": "c"}]}]
    assert body["max_tokens"] == 4096 and "tool_choice" not in body and "tools" not in body


def test_parts_urls_files_and_parallel_tool_results() -> None:
    body = to_messages_request({"messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
                                     {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "two"}]},
    ], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none",
        "max_completion_tokens": 50, "stop": ["x", "y"]}, "claude-x", stream=True)
    user, assistant, results = body["messages"]
    assert user["content"] == [{"type": "image", "source": {"type": "url", "url": "https://x/cat.png"}},
                               {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                               "data": "JVBE"}}]
    assert [b["input"] for b in assistant["content"]] == [{"a": 1}, {}]
    assert [b["tool_use_id"] for b in results["content"]] == ["c1", "c2"]  # one user turn for both results
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]
    assert body["tool_choice"] == {"type": "none"}
    assert (body["max_tokens"], body["stop_sequences"], body["stream"]) == (50, ["x", "y"], True)


@pytest.mark.parametrize("request_", [
    {"messages": "hi"},
    {"messages": [{"role": "narrator", "content": "x"}]},
    {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]},
    {"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{nope"}}]}]},
    {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f"}}],
     "tool_choice": 7},
])
def test_untranslatable_requests_are_bad_requests(request_: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as info:
        to_messages_request(request_, "claude-x")
    assert info.value.error_class is ErrorClass.BAD_REQUEST and info.value.status == 400


def test_message_with_cache_usage_and_only_tools() -> None:
    completion = from_message({"id": "msg_1", "type": "message", "model": "claude-x", "stop_reason": "tool_use",
                               "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                                           {"type": "tool_use", "id": "t1", "name": "f", "input": {"q": "x"}}],
                               "usage": {"input_tokens": 10, "cache_read_input_tokens": 100,
                                         "cache_creation_input_tokens": 5, "output_tokens": 7}}, created=1)
    message = completion["choices"][0]["message"]
    assert message["content"] is None and message["tool_calls"][0]["function"] == {"name": "f",
                                                                                   "arguments": '{"q":"x"}'}
    assert completion["usage"] == {"prompt_tokens": 115, "completion_tokens": 7, "total_tokens": 122,
                                   "prompt_tokens_details": {"cached_tokens": 100}}


def feed_all(decoder: MessagesDecoder, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for event in events:
        out += decoder.feed(event["type"], [json.dumps(event)])
    return out


# The event sequence of the Messages streaming reference (extended thinking, then text, then a tool).
DOC_EVENTS: list[dict[str, Any]] = [
    {"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant", "content": [],
                                          "model": "claude-x", "stop_reason": None, "stop_sequence": None,
                                          "usage": {"input_tokens": 472, "output_tokens": 2}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQB"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "ping"},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Okay, let's check"}},
    {"type": "content_block_stop", "index": 1},
    {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_01T1x",
                                                                  "name": "get_weather", "input": {}}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta",
                                                          "partial_json": '{"location": "San Fra'}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta",
                                                          "partial_json": 'ncisco, CA"}'}},
    {"type": "content_block_stop", "index": 2},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
     "usage": {"output_tokens": 89}},
    {"type": "message_stop"},
]


def test_documented_stream_becomes_openai_chunks() -> None:
    decoder = MessagesDecoder(created=5)
    chunks = feed_all(decoder, DOC_EVENTS)
    assert decoder.finished and decoder.done
    assert all(c["id"] == "msg_01" and c["model"] == "claude-x" and c["created"] == 5 for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content") or "" for d in deltas) == "Okay, let's check"  # thinking is not relayed
    calls = [tc for d in deltas for tc in d.get("tool_calls") or ()]
    assert {tc["index"] for tc in calls} == {0} and calls[0]["id"] == "toolu_01T1x"
    assert json.loads("".join(tc["function"]["arguments"] for tc in calls)) == {"location": "San Francisco, CA"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["prompt_tokens"] == 472 and chunks[-1]["usage"]["completion_tokens"] == 89


def test_error_event_and_bad_data() -> None:
    decoder = MessagesDecoder()
    with pytest.raises(ProviderError) as info:
        decoder.feed("error", ['{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'])
    assert info.value.error_class is ErrorClass.OVERLOADED
    assert info.value.body == {"error": {"message": "Overloaded", "type": "overloaded_error", "param": None,
                                         "code": "overloaded_error"}}
    with pytest.raises(ValueError):
        decoder.feed("message_start", ["{not json"])
    assert decoder.feed("some_future_event", ['{"type": "some_future_event"}']) == []


# ---------------------------------------------------------------- Responses API over chat
def test_responses_request_to_chat() -> None:
    chat = chat_request({
        "model": "agent", "instructions": "Be brief.", "max_output_tokens": 99, "temperature": 0.5,
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi"},
                                         {"type": "input_image", "image_url": "https://x/y.png"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":1}'},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "done"},
            {"type": "reasoning", "summary": []},
        ],
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
        "tool_choice": {"type": "function", "name": "f"},
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}}},
    }, stream=True)
    assert chat["messages"][0] == {"role": "system", "content": "Be brief."}
    assert chat["messages"][1]["content"][1] == {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
    assert [c["id"] for c in chat["messages"][2]["tool_calls"]] == ["c1", "c2"]  # one assistant turn
    assert chat["messages"][3] == {"role": "tool", "tool_call_id": "c1", "content": "done"}
    assert chat["tools"] == [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"},
                                                               "strict": True}}]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert chat["response_format"] == {"type": "json_schema", "json_schema": {"name": "out",
                                                                              "schema": {"type": "object"}}}
    assert (chat["max_tokens"], chat["temperature"], chat["stream_options"]) == (99, 0.5, {"include_usage": True})


@pytest.mark.parametrize("request_", [{"input": "x", "previous_response_id": "resp_1"},
                                      {"input": "x", "tools": [{"type": "web_search_preview"}]},
                                      {"input": [{"type": "computer_call"}]}])
def test_responses_features_chat_cannot_carry(request_: dict[str, Any]) -> None:
    with pytest.raises(ProviderError) as info:
        chat_request(request_)
    assert info.value.error_class is ErrorClass.BAD_REQUEST


def test_response_from_a_completion() -> None:
    completion = {"id": "c", "created": 9, "model": "m", "choices": [{"finish_reason": "length", "message": {
        "role": "assistant", "content": "partial", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
    response = response_from_completion(completion, {"instructions": "x"})
    assert response["object"] == "response" and response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]
    assert response["output"][0]["content"][0]["text"] == "partial"
    assert response["output"][1]["call_id"] == "call_1"
    assert usage_tokens(response) == (3, 4)


async def test_chat_stream_becomes_response_events() -> None:
    async def chunks() -> AsyncIterator[dict[str, Any]]:
        base = {"id": "c", "model": "m", "object": "chat.completion.chunk"}
        for delta, finish in (({"role": "assistant", "content": ""}, None), ({"content": "Hel"}, None),
                              ({"content": "lo"}, None),
                              ({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f",
                                                                                          "arguments": ""}}]}, None),
                              ({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}, None),
                              ({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, None),
                              ({}, "tool_calls")):
            yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        yield {**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 6}}

    events = [e async for e in response_events(chunks(), {"model": "agent"})]
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert not response_has_output(events[0]) and response_has_output(events[2])
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == "Hello"
    assert "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta") == '{"a":1}'
    final = events[-1]
    assert final["type"] == "response.completed" and final["response"]["status"] == "completed"
    assert [i["type"] for i in final["response"]["output"]] == ["message", "function_call"]
    assert final["response"]["output"][1]["arguments"] == '{"a":1}'
    assert usage_tokens(final) == (5, 6)
