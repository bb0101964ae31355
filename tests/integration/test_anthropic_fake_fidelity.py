"""The fake Messages API speaks the real wire format: the official `anthropic` SDK reads its answers, streams
(accumulating text and tool-input JSON deltas itself) and errors into its own types. This keeps the provider
tests honest: they test routeguard against what Anthropic sends, not against routeguard's own idea of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.anthropic_upstream import (
    STATUS_OF,
    AnthropicServer,
    anthropic_server,
    error_reply,
    stream_error,
    text_reply,
    tool_reply,
)

anthropic = pytest.importorskip("anthropic")

MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def up() -> Iterator[AnthropicServer]:
    with anthropic_server() as server:
        yield server


@pytest.fixture
def client(up: AnthropicServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=up.url, api_key="sk-ant-x", max_retries=0) as c:
        yield c


def test_sdk_reads_messages(up: AnthropicServer, client: anthropic.Anthropic) -> None:
    up.set("m", text_reply("Hi there", output_tokens=3))
    message = client.messages.create(model="m", max_tokens=64, messages=MESSAGES)
    assert message.content[0].type == "text" and message.content[0].text == "Hi there"
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == ("end_turn", 25, 3)


def test_sdk_accumulates_streams_with_tool_input_deltas(up: AnthropicServer, client: anthropic.Anthropic) -> None:
    up.set("m", tool_reply("get_weather", {"location": "Paris", "unit": "celsius"}))
    with client.messages.stream(model="m", max_tokens=64, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    assert [block.type for block in final.content] == ["text", "tool_use"]
    tool = final.content[1]
    assert tool.type == "tool_use" and tool.input == {"location": "Paris", "unit": "celsius"}
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == 12


@pytest.mark.parametrize("error_type", sorted(STATUS_OF))
def test_sdk_maps_the_fake_errors(up: AnthropicServer, client: anthropic.Anthropic, error_type: str) -> None:
    up.set("m", error_reply(STATUS_OF[error_type], error_type))
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="m", max_tokens=64, messages=MESSAGES)
    assert info.value.status_code == STATUS_OF[error_type]
    assert isinstance(info.value.body, dict) and info.value.body["error"]["type"] == error_type
    if error_type == "overloaded_error":
        assert isinstance(info.value, anthropic.InternalServerError)


def test_sdk_raises_on_a_mid_stream_error_event(up: AnthropicServer, client: anthropic.Anthropic) -> None:
    up.set("m", stream_error(after=5, error_type="overloaded_error"))
    with pytest.raises(anthropic.APIStatusError), client.messages.stream(
            model="m", max_tokens=64, messages=MESSAGES) as stream:
        for _ in stream.text_stream:
            pass
