"""FakeProvider, CallableProvider and the OpenAI shape helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from routeguard.core.errors import ErrorClass, ProviderError, StreamBroken
from routeguard.execution.providers import (
    CallableProvider,
    FakeProvider,
    Provider,
    Step,
    completion_to_chunks,
    has_finish_reason,
    make_chunk,
    make_completion,
    make_tool_call,
)
from routeguard.execution.providers.openai_shapes import split_content

E = ErrorClass
REQ: dict[str, Any] = {"model": "agent", "messages": [{"role": "user", "content": "hi"}]}


class VirtualSleep:
    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.now += seconds


async def drain(
    provider: Provider, timeout_s: float = 5.0
) -> tuple[list[dict[str, Any]], ProviderError | None]:
    out: list[dict[str, Any]] = []
    try:
        async for chunk in provider.stream(REQ, timeout_s=timeout_s):
            out.append(chunk)
    except ProviderError as exc:
        return out, exc
    return out, None


def content(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


# -- shapes --------------------------------------------------------------------------------------

def test_make_completion_shape() -> None:
    c = make_completion("m", "hello world", prompt_tokens=10)
    assert c["object"] == "chat.completion"
    assert c["choices"][0] == {"index": 0, "message": {"role": "assistant", "content": "hello world"},
                               "logprobs": None, "finish_reason": "stop"}
    assert c["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    call = make_tool_call("f", {"a": 1}, call_id="call_1")
    t = make_completion("m", None, tool_calls=[call])
    assert t["choices"][0]["finish_reason"] == "tool_calls"
    assert t["choices"][0]["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}]


def test_completion_to_chunks_round_trip() -> None:
    call = make_tool_call("f", "{}", call_id="c1")
    chunks = completion_to_chunks(make_completion("m", "abcdef", tool_calls=[call]), content_chunks=3)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert content(chunks) == "abcdef"
    assert chunks[-2]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
    assert [has_finish_reason(c) for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1]["usage"]["completion_tokens"] == 2
    assert len({c["id"] for c in chunks}) == 1


@pytest.mark.parametrize(("text", "parts", "expected"), [
    ("abcdef", 3, ["ab", "cd", "ef"]), ("abcde", 2, ["abc", "de"]), ("ab", 5, ["a", "b"]),
    ("", 3, [""]), ("abc", 1, ["abc"]),
])
def test_split_content(text: str, parts: int, expected: list[str]) -> None:
    assert split_content(text, parts) == expected


def test_make_chunk_delta_only_has_given_fields() -> None:
    assert make_chunk("m", chunk_id="x", finish_reason="stop")["choices"][0]["delta"] == {}


# -- FakeProvider --------------------------------------------------------------------------------

async def test_fake_script_then_default() -> None:
    p = FakeProvider("m1", script=["ok", "rate_limit", E.OVERLOADED, "custom text",
                                   ProviderError.of(E.AUTH, "nope")])
    assert isinstance(p, Provider)
    assert (await p.complete(REQ, timeout_s=1))["choices"][0]["message"]["content"] == "ok"
    for expected in (E.RATE_LIMIT, E.OVERLOADED):
        with pytest.raises(ProviderError) as info:
            await p.complete(REQ, timeout_s=1)
        assert info.value.error_class is expected and info.value.model == "m1"
    assert (await p.complete(REQ, timeout_s=1))["choices"][0]["message"]["content"] == "custom text"
    with pytest.raises(ProviderError, match="nope"):
        await p.complete(REQ, timeout_s=1)
    assert (await p.complete(REQ, timeout_s=1))["model"] == "m1"  # default "ok" afterwards
    assert p.calls == 6 and len(p.requests) == 6


async def test_fake_script_function_and_callable_items() -> None:
    def script(i: int, request: dict[str, Any]) -> Any:
        return "timeout" if i % 2 else (lambda req: make_completion("x", req["messages"][0]["content"]))

    p = FakeProvider("m", script=script, record_requests=False)
    assert (await p.complete(REQ, timeout_s=1))["choices"][0]["message"]["content"] == "hi"
    with pytest.raises(ProviderError) as info:
        await p.complete(REQ, timeout_s=1)
    assert info.value.error_class is E.TIMEOUT
    assert p.requests == []


async def test_fake_latency_uses_injected_sleep_and_timeout_is_virtual() -> None:
    sleep = VirtualSleep()
    p = FakeProvider("m", script=[Step(latency_s=0.3), "hang", Step(latency_s=9)], latency_s=0.1, sleep=sleep)
    await p.complete(REQ, timeout_s=1)
    with pytest.raises(ProviderError) as info:
        await p.complete(REQ, timeout_s=2)
    assert info.value.error_class is E.TIMEOUT
    with pytest.raises(ProviderError):
        await p.complete(REQ, timeout_s=1)
    await p.complete(REQ, timeout_s=1)  # default latency
    assert sleep.calls == [0.3, 2, 1, 0.1]


async def test_fake_zero_latency_never_sleeps() -> None:
    sleep = VirtualSleep()
    p = FakeProvider("m", sleep=sleep)
    await p.complete(REQ, timeout_s=1)
    await drain(p)
    assert sleep.calls == []


async def test_fake_stream_ok_and_tool_calls() -> None:
    call = make_tool_call("lookup", {"q": 1})
    p = FakeProvider("m", script=[Step(content="hello world", chunks=4),
                                  Step(content="", tool_calls=(call,))])
    chunks, exc = await drain(p)
    assert exc is None and content(chunks) == "hello world" and len(chunks) == 6
    chunks, exc = await drain(p)
    assert exc is None
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-2]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "lookup"


async def test_fake_stream_break_and_missing_finish() -> None:
    p = FakeProvider("m", script=[Step(content="abcdef", chunks=3, break_after=2),
                                  Step(content="abcdef", chunks=3, missing_finish=True),
                                  "overloaded"])
    chunks, exc = await drain(p)
    assert len(chunks) == 2 and isinstance(exc, StreamBroken)
    assert exc.chunks_received == 2 and exc.error_class is E.CONNECTION
    chunks, exc = await drain(p)
    assert len(chunks) == 4 and isinstance(exc, StreamBroken) and exc.chunks_received == 4
    assert not any(has_finish_reason(c) for c in chunks)
    chunks, exc = await drain(p)
    assert chunks == [] and type(exc) is ProviderError and exc.error_class is E.OVERLOADED


async def test_fake_stream_idle_gap_timeout_is_virtual() -> None:
    sleep = VirtualSleep()
    p = FakeProvider("m", script=[Step(content="abcd", chunks=2, chunk_gap_s=5)], sleep=sleep)
    chunks, exc = await drain(p, timeout_s=1)
    assert len(chunks) == 1 and isinstance(exc, StreamBroken) and exc.error_class is E.TIMEOUT
    assert sleep.calls == [1]


async def test_fake_completion_dict_item_streams() -> None:
    p = FakeProvider("m", script=[make_completion("up", "xyz")])
    chunks, exc = await drain(p)
    assert exc is None and content(chunks) == "xyz" and chunks[0]["model"] == "up"


# -- CallableProvider ----------------------------------------------------------------------------

async def test_callable_sync_async_and_string_results() -> None:
    async def afn(request: dict[str, Any]) -> dict[str, Any]:
        return make_completion("a", "async")

    sync = await CallableProvider("s", lambda r: make_completion("s", "sync")).complete(REQ, timeout_s=1)
    assert sync["choices"][0]["message"]["content"] == "sync"
    got = await CallableProvider("a", afn).complete(REQ, timeout_s=1)
    assert got["choices"][0]["message"]["content"] == "async"
    c = await CallableProvider("t", lambda r: "plain").complete(REQ, timeout_s=1)
    assert c["choices"][0]["message"]["content"] == "plain" and c["model"] == "t"


async def test_callable_errors_are_classified() -> None:
    def boom(request: dict[str, Any]) -> dict[str, Any]:
        raise ConnectionResetError(104, "reset")

    def provider_error(request: dict[str, Any]) -> dict[str, Any]:
        raise ProviderError.of(E.CONTEXT_WINDOW, "too long")

    async def slow(request: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(10)
        raise AssertionError("not reached")

    cases: list[tuple[Any, ErrorClass]] = [
        (boom, E.CONNECTION), (provider_error, E.CONTEXT_WINDOW), (slow, E.TIMEOUT),
        (lambda r: 42, E.SERVER_ERROR)]
    for fn, expected in cases:
        with pytest.raises(ProviderError) as info:
            await CallableProvider("c", fn).complete(REQ, timeout_s=0.05)
        assert info.value.error_class is expected
        assert info.value.model == "c"


async def test_callable_stream_from_complete_only() -> None:
    chunks, exc = await drain(CallableProvider("c", lambda r: "hello"))
    assert exc is None
    assert [c["choices"][0]["delta"] for c in chunks[:2]] == [{"role": "assistant", "content": ""},
                                                              {"content": "hello"}]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_callable_stream_fn_async_sync_broken_and_unfinished() -> None:
    def pieces(finish: bool) -> list[dict[str, Any]]:
        out = [make_chunk("m", chunk_id="x", content=t) for t in ("a", "b")]
        return [*out, make_chunk("m", chunk_id="x", finish_reason="stop")] if finish else out

    async def agen(request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        for c in pieces(True):
            yield c

    async def breaking(request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        yield pieces(False)[0]
        raise ConnectionResetError(104, "reset")

    async def stalling(request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        yield pieces(False)[0]
        await asyncio.sleep(10)
        yield pieces(False)[1]

    never = CallableProvider("c", lambda r: "unused", stream_fn=agen)
    chunks, exc = await drain(never)
    assert exc is None and content(chunks) == "ab"
    chunks, exc = await drain(CallableProvider("c", lambda r: "", stream_fn=lambda r: pieces(True)))
    assert exc is None and len(chunks) == 3
    chunks, exc = await drain(CallableProvider("c", lambda r: "", stream_fn=lambda r: pieces(False)))
    assert isinstance(exc, StreamBroken) and exc.chunks_received == 2 and exc.error_class is E.SERVER_ERROR
    chunks, exc = await drain(CallableProvider("c", lambda r: "", stream_fn=breaking))
    assert isinstance(exc, StreamBroken) and exc.chunks_received == 1 and exc.error_class is E.CONNECTION
    chunks, exc = await drain(CallableProvider("c", lambda r: "", stream_fn=stalling), timeout_s=0.05)
    assert isinstance(exc, StreamBroken) and exc.chunks_received == 1 and exc.error_class is E.TIMEOUT
