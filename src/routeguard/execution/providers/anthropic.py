"""Anthropic models over the Messages API (``endpoint.type: anthropic``), seen by callers as OpenAI chat.

``POST {base_url}/v1/messages`` (``base_url`` default ``https://api.anthropic.com``; one ending in ``/v1`` is
taken as is) with ``x-api-key`` (from ``api_key_env``) and ``anthropic-version``. Requests and answers are
translated by :mod:`anthropic_shapes`; the stream decoder below turns Messages events into OpenAI chunks:

* ``message_start`` → the role chunk (id, model, input tokens noted); ``ping`` and ``content_block_stop``
  → nothing; ``content_block_start`` of a ``tool_use`` block → a tool call chunk (id, name, empty arguments),
  of a text block with text → content; ``content_block_delta`` ``text_delta`` → content, ``input_json_delta``
  → the tool call's argument fragment (thinking and signature deltas are not relayed);
* ``message_delta`` → the finish chunk (its ``stop_reason``) with usage — on the finish chunk, or as a last
  chunk without choices when the request asked ``stream_options.include_usage``;
* ``message_stop`` ends the stream; ``error`` (e.g. ``overloaded_error``) is a mid-stream failure, classified
  like the same error type in an HTTP answer (CONTRACT §4).

Errors: the Messages error body ``{"type": "error", "error": {"type": …}}`` is classified by its type and
status — ``invalid_request_error`` 400 → bad_request, ``authentication_error`` 401 / ``permission_error`` 403 →
auth, ``not_found_error`` 404 → not_found, ``request_too_large`` 413 → context_window, ``rate_limit_error``
429 → rate_limit (``retry-after`` honoured), ``api_error`` 500 → server_error, ``overloaded_error`` 529 →
overloaded.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from routeguard.core.errors import ProviderError, classify
from routeguard.execution.providers.anthropic_shapes import (
    FINISH_REASONS,
    from_message,
    to_messages_request,
    usage_of,
)
from routeguard.execution.providers.http_provider import HTTPProvider, StreamDecoder, dumps
from routeguard.execution.providers.openai_shapes import make_chunk
from routeguard.execution.providers.transport import Transport

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider", "MessagesDecoder"]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_BASE_URL = "https://api.anthropic.com"


def openai_error(body: object, message: str) -> object:
    """``{"type": "error", "error": {"type", "message"}}`` as an OpenAI error body; other bodies as they are."""
    err = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(err, Mapping):
        return body
    kind = str(err.get("type") or "api_error")
    return {"error": {"message": str(err.get("message") or message), "type": kind, "param": None, "code": kind}}


class MessagesDecoder:
    """Messages API stream events → OpenAI ``chat.completion.chunk`` dicts (one stream)."""

    def __init__(self, *, include_usage: bool = False, created: int | None = None) -> None:
        self.finished = False
        self.done = False
        self.include_usage = include_usage
        self.created = int(time.time()) if created is None else created
        self.id = ""
        self.model = ""
        self.input_tokens = 0
        self._tools: dict[int, int] = {}  # content block index -> tool call index

    def _chunk(self, **delta: Any) -> dict[str, Any]:
        return make_chunk(self.model, chunk_id=self.id, created=self.created, **delta)

    def feed(self, event: str, data: list[str]) -> list[dict[str, Any]]:
        payload = json.loads("\n".join(data))
        if not isinstance(payload, dict):
            raise ValueError("an SSE event that is not a JSON object")
        kind = payload.get("type") or event
        if kind == "error" or event == "error":
            raise ProviderError(classify(body=payload), body=openai_error(payload, "stream error"))
        handler = _HANDLERS.get(str(kind))
        return handler(self, payload) if handler is not None else []  # ping, content_block_stop, new types

    def _start(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        message = payload.get("message") or {}
        self.id = str(message.get("id") or "")
        self.model = str(message.get("model") or "")
        self.input_tokens = int((message.get("usage") or {}).get("input_tokens") or 0)
        return [self._chunk(role="assistant", content="")]

    def _block_start(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        block = payload.get("content_block") or {}
        if block.get("type") == "tool_use":
            index = len(self._tools)
            self._tools[int(payload.get("index", -1))] = index
            call = {"index": index, "id": block.get("id"), "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""}}
            return [self._chunk(tool_calls=[call])]
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk(content=block["text"])]
        return []

    def _block_delta(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        delta = payload.get("delta") or {}
        if delta.get("type") == "text_delta":
            return [self._chunk(content=str(delta.get("text", "")))]
        if delta.get("type") == "input_json_delta":
            index = self._tools.get(int(payload.get("index", -1)))
            if index is None:
                raise ValueError("input_json_delta for a block that is not a tool_use")
            fragment = {"index": index, "function": {"arguments": str(delta.get("partial_json", ""))}}
            return [self._chunk(tool_calls=[fragment])]
        return []  # thinking_delta, signature_delta, citations: not relayed

    def _message_delta(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        stop = (payload.get("delta") or {}).get("stop_reason")
        usage = usage_of(payload.get("usage"), self.input_tokens)
        if stop is None:
            return []
        self.finished = True
        finish = FINISH_REASONS.get(str(stop), "stop")
        if not self.include_usage:
            return [self._chunk(finish_reason=finish, usage=usage)]
        last = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": usage}
        return [self._chunk(finish_reason=finish), last]

    def _stop(self, _payload: dict[str, Any]) -> list[dict[str, Any]]:
        self.done = True
        return []


_HANDLERS = {
    "message_start": MessagesDecoder._start,
    "content_block_start": MessagesDecoder._block_start,
    "content_block_delta": MessagesDecoder._block_delta,
    "message_delta": MessagesDecoder._message_delta,
    "message_stop": MessagesDecoder._stop,
}


class AnthropicProvider(HTTPProvider):
    def __init__(
        self,
        name: str,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = None,
        max_tokens: int | None = None,
        version: str | None = None,
        client: Transport | Any = None,
    ) -> None:
        super().__init__(name, client)
        self.model = model
        root = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.url = root + ("/messages" if root.endswith("/v1") else "/v1/messages")
        self.api_key_env = api_key_env
        self.max_tokens = max_tokens
        self.version = version or ANTHROPIC_VERSION

    def __repr__(self) -> str:
        return f"AnthropicProvider(name={self.name!r}, url={self.url!r}, model={self.model!r})"

    def headers(self, accept: str) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": accept, "anthropic-version": self.version}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["x-api-key"] = key
        return headers

    def http_error(self, status: int, text: str, headers: Mapping[str, str]) -> ProviderError:
        """Classified from the Messages error; the body handed on is OpenAI-shaped (its code: the type)."""
        err = ProviderError.from_http(status, text, headers, model=self.name, now=time.time())
        err.body = openai_error(err.body, err.classified.message)
        return err

    def chat_call(self, request: Mapping[str, Any], *, stream: bool) -> tuple[str, dict[str, str], bytes]:
        try:
            body = to_messages_request(request, self.model, max_tokens=self.max_tokens, stream=stream)
        except ProviderError as exc:
            exc.model = self.name
            raise
        return self.url, self.headers("text/event-stream" if stream else "application/json"), dumps(body)

    def chat_answer(self, data: Any, status: int) -> dict[str, Any]:
        if isinstance(data, dict) and data.get("type") == "message":
            return from_message(data, int(time.time()))
        if isinstance(data, dict) and data.get("type") == "error":
            raise ProviderError(classify(status=status, body=data), status=status,
                                body=openai_error(data, "upstream error"), model=self.name)
        raise ProviderError.from_http(502, data if isinstance(data, str | dict) else str(data), model=self.name)

    def chat_decoder(self, request: Mapping[str, Any]) -> StreamDecoder:
        options = request.get("stream_options")
        include = isinstance(options, Mapping) and bool(options.get("include_usage"))
        return MessagesDecoder(include_usage=include)
