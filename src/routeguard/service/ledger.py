"""Feeding the outcome ledger (CONTRACT §7) from the service, off the request path.

``LedgerRouter`` is the service's Router: it remembers each request's context by trace id (tenant, task class,
data class) and, for every outcome reported to it — a served call's attempt (proxy) or ``POST /v1/outcomes`` —
offers one ledger entry to ``LedgerFeed``. The feed only appends to a bounded deque (thread-safe: outcomes
arrive from the event loop and from worker threads); a background task drains it in batches into the store
(one transaction per batch, in a worker thread) and purges rows past the retention once an hour. A full feed
drops the oldest entries and counts them: the ledger never slows or fails a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from routeguard.core.context import RouteContext
from routeguard.core.decision import Decision
from routeguard.core.outcome import Outcome
from routeguard.runtime import Router
from routeguard.store.ledger import LedgerEntry

__all__ = ["DEFAULT_RETAIN_S", "LedgerFeed", "LedgerRouter"]

log = logging.getLogger("routeguard.service")

DEFAULT_RETAIN_S = 30 * 86_400.0
_CONTEXTS = 100_000  # trace ids remembered for outcomes reported later


class LedgerFeed:
    """A bounded buffer of ledger entries and the task that writes them (see the module doc)."""

    def __init__(
        self,
        store: Any,
        *,
        retain_s: float = DEFAULT_RETAIN_S,
        clock: Callable[[], float],
        batch: int = 500,
        flush_s: float = 0.5,
        capacity: int = 100_000,
    ) -> None:
        self._store = store
        self.retain_s = retain_s
        self._clock = clock
        self._batch = batch
        self._flush_s = flush_s
        self._buffer: deque[LedgerEntry] = deque(maxlen=capacity)
        self.dropped = 0
        self.written = 0
        self._task: asyncio.Task[None] | None = None
        self._next_purge = 0.0

    def offer(self, entry: LedgerEntry) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(entry)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="routeguard-ledger")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.flush)  # what is buffered still reaches the store

    def flush(self) -> int:
        """Write everything buffered now (blocking; run it in a worker thread)."""
        total = 0
        while self._buffer:
            batch = [self._buffer.popleft() for _ in range(min(self._batch, len(self._buffer)))]
            try:
                total += self._store.ledger.append(batch)
            except Exception:
                self._buffer.extendleft(reversed(batch))  # kept for the next round, oldest first
                raise
        self.written += total
        return total

    def purge(self) -> int:
        before = datetime.fromtimestamp(self._clock() - self.retain_s, UTC)
        return int(self._store.ledger.purge(before))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            try:
                if self._buffer:
                    await asyncio.to_thread(self.flush)
                if self._clock() >= self._next_purge:
                    self._next_purge = self._clock() + 3600.0
                    await asyncio.to_thread(self.purge)
            except Exception:
                log.exception("outcome ledger write failed; will retry")


class LedgerRouter(Router):
    """The service's Router: every reported outcome also goes to the ledger (see the module doc)."""

    ledger: LedgerFeed | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # trace id -> [tenant, task class, data class, policy, version] of its request
        self._contexts: OrderedDict[str, list[Any]] = OrderedDict()

    def context(self, context: Mapping[str, Any] | RouteContext) -> RouteContext:
        ctx = super().context(context)
        if self.ledger is not None and ctx.trace_id and ctx.trace_id not in self._contexts:
            if len(self._contexts) >= _CONTEXTS:
                self._contexts.popitem(last=False)
            self._contexts[ctx.trace_id] = [ctx.tenant, ctx.task_type, ctx.data_class, None, None]
        return ctx

    def decide(self, context: Mapping[str, Any] | RouteContext) -> Decision:
        decision = super().decide(context)
        known = self._contexts.get(decision.trace_id) if self.ledger is not None else None
        if known is not None:
            known[3], known[4] = decision.policy, decision.policy_version
        return decision

    def report(self, outcome: Outcome | Mapping[str, Any]) -> None:
        super().report(outcome)
        if self.ledger is None:
            return
        out = outcome if isinstance(outcome, Outcome) else Outcome.from_dict(outcome)
        with contextlib.suppress(Exception):  # the ledger never fails a report
            self.ledger.offer(self._entry(out))

    def _entry(self, out: Outcome) -> LedgerEntry:
        tenant, task_class, data_class, policy, version = self._contexts.get(out.trace_id or "", [None] * 5)
        _scope, table = self.table_for(tenant)
        model = table.bundle.models.get(out.model)
        tokens = out.input_tokens or out.output_tokens
        cost = model.cost.estimate_usd(out.input_tokens, out.output_tokens) if model is not None and tokens else None
        return LedgerEntry(
            ts=datetime.fromtimestamp(self.now(), UTC),
            model=out.model,
            ok=out.ok,
            trace_id=out.trace_id,
            policy=out.policy or policy,
            version=version if version is not None else table.version,
            tenant=tenant,
            task_class=task_class or out.task_type,
            data_class=data_class,
            error=out.error,
            latency_ms=out.latency_ms,
            input_tokens=out.input_tokens,
            output_tokens=out.output_tokens,
            cost_usd=cost,
            quality=out.quality,
            deployment=out.deployment,
        )

