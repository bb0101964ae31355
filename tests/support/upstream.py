"""A fake OpenAI-compatible upstream: a real HTTP server on 127.0.0.1 for integration tests.

    with upstream_server() as up:
        up.set("m1", rate_limited(retry_after="2"), ok())   # first call 429, then ok for ever
        provider = OpenAIHTTPProvider("m1", up.base_url, "m1")
        ...
        assert up.count("m1") == 2

Behaviour is chosen by the ``model`` field of the request body. ``set(model, *behaviours)`` queues
behaviours: each call takes the next one and the last one sticks. Unknown models answer ``ok()``.
Every request is recorded (``requests``: model, body, headers); a client that hangs up while a
response is delayed or between stream chunks is recorded in ``disconnects`` (its model).
Shapes are written out by hand here (not built with routeguard's helpers) so the tests check
routeguard against independent data.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

__all__ = [
    "Behaviour", "Recorded", "UpstreamServer", "bad_request", "context_length_exceeded", "error",
    "hang", "ok", "overloaded", "rate_limited", "server_error_html", "stream_breaks_after",
    "stream_error_event", "stream_fails_before_first_chunk", "stream_without_finish", "tool_call",
    "upstream_server",
]

Send = Any
Receive = Any


@dataclass(frozen=True)
class Behaviour:
    kind: str = "ok"  # ok | error | tool_call | stream_break | stream_no_finish | stream_error_event
    content: str = "Hello from upstream"
    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    chunks: int = 3
    after: int = 1  # chunks sent before a stream break / error event
    delay_s: float = 0.0  # before the response (and before the first chunk)
    chunk_gap_s: float = 0.0
    tool_name: str = "get_weather"
    tool_arguments: str = '{"city": "Paris"}'


def ok(content: str = "Hello from upstream", *, chunks: int = 3, delay_s: float = 0.0,
       chunk_gap_s: float = 0.0) -> Behaviour:
    return Behaviour(content=content, chunks=chunks, delay_s=delay_s, chunk_gap_s=chunk_gap_s)


def error(status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Behaviour:
    return Behaviour(kind="error", status=status, body=body, headers=dict(headers or {}))


def hang(seconds: float = 30.0) -> Behaviour:
    """Answers nothing for ``seconds`` (released early when the server stops)."""
    return Behaviour(delay_s=seconds)


def overloaded() -> Behaviour:
    return error(503, {"error": {"message": "The server is overloaded or not ready yet.",
                                 "type": "server_error", "param": None, "code": None}})


def rate_limited(retry_after: str = "1") -> Behaviour:
    return error(429, {"error": {
        "message": "Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): "
                   "Limit 30000, Used 29876, Requested 512. Please try again in 1.02s.",
        "type": "tokens", "param": None, "code": "rate_limit_exceeded"}},
        {"Retry-After": retry_after, "x-ratelimit-remaining-tokens": "0"})


def bad_request() -> Behaviour:
    return error(400, {"error": {"message": "Invalid value for 'temperature': must be <= 2.",
                                 "type": "invalid_request_error", "param": "temperature",
                                 "code": "invalid_value"}})


def context_length_exceeded() -> Behaviour:
    return error(400, {"error": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages resulted "
                   "in 9437 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})


def server_error_html() -> Behaviour:
    return Behaviour(kind="error", status=500, body="<html><head><title>500 Internal Server Error</title>"
                     "</head><body><h1>Internal Server Error</h1></body></html>",
                     headers={"content-type": "text/html"})


def tool_call(name: str = "get_weather", arguments: str = '{"city": "Paris"}') -> Behaviour:
    return Behaviour(kind="tool_call", tool_name=name, tool_arguments=arguments)


def stream_breaks_after(n: int, *, chunks: int = 5) -> Behaviour:
    """Streams ``n`` chunks then drops the connection (no finish, no [DONE])."""
    return Behaviour(kind="stream_break", after=n, chunks=chunks)


def stream_fails_before_first_chunk() -> Behaviour:
    """Answers 200 with SSE headers, then drops the connection before any data."""
    return Behaviour(kind="stream_break", after=0)


def stream_without_finish(chunks: int = 3) -> Behaviour:
    """Streams content chunks, never a finish reason nor [DONE], and closes the response cleanly."""
    return Behaviour(kind="stream_no_finish", chunks=chunks)


def stream_error_event(after: int = 1, body: Any = None) -> Behaviour:
    """Streams ``after`` chunks then an OpenAI-style ``data: {"error": ...}`` line, then ends."""
    return Behaviour(kind="stream_error_event", after=after, body=body or {"error": {
        "message": "The server had an error while processing your request.", "type": "server_error",
        "param": None, "code": None}})


@dataclass(frozen=True)
class Recorded:
    model: str
    body: dict[str, Any]
    headers: dict[str, str]


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-up1", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
            "system_fingerprint": "fp_up", "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                        "finish_reason": finish}]}


def _completion(model: str, message: dict[str, Any], finish: str) -> dict[str, Any]:
    return {"id": "chatcmpl-up1", "object": "chat.completion", "created": 1700000000, "model": model,
            "system_fingerprint": "fp_up",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}}


def _pieces(text: str, n: int) -> list[str]:
    n = max(1, min(n, len(text)))
    step = -(-len(text) // n)
    return [text[i:i + step] for i in range(0, len(text), step)]


class UpstreamApp:
    """The ASGI app (raw ASGI, so a test controls exactly how a response ends)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._behaviours: dict[str, list[Behaviour]] = {}
        self.requests: list[Recorded] = []
        self.disconnects: list[str] = []
        self.stopping = False

    def set(self, model: str, *behaviours: Behaviour) -> None:
        with self._lock:
            self._behaviours[model] = list(behaviours) or [ok()]

    def reset(self) -> None:
        with self._lock:
            self._behaviours.clear()
            self.requests.clear()
            self.disconnects.clear()

    def count(self, model: str) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.model == model)

    @property
    def counts(self) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for r in self.requests:
                out[r.model] = out.get(r.model, 0) + 1
            return out

    def _take(self, model: str, body: dict[str, Any], headers: dict[str, str]) -> Behaviour:
        with self._lock:
            self.requests.append(Recorded(model, body, headers))
            queue = self._behaviours.get(model)
            if not queue:
                return ok()
            return queue.pop(0) if len(queue) > 1 else queue[0]

    async def _sleep(self, seconds: float, receive: Receive | None = None, model: str = "") -> bool:
        """Wait ``seconds``; False (and the disconnect recorded) when the client hangs up meanwhile."""
        watcher = asyncio.ensure_future(receive()) if receive is not None else None
        try:
            end = time.monotonic() + seconds
            while not self.stopping and time.monotonic() < end:
                if watcher is not None and watcher.done():
                    if watcher.result().get("type") == "http.disconnect":
                        with self._lock:
                            self.disconnects.append(model)
                        return False
                    watcher = asyncio.ensure_future(receive())
                await asyncio.sleep(min(0.02, max(0.0, end - time.monotonic())))
            return True
        finally:
            if watcher is not None and not watcher.done():
                watcher.cancel()

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        path, method = scope["path"], scope["method"]
        if method == "GET" and path.endswith("/models"):
            await _json(send, 200, {"object": "list", "data": []})
            return
        if method != "POST" or not path.endswith("/chat/completions"):
            await _json(send, 404, {"error": {"message": f"no route {path}", "type": "invalid_request_error",
                                              "code": "not_found"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            await _json(send, 400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}})
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        model = str(body.get("model"))
        behaviour = self._take(model, body, headers)
        if behaviour.delay_s and not await self._sleep(behaviour.delay_s, receive, model):
            return
        if behaviour.kind == "error":
            await _json(send, behaviour.status, behaviour.body, behaviour.headers)
        elif body.get("stream"):
            await self._stream(send, receive, model, behaviour)
        elif behaviour.kind == "tool_call":
            call = {"id": "call_up1", "type": "function",
                    "function": {"name": behaviour.tool_name, "arguments": behaviour.tool_arguments}}
            message = {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}
            await _json(send, 200, _completion(model, message, "tool_calls"))
        else:
            message = {"role": "assistant", "content": behaviour.content, "refusal": None}
            await _json(send, 200, _completion(model, message, "stop"))

    async def _stream(self, send: Send, receive: Receive, model: str, b: Behaviour) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8"),
                                (b"cache-control", b"no-cache")]})
        events: list[dict[str, Any]] = [_chunk(model, {"role": "assistant", "content": ""})]
        if b.kind == "tool_call":
            call = {"index": 0, "id": "call_up1", "type": "function",
                    "function": {"name": b.tool_name, "arguments": ""}}
            events.append(_chunk(model, {"tool_calls": [call]}))
            for piece in _pieces(b.tool_arguments, 3):
                events.append(_chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
            events.append(_chunk(model, {}, "tool_calls"))
        else:
            events.extend(_chunk(model, {"content": p}) for p in _pieces(b.content, b.chunks))
            events.append(_chunk(model, {}, "stop"))
        if b.kind == "stream_no_finish":
            events.pop()
        if b.kind in ("stream_break", "stream_error_event"):
            events = events[: b.after]
        for i, event in enumerate(events):
            if i and b.chunk_gap_s and not await self._sleep(b.chunk_gap_s, receive, model):
                return
            await send({"type": "http.response.body", "body": _sse(event), "more_body": True})
        if b.kind == "stream_break":
            return  # returning without completing the response drops the connection mid-body
        if b.kind == "stream_error_event":
            await send({"type": "http.response.body", "body": _sse(b.body), "more_body": True})
        elif b.kind != "stream_no_finish":
            await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _sse(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def _json(send: Send, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
    payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    extra = dict(headers or {})
    content_type = extra.pop("content-type", "application/json")
    raw_headers = [(b"content-type", content_type.encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


class UpstreamServer:
    """Runs :class:`UpstreamApp` with uvicorn in a background thread on a free loopback port."""

    def __init__(self) -> None:
        self.app = UpstreamApp()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="critical", access_log=False, http="h11",
                                lifespan="off", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"upstream-{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def set(self, model: str, *behaviours: Behaviour) -> None:
        self.app.set(model, *behaviours)

    def count(self, model: str) -> int:
        return self.app.count(model)

    @property
    def counts(self) -> dict[str, int]:
        return self.app.counts

    @property
    def requests(self) -> list[Recorded]:
        return self.app.requests

    @property
    def disconnects(self) -> list[str]:
        """Models whose client hung up before the response was complete."""
        return self.app.disconnects

    def reset(self) -> None:
        self.app.reset()

    def start(self) -> UpstreamServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self.app.stopping = True
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()


@contextmanager
def upstream_server() -> Iterator[UpstreamServer]:
    server = UpstreamServer().start()
    try:
        yield server
    finally:
        server.stop()
