"""A model that is an in-process Python callable."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from routeguard.core.errors import ErrorClass, ProviderError, StreamBroken, classify
from routeguard.execution.providers.base import stream_broken, stream_timeout
from routeguard.execution.providers.openai_shapes import (
    completion_to_chunks,
    has_finish_reason,
    make_completion,
)

__all__ = ["CallableProvider", "CompleteFn", "StreamFn"]

#: ``(request) -> completion``, sync or async; a plain ``str`` result is wrapped as a completion.
CompleteFn = Callable[[dict[str, Any]], dict[str, Any] | str | Awaitable[dict[str, Any] | str]]
#: ``(request) -> chunks``: an async iterable (or an awaitable of one), or a sync iterable.
StreamFn = Callable[[dict[str, Any]], Any]


class CallableProvider:
    """Wraps ``fn`` (and optionally ``stream_fn``) behind the provider interface.

    ``ProviderError`` raised by the callables passes through; any other exception is classified by
    its type (unknown types are ``server_error``). A sync ``fn`` runs on the event loop: keep it quick.
    The timeout is enforced with ``asyncio.timeout`` and so only interrupts async callables. Without a
    ``stream_fn``, ``stream`` yields the completion as role, content and finish chunks.
    """

    def __init__(
        self,
        name: str,
        fn: CompleteFn,
        stream_fn: StreamFn | None = None,
        *,
        aclose: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._fn = fn
        self._stream_fn = stream_fn
        self._aclose = aclose

    def __repr__(self) -> str:
        return f"CallableProvider(name={self.name!r})"

    async def aclose(self) -> None:
        if self._aclose is not None:
            await self._aclose()

    def _error(self, exc: BaseException) -> ProviderError:
        if isinstance(exc, ProviderError):
            if exc.model is None:
                exc.model = self.name
            return exc
        return ProviderError(classify(exception=exc), model=self.name)

    async def complete(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout_s):
                result = self._fn(request)
                if inspect.isawaitable(result):
                    result = await result
        except Exception as exc:  # the adapter boundary: user code may raise anything
            raise self._error(exc) from exc
        if isinstance(result, str):
            return make_completion(self.name, result)
        if isinstance(result, dict) and isinstance(result.get("choices"), list):
            return result
        raise ProviderError.of(ErrorClass.SERVER_ERROR, f"callable returned {type(result).__name__}, "
                               "not a chat completion", model=self.name)

    async def stream(self, request: dict[str, Any], *, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        if self._stream_fn is None:
            for chunk in completion_to_chunks(await self.complete(request, timeout_s=timeout_s)):
                yield chunk
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            async with asyncio.timeout_at(deadline):
                source = self._stream_fn(request)
                if inspect.isawaitable(source):
                    source = await source
            iterator = _as_async_iterator(source)
        except Exception as exc:
            raise self._error(exc) from exc
        received = 0
        finished = False
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await anext(iterator)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    if finished:
                        return
                    raise stream_timeout(timeout_s, model=self.name, chunks_received=received) from None
                except StreamBroken:
                    raise
                except Exception as exc:
                    if finished:
                        return
                    raise stream_broken("", model=self.name, chunks_received=received,
                                        cause=self._error(exc)) from exc
                received += 1
                finished = finished or has_finish_reason(chunk)
                deadline = loop.time() + timeout_s
                yield chunk
        finally:
            closer = getattr(iterator, "aclose", None)
            if closer is not None:
                await closer()
        if not finished:
            raise stream_broken("stream ended without a finish reason", model=self.name,
                                chunks_received=received, error_class=ErrorClass.SERVER_ERROR)


def _as_async_iterator(source: Any) -> AsyncIterator[dict[str, Any]]:
    if isinstance(source, AsyncIterable):
        return aiter(source)
    if isinstance(source, Iterable):
        return _from_sync(source)
    raise ProviderError.of(ErrorClass.SERVER_ERROR, "stream callable returned no iterable")


async def _from_sync(source: Iterable[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for item in source:
        yield item
