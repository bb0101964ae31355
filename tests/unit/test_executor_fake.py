"""The executor with FakeProviders in virtual time: backoff, Retry-After, failover, eligibility between
hops, the partial-output guard, events and automatic safe mode (CONTRACT §1, §3, §8)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from bundles import NOW, approve, model

from routeguard import Router
from routeguard.core.errors import ErrorClass, ProviderError
from routeguard.core.events import Event, FallbackUsed, SafeModeChanged, TerminalEngaged
from routeguard.core.exceptions import PartialOutputError, QueuedForHuman, Suspended
from routeguard.execution.executor import Served
from routeguard.execution.providers import FakeProvider, Step, make_tool_call

E = ErrorClass
REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
CTX: dict[str, Any] = {"agent": "agent"}


class VirtualClock:
    """The router's clock; provider latency and executor backoff both advance it (recorded apart)."""

    def __init__(self, start: float = NOW) -> None:
        self.now = start
        self.backoffs: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def latency(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)

    async def backoff(self, seconds: float) -> None:
        self.backoffs.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def bundle(*names: str, fallbacks: list[Any] | None = None, untrusted: tuple[str, ...] = (),
           safe_mode: dict[str, Any] | None = None, **policy: Any) -> dict[str, Any]:
    """Models ``names`` (the first is the primary, the others its fallbacks unless given)."""
    body: dict[str, Any] = {"profile": "p", "primary": names[0],
                            "fallbacks": fallbacks if fallbacks is not None else list(names[1:])}
    body.update(policy)
    raw: dict[str, Any] = {
        "models": {n: model("text", trusted=n not in untrusted) for n in names},
        "profiles": {"p": {"requires": ["text"], "data_class": "confidential", "regions": ["eu"]}},
        "approvals": [approve(n) for n in names],
        "policies": {"agent": body},
    }
    if safe_mode is not None:
        raw["safe_mode"] = safe_mode
    return raw


class Setup:
    def __init__(self, raw: dict[str, Any], rng: random.Random | Any | None = None) -> None:
        self.clock = VirtualClock()
        self.router = Router.from_bundle(raw, clock=self.clock, executor_options={
            "sleep": self.clock.backoff, "rng": rng or random.Random(0)})
        self.events: list[Event] = []
        self.router.subscribe(self.events.append)
        self.providers: dict[str, FakeProvider] = {}

    def fake(self, name: str, *script: Any, default: Any = "ok", latency_s: float = 0.0) -> FakeProvider:
        provider = FakeProvider(name, list(script), default=default, latency_s=latency_s,
                                sleep=self.clock.latency)
        self.router.executor.register(name, provider)
        self.providers[name] = provider
        return provider

    def calls(self) -> dict[str, int]:
        return {n: p.calls for n, p in self.providers.items() if p.calls}

    async def complete(self, **ctx: Any) -> tuple[dict[str, Any], Served]:
        return await self.router.executor.complete_served(self.router.context({**CTX, **ctx}), dict(REQUEST))

    async def stream(self) -> tuple[list[dict[str, Any]], Served | None, BaseException | None]:
        chunks: list[dict[str, Any]] = []
        summary = None
        try:
            async for item in self.router.executor.stream_served(self.router.context(CTX), dict(REQUEST)):
                if isinstance(item, Served):
                    summary = item
                else:
                    chunks.append(item)
        except (PartialOutputError, ProviderError) as exc:
            return chunks, summary, exc
        return chunks, summary, None

    def tracked(self, name: str) -> int:
        figures = self.router.health()[name]["figures"]
        return 0 if figures is None else int(figures["requests"])

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class MaxJitter:
    """An rng whose full jitter always picks the cap (shows the un-jittered schedule)."""

    def uniform(self, a: float, b: float) -> float:
        return b


NO_BREAKER = {"consecutive_failures": 100, "min_samples": 100}


# ------------------------------------------------------------------------------------- backoff
async def test_backoff_doubles_and_is_capped() -> None:
    retry = {"attempts": 6, "backoff": "1s", "backoff_max": "4s"}
    s = Setup(bundle("a", "b", retry=retry, health=NO_BREAKER), rng=MaxJitter())
    s.fake("a", *["server_error"] * 5)
    completion, how = await s.complete()
    assert completion["model"] == "a" and how.attempts == 6
    assert s.clock.backoffs == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert s.calls() == {"a": 6} and s.tracked("a") == 6


async def test_backoff_is_full_jitter_from_a_seeded_rng() -> None:
    retry = {"attempts": 5, "backoff": "200ms"}
    s = Setup(bundle("a", "b", retry=retry, health=NO_BREAKER), rng=random.Random(42))
    s.fake("a", *["overloaded"] * 4)
    await s.complete()
    expected = random.Random(42)
    caps = [0.2, 0.4, 0.8, 1.6]
    assert s.clock.backoffs == [expected.uniform(0, cap) for cap in caps]
    assert all(0 <= d <= cap for d, cap in zip(s.clock.backoffs, caps, strict=True))


async def test_backoff_cap_defaults_to_five_seconds() -> None:
    s = Setup(bundle("a", "b", retry={"attempts": 8, "backoff": "1s"}, health=NO_BREAKER), rng=MaxJitter())
    s.fake("a", *["timeout"] * 7)
    await s.complete()
    assert s.clock.backoffs == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]


async def test_retry_after_wins_over_backoff() -> None:
    s = Setup(bundle("a", "b"), rng=MaxJitter())
    s.fake("a", ProviderError.of(E.RATE_LIMIT, "slow down", retry_after_s=2.5))
    completion, how = await s.complete()
    assert (completion["model"], how.attempts, how.fell_back) == ("a", 2, False)
    assert s.clock.backoffs == [2.5]


async def test_a_long_retry_after_fails_over_instead_of_waiting() -> None:
    s = Setup(bundle("a", "b"))
    s.fake("a", ProviderError.of(E.RATE_LIMIT, "come back later", retry_after_s=60))
    s.fake("b")
    completion, how = await s.complete()
    assert (completion["model"], how.model, how.attempts) == ("b", "b", 2)
    assert s.clock.backoffs == [] and s.clock.now == NOW
    assert s.calls() == {"a": 1, "b": 1}


async def test_a_non_retryable_rate_limit_fails_over_without_retrying() -> None:
    s = Setup(bundle("a", "b"))
    body = {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota",
                      "code": "insufficient_quota"}}
    quota = ProviderError.from_http(429, body)
    assert quota.error_class is E.RATE_LIMIT and not quota.retryable
    s.fake("a", quota)
    s.fake("b")
    completion, _ = await s.complete()
    assert completion["model"] == "b"
    assert s.calls() == {"a": 1, "b": 1} and s.clock.backoffs == []


# -------------------------------------------------------------------------------------- failover
async def test_never_retries_a_model_that_failed_this_request() -> None:
    s = Setup(bundle("a", "b", "c"))
    for name in "abc":
        s.fake(name, default="server_error")
    with pytest.raises(Suspended):
        await s.complete()
    assert s.calls() == {"a": 2, "b": 2, "c": 2}  # attempts per model, then terminal; no model twice
    assert [(e.from_model, e.error_class) for e in s.of(FallbackUsed)] == [
        ("a", "server_error"), ("b", "server_error"), ("c", "server_error")]
    assert [s.tracked(n) for n in "abc"] == [2, 2, 2]


async def test_a_b_arms_fail_over_to_the_other_arm_once() -> None:
    s = Setup(bundle("a", "b", "c", primary=[{"model": "a", "weight": 50}, {"model": "b", "weight": 50}],
                     fallbacks=["c"], retry={"attempts": 1}))
    for name in "abc":
        s.fake(name, default="overloaded")
    with pytest.raises(Suspended):
        await s.complete()
    assert s.calls() == {"a": 1, "b": 1, "c": 1}


async def test_eligibility_is_checked_again_between_hops() -> None:
    s = Setup(bundle("a", "b", "c", retry={"attempts": 1}))

    def fail_and_take_b_down(_request: dict[str, Any]) -> Any:
        s.router.signal("b", "down", ttl_s=60)  # health moves while the request runs
        return E.OVERLOADED

    s.fake("a", fail_and_take_b_down)
    s.fake("b")
    s.fake("c")
    completion, how = await s.complete()
    assert how.decision.backups == ("b", "c")  # b was eligible when the request started
    assert completion["model"] == "c" and s.calls() == {"a": 1, "c": 1}


async def test_safe_mode_switched_on_mid_request_keeps_untrusted_fallbacks_out() -> None:
    s = Setup(bundle("a", "b", "c", untrusted=("b",), retry={"attempts": 1}))

    def fail_and_switch_safe_mode(_request: dict[str, Any]) -> Any:
        s.router.set_safe_mode(True, reason="incident")
        return E.SERVER_ERROR

    s.fake("a", fail_and_switch_safe_mode)
    s.fake("b")
    s.fake("c")
    completion, _ = await s.complete()
    assert completion["model"] == "c" and s.calls() == {"a": 1, "c": 1}


async def test_a_model_declared_down_mid_request_is_not_retried() -> None:
    s = Setup(bundle("a", "b", retry={"attempts": 5}, health={"consecutive_failures": 2}))
    s.fake("a", default="overloaded")
    s.fake("b")
    completion, _ = await s.complete()
    assert completion["model"] == "b"
    assert s.calls() == {"a": 2, "b": 1}  # the breaker opened after 2: no 3rd..5th attempt
    completion, how = await s.complete()  # the next request goes straight to the fallback
    assert completion["model"] == "b" and how.attempts == 1
    assert s.calls() == {"a": 2, "b": 2}


async def test_a_fallback_with_after_gives_the_terminal_action_for_that_long_then_serves() -> None:
    """AG-163 scenario C: with ``after: 60s`` the first minute of an outage gets the terminal action,
    then the fallback serves for as long as the outage lasts (probes of the primary aside)."""
    s = Setup(bundle("a", "b", fallbacks=[{"model": "b", "after": "60s"}], retry={"attempts": 1},
                     terminal={"action": "human_queue", "queue": "humans"}))
    s.fake("a", default="overloaded")
    s.fake("b")
    served: dict[int, str] = {}
    for second in range(300):
        try:
            completion, _ = await s.complete()
            served[second] = completion["model"]
        except QueuedForHuman:
            served[second] = "queue"
        s.clock.now += 1
    assert {served[t] for t in range(0, 55)} == {"queue"}
    assert {served[t] for t in range(70, 300)} == {"b"}


async def test_a_non_retryable_error_surfaces_at_once() -> None:
    s = Setup(bundle("a", "b"))
    s.fake("a", E.AUTH)
    s.fake("b")
    with pytest.raises(ProviderError) as caught:
        await s.complete()
    assert caught.value.error_class is E.AUTH
    assert s.calls() == {"a": 1} and not s.of(TerminalEngaged)


async def test_the_deadline_bounds_attempts_in_virtual_time() -> None:
    s = Setup(bundle("a", "b", timeout="30s", retry={"attempts": 3}))
    s.fake("a", "hang")
    s.fake("b")
    with pytest.raises(ProviderError) as caught:
        await s.complete(sla_ms=400)
    assert caught.value.error_class is E.TIMEOUT
    assert s.clock.now == pytest.approx(NOW + 0.4)  # the attempt was cut at the deadline, not at 30s
    assert s.calls() == {"a": 1} and s.clock.backoffs == []


# ------------------------------------------------------------------------------------------ streams
async def test_a_role_only_preamble_is_not_output() -> None:
    s = Setup(bundle("a", "b", retry={"attempts": 1}))
    s.fake("a", Step(content="from a", break_after=1))  # the role chunk, then the connection drops
    s.fake("b", Step(content="from b"))
    chunks, summary, exc = await s.stream()
    assert exc is None
    assert {c["model"] for c in chunks} == {"b"}  # a's held preamble was dropped, not relayed
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "from b"
    assert summary is not None and summary.model == "b" and summary.fell_back


async def test_content_after_the_preamble_is_output_and_never_falls_back() -> None:
    s = Setup(bundle("a", "b"))
    s.fake("a", Step(content="abcdef", break_after=2))
    s.fake("b")
    chunks, summary, exc = await s.stream()
    assert isinstance(exc, PartialOutputError) and exc.chunks_delivered == 1
    assert len(chunks) == 2 and summary is None
    assert s.calls() == {"a": 1} and s.tracked("a") == 1


async def test_a_tool_call_chunk_is_output() -> None:
    s = Setup(bundle("a", "b"))
    call = make_tool_call("lookup", {"q": "x"}, "call_1")
    s.fake("a", Step(content="", tool_calls=(call,), break_after=2))
    s.fake("b")
    chunks, _, exc = await s.stream()
    assert isinstance(exc, PartialOutputError) and exc.chunks_delivered == 1
    assert chunks[-1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "lookup"
    assert s.calls() == {"a": 1}


async def test_a_stream_without_its_finish_is_partial_output() -> None:
    s = Setup(bundle("a", "b"))
    s.fake("a", Step(content="abc", missing_finish=True))
    s.fake("b")
    chunks, _, exc = await s.stream()
    assert isinstance(exc, PartialOutputError)
    assert not any(c["choices"][0]["finish_reason"] for c in chunks)
    assert s.calls() == {"a": 1}


async def test_a_stream_that_fails_before_output_is_retried_then_served_by_the_fallback() -> None:
    s = Setup(bundle("a", "b"))
    s.fake("a", default=Step(break_after=0))
    s.fake("b")
    chunks, summary, exc = await s.stream()
    assert exc is None and {c["model"] for c in chunks} == {"b"}
    assert summary is not None and summary.attempts == 3
    assert s.calls() == {"a": 2, "b": 1}


# ----------------------------------------------------------------------------------------- events
async def test_fallback_and_terminal_events_are_emitted() -> None:
    s = Setup(bundle("a", "b", retry={"attempts": 1}, terminal={"action": "human_queue", "queue": "humans"},
                     notify=[]))
    s.fake("a", default="overloaded")
    s.fake("b", default="timeout")
    with pytest.raises(QueuedForHuman) as caught:
        await s.complete(tenant="acme")
    trace = caught.value.trace_id
    fallbacks = s.of(FallbackUsed)
    assert [(e.policy, e.from_model, e.error_class, e.trace_id) for e in fallbacks] == [
        ("agent", "a", "overloaded", trace), ("agent", "b", "timeout", trace)]
    [terminal] = s.of(TerminalEngaged)
    assert (terminal.action, terminal.queue, terminal.queue_entry, terminal.trace_id, terminal.tenant) == (
        "human_queue", "humans", caught.value.entry_id, trace, "acme")
    assert terminal.to_dict()["event"] == "agent.routing.terminal"
    assert fallbacks[0].to_dict()["event"] == "agent.routing.fallback"


async def test_static_response_terminal_is_returned_and_announced() -> None:
    terminal = {"action": "static_response", "response": "Later."}
    s = Setup(bundle("a", retry={"attempts": 1}, terminal=terminal))
    s.fake("a", default="overloaded")
    completion, how = await s.complete()
    assert completion["choices"][0]["message"]["content"] == "Later."
    assert how.terminal == "static_response" and how.model is None
    assert [e.action for e in s.of(TerminalEngaged)] == ["static_response"]


# ------------------------------------------------------------------------------------ auto safe mode
SAFE_AUTO = {"auto": {"fallback_failure_rate": 0.2, "window": "60s", "min_samples": 10}}


async def test_auto_safe_mode_engages_when_fallbacks_keep_failing() -> None:
    s = Setup(bundle("a", "b", "c", untrusted=("a", "b"), fallbacks=["b"], safe_mode=SAFE_AUTO,
                     retry={"attempts": 1}, health=NO_BREAKER))
    s.fake("a", default="overloaded")
    s.fake("b", default="overloaded")
    for _ in range(10):
        with pytest.raises(Suspended):
            await s.complete()
        s.clock.now += 1
    [change] = s.of(SafeModeChanged)
    assert change.enabled and change.automatic and "fallback failure rate" in change.reason
    assert s.router.safe_mode.global_on
    calls = s.calls()
    with pytest.raises(Suspended):  # only trusted models now: a and b are not
        await s.complete()
    assert s.calls() == calls
    decision = s.router.decide(CTX)
    assert {(r.model, r.reason) for r in decision.rejected} >= {("a", "safe_mode"), ("b", "safe_mode")}


async def test_auto_safe_mode_counts_fallback_successes_too() -> None:
    """With the primary declared down, requests go straight to a healthy fallback: that is a fallback
    working, and a few failures among many successes must not trip safe mode."""
    s = Setup(bundle("a", "b", safe_mode=SAFE_AUTO, retry={"attempts": 1}, health=NO_BREAKER))
    s.router.signal("a", "down", ttl_s=3600)
    s.fake("a")
    s.fake("b", *(["ok"] * 9 + ["overloaded"]) * 12)  # 10% of the fallback's answers fail: below 20%
    outcomes = []
    for _ in range(120):
        try:
            completion, _ = await s.complete()
            outcomes.append(completion["model"])
        except Suspended:
            outcomes.append("suspended")
        s.clock.now += 0.25  # all inside one 60s window
    assert outcomes.count("b") == 108 and outcomes.count("suspended") == 12
    assert s.calls() == {"b": 120}
    assert not s.of(SafeModeChanged) and not s.router.safe_mode.global_on


async def test_auto_safe_mode_counts_a_fallback_error_that_surfaces() -> None:
    s = Setup(bundle("a", "b", safe_mode=SAFE_AUTO, retry={"attempts": 1}, health=NO_BREAKER))
    s.fake("a", default="overloaded")
    s.fake("b", default="auth")  # the fallback fails with an error the caller sees as itself
    for _ in range(10):
        with pytest.raises(ProviderError):
            await s.complete()
    assert s.router.safe_mode.global_on and len(s.of(SafeModeChanged)) == 1


# ------------------------------------------------------------------------------------------ probes
async def test_a_dead_primary_is_reached_at_most_min_samples_times_then_only_by_probes() -> None:
    s = Setup(bundle("a", retry={"attempts": 2}, health={"min_samples": 10, "cooldown": "30s"}))
    s.fake("a", default="connection")
    suspended = 0
    for _ in range(50):
        try:
            await s.complete()
        except Suspended:
            suspended += 1
        s.clock.now += 0.1
    assert suspended == 50
    down_after = s.providers["a"].calls
    assert down_after <= 10
    assert s.tracked("a") == down_after
    s.clock.now += 30
    for _ in range(20):
        with pytest.raises(Suspended):
            await s.complete()
    assert s.providers["a"].calls == down_after + 1  # one probe, one attempt (a probe is never retried)


async def test_served_observers_see_every_request() -> None:
    s = Setup(bundle("a", "b"))
    seen: list[Served] = []
    s.router.executor.observers.append(seen.append)
    s.fake("a", "overloaded", "overloaded", "ok")
    s.fake("b")
    await s.complete()
    await s.complete()
    assert [(x.model, x.attempts, x.fell_back) for x in seen] == [("b", 3, True), ("a", 1, False)]

