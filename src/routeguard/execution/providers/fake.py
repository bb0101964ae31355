"""A scripted provider for tests, the simulator and benchmarks.

Each call takes the next item of the script (then ``default`` once the script is used up), or asks a
script function ``(call_index, request) -> item``. An item is one of:

* a :class:`Step` (full control: content, latency, chunks, stream break, missing finish, tool calls);
* ``"ok"``; ``"hang"`` (never answers: the call times out); an error class name such as
  ``"rate_limit"``; any other string is the content of a successful answer;
* an :class:`ErrorClass` or a :class:`ProviderError` (raised);
* a completion ``dict`` (returned as is; streamed as role/content/finish chunks);
* a callable ``(request) -> item``, which may also raise.

Latency uses the injected ``sleep`` (``asyncio.sleep`` by default), so a virtual clock can drive it,
and timeouts are decided by comparing latency with ``timeout_s`` — no real timer is involved: a step
slower than ``timeout_s`` sleeps ``timeout_s`` and raises ``timeout``. With zero latency no sleep is
awaited at all, which keeps the fake cheap (well under 100 µs per call).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from routeguard.core.errors import ErrorClass, ProviderError
from routeguard.execution.providers.base import stream_broken, stream_timeout
from routeguard.execution.providers.openai_shapes import (
    completion_to_chunks,
    make_chunk,
    make_completion,
    new_id,
    split_content,
)

__all__ = ["FakeProvider", "Script", "ScriptItem", "Step"]

_ERROR_NAMES = frozenset(e.value for e in ErrorClass)


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted call. ``latency_s`` None means the provider's default latency."""

    content: str = "ok"
    error: ProviderError | ErrorClass | None = None
    latency_s: float | None = None
    chunks: int | None = None  # content chunks when streamed; None: the provider's default
    chunk_gap_s: float = 0.0
    break_after: int | None = None  # stream: StreamBroken (connection) after this many chunks
    missing_finish: bool = False  # stream: every chunk but the finish one, then StreamBroken
    tool_calls: tuple[Mapping[str, Any], ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int | None = None
    finish_reason: str | None = None


ScriptItem: TypeAlias = (
    "Step | str | ErrorClass | ProviderError | dict[str, Any] | Callable[[dict[str, Any]], Any]"
)
Script: TypeAlias = "Sequence[ScriptItem] | Callable[[int, dict[str, Any]], ScriptItem]"

_OK = Step()


@dataclass(slots=True, eq=False)
class FakeProvider:
    name: str
    script: Script = ()
    default: ScriptItem = "ok"
    latency_s: float = 0.0
    chunks: int = 3
    model: str | None = None  # the model name in answers; default ``name``
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    record_requests: bool = True
    calls: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False

    async def aclose(self) -> None:
        self.closed = True

    def _next_item(self, request: dict[str, Any]) -> ScriptItem:
        index = self.calls
        self.calls += 1
        if self.record_requests:
            self.requests.append(request)
        if callable(self.script):
            return self.script(index, request)
        if index < len(self.script):
            return self.script[index]
        return self.default

    def _resolve(self, item: Any, request: dict[str, Any]) -> Step | dict[str, Any]:
        for _ in range(8):  # a callable may return another item
            if isinstance(item, Step | dict):
                return item
            if isinstance(item, str):
                if item == "ok":
                    return _OK
                if item == "hang":
                    return Step(latency_s=math.inf)
                if item in _ERROR_NAMES:
                    return Step(error=ErrorClass(item))
                return Step(content=item)
            if isinstance(item, ErrorClass | ProviderError):
                return Step(error=item)
            if callable(item):
                item = item(request)
                continue
            break
        raise TypeError(f"FakeProvider {self.name}: cannot use script item {item!r}")

    def _raise(self, error: ProviderError | ErrorClass) -> None:
        if isinstance(error, ProviderError):
            if error.model is None:
                error.model = self.name
            raise error
        raise ProviderError.of(error, f"scripted {error.value}", model=self.name)

    async def _wait(self, latency_s: float, timeout_s: float) -> bool:
        """Sleep ``latency_s``; False (after sleeping ``timeout_s``) when that is too slow."""
        if latency_s >= timeout_s:
            await self.sleep(timeout_s)
            return False
        if latency_s > 0:
            await self.sleep(latency_s)
        return True

    def _completion(self, step: Step) -> dict[str, Any]:
        return make_completion(self.model or self.name, step.content, finish_reason=step.finish_reason,
                               tool_calls=step.tool_calls or None, prompt_tokens=step.prompt_tokens,
                               completion_tokens=step.completion_tokens, created=0)

    async def complete(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        step = self._resolve(self._next_item(request), request)
        if isinstance(step, dict):
            return step
        latency = self.latency_s if step.latency_s is None else step.latency_s
        if not await self._wait(latency, timeout_s):
            raise ProviderError.of(ErrorClass.TIMEOUT, f"no answer within {timeout_s:g}s", model=self.name)
        if step.error is not None:
            self._raise(step.error)
        return self._completion(step)

    def _chunks(self, step: Step) -> list[dict[str, Any]]:
        model = self.model or self.name
        cid = new_id()
        out = [make_chunk(model, chunk_id=cid, role="assistant", content="")]
        if step.content:
            pieces = split_content(step.content, self.chunks if step.chunks is None else step.chunks)
            out.extend(make_chunk(model, chunk_id=cid, content=p) for p in pieces)
        if step.tool_calls:
            calls = [{"index": i, **tc} for i, tc in enumerate(step.tool_calls)]
            out.append(make_chunk(model, chunk_id=cid, tool_calls=calls))
        finish = step.finish_reason or ("tool_calls" if step.tool_calls else "stop")
        out.append(make_chunk(model, chunk_id=cid, finish_reason=finish))
        return out

    async def stream(self, request: dict[str, Any], *, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        resolved = self._resolve(self._next_item(request), request)
        if isinstance(resolved, dict):
            for chunk in completion_to_chunks(resolved):
                yield chunk
            return
        step = resolved
        latency = self.latency_s if step.latency_s is None else step.latency_s
        if not await self._wait(latency, timeout_s):
            raise ProviderError.of(ErrorClass.TIMEOUT, f"no first chunk within {timeout_s:g}s",
                                   model=self.name)
        if step.error is not None:
            self._raise(step.error)
        chunks = self._chunks(step)
        if step.missing_finish:
            chunks.pop()
        for sent, chunk in enumerate(chunks):
            if sent == step.break_after:
                raise stream_broken(f"scripted break after {sent} chunks", model=self.name,
                                    chunks_received=sent)
            if sent and step.chunk_gap_s and not await self._wait(step.chunk_gap_s, timeout_s):
                raise stream_timeout(timeout_s, model=self.name, chunks_received=sent)
            yield chunk
        if step.missing_finish:
            raise stream_broken("stream ended without a finish reason", model=self.name,
                                chunks_received=len(chunks), error_class=ErrorClass.SERVER_ERROR)
