"""The one interface every model backend implements (HTTP, in-process callable, fake).

Contract for implementations:

* ``complete`` returns an OpenAI ``chat.completion`` dict; ``stream`` yields OpenAI
  ``chat.completion.chunk`` dicts in order, as they arrive.
* Every failure raises :class:`~routeguard.core.errors.ProviderError` with its error class.
* A failure before the upstream accepted the stream (connect error, non-2xx status) is a plain
  ``ProviderError``. Once it has (HTTP 200 received, the stream callable returned), a stream that breaks
  (connection reset, invalid SSE, an upstream error event, an idle timeout) or that ends with no finish
  reason in any choice *and* no ``[DONE]`` raises :class:`~routeguard.core.errors.StreamBroken`, with the
  class of the cause and ``chunks_received`` (0: nothing was delivered, failing over is safe). The
  caller decides about partial output. A transport error *after* a finish reason ends the stream
  normally: the answer is complete.
* ``timeout_s`` is per attempt. For ``complete`` it bounds connect + the whole response. For ``stream``
  it bounds connect + time to the first chunk, then every idle gap between two chunks (SSE comments and
  keep-alives do not reset it). The total length of a healthy stream is not bounded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

from routeguard.core.errors import Classified, ErrorClass, ProviderError, StreamBroken

__all__ = ["Provider", "ProviderError", "StreamBroken", "stream_broken", "stream_timeout"]


@runtime_checkable
class Provider(Protocol):
    name: str

    async def complete(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]: ...

    def stream(self, request: dict[str, Any], *, timeout_s: float) -> AsyncIterator[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


def stream_broken(
    message: str,
    *,
    model: str | None,
    chunks_received: int,
    error_class: ErrorClass = ErrorClass.CONNECTION,
    cause: ProviderError | None = None,
) -> StreamBroken:
    """A ``StreamBroken`` of ``error_class``, or re-using ``cause``'s classification and body."""
    if cause is not None:
        return StreamBroken(cause.classified, status=cause.status, body=cause.body,
                            model=model or cause.model, chunks_received=chunks_received)
    return StreamBroken(Classified.of(error_class, message), model=model, chunks_received=chunks_received)


def stream_timeout(timeout_s: float, *, model: str | None, chunks_received: int) -> StreamBroken:
    """The error for an accepted stream that waited ``timeout_s`` for its first or next chunk."""
    what = "first chunk" if chunks_received == 0 else f"next chunk after {chunks_received}"
    return stream_broken(f"no {what} within {timeout_s:g}s", model=model,
                         chunks_received=chunks_received, error_class=ErrorClass.TIMEOUT)
