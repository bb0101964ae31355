"""Server-sent events as OpenAI streams them, and the error shape the `openai` SDK raises on.

A chunk is `data: {json}\\n\\n`; a clean end is `data: [DONE]\\n\\n`. An error after the stream started is an
`error` event whose data is `{"error": {...}}`: the SDK raises `APIError` on a data object with an `error`
key (openai/_streaming.py), and other clients see the named event. It is never followed by `[DONE]`.
"""

from __future__ import annotations

from typing import Any

from routeguard.service.api.deps import dumps

__all__ = ["DONE", "SSE_HEADERS", "chunk_event", "error_body", "error_event"]

DONE = b"data: [DONE]\n\n"
SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx and friends: do not buffer the stream
]


def chunk_event(chunk: Any) -> bytes:
    return b"data: " + dumps(chunk) + b"\n\n"


def error_body(message: str, type_: str, code: str | None, **extra: Any) -> dict[str, Any]:
    """The OpenAI error object: `{"error": {"message", "type", "param", "code", ...}}`."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code, **extra}}


def error_event(message: str, type_: str, code: str | None, **extra: Any) -> bytes:
    return b"event: error\ndata: " + dumps(error_body(message, type_, code, **extra)) + b"\n\n"
