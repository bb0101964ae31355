"""A fake of Anthropic's Messages API (``POST /v1/messages``), written from Anthropic's API reference.

Shapes follow the documentation of "Messages", "Streaming Messages" and "Errors" — not routeguard's helpers:
a ``message`` object with ``content`` blocks (``text``, ``tool_use``), ``stop_reason`` and ``usage``; streams
as named SSE events ``message_start`` → ``content_block_start`` → ``ping`` → ``content_block_delta``
(``text_delta`` / ``input_json_delta``) → ``content_block_stop`` → ``message_delta`` (stop reason, output
usage) → ``message_stop``; errors as ``{"type": "error", "error": {"type", "message"}}`` with the documented
statuses (400 invalid_request_error, 401 authentication_error, 403 permission_error, 404 not_found_error,
413 request_too_large, 429 rate_limit_error, 500 api_error, 529 overloaded_error) and, mid-stream, an
``event: error``.

    with anthropic_server() as up:
        up.set("claude-x", error_reply(529, "overloaded_error"), text_reply("hi"))
        ...  # base_url=up.url; up.requests holds (body, headers) of every call

Behaviours are chosen by the request's ``model``; each call takes the next, the last one sticks.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from support.loopback import LoopbackServer

__all__ = [
    "STATUS_OF",
    "AnthropicApp",
    "Reply",
    "anthropic_server",
    "error_reply",
    "stream_breaks",
    "stream_ends_early",
    "stream_error",
    "text_reply",
    "tool_reply",
]

STATUS_OF = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
             "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
             "overloaded_error": 529}


@dataclass(frozen=True)
class Reply:
    kind: str = "text"  # text | tool | error | stream_error | stream_break
    text: str = "Hello from Claude"
    tool_name: str = "get_weather"
    tool_input: Mapping[str, Any] = field(default_factory=lambda: {"location": "Paris", "unit": "celsius"})
    stop_reason: str = "end_turn"
    status: int = 200
    error_type: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    after: int = 0  # stream_error / stream_break: events sent first
    input_tokens: int = 25
    output_tokens: int = 12


def text_reply(text: str = "Hello from Claude", *, stop_reason: str = "end_turn", input_tokens: int = 25,
               output_tokens: int = 12) -> Reply:
    return Reply(text=text, stop_reason=stop_reason, input_tokens=input_tokens, output_tokens=output_tokens)


def tool_reply(name: str = "get_weather", tool_input: Mapping[str, Any] | None = None, *,
               text: str = "Let me check.") -> Reply:
    return Reply(kind="tool", text=text, tool_name=name, tool_input=dict(tool_input or {"location": "Paris"}),
                 stop_reason="tool_use")


def error_reply(status: int, error_type: str, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(kind="error", status=status, error_type=error_type, headers=dict(headers or {}))


def stream_error(after: int, error_type: str = "overloaded_error") -> Reply:
    """A stream that sends ``after`` events, then ``event: error`` (e.g. overloaded mid-stream), then ends."""
    return Reply(kind="stream_error", after=after, error_type=error_type)


def stream_ends_early(after: int) -> Reply:
    """A stream that sends ``after`` events and then ends the body cleanly (no message_delta / message_stop)."""
    return Reply(kind="stream_end", after=after)


def stream_breaks(after: int) -> Reply:
    """A stream that sends ``after`` events and then drops the connection."""
    return Reply(kind="stream_break", after=after)


def _message(model: str, r: Reply) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if r.text:
        content.append({"type": "text", "text": r.text})
    if r.kind == "tool":
        content.append({"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": r.tool_name,
                        "input": dict(r.tool_input)})
    return {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": r.stop_reason, "stop_sequence": None,
            "usage": {"input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}


def _events(model: str, r: Reply) -> list[tuple[str, dict[str, Any]]]:
    start = _message(model, r)
    start.update(content=[], stop_reason=None, usage={"input_tokens": r.input_tokens, "output_tokens": 1})
    out: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start}),
                                             ("ping", {"type": "ping"})]
    index = 0
    if r.text:
        out.append(("content_block_start", {"type": "content_block_start", "index": index,
                                            "content_block": {"type": "text", "text": ""}}))
        step = max(1, len(r.text) // 3)
        for i in range(0, len(r.text), step):
            out.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                "delta": {"type": "text_delta", "text": r.text[i:i + step]}}))
        out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    if r.kind == "tool":
        out.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
            "type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": r.tool_name, "input": {}}}))
        raw = json.dumps(dict(r.tool_input))
        for piece in (raw[: len(raw) // 2], raw[len(raw) // 2:]):
            out.append(("content_block_delta", {"type": "content_block_delta", "index": index,
                                                "delta": {"type": "input_json_delta", "partial_json": piece}}))
        out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(("message_delta", {"type": "message_delta",
                                  "delta": {"stop_reason": r.stop_reason, "stop_sequence": None},
                                  "usage": {"output_tokens": r.output_tokens}}))
    out.append(("message_stop", {"type": "message_stop"}))
    return out


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _error_body(error_type: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": f"fake {error_type}"},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}


class AnthropicApp:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: dict[str, list[Reply]] = {}
        self.requests: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.stopping = False

    def set(self, model: str, *replies: Reply) -> None:
        with self._lock:
            self._replies[model] = list(replies) or [text_reply()]

    def count(self, model: str) -> int:
        with self._lock:
            return sum(1 for body, _ in self.requests if body.get("model") == model)

    def _take(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append((body, headers))
            queue = self._replies.get(str(body.get("model")))
            if not queue:
                return text_reply()
            return queue.pop(0) if len(queue) > 1 else queue[0]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] != "POST" or scope["path"] != "/v1/messages":
            await _json(send, 404, _error_body("not_found_error"))
            return
        body = json.loads(raw)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if "anthropic-version" not in headers:
            await _json(send, 400, _error_body("invalid_request_error"))
            return
        r = self._take(body, headers)
        model = str(body.get("model"))
        if r.kind == "error":
            await _json(send, r.status, _error_body(r.error_type), r.headers)
        elif body.get("stream"):
            await self._stream(send, model, r)
        else:
            await _json(send, 200, _message(model, r))

    async def _stream(self, send: Any, model: str, r: Reply) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8"),
                                (b"cache-control", b"no-cache")]})
        events = _events(model, r)
        if r.kind in ("stream_error", "stream_break", "stream_end"):
            events = events[: r.after]
        for name, data in events:
            await send({"type": "http.response.body", "body": _sse(name, data), "more_body": True})
            await asyncio.sleep(0)
        if r.kind == "stream_break":
            return  # returning without finishing the body drops the connection
        if r.kind == "stream_error":
            await send({"type": "http.response.body", "body": _sse("error", _error_body(r.error_type)),
                        "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _json(send: Any, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"request-id", b"req_011CSHoEeqs5C35K2UUqR7Fy")]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


class AnthropicServer(LoopbackServer):
    app: AnthropicApp

    def set(self, model: str, *replies: Reply) -> None:
        self.app.set(model, *replies)

    def count(self, model: str) -> int:
        return self.app.count(model)

    @property
    def requests(self) -> list[tuple[dict[str, Any], dict[str, str]]]:
        return self.app.requests


@contextmanager
def anthropic_server() -> Iterator[AnthropicServer]:
    server = AnthropicServer(AnthropicApp())
    server.start()
    try:
        yield server
    finally:
        server.stop()
