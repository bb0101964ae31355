"""POST /v1/chat/completions (and /v1/embeddings, /v1/responses): the OpenAI-compatible proxy (CONTRACT §3
"Proxy"), as raw ASGI. One handler serves every API; what differs per API is in `proxy_apis`.

Route, call, retry and fall back through the executor; answer exactly as an OpenAI endpoint would:
- plain: the upstream's completion JSON; streamed: its chunks relayed as they arrive, then `data: [DONE]`;
- headers `x-routeguard-model`, `-policy`, `-policy-version`, `-trace-id`, `-fallback` (`true`/`false`),
  `-deployment` (for a model with deployments: the one that answered), and on
  a plain answer whose upstream reported usage `-cost-usd` (those tokens at the model's bundle price);
- a stream that fails after output reached the client ends with an SSE `error` event and no `[DONE]`
  (the `openai` SDK raises `APIError`); before any output the executor fails over, so nothing is sent yet;
- a non-retryable upstream error passes through with its status and body;
- a terminal action answers 503 with `{"error": {"code": <action>, "type": "routeguard_terminal", "action",
  "queue_entry" (human_queue), "response" (read_only / static_response text), ...}}` and
  `x-should-retry: false` (the SDK would otherwise retry a 503, queueing the request again);
- a client that disconnects cancels the upstream call (uvicorn drops writes to a closed connection, so the
  request task is cancelled when `http.disconnect` arrives).
No database work on success; the body is parsed with the stdlib/orjson, never validated by a model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send

from routeguard.core.context import RoutingError
from routeguard.core.decision import DecisionStatus
from routeguard.core.errors import ProviderError
from routeguard.core.exceptions import PartialOutputError, QueuedForHuman, TerminalAction
from routeguard.execution.executor import Served
from routeguard.service import sse
from routeguard.service.api.deps import dumps, parse_json
from routeguard.service.auth import authorize
from routeguard.service.errors import ROUTING_CODES, ApiError
from routeguard.service.proxy_apis import CHAT_API, ProxyApi
from routeguard.service.proxy_request import read_headers
from routeguard.telemetry import tracing

if TYPE_CHECKING:
    from routeguard.core.context import RouteContext
    from routeguard.runtime import Router
    from routeguard.telemetry.tracing import SpanHandle

__all__ = ["PROXY_PATH", "ChatProxy"]

log = logging.getLogger("routeguard.proxy")
PROXY_PATH = "/v1/chat/completions"
MAX_BODY = 64 << 20
Headers = list[tuple[bytes, bytes]]
_JSON = (b"content-type", b"application/json")
_NO_RETRY = (b"x-should-retry", b"false")
_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
# an upstream failure without an HTTP status (timeout, connection) gets the status a gateway would use
_STATUS_OF_CLASS = {"timeout": 504, "rate_limit": 429, "overloaded": 503, "auth": 401, "not_found": 404,
                    "bad_request": 400, "context_window": 400, "content_filter": 400}


def _type(status: int) -> str:
    return _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")


def _h(name: bytes, value: object) -> tuple[bytes, bytes]:
    return name, str(value).encode("utf-8")


class ClientWatch:
    """Cancels the request's task when the client disconnects; `finish()` before the last write."""

    def __init__(self, receive: Receive) -> None:
        self.gone = False
        self._done = False
        self._task = asyncio.current_task()
        self._waiter = asyncio.ensure_future(receive())
        self._waiter.add_done_callback(self._on_message)

    def _on_message(self, fut: asyncio.Future[Any]) -> None:
        if self._done or fut.cancelled() or fut.exception() is not None:
            return
        if fut.result().get("type") == "http.disconnect" and self._task is not None:
            self.gone = True
            self._task.cancel()

    def finish(self) -> None:
        self._done = True

    def ours(self) -> bool:
        """After a CancelledError: was it this watch's (the client left), and no other cancel is pending?"""
        return self.gone and self._task is not None and self._task.uncancel() == 0

    def close(self) -> None:
        self._done = True
        if not self._waiter.done():
            self._waiter.cancel()


class _ClientLeft(Exception):
    """The client disconnected before its request body arrived: nobody to answer."""


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientLeft
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, "payload_too_large", f"a chat request is at most {MAX_BODY >> 20} MiB")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(send: Send, status: int, body: Any, headers: Headers | None = None) -> None:
    payload = dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [_JSON, (b"content-length", str(len(payload)).encode()), *(headers or ())]})
    await send({"type": "http.response.body", "body": payload})


def is_fallback(served: Served) -> bool:
    """Served by another model than the policy's primary: this request left it, or its decision skipped it."""
    return served.fell_back or served.decision.status is DecisionStatus.FALLBACK


def served_headers(served: Served, trace_id: str) -> Headers:
    decision = served.decision
    version = decision.policy_version
    out = [_h(b"x-routeguard-trace-id", trace_id), _h(b"x-routeguard-policy", decision.policy),
           _h(b"x-routeguard-policy-version", version if version is not None else "legacy"),
           (b"x-routeguard-fallback", b"true" if is_fallback(served) else b"false")]
    if served.model is not None:
        out.append(_h(b"x-routeguard-model", served.model))
    if served.deployment is not None:
        out.append(_h(b"x-routeguard-deployment", served.deployment))
    if served.cost_usd is not None:
        out.append(_h(b"x-routeguard-cost-usd", f"{served.cost_usd:.8f}"))
    return out


def routing_error_body(exc: RoutingError) -> dict[str, Any]:
    return sse.error_body(exc.message, _type(exc.status), ROUTING_CODES.get(exc.code, exc.code))


def _content(chunk: dict[str, Any]) -> str:
    text = ""
    for choice in chunk.get("choices") or ():
        piece = (choice.get("delta") or {}).get("content")
        if isinstance(piece, str):
            text += piece
    return text


class ChatProxy:
    """One proxied API (chat by default), an ASGI app (served ahead of the framework by `app.RouteguardAPI`,
    and mounted as a route)."""

    def __init__(self, api: ProxyApi = CHAT_API) -> None:
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._handle(scope, receive, send)
        except Exception:  # the framework's error middleware is not around this endpoint
            log.exception("proxied call failed")
            body = sse.error_body("internal error; see the server log", "server_error", "internal_error")
            with contextlib.suppress(Exception):  # fails if an answer had already started: nothing more to say
                await send_json(send, 500, body)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = scope["app"].state.service
        received = read_headers(scope["headers"])
        try:
            authorize(service.auth, "router", received.authorization, received.principal)
            call = self.api.build(parse_json(await _read_body(receive)), received)
            router: Router = service.router
            ctx = router.context(call.context)
        except ApiError as exc:
            extra = [(b"www-authenticate", b"Bearer")] if exc.status == 401 else []
            await send_json(send, exc.status, sse.error_body(exc.message, _type(exc.status), exc.code), extra)
            return
        except RoutingError as exc:
            await send_json(send, exc.status, routing_error_body(exc))
            return
        except _ClientLeft:
            return
        watch = ClientWatch(receive)
        exchange = _Exchange(
            send, watch, ctx.trace_id, lambda: router.table_for(ctx.tenant, ctx.business_line)[1].version, self.api
        )
        try:
            with tracing.span_proxy_call(ctx.agent, None, stream=call.stream) as span:
                exchange.span = span
                if call.stream:
                    await exchange.stream(router, ctx, call.request)
                else:
                    await exchange.complete(router, ctx, call.request)
        except RoutingError as exc:  # raised by the first decision (unknown agent, refused override, ...)
            await exchange.send_error(exc.status, routing_error_body(exc))
        except asyncio.CancelledError:
            if watch.ours():
                log.debug("client disconnected: upstream call cancelled (trace %s)", ctx.trace_id)
                return
            raise
        except Exception:
            log.exception("proxied call failed (trace %s)", ctx.trace_id)
            await exchange.fail("internal error; see the server log", "server_error", "internal_error")
        finally:
            watch.close()


class _Exchange:
    """One proxied request's response: whether it started, and how it ends."""

    def __init__(self, send: Send, watch: ClientWatch, trace_id: str, version: Callable[[], int | None],
                 api: ProxyApi = CHAT_API) -> None:
        self.api = api
        self.send = send
        self.watch = watch
        self.trace_id = trace_id
        self._version = version  # the serving policy version, for errors raised before a `Served` exists
        self.started = False
        self.ended = False
        self.span: SpanHandle = tracing.SpanHandle()

    async def _json(self, status: int, body: Any, headers: Headers) -> None:
        self.watch.finish()
        self.started = self.ended = True
        await send_json(self.send, status, body, headers)

    async def _end(self, body: bytes) -> None:
        self.watch.finish()
        self.ended = True
        await self.send({"type": "http.response.body", "body": body, "more_body": False})

    async def send_error(self, status: int, body: dict[str, Any]) -> None:
        """A refused request (nothing was sent yet: decisions come before any output)."""
        if self.started:
            error = body["error"]
            await self.fail(error["message"], error["type"], error["code"])
            return
        await self._json(status, body, [_h(b"x-routeguard-trace-id", self.trace_id)])

    async def fail(self, message: str, type_: str, code: str, **extra: Any) -> None:
        """An error the caller sees: as JSON before the response started, else as an SSE error event."""
        if self.ended:
            return  # too late to tell the client anything
        if not self.started:
            await self._json(500, sse.error_body(message, type_, code, **extra),
                             [_h(b"x-routeguard-trace-id", self.trace_id)])
            return
        await self._end(sse.error_event(message, type_, code, **extra))

    # ------------------------------------------------------------------ plain
    async def complete(self, router: Router, ctx: RouteContext, request: dict[str, Any]) -> None:
        try:
            completion, served = await router.executor.complete_served(ctx, request, self.api.api)
        except TerminalAction as exc:
            await self.terminal_raised(exc)
            return
        except ProviderError as exc:
            await self.upstream_error(exc)
            return
        self.span.record_served(served)
        terminal = completion.get("routeguard_terminal")
        if isinstance(terminal, dict):
            message = ((completion.get("choices") or [{}])[0].get("message") or {}).get("content")
            await self.terminal(served, str(terminal.get("action")), str(terminal.get("reason", "")), message)
            return
        await self._json(200, completion, served_headers(served, self.trace_id))

    # ------------------------------------------------------------------ streamed
    async def stream(self, router: Router, ctx: RouteContext, request: dict[str, Any]) -> None:
        previews: list[Served] = []
        items = router.executor.stream_served(ctx, request, previews.append, self.api.api)
        served: Served | None = None
        try:
            async with aclosing(items):
                async for item in items:
                    if isinstance(item, Served):
                        served = item
                        break
                    if not self.started:
                        if previews and previews[0].model is None:
                            await self._terminal_stream(previews[0], item, items)
                            return
                        await self._start_stream(previews[0] if previews else None)
                    await self.send({"type": "http.response.body", "body": self.api.encode(item), "more_body": True})
        except TerminalAction as exc:
            await self.terminal_raised(exc)
            return
        except PartialOutputError as exc:
            await self.fail(
                f"the stream from {exc.model} broke after {exc.chunks_delivered} chunk(s) ({exc.error_class}); "
                "routeguard never falls back after output reached the client", "server_error", "partial_output",
                error_class=exc.error_class, model=exc.model)
            return
        except ProviderError as exc:
            if not self.started:
                await self.upstream_error(exc)
                return
            await self.fail(str(exc), "server_error", exc.error_class.value)
            return
        if served is not None:
            self.span.record_served(served)
        if not self.started:
            await self._start_stream(served)
        await self._end(self.api.done)

    async def _start_stream(self, served: Served | None) -> None:
        headers = served_headers(served, self.trace_id) if served is not None else []
        self.started = True
        await self.send({"type": "http.response.start", "status": 200, "headers": [*sse.SSE_HEADERS, *headers]})

    async def _terminal_stream(
        self, preview: Served, first: dict[str, Any], rest: AsyncGenerator[dict[str, Any] | Served, None]
    ) -> None:
        """The terminal action's configured answer came as chunks: answer 503 with its text instead."""
        text = _content(first)
        served = preview
        async for item in rest:
            if isinstance(item, Served):
                served = item
                break
            text += _content(item)
        self.span.record_served(served)
        reason = served.decision.terminal_reason or "no eligible model"
        await self.terminal(served, served.terminal or "read_only", reason, text)

    # ------------------------------------------------------------------ errors and terminal actions
    async def terminal(self, served: Served, action: str, reason: str, response: str | None) -> None:
        decision = served.decision
        extra: dict[str, Any] = {"action": action, "policy": decision.policy, "reason": reason,
                                 "trace_id": self.trace_id}
        if response is not None:
            extra["response"] = response
        message = f"{action}: no approved model is available for policy {decision.policy} ({reason})"
        await self._json(503, sse.error_body(message, "routeguard_terminal", action, **extra),
                         [*served_headers(served, self.trace_id), _NO_RETRY])

    async def terminal_raised(self, exc: TerminalAction) -> None:
        extra: dict[str, Any] = {"action": exc.action, "policy": exc.policy, "reason": exc.reason,
                                 "trace_id": self.trace_id}
        message = f"{exc.action}: no approved model is available for policy {exc.policy} ({exc.reason})"
        if isinstance(exc, QueuedForHuman):
            extra.update(queue=exc.queue, queue_entry=exc.entry_id)
            message += f"; queued for a human in {exc.queue!r} as entry {exc.entry_id}"
        self.span.set("routeguard.terminal", exc.action)
        headers = [*self._error_headers(), _h(b"x-routeguard-policy", exc.policy), _NO_RETRY]
        if self.started:  # cannot happen: terminal actions are decided before any output
            await self.fail(message, "routeguard_terminal", exc.action, **extra)
            return
        await self._json(503, sse.error_body(message, "routeguard_terminal", exc.action, **extra), headers)

    def _error_headers(self) -> Headers:
        version = self._version()
        return [_h(b"x-routeguard-trace-id", self.trace_id),
                _h(b"x-routeguard-policy-version", version if version is not None else "legacy")]

    async def upstream_error(self, exc: ProviderError) -> None:
        """A non-retryable upstream error (or the last one, at the deadline): its status and body, as they were."""
        cls = exc.error_class.value
        self.span.set("routeguard.error_class", cls)
        status = exc.status if exc.status is not None and 400 <= exc.status <= 599 else _STATUS_OF_CLASS.get(cls, 502)
        body = exc.body
        if not (isinstance(body, dict) and "error" in body):
            text = body if isinstance(body, str) and body else exc.classified.message or cls
            body = sse.error_body(f"upstream {exc.model or 'model'} failed: {text[:1000]}", "upstream_error", cls)
        headers = self._error_headers()
        if exc.model:
            headers.append(_h(b"x-routeguard-model", exc.model))
        if exc.classified.retry_after_s is not None:
            headers.append(_h(b"retry-after", max(0, math.ceil(exc.classified.retry_after_s))))
        await self._json(status, body, headers)
