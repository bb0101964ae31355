"""Fakes of the OpenAI APIs beyond chat — ``/embeddings`` and ``/responses`` (plain and streamed) — and of
Azure OpenAI's deployment URLs, written from the OpenAI and Azure OpenAI API references.

Chat calls are handed to :class:`support.upstream.UpstreamApp` (its behaviours apply); this app adds:

* ``POST …/embeddings``: ``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model",
  "usage": {"prompt_tokens", "total_tokens"}}``; ``encoding_format: base64`` answers little-endian float32
  base64 strings (the ``openai`` SDK asks for those by default);
* ``POST …/responses``: a ``response`` object (``output`` message item with ``output_text``, ``usage`` in
  input/output tokens), or with ``stream: true`` the named events ``response.created``,
  ``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``,
  ``response.output_text.delta`` …, ``response.output_text.done``, ``response.content_part.done``,
  ``response.output_item.done``, ``response.completed`` (no ``[DONE]``);
* Azure: ``/openai/deployments/{deployment}/…?api-version=…`` (404 ``DeploymentNotFound`` without the
  version), the key in ``api-key``; ``filtered_prompt`` answers Azure's content-filter 400 (``code:
  content_filter``, inner ``ResponsibleAIPolicyViolation``), ``filtered_answer`` a 200 whose choice ended with
  ``finish_reason: content_filter`` and no content.

``set(model, *names)`` queues behaviours by the body's ``model`` (``ok``, ``filtered_prompt``,
``filtered_answer``, ``error:<status>``, ``stream_break:<n>``); the last one sticks. Every request is in
``calls`` as (path, query, headers, body).
"""

from __future__ import annotations

import base64
import json
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from support.loopback import LoopbackServer
from support.upstream import UpstreamApp

__all__ = ["OpenAIApis", "OpenAIApisServer", "apis_server"]

_AZURE_FILTER = {"error": {
    "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
    "type": None, "param": "prompt", "code": "content_filter", "status": 400,
    "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": {
        "hate": {"filtered": True, "severity": "high"}, "self_harm": {"filtered": False, "severity": "safe"},
        "sexual": {"filtered": False, "severity": "safe"}, "violence": {"filtered": False, "severity": "safe"}}}}}
_ERRORS = {429: ("rate_limit_exceeded", "requests"), 500: (None, "server_error"), 503: (None, "server_error"),
           400: ("invalid_value", "invalid_request_error"), 401: ("invalid_api_key", "invalid_request_error")}


def _vector(i: int) -> list[float]:
    return [0.25 * (i + 1), -0.5, 0.125]


class OpenAIApis:
    def __init__(self) -> None:
        self.chat = UpstreamApp()
        self._lock = threading.Lock()
        self._behaviours: dict[str, list[str]] = {}
        self.calls: list[tuple[str, str, dict[str, str], dict[str, Any]]] = []
        self.stopping = False

    def set(self, model: str, *names: str) -> None:
        with self._lock:
            self._behaviours[model] = list(names) or ["ok"]

    def _take(self, model: str) -> str:
        with self._lock:
            queue = self._behaviours.get(model)
            if not queue:
                return "ok"
            return queue.pop(0) if len(queue) > 1 else queue[0]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path, query = scope["path"], scope.get("query_string", b"").decode()
        if path.startswith("/openai/deployments/") and "api-version=" not in query:
            await _json(send, 404, {"error": {"code": "DeploymentNotFound", "message": "api-version missing"}})
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = json.loads(raw) if raw else {}
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with self._lock:
            self.calls.append((path, query, headers, body))
        behaviour = self._take(str(body.get("model")))
        if behaviour.startswith("error:"):
            status = int(behaviour.split(":")[1])
            code, kind = _ERRORS.get(status, (None, "server_error"))
            await _json(send, status, {"error": {"message": f"fake {status}", "type": kind, "param": None,
                                                 "code": code}}, {"retry-after": "1"} if status == 429 else {})
        elif behaviour == "filtered_prompt":
            await _json(send, 400, _AZURE_FILTER)
        elif path.endswith("/embeddings"):
            await _json(send, 200, _embeddings(body))
        elif path.endswith("/responses"):
            await (self._response_stream(send, body, behaviour) if body.get("stream")
                   else _json(send, 200, _response(body)))
        elif behaviour == "filtered_answer":
            await _json(send, 200, _filtered_completion(body))
        else:
            await self.chat(scope, _replay(raw), send)

    async def _response_stream(self, send: Any, body: dict[str, Any], behaviour: str) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream; charset=utf-8")]})
        events = _response_events(body)
        cut = int(behaviour.split(":")[1]) if behaviour.startswith("stream_break:") else None
        for event in events[:cut]:
            data = f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            await send({"type": "http.response.body", "body": data, "more_body": True})
        if cut is not None:
            return  # drop the connection
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _replay(raw: bytes) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    data = []
    for i, _ in enumerate(items):
        vector: Any = _vector(i)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = sum(len(str(x).split()) for x in items)
    return {"object": "list", "data": data, "model": body.get("model"),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


_TEXT = "Hello from responses"


def _response(body: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    output = [] if status == "in_progress" else [
        {"type": "message", "id": "msg_fake1", "status": "completed", "role": "assistant",
         "content": [{"type": "output_text", "text": _TEXT, "annotations": []}]}]
    return {"id": "resp_fake1", "object": "response", "created_at": 1741476542, "status": status,
            "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"), "model": body.get("model"), "output": output,
            "parallel_tool_calls": True, "previous_response_id": None, "reasoning": {"effort": None},
            "store": True, "temperature": 1.0, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
            "tools": [], "top_p": 1.0, "truncation": "disabled", "metadata": {},
            "usage": None if status == "in_progress" else {
                "input_tokens": 36, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 87,
                "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 123}}


def _response_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    item = {"id": "msg_fake1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    where = {"item_id": "msg_fake1", "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response(body, "in_progress")},
        {"type": "response.in_progress", "response": _response(body, "in_progress")},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.content_part.added", **where, "part": part},
    ]
    events += [{"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
               for piece in ("Hello", " from", " responses")]
    done = _response(body)
    events += [
        {"type": "response.output_text.done", **where, "text": _TEXT, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": {**part, "text": _TEXT}},
        {"type": "response.output_item.done", "output_index": 0, "item": done["output"][0]},
        {"type": "response.completed", "response": done},
    ]
    return [{**event, "sequence_number": i} for i, event in enumerate(events)]


def _filtered_completion(body: dict[str, Any]) -> dict[str, Any]:
    return {"id": "chatcmpl-filtered", "object": "chat.completion", "created": 1700000000, "model": body.get("model"),
            "choices": [{"index": 0, "finish_reason": "content_filter", "logprobs": None,
                         "message": {"role": "assistant", "content": None},
                         "content_filter_results": {"violence": {"filtered": True, "severity": "medium"}}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 0, "total_tokens": 10}}


async def _json(send: Any, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    raw = [(b"content-type", b"application/json")] + [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": json.dumps(body).encode(), "more_body": False})


class OpenAIApisServer(LoopbackServer):
    app: OpenAIApis

    def set(self, model: str, *names: str) -> None:
        self.app.set(model, *names)

    @property
    def calls(self) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
        return self.app.calls


@contextmanager
def apis_server() -> Iterator[OpenAIApisServer]:
    server = OpenAIApisServer(OpenAIApis())
    server.start()
    try:
        yield server
    finally:
        server.app.chat.stopping = True
        server.stop()
