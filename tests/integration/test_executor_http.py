"""The executor against real HTTP upstreams on 127.0.0.1 (tests/support/upstream.py).

Every test checks three things: which model served, how many requests each upstream saw
(server-side counters), and that the health tracker saw every attempt (``router.health()``).
Backoff sleeps are recorded, not slept; time bounds are generous timeouts only.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from routeguard import Router
from routeguard.core.errors import ErrorClass, ProviderError
from routeguard.core.events import Event, FallbackUsed, TerminalEngaged
from routeguard.core.exceptions import PartialOutputError, QueuedForHuman, Suspended
from routeguard.execution.executor import Served
from routeguard.execution.queue import MemoryHumanQueue
from support.upstream import (
    UpstreamServer,
    bad_request,
    context_length_exceeded,
    hang,
    ok,
    overloaded,
    rate_limited,
    stream_breaks_after,
    stream_error_event,
    stream_fails_before_first_chunk,
    stream_without_finish,
    tool_call,
)

E = ErrorClass
REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": "Patient reports chest pain."}]}
CTX: dict[str, Any] = {"agent": "triage-agent", "data_class": "restricted"}
# Endpoint model names, i.e. what the upstream sees in the body and counts by.
UP = {"primary": "primary-up", "backup": "backup-up", "spare": "spare-up"}


# ------------------------------------------------------------------------------------------ helpers
class Sleeps:
    """An injected ``sleep`` that records each delay and yields once instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


class Clock:
    """A settable clock for the router (health windows, cooldowns)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def model(base_url: str, name: str) -> dict[str, Any]:
    return {"provider": "test", "endpoint": {"type": "openai", "base_url": base_url, "model": UP[name]},
            "capabilities": ["text", "tool_use"], "clearance": "restricted", "regions": ["eu"],
            "trusted": True}


def bundle(urls: dict[str, str], *, fallbacks: list[Any] | None = None, **policy: Any) -> dict[str, Any]:
    """``urls``: model name -> base URL; the first is the primary, the others fall back in order."""
    names = list(urls)
    body: dict[str, Any] = {"profile": "triage", "primary": names[0],
                            "fallbacks": fallbacks if fallbacks is not None else names[1:],
                            "retry": {"attempts": 2, "backoff": "200ms"}, "timeout": "10s"}
    body.update(policy)
    return {
        "models": {n: model(u, n) for n, u in urls.items()},
        "profiles": {"triage": {"requires": ["text"], "data_class": "restricted", "regions": ["eu"]}},
        "approvals": [{"model": n, "profile": "triage", "by": "gov", "evidence": "EV-1"} for n in urls],
        "policies": {"triage-agent": body},
    }


def health_requests(router: Router, name: str) -> int:
    figures = router.health()[name]["figures"]
    return 0 if figures is None else int(figures["requests"])


def health_failures(router: Router, name: str) -> int:
    figures = router.health()[name]["figures"]
    return 0 if figures is None else int(figures["failures"])


def assert_tracked(router: Router, *servers: UpstreamServer,
                   names: tuple[str, ...] = ("primary", "backup")) -> None:
    """The tracker saw exactly as many attempts as the upstreams received, per model."""
    for name in names:
        received = sum(s.count(UP[name]) for s in servers)
        assert health_requests(router, name) == received, (name, router.health()[name])


async def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.01)


async def collect(stream: AsyncIterator[dict[str, Any]]) -> tuple[list[dict[str, Any]], BaseException | None]:
    chunks: list[dict[str, Any]] = []
    try:
        async for chunk in stream:
            chunks.append(chunk)
    except (PartialOutputError, ProviderError) as exc:
        return chunks, exc
    return chunks, None


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def finish_of(chunks: list[dict[str, Any]]) -> str | None:
    reasons = [c["choices"][0].get("finish_reason") for c in chunks if c.get("choices")]
    return next((r for r in reversed(reasons) if r), None)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# ----------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def upstream_b() -> Iterator[UpstreamServer]:
    """A second upstream server: the fallback's own host, to show it saw nothing at all."""
    server = UpstreamServer().start()
    yield server
    server.stop()


@pytest.fixture
def other(upstream_b: UpstreamServer) -> Iterator[UpstreamServer]:
    upstream_b.reset()
    yield upstream_b
    upstream_b.reset()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


MakeRouter = Callable[..., Router]


@pytest.fixture
async def make_router(sleeps: Sleeps) -> AsyncIterator[MakeRouter]:
    routers: list[Router] = []

    def make(raw: dict[str, Any], *, clock: Callable[[], float] | None = None, **options: Any) -> Router:
        kwargs: dict[str, Any] = {"executor_options": {"sleep": sleeps, **options}}
        if clock is not None:
            kwargs["clock"] = clock
        router = Router.from_bundle(raw, **kwargs)
        routers.append(router)
        return router

    yield make
    for router in routers:
        await router.aclose()


async def served(router: Router, ctx: dict[str, Any] | None = None,
                 request: dict[str, Any] | None = None) -> tuple[dict[str, Any], Served]:
    return await router.executor.complete_served(router.context(ctx or CTX), dict(request or REQUEST))


async def stream_served(router: Router, request: dict[str, Any] | None = None
                        ) -> tuple[list[dict[str, Any]], Served | None, BaseException | None]:
    chunks: list[dict[str, Any]] = []
    summary: Served | None = None
    try:
        async for item in router.executor.stream_served(router.context(CTX), dict(request or REQUEST)):
            if isinstance(item, Served):
                summary = item
            else:
                chunks.append(item)
    except (PartialOutputError, ProviderError) as exc:
        return chunks, summary, exc
    return chunks, summary, None


def events_of(router: Router) -> list[Event]:
    seen: list[Event] = []
    router.subscribe(seen.append)
    return seen


# ------------------------------------------------------------------------------ retry and failover
async def test_503_is_retried_then_fails_over(upstream: UpstreamServer, make_router: MakeRouter,
                                              sleeps: Sleeps) -> None:
    upstream.set(UP["primary"], overloaded())
    router = make_router(bundle({"primary": upstream.base_url, "backup": upstream.base_url}))
    events = events_of(router)
    completion, how = await served(router)
    assert completion["model"] == UP["backup"]
    assert completion["choices"][0]["message"]["content"] == "Hello from upstream"
    assert (how.model, how.attempts, how.fell_back) == ("backup", 3, True)
    assert upstream.counts == {UP["primary"]: 2, UP["backup"]: 1}
    assert len(sleeps.delays) == 1 and 0 <= sleeps.delays[0] <= 0.2  # full jitter under 200ms
    assert_tracked(router, upstream)
    assert health_failures(router, "primary") == 2 and health_failures(router, "backup") == 0
    [fallback] = [e for e in events if isinstance(e, FallbackUsed)]
    assert (fallback.from_model, fallback.error_class) == ("primary", "overloaded")


async def test_429_retry_after_is_waited_then_the_primary_serves(
    upstream: UpstreamServer, make_router: MakeRouter, sleeps: Sleeps
) -> None:
    upstream.set(UP["primary"], rate_limited(retry_after="1"), ok("after the wait"))
    router = make_router(bundle({"primary": upstream.base_url, "backup": upstream.base_url}))
    completion, how = await served(router)
    assert completion["model"] == UP["primary"]
    assert completion["choices"][0]["message"]["content"] == "after the wait"
    assert (how.model, how.attempts, how.fell_back) == ("primary", 2, False)
    assert sleeps.delays == [1.0]  # Retry-After wins over the 200ms backoff
    assert upstream.counts == {UP["primary"]: 2}
    assert_tracked(router, upstream)
    assert health_failures(router, "primary") == 1


async def test_a_long_retry_after_fails_over_instead_of_waiting(
    upstream: UpstreamServer, make_router: MakeRouter, sleeps: Sleeps
) -> None:
    upstream.set(UP["primary"], rate_limited(retry_after="120"), ok())
    router = make_router(bundle({"primary": upstream.base_url, "backup": upstream.base_url}))
    completion, how = await served(router)
    assert completion["model"] == UP["backup"]
    assert (how.model, how.attempts) == ("backup", 2)
    assert sleeps.delays == []
    assert upstream.counts == {UP["primary"]: 1, UP["backup"]: 1}
    assert_tracked(router, upstream)


async def test_timeouts_are_retried_then_fail_over(upstream: UpstreamServer, make_router: MakeRouter) -> None:
    upstream.set(UP["primary"], hang(30))
    router = make_router(bundle({"primary": upstream.base_url, "backup": upstream.base_url}, timeout="300ms"))
    async with asyncio.timeout(20):
        completion, how = await served(router)
    assert completion["model"] == UP["backup"]
    assert (how.model, how.attempts) == ("backup", 3)
    assert upstream.counts == {UP["primary"]: 2, UP["backup"]: 1}
    assert_tracked(router, upstream)
    assert router.health()["primary"]["figures"]["timeouts"] == 2
    await eventually(lambda: upstream.disconnects.count(UP["primary"]) == 2)  # both attempts were abandoned


async def test_connection_refused_is_retried_then_fails_over(
    upstream: UpstreamServer, make_router: MakeRouter, sleeps: Sleeps
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    router = make_router(bundle({"primary": dead, "backup": upstream.base_url}))
    completion, how = await served(router)
    assert completion["model"] == UP["backup"]
    assert (how.model, how.attempts) == ("backup", 3)
    assert upstream.counts == {UP["backup"]: 1}
    assert health_requests(router, "primary") == 2 and health_failures(router, "primary") == 2
    assert health_requests(router, "backup") == 1
    assert len(sleeps.delays) == 1


async def test_400_surfaces_at_once_without_fallback(upstream: UpstreamServer, make_router: MakeRouter,
                                                     sleeps: Sleeps) -> None:
    upstream.set(UP["primary"], bad_request())
    router = make_router(bundle({"primary": upstream.base_url, "backup": upstream.base_url}))
    events = events_of(router)
    with pytest.raises(ProviderError) as caught:
        await served(router)
    err = caught.value
    assert (err.error_class, err.status) == (E.BAD_REQUEST, 400)
    assert err.body["error"]["param"] == "temperature"  # type: ignore[index]  # the upstream's body, intact
    assert upstream.counts == {UP["primary"]: 1}
    assert sleeps.delays == []
    assert_tracked(router, upstream)
    assert health_failures(router, "primary") == 0  # a client error says nothing about the model
    assert not [e for e in events if isinstance(e, TerminalEngaged)]


async def test_context_length_exceeded_surfaces_without_a_named_fallback(
    upstream: UpstreamServer, make_router: MakeRouter
) -> None:
    upstream.set(UP["primary"], context_length_exceeded())
    router = make_router(bundle({"primary": upstream.base_url, "backup": upstream.base_url}))
    with pytest.raises(ProviderError) as caught:
        await served(router)
    assert (caught.value.error_class, caught.value.status) == (E.CONTEXT_WINDOW, 400)
    assert upstream.counts == {UP["primary"]: 1}
    assert_tracked(router, upstream)


async def test_context_length_exceeded_fails_over_when_the_fallback_names_it(
    upstream: UpstreamServer, make_router: MakeRouter
) -> None:
    upstream.set(UP["primary"], context_length_exceeded())
    fallbacks = [{"model": "backup", "on": ["unavailable", "retryable", "context_window"]}]
    urls = {"primary": upstream.base_url, "backup": upstream.base_url}
    router = make_router(bundle(urls, fallbacks=fallbacks))
    completion, how = await served(router)
    assert completion["model"] == UP["backup"]
    assert (how.model, how.attempts) == ("backup", 2)
    assert upstream.counts == {UP["primary"]: 1, UP["backup"]: 1}  # never retried on the same model
    assert_tracked(router, upstream)


async def test_a_retryable_failure_skips_a_fallback_that_only_takes_context_window(
    upstream: UpstreamServer, make_router: MakeRouter
) -> None:
    upstream.set(UP["primary"], overloaded())
    fallbacks = [{"model": "backup", "on": ["context_window"]}, "spare"]
    urls = {"primary": upstream.base_url, "backup": upstream.base_url, "spare": upstream.base_url}
    router = make_router(bundle(urls, fallbacks=fallbacks))
    completion, _ = await served(router)
    assert completion["model"] == UP["spare"]
    assert upstream.counts == {UP["primary"]: 2, UP["spare"]: 1}
    assert_tracked(router, upstream, names=("primary", "backup", "spare"))


# ------------------------------------------------------------------------------------------ streams
async def test_a_stream_that_breaks_after_two_chunks_never_falls_back(
    upstream: UpstreamServer, other: UpstreamServer, make_router: MakeRouter
) -> None:
    upstream.set(UP["primary"], stream_breaks_after(2))
    router = make_router(bundle({"primary": upstream.base_url, "backup": other.base_url}))
    chunks, summary, exc = await stream_served(router)
    assert isinstance(exc, PartialOutputError)
    assert (exc.model, exc.chunks_delivered) == ("primary", 1)  # the role chunk is not output
    assert len(chunks) == 2 and chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert text_of(chunks) and finish_of(chunks) is None
    assert summary is None
    assert upstream.counts == {UP["primary"]: 1}  # not retried either
    assert other.requests == []  # the fallback's server saw no request at all
    assert_tracked(router, upstream, other)
    assert health_failures(router, "primary") == 1


async def test_a_stream_that_ends_without_its_finish_is_an_error(
    upstream: UpstreamServer, other: UpstreamServer, make_router: MakeRouter
) -> None:
    upstream.set(UP["primary"], stream_without_finish(chunks=3))
    router = make_router(bundle({"primary": upstream.base_url, "backup": other.base_url}))
    chunks, summary, exc = await stream_served(router)
    assert isinstance(exc, PartialOutputError)
    assert exc.model == "primary" and exc.chunks_delivered == 3
    assert text_of(chunks) == "Hello from upstream" and finish_of(chunks) is None
    assert summary is None
    assert upstream.counts == {UP["primary"]: 1} and other.requests == []
    assert_tracked(router, upstream, other)


async def test_a_stream_that_fails_before_its_first_chunk_is_served_by_the_fallback(
    upstream: UpstreamServer, other: UpstreamServer, make_router: MakeRouter
) -> None:
    upstream.set(UP["primary"], stream_fails_before_first_chunk())
    router = make_router(bundle({"primary": upstream.base_url, "backup": other.base_url}))
    chunks, summary, exc = await stream_served(router)
    assert exc is None
    assert {c["model"] for c in chunks} == {UP["backup"]}
    assert text_of(chunks) == "Hello from upstream" and finish_of(chunks) == "stop"
    assert summary is not None and (summary.model, summary.attempts, summary.fell_back) == ("backup", 3, True)
    assert upstream.counts == {UP["primary"]: 2} and other.counts == {UP["backup"]: 1}
    assert_tracked(router, upstream, other)


async def test_an_error_event_after_the_role_preamble_still_fails_over(
    upstream: UpstreamServer, make_router: MakeRouter
) -> None:
    upstream.set(UP["primary"], stream_error_event(after=1))  # role chunk, then an error event
    router = make_router(bundle({"primary": upstream.base_url, "backup": upstream.base_url}))
    chunks, summary, exc = await stream_served(router)
    assert exc is None
    assert {c["model"] for c in chunks} == {UP["backup"]}  # the held role chunk never reached the caller
    assert sum(1 for c in chunks if c["choices"][0]["delta"].get("role")) == 1
    assert summary is not None and summary.model == "backup"
    assert upstream.counts == {UP["primary"]: 2, UP["backup"]: 1}
    assert_tracked(router, upstream)


async def test_router_stream_yields_plain_chunks(upstream: UpstreamServer, make_router: MakeRouter) -> None:
    router = make_router(bundle({"primary": upstream.base_url, "backup": upstream.base_url}))
    chunks, exc = await collect(router.stream(CTX, REQUEST))
    assert exc is None and all(isinstance(c, dict) for c in chunks)
    assert text_of(chunks) == "Hello from upstream" and finish_of(chunks) == "stop"
    assert upstream.counts == {UP["primary"]: 1}
    assert upstream.requests[0].body["stream"] is True
    assert_tracked(router, upstream)


# ----------------------------------------------------------------------------------------- deadline
async def test_a_deadline_shorter_than_the_retries_surfaces_a_timeout_in_time(
    upstream: UpstreamServer, make_router: MakeRouter, sleeps: Sleeps
) -> None:
    upstream.set(UP["primary"], hang(30))
    raw = bundle({"primary": upstream.base_url, "backup": upstream.base_url},
                 timeout="30s", retry={"attempts": 3, "backoff": "200ms"})
    router = make_router(raw)
    async with asyncio.timeout(10):  # far below the 30s per-attempt timeout
        with pytest.raises(ProviderError) as caught:
            await served(router, {**CTX, "sla_ms": 400})
    assert caught.value.error_class is E.TIMEOUT
    assert upstream.counts == {UP["primary"]: 1}  # no retry, no fallback once the deadline has passed
    assert sleeps.delays == []
    assert_tracked(router, upstream)
    await eventually(lambda: upstream.disconnects == [UP["primary"]])


async def test_a_deadline_leaves_room_for_the_fallback_when_time_remains(
    upstream: UpstreamServer, make_router: MakeRouter, sleeps: Sleeps
) -> None:
    upstream.set(UP["primary"], overloaded())
    raw = bundle({"primary": upstream.base_url, "backup": upstream.base_url},
                 retry={"attempts": 3, "backoff": "5s"})
    router = make_router(raw, rng=_MaxRandom())
    completion, how = await served(router, {**CTX, "sla_ms": 3000})
    assert completion["model"] == UP["backup"]
    # The backoff (5s, jitter pinned to its maximum) would cross the 3s deadline: fail over at once.
    assert sleeps.delays == [] and how.attempts == 2
    assert upstream.counts == {UP["primary"]: 1, UP["backup"]: 1}
    assert_tracked(router, upstream)


class _MaxRandom:
    def uniform(self, a: float, b: float) -> float:
        return b


# ------------------------------------------------------------------------------------------ terminal
def _terminal_router(make_router: MakeRouter, upstream: UpstreamServer, terminal: dict[str, Any]) -> Router:
    upstream.set(UP["primary"], overloaded())
    return make_router(bundle({"primary": upstream.base_url}, terminal=terminal, retry={"attempts": 1}),
                       queue=MemoryHumanQueue())


async def test_terminal_suspend_raises_suspended(upstream: UpstreamServer, make_router: MakeRouter) -> None:
    router = _terminal_router(make_router, upstream, {"action": "suspend"})
    events = events_of(router)
    with pytest.raises(Suspended) as caught:
        await served(router)
    assert caught.value.policy == "triage-agent"
    assert upstream.counts == {UP["primary"]: 1}
    assert_tracked(router, upstream, names=("primary",))
    [terminal] = [e for e in events if isinstance(e, TerminalEngaged)]
    assert terminal.action == "suspend" and terminal.trace_id == caught.value.trace_id


async def test_terminal_human_queue_raises_with_the_entry_in_the_queue(
    upstream: UpstreamServer, make_router: MakeRouter
) -> None:
    router = _terminal_router(make_router, upstream, {"action": "human_queue", "queue": "clinical-humans"})
    observed: list[Served] = []
    router.executor.observers.append(observed.append)
    with pytest.raises(QueuedForHuman) as caught:
        await served(router)
    queue = router.executor.queue
    assert isinstance(queue, MemoryHumanQueue)
    [entry] = queue.items()
    assert caught.value.entry_id == entry.id and entry.id
    assert (caught.value.queue, entry.queue) == ("clinical-humans", "clinical-humans")
    assert entry.policy == "triage-agent" and entry.trace_id == caught.value.trace_id
    assert entry.request["messages"] == REQUEST["messages"]
    assert [(s.model, s.terminal) for s in observed] == [(None, "human_queue")]
    assert upstream.counts == {UP["primary"]: 1}
    assert_tracked(router, upstream, names=("primary",))


@pytest.mark.parametrize(("terminal", "text"), [
    ({"action": "static_response", "response": "Call the triage desk."}, "Call the triage desk."),
    ({"action": "read_only"}, "read-only"),
])
async def test_terminal_static_and_read_only_return_their_result(
    upstream: UpstreamServer, make_router: MakeRouter, terminal: dict[str, Any], text: str
) -> None:
    router = _terminal_router(make_router, upstream, terminal)
    completion, how = await served(router)
    assert text in completion["choices"][0]["message"]["content"]
    assert completion["routeguard_terminal"]["action"] == terminal["action"]
    assert (how.model, how.terminal) == (None, terminal["action"])
    assert upstream.counts == {UP["primary"]: 1}
    assert_tracked(router, upstream, names=("primary",))
    chunks, exc = await collect(router.stream(CTX, REQUEST))  # the same result as a stream
    assert exc is None and text in text_of(chunks) and finish_of(chunks) == "stop"


# ------------------------------------------------------------------------------------- cancellation
async def test_caller_cancellation_cancels_the_upstream_call(
    upstream: UpstreamServer, make_router: MakeRouter
) -> None:
    upstream.set(UP["primary"], hang(30))
    router = make_router(bundle({"primary": upstream.base_url, "backup": upstream.base_url}))
    task = asyncio.create_task(router.complete(CTX, REQUEST))
    await eventually(lambda: upstream.count(UP["primary"]) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: upstream.disconnects == [UP["primary"]])
    assert upstream.counts == {UP["primary"]: 1}  # neither retried nor failed over
    assert health_requests(router, "primary") == 0  # a cancelled call says nothing about the model


async def test_closing_a_stream_early_disconnects_the_upstream(
    upstream: UpstreamServer, make_router: MakeRouter
) -> None:
    upstream.set(UP["primary"], ok("one two three four five", chunks=5, chunk_gap_s=0.5))
    router = make_router(bundle({"primary": upstream.base_url, "backup": upstream.base_url}))
    stream = router.stream(CTX, REQUEST)
    first = [await anext(stream), await anext(stream)]
    assert text_of(first)
    await stream.aclose()  # type: ignore[attr-defined]
    await eventually(lambda: upstream.disconnects == [UP["primary"]])
    assert upstream.counts == {UP["primary"]: 1}


# --------------------------------------------------------------------------------------- tool calls
async def test_tool_calls_pass_through(upstream: UpstreamServer, make_router: MakeRouter) -> None:
    upstream.set(UP["primary"], tool_call("lookup_protocol", '{"code": "R07.4"}'))
    router = make_router(bundle({"primary": upstream.base_url, "backup": upstream.base_url}))
    tools = [{"type": "function", "function": {"name": "lookup_protocol",
                                               "parameters": {"type": "object", "properties": {}}}}]
    request = {**REQUEST, "tools": tools, "tool_choice": "auto", "parallel_tool_calls": False,
               "temperature": 0}
    completion, how = await served(router, request=request)
    assert how.model == "primary"
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    [call] = choice["message"]["tool_calls"]
    assert call["function"] == {"name": "lookup_protocol", "arguments": '{"code": "R07.4"}'}
    [seen] = upstream.requests
    assert seen.body["tools"] == tools
    assert (seen.body["tool_choice"], seen.body["parallel_tool_calls"]) == ("auto", False)
    assert seen.body["model"] == UP["primary"]
    assert_tracked(router, upstream)


async def test_streamed_tool_calls_pass_through(upstream: UpstreamServer, make_router: MakeRouter) -> None:
    upstream.set(UP["primary"], tool_call("lookup_protocol", '{"code": "R07.4"}'))
    router = make_router(bundle({"primary": upstream.base_url, "backup": upstream.base_url}))
    chunks, exc = await collect(router.stream(CTX, {**REQUEST, "tools": [{"type": "function", "function": {
        "name": "lookup_protocol", "parameters": {"type": "object"}}}]}))
    assert exc is None and finish_of(chunks) == "tool_calls"
    args = "".join(tc["function"].get("arguments", "") for c in chunks
                   for tc in c["choices"][0]["delta"].get("tool_calls") or ())
    assert args == '{"code": "R07.4"}'
    assert upstream.counts == {UP["primary"]: 1}
    assert_tracked(router, upstream)


# ------------------------------------------------------------------------------ dead single primary
async def test_a_dead_single_primary_is_reached_at_most_min_samples_times_then_only_by_probes(
    upstream: UpstreamServer, make_router: MakeRouter
) -> None:
    upstream.set(UP["primary"], overloaded())
    clock = Clock()
    health = {"window": "60s", "min_samples": 10, "cooldown": "30s", "min_dwell": "10s"}
    router = make_router(bundle({"primary": upstream.base_url}, health=health), clock=clock)

    async def one() -> str:
        try:
            await served(router)
        except Suspended:
            return "suspended"
        return "served"

    def hits() -> int:
        return upstream.count(UP["primary"])

    def state() -> str:
        return str(router.health()["primary"]["policies"]["triage-agent"]["state"])

    def cooldown_left() -> float:
        return float(router.health()["primary"]["policies"]["triage-agent"]["cooldown_left_s"])

    for _ in range(20):  # an outage: every request ends in the terminal action
        assert await one() == "suspended"
        clock.advance(0.1)
    declared_down_after = hits()
    assert declared_down_after <= 10  # min_samples
    assert state() == "unhealthy"
    assert health_requests(router, "primary") == declared_down_after

    clock.advance(30)  # the cooldown is over: exactly one probe, which fails
    for _ in range(5):
        assert await one() == "suspended"
    assert hits() == declared_down_after + 1
    clock.advance(15)  # the failed probe reopens the breaker (after the dwell), cooldown now 60s
    for _ in range(5):
        assert await one() == "suspended"
    assert hits() == declared_down_after + 1 and state() == "unhealthy"
    left = cooldown_left()
    assert 30 < left <= 60  # the second cooldown is twice the first
    clock.advance(left - 1)  # a second before its end: still nothing reaches it
    assert await one() == "suspended"
    assert hits() == declared_down_after + 1

    upstream.set(UP["primary"], ok())  # the model comes back
    clock.advance(1.5)
    results = []
    for _ in range(3):  # probes one at a time close the breaker
        results.append(await one())
        clock.advance(11)
    assert results == ["served"] * 3
    assert state() == "healthy"
    assert await one() == "served"
    assert hits() == declared_down_after + 1 + 4
