"""The HTTP half every wire format shares: POST JSON over a :class:`Transport`, read it whole or as SSE.

Subclasses say what is particular to their provider — the URL, headers and body of a call, how an answer
becomes an OpenAI shape, and how the events of a stream do (a :class:`StreamDecoder`). This class owns
what must be the same for all of them (CONTRACT §3 "Proxy", base.Provider's contract):

* ``timeout_s`` per attempt: connect + the whole answer; for streams, connect + the first event, then every
  idle gap (SSE comments and pings do not reset it);
* transport failures and non-2xx answers become classified :class:`ProviderError` s (§4);
* once a stream was accepted, a break, invalid data, an error event, or an end without the decoder's
  finish raises :class:`StreamBroken` with the number of chunks delivered; a transport error after the
  finish ends the stream normally (the answer is complete);
* an upstream that ignores ``stream: true`` and answers with one JSON document is turned into chunks.

The SSE reader is written out (rather than taken from httpx-sse) because it runs over both transports and
must count chunks, apply idle deadlines and tell a clean end from a cut one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

from routeguard.core.errors import ErrorClass, ProviderError, StreamBroken, classify
from routeguard.execution.providers.base import stream_broken, stream_timeout
from routeguard.execution.providers.openai_shapes import completion_to_chunks
from routeguard.execution.providers.transport import TRANSPORT_ERRORS, Response, Transport, make_transport

__all__ = ["HTTPProvider", "StreamDecoder", "dumps"]

_TRANSPORT = TRANSPORT_ERRORS


class StreamDecoder(Protocol):
    """Turns one provider's SSE events into OpenAI-shaped items, one stream at a time.

    ``feed`` gets the event name ("" when none) and its data lines; it returns the items to deliver, raises
    :class:`ProviderError` for an error event and ``ValueError`` for data it cannot read. ``finished``: the
    answer is complete (a finish reason, a final event); ``done``: the stream's own end marker was seen."""

    finished: bool
    done: bool

    def feed(self, event: str, data: list[str]) -> list[dict[str, Any]]: ...


class HTTPProvider:
    """A provider over HTTP. Pass a shared ``client`` (a :class:`Transport`) to pool connections across
    providers; a provider that created its own closes it in ``aclose``."""

    name: str

    def __init__(self, name: str, client: Transport | None = None) -> None:
        self.name = name
        self._owns_client = client is None
        self._client: Any = client if client is not None else make_transport()

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- what subclasses provide ----------------------------------------------------------------------

    def chat_call(self, request: Mapping[str, Any], *, stream: bool) -> tuple[str, dict[str, str], bytes]:
        """URL, headers and body of a chat call."""
        raise NotImplementedError

    def chat_answer(self, data: Any, status: int) -> dict[str, Any]:
        """The parsed 2xx answer of a chat call as an OpenAI ``chat.completion`` (or raise)."""
        raise NotImplementedError

    def chat_decoder(self, request: Mapping[str, Any]) -> StreamDecoder:
        raise NotImplementedError

    def http_error(self, status: int, text: str, headers: Mapping[str, str]) -> ProviderError:
        return ProviderError.from_http(status, text, headers, model=self.name, now=time.time())

    # -- chat -----------------------------------------------------------------------------------------

    async def complete(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        url, headers, body = self.chat_call(request, stream=False)
        return await self.call_json(url, headers, body, timeout_s, self.chat_answer)

    async def stream(self, request: dict[str, Any], *, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        url, headers, body = self.chat_call(request, stream=True)
        async for chunk in self.call_stream(url, headers, body, timeout_s, self.chat_decoder(request),
                                            lambda data, status: completion_to_chunks(self.chat_answer(data, status))):
            yield chunk

    # -- the shared machinery -------------------------------------------------------------------------

    def transport_error(self, exc: BaseException) -> ProviderError:
        return ProviderError(classify(exception=exc), model=self.name)

    def _parse(self, response: Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError.from_http(response.status_code, response.text, model=self.name) from exc

    async def call_json(self, url: str, headers: dict[str, str], body: bytes, timeout_s: float,
                        answer: Callable[[Any, int], dict[str, Any]]) -> dict[str, Any]:
        """POST and read the whole answer; ``answer(parsed JSON, status)`` shapes a 2xx one."""
        try:
            async with asyncio.timeout(timeout_s):
                response = await self._client.post(url, content=body, headers=headers, timeout=timeout_s)
        except _TRANSPORT as exc:
            raise self.transport_error(exc) from exc
        if not 200 <= response.status_code < 300:
            raise self.http_error(response.status_code, response.text, response.headers)
        return answer(self._parse(response), response.status_code)

    async def call_stream(
        self, url: str, headers: dict[str, str], body: bytes, timeout_s: float, decoder: StreamDecoder,
        whole: Callable[[Any, int], list[dict[str, Any]]],
    ) -> AsyncIterator[dict[str, Any]]:
        """POST and relay the decoded SSE events; ``whole`` turns a JSON (non-SSE) answer into items."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        http_request = self._client.build_request("POST", url, content=body, headers=headers, timeout=timeout_s)
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._client.send(http_request, stream=True)
        except _TRANSPORT as exc:
            raise self.transport_error(exc) from exc
        try:
            if not 200 <= response.status_code < 300:
                try:
                    async with asyncio.timeout_at(deadline):
                        await response.aread()
                except _TRANSPORT:
                    raise self.http_error(response.status_code, "", response.headers) from None
                raise self.http_error(response.status_code, response.text, response.headers)
            content_type = response.headers.get("content-type", "")
            if "json" in content_type and "event-stream" not in content_type:
                try:  # the upstream ignored stream: true and answered with one document
                    async with asyncio.timeout_at(deadline):
                        await response.aread()
                except _TRANSPORT as exc:
                    raise self.transport_error(exc) from exc
                for item in whole(self._parse(response), response.status_code):
                    yield item
                return
            async for item in self._sse(response, timeout_s, deadline, decoder):
                yield item
        finally:
            await response.aclose()

    async def _sse(
        self, response: Response, timeout_s: float, deadline: float, decoder: StreamDecoder
    ) -> AsyncIterator[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        lines = response.aiter_lines()
        received = 0
        event = ""
        data: list[str] = []
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    line: str | None = await anext(lines)
            except StopAsyncIteration:
                line = None
            except TimeoutError:
                if decoder.finished:
                    return
                raise stream_timeout(timeout_s, model=self.name, chunks_received=received) from None
            except _TRANSPORT as exc:
                if decoder.finished:
                    return
                raise stream_broken("", model=self.name, chunks_received=received,
                                    cause=self.transport_error(exc)) from exc
            if line:
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
            if data:  # a blank line (or the end of the body) dispatches the pending event
                for item in self._decode(decoder, event, data, received):
                    received += 1
                    deadline = loop.time() + timeout_s
                    yield item
                if decoder.done:
                    return
            event, data = "", []
            if line is None:
                if decoder.finished:
                    return
                raise stream_broken("stream ended without a finish reason or end event", model=self.name,
                                    chunks_received=received, error_class=ErrorClass.SERVER_ERROR)

    def _decode(self, decoder: StreamDecoder, event: str, data: list[str], received: int) -> list[dict[str, Any]]:
        try:
            return decoder.feed(event, data)
        except StreamBroken:
            raise
        except ProviderError as cause:
            if cause.model is None:
                cause.model = self.name
            raise stream_broken("", model=self.name, chunks_received=received, cause=cause) from cause
        except ValueError:
            snippet = "\n".join(data)[:120]
            raise stream_broken(f"invalid SSE data: {snippet!r}", model=self.name, chunks_received=received,
                                error_class=ErrorClass.SERVER_ERROR) from None


def dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
