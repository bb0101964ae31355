"""A model behind an OpenAI-compatible HTTP endpoint (``POST {base_url}/chat/completions``)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from routeguard.core.errors import ErrorClass, ProviderError, StreamBroken, classify
from routeguard.execution.providers.base import stream_broken, stream_timeout
from routeguard.execution.providers.openai_shapes import completion_to_chunks, has_finish_reason

__all__ = ["DEFAULT_LIMITS", "OpenAIHTTPProvider", "make_client", "make_upstream_client"]

DEFAULT_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=30.0)

# Errors that mean "the exchange with the upstream failed" (TimeoutError before OSError: it is one).
_TRANSPORT = (httpx.HTTPError, httpx.InvalidURL, OSError)


def make_client(*, limits: httpx.Limits = DEFAULT_LIMITS, trust_env: bool = True) -> httpx.AsyncClient:
    """The pooled client to share between providers (one per process is enough)."""
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(60.0), trust_env=trust_env,
                             follow_redirects=False)


def make_upstream_client(*, trust_env: bool = True) -> Any:
    """The pooled client providers share: the lean HTTP/1.1 client (`lean_http`, a fraction of httpx's CPU
    per call), or httpx itself with `ROUTEGUARD_HTTP_CLIENT=httpx`. Both offer the calls used below."""
    if os.environ.get("ROUTEGUARD_HTTP_CLIENT", "").strip().lower() == "httpx":
        return make_client(trust_env=trust_env)
    from routeguard.execution.providers.lean_http import LeanClient

    return LeanClient(trust_env=trust_env)


class OpenAIHTTPProvider:
    """Forwards OpenAI chat requests unchanged except ``model`` (set to the endpoint's model name).

    The API key is read from the environment variable ``api_key_env`` at each call and sent as
    ``Authorization: Bearer``; when the variable is unset no header is sent and the upstream decides
    (a 401 becomes ``auth``). Pass a shared ``client`` to pool connections across providers; a provider
    that created its own client closes it in ``aclose``.
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        client: Any = None,  # an httpx.AsyncClient, a lean_http.LeanClient, or None: one of its own
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key_env = api_key_env
        self._extra_headers = dict(extra_headers or {})
        self._owns_client = client is None
        self._client: Any = client if client is not None else make_upstream_client()

    def __repr__(self) -> str:
        return f"OpenAIHTTPProvider(name={self.name!r}, url={self.url!r}, model={self.model!r})"

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- request building -------------------------------------------------------------------------

    def _headers(self, accept: str) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": accept, **self._extra_headers}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if key:
                headers["authorization"] = f"Bearer {key}"
        return headers

    def _body(self, request: Mapping[str, Any], *, stream: bool) -> bytes:
        body = dict(request)
        body["model"] = self.model
        if stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
            body.pop("stream_options", None)  # only allowed with stream: true
        return json.dumps(body, separators=(",", ":")).encode()

    def _transport_error(self, exc: BaseException) -> ProviderError:
        return ProviderError(classify(exception=exc), model=self.name)

    def _http_error(self, response: httpx.Response) -> ProviderError:
        return ProviderError.from_http(response.status_code, response.text, response.headers,
                                       model=self.name, now=time.time())

    # -- complete ---------------------------------------------------------------------------------

    async def complete(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        content = self._body(request, stream=False)
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._client.post(
                    self.url, content=content, headers=self._headers("application/json"),
                    timeout=httpx.Timeout(timeout_s))
        except _TRANSPORT as exc:
            raise self._transport_error(exc) from exc
        if not 200 <= response.status_code < 300:
            raise self._http_error(response)
        return self._completion(response)

    def _completion(self, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderError.from_http(response.status_code, response.text, model=self.name) from exc
        if isinstance(data, dict) and isinstance(data.get("choices"), list):
            return data
        if isinstance(data, dict) and "error" in data:
            raise ProviderError(classify(status=response.status_code, body=data), status=response.status_code,
                                body=data, model=self.name)
        raise ProviderError.of(ErrorClass.SERVER_ERROR, "upstream answered without choices",
                               status=response.status_code, body=data, model=self.name)

    # -- stream -----------------------------------------------------------------------------------

    async def stream(self, request: dict[str, Any], *, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        http_request = self._client.build_request(
            "POST", self.url, content=self._body(request, stream=True),
            headers=self._headers("text/event-stream"), timeout=httpx.Timeout(timeout_s))
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._client.send(http_request, stream=True)
        except _TRANSPORT as exc:
            raise self._transport_error(exc) from exc
        try:
            if not 200 <= response.status_code < 300:
                try:
                    async with asyncio.timeout_at(deadline):
                        await response.aread()
                except _TRANSPORT:
                    raise ProviderError.from_http(response.status_code, "", response.headers,
                                                  model=self.name) from None
                raise self._http_error(response)
            content_type = response.headers.get("content-type", "")
            if "json" in content_type and "event-stream" not in content_type:
                # The upstream ignored stream: true and answered with one completion.
                try:
                    async with asyncio.timeout_at(deadline):
                        await response.aread()
                except _TRANSPORT as exc:
                    raise self._transport_error(exc) from exc
                for chunk in completion_to_chunks(self._completion(response)):
                    yield chunk
                return
            async for chunk in self._sse_chunks(response, timeout_s, deadline):
                yield chunk
        finally:
            await response.aclose()

    async def _sse_chunks(
        self, response: httpx.Response, timeout_s: float, deadline: float
    ) -> AsyncIterator[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        lines = response.aiter_lines()
        received = 0
        finished = False
        event = ""
        data: list[str] = []
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    line: str | None = await anext(lines)
            except StopAsyncIteration:
                line = None
            except TimeoutError:
                if finished:
                    return
                raise stream_timeout(timeout_s, model=self.name, chunks_received=received) from None
            except _TRANSPORT as exc:
                if finished:
                    return
                raise stream_broken("", model=self.name, chunks_received=received,
                                    cause=self._transport_error(exc)) from exc
            if line is not None and line:
                if line.startswith(":"):
                    continue  # comment / keep-alive
                field, _, value = line.partition(":")
                if value.startswith(" "):
                    value = value[1:]
                if field == "data":
                    data.append(value)
                elif field == "event":
                    event = value
                continue
            # A blank line (or the end of the body) dispatches the pending event.
            if data:
                if data == ["[DONE]"]:
                    return
                for chunk in self._decode_event(event, data, received):
                    received += 1
                    finished = finished or has_finish_reason(chunk)
                    deadline = loop.time() + timeout_s
                    yield chunk
            event, data = "", []
            if line is None:
                if finished:
                    return
                raise stream_broken("stream ended without a finish reason or [DONE]", model=self.name,
                                    chunks_received=received, error_class=ErrorClass.SERVER_ERROR)

    def _decode_event(self, event: str, data: list[str], received: int) -> list[dict[str, Any]]:
        if event not in ("", "message", "error"):
            return []  # named events we do not know (ping, ...)
        try:
            payloads: list[Any] = [json.loads("\n".join(data))]
        except ValueError:
            try:  # lenient: servers that omit the blank line between events
                payloads = [json.loads(d) for d in data if d != "[DONE]"]
            except ValueError:
                raise self._broken_data(data, received) from None
        for payload in payloads:
            if not isinstance(payload, dict):
                raise self._broken_data(data, received)
            if event == "error" or ("error" in payload and "choices" not in payload):
                cause = ProviderError(classify(body=payload), body=payload, model=self.name)
                raise stream_broken("", model=self.name, chunks_received=received, cause=cause)
        return payloads

    def _broken_data(self, data: list[str], received: int) -> StreamBroken:
        snippet = "\n".join(data)[:120]
        return stream_broken(f"invalid SSE data: {snippet!r}", model=self.name, chunks_received=received,
                             error_class=ErrorClass.SERVER_ERROR)
