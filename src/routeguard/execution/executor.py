"""The executor: run a decision's chain safely (CONTRACT §1 triggers/retry/terminal, §3 proxy semantics).

Retries on the same model for the classes in ``retry.on`` (exponential backoff, full jitter,
``Retry-After`` wins), then the next fallback the engine admits (eligibility is re-checked on every
hop, since health moves while a request runs; a model that failed this request is never tried
again). Non-retryable errors surface at once. Once output reached the caller, a failure surfaces as
:class:`PartialOutputError`: never a fallback. Time and sleep come from the router's clock and an
injected ``sleep``, so the simulator runs this same code in virtual time.

The retry loop is written out rather than taken from tenacity/stamina because every try must consult
live health, the whole-call deadline, Retry-After and the fallback chain, in virtual time.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from routeguard.core.decision import Decision, DecisionStatus
from routeguard.core.errors import ProviderError
from routeguard.core.events import FallbackUsed, TerminalEngaged
from routeguard.core.exceptions import PartialOutputError, QueuedForHuman, Suspended
from routeguard.core.health_view import HealthState
from routeguard.core.model import Model, Policy, TerminalAction
from routeguard.core.outcome import Outcome
from routeguard.execution.apis import CHAT, Api, usage_tokens
from routeguard.execution.deployments import LAST_DEPLOYMENT, SERVED_DEPLOYMENT
from routeguard.execution.providers.base import Provider
from routeguard.execution.providers.openai_shapes import completion_to_chunks, make_completion
from routeguard.execution.queue import HumanQueue, MemoryHumanQueue
from routeguard.execution.registry import ProviderRegistry

if TYPE_CHECKING:
    from routeguard.core.context import RouteContext
    from routeguard.core.table import RoutingTable
    from routeguard.runtime import Router

__all__ = ["Executor", "Served"]

Sleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Served:
    """How one request was served: the first decision, the model that answered, the attempts made."""

    decision: Decision
    model: str | None
    attempts: int
    fell_back: bool
    terminal: str | None = None
    deployment: str | None = None  # which of the model's deployments answered (None: it has none)
    input_tokens: int = 0  # from the serving model's usage (0 when it reported none)
    output_tokens: int = 0
    cost_usd: float | None = None  # those tokens at the model's bundle price; None without usage


class Executor:
    """Turns decisions into calls; shared by ``Router.complete/stream``, the proxy and the simulator."""

    def __init__(
        self,
        router: Router,
        *,
        providers: Mapping[str, Provider] | None = None,
        queue: HumanQueue | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.router = router
        self.providers = ProviderRegistry(providers, clock=router.now, health=router)
        self.queue: HumanQueue = queue if queue is not None else MemoryHumanQueue()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.observers: list[Callable[[Served], None]] = []
        # the first decision of each request, with the seconds it took (metrics, logs)
        self.decision_observers: list[Callable[[Decision, float], None]] = []
        # a request that ended in an error its caller sees: its first decision, and whether it left that model
        self.failure_observers: list[Callable[[Decision, bool], None]] = []

    def register(self, model: str, provider: Provider) -> None:
        self.providers.register(model, provider)

    async def aclose(self) -> None:
        await self.providers.aclose()

    # ------------------------------------------------------------------ plain completions
    async def complete(self, ctx: RouteContext, request: dict[str, Any]) -> dict[str, Any]:
        completion, _served = await self.complete_served(ctx, request)
        return completion

    async def complete_served(
        self, ctx: RouteContext, request: dict[str, Any], api: Api = CHAT
    ) -> tuple[dict[str, Any], Served]:
        """The completion (or, with ``api``, the embeddings / response) and how it was served (the proxy
        reports the latter in headers)."""
        run = _Run(self, ctx)
        while True:
            decision = run.next_decision()
            if decision.model is None:
                return run.terminal(decision, request), run.served(None)
            try:
                completion = await run.attempt_model(decision, lambda p, t: api.call(p, request, t))
            except _FailOver:
                continue
            return completion, run.served(decision.model)

    # ------------------------------------------------------------------ streams
    async def stream(self, ctx: RouteContext, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        async for item in self.stream_served(ctx, request):
            if isinstance(item, dict):
                yield item

    async def stream_served(
        self, ctx: RouteContext, request: dict[str, Any], on_start: Callable[[Served], None] | None = None,
        api: Api = CHAT,
    ) -> AsyncGenerator[dict[str, Any] | Served, None]:
        """Chunks as they arrive; the last item is the :class:`Served` summary (the proxy uses it).
        ``on_start`` is called once, just before the first chunk, with a preview of the summary: the model
        whose output follows (None: the terminal action's configured answer) — the proxy's headers."""
        run = _Run(self, ctx)
        while True:
            decision = run.next_decision()
            if decision.model is None:
                completion = run.terminal(decision, request)
                if on_start is not None:
                    on_start(run.preview(None))
                for chunk in completion_to_chunks(completion):
                    yield chunk
                yield run.served(None)
                return
            started = False
            try:
                async for chunk in run.stream_model(decision, request, api):
                    if not started and on_start is not None:
                        on_start(run.preview(decision.model))
                    started = True
                    yield chunk
            except _FailOver:
                continue
            yield run.served(decision.model)
            return


class _FailOver(Exception):
    """This model failed this request before any output; try the next one the engine admits."""


class _Run:
    """The state of one request across its attempts."""

    def __init__(self, executor: Executor, ctx: RouteContext) -> None:
        self.ex = executor
        self.router = executor.router
        self.ctx = ctx
        self.failures: dict[str, str] = {}
        self.first: Decision | None = None
        self.attempts = 0
        start = self.router.now()
        self.deadline = start + ctx.sla_ms / 1000 if ctx.sla_ms is not None else None
        self.last_error: ProviderError | None = None
        self.pending_fallback: tuple[str, str, str, str | None] | None = None
        self.terminal_action: str | None = None  # the action actually carried out, once it is
        self.fallback_recorded = False
        self.tokens: tuple[int, int] | None = None  # the serving call's usage

    def next_decision(self) -> Decision:
        if self.deadline is not None and self.router.now() >= self.deadline and self.last_error is not None:
            self._finish_fallback(failed=True)
            self._failed()
            raise self.last_error
        ctx = replace(self.ctx, failures=dict(self.failures)) if self.failures else self.ctx
        if self.first is None and self.ex.decision_observers:
            began = time.perf_counter()
            decision = self.router.decide(ctx)
            elapsed = time.perf_counter() - began
            for observe in self.ex.decision_observers:
                observe(decision, elapsed)
        else:
            decision = self.router.decide(ctx)
        if self.first is None:
            self.first = decision
        if self.pending_fallback is not None:
            policy, model, cls, deployment = self.pending_fallback
            self.pending_fallback = None
            self.router.emit(FallbackUsed(policy, model, decision.model, cls, self.router.now(), self.ctx.trace_id,
                                          deployment))
        if decision.model is None and self.last_error is not None and not self._error_admits_fallback():
            # a non-retryable error that no fallback is named for surfaces as itself, not as terminal
            self._finish_fallback(failed=True)
            self._failed()
            raise self.last_error
        return decision

    def _failed(self, model: str | None = None) -> None:
        """Tell the failure observers: this request ends in an error its caller sees."""
        first = self.first
        if first is None or not self.ex.failure_observers:
            return
        left = any(m != first.model for m in self.failures) or (model is not None and model != first.model)
        for observe in self.ex.failure_observers:
            observe(first, left)

    def _error_admits_fallback(self) -> bool:
        err = self.last_error
        return err is not None and err.error_class.value in self._policy().retry.on

    def _policy(self) -> Policy:
        assert self.first is not None
        return self._table().policies[self.first.policy].policy

    def _table(self) -> RoutingTable:
        return self.router.table_for(self.ctx.tenant, self.ctx.business_line)[1]

    def preview(self, model: str | None) -> Served:
        """The summary as it will be if ``model`` finishes the request (no side effects)."""
        assert self.first is not None
        inp, out = self.tokens or (0, 0)
        cost = None
        if self.tokens is not None and model is not None:
            found = self._table().bundle.models.get(model)
            cost = found.cost.estimate_usd(inp, out) if found is not None else None
        return Served(
            self.first, model, self.attempts, fell_back=bool(self.failures) or (model != self.first.model),
            terminal=None if model is not None else (self.terminal_action or "suspend"),
            deployment=SERVED_DEPLOYMENT.get() if model is not None else None,
            input_tokens=inp, output_tokens=out, cost_usd=cost,
        )

    def served(self, model: str | None) -> Served:
        served = self.preview(model)
        self._finish_fallback(failed=model is None)
        for observer in self.ex.observers:
            observer(served)
        return served

    def _finish_fallback(self, failed: bool) -> None:
        """Feed auto safe mode once per request that needed a fallback: a model failed it in this
        request, or its first decision already skipped the primary. Successes count too (else the
        rate would be all failures)."""
        first = self.first
        if self.fallback_recorded or first is None:
            return
        if self.failures or first.status is DecisionStatus.FALLBACK:
            self.fallback_recorded = True
            self.router.record_fallback_result(failed)

    def _timeout(self, policy: Policy) -> float:
        timeout = policy.timeout_s
        if self.deadline is not None:
            timeout = min(timeout, max(0.0, self.deadline - self.router.now()))
        return timeout

    def _report(self, decision: Decision, model: str, ok: bool, error: str | None, started: float,
                partial: bool = False, tokens: tuple[int, int] | None = None) -> None:
        """One attempt's outcome; a served call's usage counts toward the model's tpm quota."""
        inp, out = tokens if tokens is not None else (0, 0)
        self.router.report(
            Outcome(model=model, ok=ok, trace_id=self.ctx.trace_id, error=error,
                    latency_ms=(self.router.now() - started) * 1000, partial_output=partial,
                    input_tokens=inp, output_tokens=out, policy=decision.policy,
                    deployment=SERVED_DEPLOYMENT.get())
        )

    async def attempt_model(
        self, decision: Decision, call: Callable[[Provider, float], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """Tries on one model with retries; raises _FailOver to move on, or the error to surface."""
        model_name, policy, model = self._target(decision)
        for attempt in range(policy.retry.attempts):
            self.attempts += 1
            started = self.router.now()
            try:
                SERVED_DEPLOYMENT.set(None)
                LAST_DEPLOYMENT.set(None)
                provider = self.ex.providers.get(model, self.ctx.region, decision.policy, decision.deployment)
                result = await call(provider, self._timeout(policy))
            except ProviderError as err:
                self._report(decision, model_name, False, err.error_class.value, started)
                await self._after_failure(decision, policy, model_name, err, attempt)
                continue
            self.tokens = usage_tokens(result) if isinstance(result, dict) else None
            tokens = self.tokens or (self.ctx.input_tokens, self.ctx.output_tokens)  # no usage: the estimate
            self._report(decision, model_name, True, None, started, tokens=tokens)
            return result
        raise AssertionError("unreachable: the last failed attempt raises")  # pragma: no cover

    def _target(self, decision: Decision) -> tuple[str, Policy, Model]:
        """The decided model's name, its policy and its catalogue entry (in the request's scope)."""
        model_name = decision.model
        assert model_name is not None
        table = self._table()
        return model_name, table.policies[decision.policy].policy, table.bundle.models[model_name]

    async def _after_failure(
        self, decision: Decision, policy: Policy, model: str, err: ProviderError, attempt: int
    ) -> None:
        """Sleep before a retry on the same model, or raise _FailOver / the error itself."""
        self.last_error = err
        cls = err.error_class.value
        if cls not in policy.retry.on or not err.retryable:
            self._fail_over(decision, model, cls)  # named triggers (e.g. context_window) may still admit one
        if attempt + 1 >= policy.retry.attempts or self._model_down(policy, model):
            self._fail_over(decision, model, cls)
        delay = self._backoff(policy, attempt, err.classified.retry_after_s)
        if delay is None:
            self._fail_over(decision, model, cls)
        await self.ex._sleep(delay or 0.0)

    def _model_down(self, policy: Policy, model: str) -> bool:
        h = self.router.tracker.model_health(policy.name, policy.health, model, self.router.now())
        return h.state in (HealthState.UNHEALTHY, HealthState.PROBING)

    def _backoff(self, policy: Policy, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before the next try; None when waiting would cross the deadline or the cap."""
        retry = policy.retry
        if retry_after is not None:
            if retry_after > retry.backoff_max_s:
                return None  # a long Retry-After: another model serves sooner
            delay = retry_after
        else:
            cap = min(retry.backoff_max_s, retry.backoff_s * (2**attempt))
            delay = self.ex._rng.uniform(0, cap)
        if self.deadline is not None and self.router.now() + delay >= self.deadline:
            return None
        return delay

    def _fail_over(self, decision: Decision, model: str, cls: str) -> None:
        self.failures[model] = cls
        # emitted with its target by next_decision
        self.pending_fallback = (decision.policy, model, cls, LAST_DEPLOYMENT.get())
        raise _FailOver

    async def stream_model(
        self, decision: Decision, request: dict[str, Any], api: Api = CHAT
    ) -> AsyncIterator[dict[str, Any]]:
        model_name, policy, model = self._target(decision)
        if api.open is None:
            raise AssertionError(f"the {api.name} API has no streams")
        for attempt in range(policy.retry.attempts):
            self.attempts += 1
            started = self.router.now()
            delivered = 0
            held: list[dict[str, Any]] = []
            try:
                SERVED_DEPLOYMENT.set(None)
                LAST_DEPLOYMENT.set(None)
                provider = self.ex.providers.get(model, self.ctx.region, decision.policy, decision.deployment)
                stream = api.open(provider, request, self._timeout(policy))
                async with aclosing(stream) as chunks:  # type: ignore[type-var]
                    async for chunk in chunks:
                        if "usage" in chunk or "response" in chunk:
                            self.tokens = usage_tokens(chunk) or self.tokens
                        if delivered == 0 and not api.has_output(chunk):
                            held.append(chunk)  # role-only preambles are held: failing over stays safe
                            continue
                        for early in held:
                            yield early
                        held.clear()
                        delivered += 1
                        yield chunk
            except ProviderError as err:
                cls = err.error_class.value
                self._report(decision, model_name, False, cls, started, partial=delivered > 0)
                if delivered > 0:
                    self._finish_fallback(failed=True)
                    self._failed(model_name)
                    raise PartialOutputError(model_name, cls, str(err), delivered) from err
                await self._after_failure(decision, policy, model_name, err, attempt)
                continue
            for early in held:
                yield early
            # without usage from the upstream: the request's input estimate and ~one token per output chunk
            tokens = self.tokens or (self.ctx.input_tokens, delivered)
            self._report(decision, model_name, True, None, started, tokens=tokens)
            return

    def terminal(self, decision: Decision, request: dict[str, Any]) -> dict[str, Any]:
        """Carry out the policy's terminal action: raise, queue, or answer with the configured result."""
        terminal = decision.terminal
        assert terminal is not None
        reason = decision.terminal_reason or "no eligible model"
        policy = self._table().policies.get(decision.policy)
        notify = policy.policy.notify if policy is not None else ()
        entry = None
        self.terminal_action = terminal.action.value
        if terminal.action is TerminalAction.HUMAN_QUEUE:
            entry = self.ex.queue.put(terminal.queue or "default", decision.policy, self.ctx.trace_id,
                                      request, reason)
        self.router.emit(
            TerminalEngaged(decision.policy, terminal.action.value, reason, self.router.now(),
                            self.ctx.trace_id, terminal.queue, entry, self.ctx.tenant, notify)
        )
        if terminal.action is TerminalAction.SUSPEND:
            self.served(None)
            raise Suspended(decision.policy, reason, self.ctx.trace_id)
        if terminal.action is TerminalAction.HUMAN_QUEUE:
            self.served(None)
            raise QueuedForHuman(decision.policy, reason, self.ctx.trace_id, terminal.queue or "default",
                                 entry or "")
        text = terminal.response or terminal.message or (
            "This assistant is in read-only mode: no approved model is available right now."
        )
        completion = make_completion("routeguard-terminal", text)
        completion["routeguard_terminal"] = {"action": terminal.action.value, "reason": reason}
        return completion

