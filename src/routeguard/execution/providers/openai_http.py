"""OpenAI-compatible HTTP endpoints (``POST {base_url}/chat/completions``, ``/embeddings``, ``/responses``).

The request goes upstream unchanged except ``model`` (the endpoint's model name); answers come back as they
are. The stream decoder reads OpenAI SSE: ``data:`` lines of chunks, ``[DONE]`` as the end marker, an
``error`` event or a ``data: {"error": …}`` object as a mid-stream failure. Responses API streams (named
``response.*`` events, no ``[DONE]``) have their own decoder: ``response.completed`` / ``.incomplete`` end
them, ``error`` and ``response.failed`` are failures.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

from routeguard.core.errors import ErrorClass, ProviderError, classify
from routeguard.execution.providers.http_provider import HTTPProvider, StreamDecoder, dumps
from routeguard.execution.providers.openai_shapes import has_finish_reason
from routeguard.execution.providers.transport import (
    DEFAULT_LIMITS,
    Transport,
    make_httpx_transport,
    make_transport,
)

__all__ = [
    "DEFAULT_LIMITS",
    "ChatDecoder",
    "OpenAIHTTPProvider",
    "ResponsesDecoder",
    "make_client",
    "make_upstream_client",
]

# Earlier names of the transport factories, kept for callers of this module.
make_client = make_httpx_transport


def make_upstream_client(*, trust_env: bool = True) -> Any:
    """The transport chosen by ``ROUTEGUARD_HTTP_CLIENT`` (``lean`` by default, or ``httpx``)."""
    return make_transport(trust_env=trust_env)


class ChatDecoder:
    """OpenAI chat-completion SSE."""

    def __init__(self) -> None:
        self.finished = False
        self.done = False

    def feed(self, event: str, data: list[str]) -> list[dict[str, Any]]:
        if data == ["[DONE]"]:
            self.done = True
            return []
        if event not in ("", "message", "error"):
            return []  # named events we do not know (ping, ...)
        try:
            payloads: list[Any] = [json.loads("\n".join(data))]
        except ValueError:  # lenient: servers that omit the blank line between events
            payloads = [json.loads(d) for d in data if d != "[DONE]"]
            self.done = "[DONE]" in data
        for payload in payloads:
            if not isinstance(payload, dict):
                raise ValueError("an SSE event that is not a JSON object")
            if event == "error" or ("error" in payload and "choices" not in payload):
                raise ProviderError(classify(body=payload), body=payload)
            self.finished = self.finished or has_finish_reason(payload)
        return payloads


_RESPONSE_ENDS = frozenset({"response.completed", "response.incomplete"})


class ResponsesDecoder:
    """OpenAI Responses API SSE: every event is delivered as it is (its ``type`` names it)."""

    def __init__(self) -> None:
        self.finished = False
        self.done = False

    def feed(self, event: str, data: list[str]) -> list[dict[str, Any]]:
        if data == ["[DONE]"]:
            self.done = True
            return []
        payload = json.loads("\n".join(data))
        if not isinstance(payload, dict):
            raise ValueError("an SSE event that is not a JSON object")
        kind = payload.get("type") or event
        if kind == "error":
            raise ProviderError(classify(body={"error": payload}), body=payload)
        if kind == "response.failed":
            response = payload.get("response")
            err = response.get("error") if isinstance(response, dict) else None
            body = {"error": err if isinstance(err, dict) else {"type": "server_error"}}
            raise ProviderError(classify(body=body), body=body)
        if kind in _RESPONSE_ENDS:
            self.finished = self.done = True
        return [payload]


class OpenAIHTTPProvider(HTTPProvider):
    """Forwards OpenAI requests unchanged except ``model`` (set to the endpoint's model name).

    The API key is read from the environment variable ``api_key_env`` at each call and sent as
    ``Authorization: Bearer``; when the variable is unset no header is sent and the upstream decides
    (a 401 becomes ``auth``).
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        client: Transport | Any = None,  # a Transport (lean or httpx), or None: one of its own
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(name, client)
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.api_key_env = api_key_env
        self._extra_headers = dict(extra_headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, url={self.url!r}, model={self.model!r})"

    # -- request building -------------------------------------------------------------------------

    def endpoint_url(self, path: str) -> str:
        """The URL of one API (``chat/completions``, ``embeddings``, ``responses``)."""
        return f"{self.base_url}/{path}"

    def auth_headers(self) -> dict[str, str]:
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if key:
                return {"authorization": f"Bearer {key}"}
        return {}

    def headers(self, accept: str) -> dict[str, str]:
        return {"content-type": "application/json", "accept": accept, **self._extra_headers,
                **self.auth_headers()}

    def body(self, request: Mapping[str, Any], *, stream: bool) -> bytes:
        body = dict(request)
        body["model"] = self.model
        if stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)  # only allowed with stream: true
        return dumps(body)

    def chat_call(self, request: Mapping[str, Any], *, stream: bool) -> tuple[str, dict[str, str], bytes]:
        accept = "text/event-stream" if stream else "application/json"
        return self.url, self.headers(accept), self.body(request, stream=stream)

    def chat_answer(self, data: Any, status: int) -> dict[str, Any]:
        if isinstance(data, dict) and isinstance(data.get("choices"), list):
            return data
        return self._no_answer(data, status, "choices")

    def _no_answer(self, data: Any, status: int, wanted: str) -> dict[str, Any]:
        if isinstance(data, dict) and "error" in data:
            raise ProviderError(classify(status=status, body=data), status=status, body=data, model=self.name)
        raise ProviderError.of(ErrorClass.SERVER_ERROR, f"upstream answered without {wanted}",
                               status=status, body=data, model=self.name)

    def chat_decoder(self, request: Mapping[str, Any]) -> StreamDecoder:
        return ChatDecoder()

    # -- embeddings and the Responses API ---------------------------------------------------------

    async def embed(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        body = self.body(request, stream=False)
        return await self.call_json(self.endpoint_url("embeddings"), self.headers("application/json"), body,
                                    timeout_s, self._embeddings_answer)

    def _embeddings_answer(self, data: Any, status: int) -> dict[str, Any]:
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            return data
        return self._no_answer(data, status, "data")

    async def respond(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        body = self.body(request, stream=False)
        return await self.call_json(self.endpoint_url("responses"), self.headers("application/json"), body,
                                    timeout_s, self._response_answer)

    def _response_answer(self, data: Any, status: int) -> dict[str, Any]:
        if isinstance(data, dict) and data.get("object") == "response":
            if data.get("status") == "failed":
                err = data.get("error")
                body = {"error": err if isinstance(err, dict) else {"type": "server_error"}}
                raise ProviderError(classify(body=body), status=status, body=body, model=self.name)
            return data
        return self._no_answer(data, status, "a response object")

    async def respond_stream(self, request: dict[str, Any], *, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        body = self.body(request, stream=True)
        async for event in self.call_stream(
            self.endpoint_url("responses"), self.headers("text/event-stream"), body, timeout_s,
            ResponsesDecoder(), lambda data, status: _response_events(self._response_answer(data, status)),
        ):
            yield event


def _response_events(response: dict[str, Any]) -> list[dict[str, Any]]:
    """The stream of a whole ``response`` (an upstream that ignored ``stream: true``)."""
    return [{"type": "response.created", "sequence_number": 0, "response": {**response, "status": "in_progress"}},
            {"type": "response.completed", "sequence_number": 1, "response": response}]
