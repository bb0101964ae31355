"""Simulated models: a baseline latency distribution and error rate, plus the scenario's fault timeline.

Each :class:`SimulatedModel` is a real :class:`~routeguard.execution.providers.base.Provider`: the
executor calls it exactly as it would call an HTTP endpoint, and it sleeps through the scheduler.

Per call, at the moment it starts (virtual time ``t``):

* latency ~ lognormal with the model's ``p50``/``p95`` (``sigma = ln(p95/p50) / 1.645``), or the active
  ``latency`` fault's; a latency at or past the attempt's timeout sleeps the timeout and fails ``timeout``;
* ``outage``: every call fails at once with ``connection`` (or ``overloaded`` for ``error: 503``;
  ``error: timeout`` hangs until the timeout);
* ``rate_limit``: with probability ``error_rate`` (default 1) a 429 at once, ``Retry-After: retry_after``;
* ``brownout``: with probability ``error_rate`` the call fails (``server_error``) after its latency;
* the baseline ``error_rate`` fails calls the same way;
* ``stream_break``: with probability ``error_rate`` a *stream* breaks after its first content chunk
  (partial output reached the caller); plain completions are not affected.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from routeguard.core.errors import ErrorClass, ProviderError
from routeguard.execution.providers.base import stream_broken
from routeguard.execution.providers.openai_shapes import make_chunk, make_completion
from routeguard.sim.clock import Scheduler
from routeguard.sim.scenario import Fault, FaultKind, ModelSpec

__all__ = ["ModelCounters", "SimulatedModel", "lognormal_params"]

_Z95 = 1.6448536269514722


def lognormal_params(p50_ms: float, p95_ms: float) -> tuple[float, float]:
    """``(mu, sigma)`` of a lognormal (in seconds) with the given median and 95th percentile."""
    p50 = max(p50_ms, 0.001) / 1000
    p95 = max(p95_ms / 1000, p50)
    return math.log(p50), math.log(p95 / p50) / _Z95


@dataclass(slots=True)
class ModelCounters:
    calls: int = 0
    failures: int = 0
    calls_while_down: int = 0  # calls made while an outage fault held the model down


@dataclass(frozen=True, slots=True)
class _Behaviour:
    mu: float
    sigma: float
    error: str | None  # an error every call gets at once (outage)
    error_rate: float  # probability of a server error after the latency
    rate_limit: float  # probability of an immediate 429
    retry_after_s: float | None
    break_rate: float  # probability that a stream breaks after partial output
    down: bool


def _next_edge(fault: Fault, t: float) -> float:
    """The first time after ``t`` at which ``fault`` may switch on or off."""
    if t < fault.at_s:
        return fault.at_s
    end = fault.until_s if fault.until_s is not None else math.inf
    if t >= end:
        return math.inf
    if fault.every_s is None or fault.for_s is None:
        return end
    cycle = fault.at_s + ((t - fault.at_s) // fault.every_s) * fault.every_s
    edge = cycle + fault.for_s if t < cycle + fault.for_s else cycle + fault.every_s
    return min(edge, end)


class SimulatedModel:
    """One model's behaviour over virtual time (implements the Provider protocol)."""

    def __init__(
        self, name: str, spec: ModelSpec, faults: Sequence[Fault], scheduler: Scheduler, rng: random.Random
    ) -> None:
        self.name = name
        self._spec = spec
        self._faults = tuple(f for f in faults if f.model == name)
        self._sched = scheduler
        self._rng = rng
        self.counters = ModelCounters()
        mu, sigma = lognormal_params(spec.p50_ms, spec.p95_ms)
        self._baseline = _Behaviour(mu, sigma, None, spec.error_rate, 0.0, None, 0.0, False)
        self._cached, self._valid_from, self._valid_until = self._baseline, 0.0, -1.0
        self._completion = make_completion(name, "simulated answer", completion_id=f"sim-{name}", created=0)
        self._chunks = [
            make_chunk(name, chunk_id=f"sim-{name}", role="assistant", content=""),
            make_chunk(name, chunk_id=f"sim-{name}", content="simulated "),
            make_chunk(name, chunk_id=f"sim-{name}", content="answer"),
            make_chunk(name, chunk_id=f"sim-{name}", finish_reason="stop"),
        ]

    def behaviour(self, t: float) -> _Behaviour:
        """What a call starting at run time ``t`` meets (faults layered on the baseline); cached until the
        next fault edge."""
        if not self._faults:
            return self._baseline
        if self._valid_from <= t < self._valid_until:
            return self._cached
        self._cached = self._layered(t)
        self._valid_from = t
        self._valid_until = min(_next_edge(f, t) for f in self._faults)
        return self._cached

    def _layered(self, t: float) -> _Behaviour:
        b = self._baseline
        mu, sigma, error, error_rate = b.mu, b.sigma, b.error, b.error_rate
        rate_limit, retry_after, break_rate, down = 0.0, None, 0.0, False
        for fault in self._faults:
            if not fault.active(t):
                continue
            kind = fault.kind
            if kind is FaultKind.OUTAGE:
                error, down = fault.error, True
            elif kind is FaultKind.BROWNOUT:
                error_rate = max(error_rate, fault.error_rate)
            elif kind is FaultKind.LATENCY:
                mu, sigma = lognormal_params(fault.p50_ms or 100.0, fault.p95_ms or fault.p50_ms or 100.0)
            elif kind is FaultKind.RATE_LIMIT:
                rate_limit, retry_after = max(rate_limit, fault.error_rate), fault.retry_after_s
            else:
                break_rate = max(break_rate, fault.error_rate)
        return _Behaviour(mu, sigma, error, error_rate, rate_limit, retry_after, break_rate, down)

    async def aclose(self) -> None:
        return None

    async def _before_answer(self, timeout_s: float) -> _Behaviour:
        """Sleep the call's latency; raise its error, if any. Returns the behaviour for streams."""
        b = self.behaviour(self._sched.t)
        c = self.counters
        c.calls += 1
        rng = self._rng
        if b.down:
            c.calls_while_down += 1
            c.failures += 1
            if b.error == "timeout":
                await self._sched.sleep(timeout_s)
                raise ProviderError.of(
                    ErrorClass.TIMEOUT, f"no answer within {timeout_s:g}s", model=self.name
                )
            status = 503 if b.error == "overloaded" else None
            raise ProviderError.of(
                b.error or "connection", "simulated outage", status=status, model=self.name
            )
        if b.rate_limit and rng.random() < b.rate_limit:
            c.failures += 1
            raise ProviderError.of(
                ErrorClass.RATE_LIMIT,
                "simulated 429",
                retry_after_s=b.retry_after_s,
                status=429,
                model=self.name,
            )
        latency = rng.lognormvariate(b.mu, b.sigma) if b.sigma > 0 else math.exp(b.mu)
        if latency >= timeout_s:
            c.failures += 1
            await self._sched.sleep(timeout_s)
            raise ProviderError.of(ErrorClass.TIMEOUT, f"no answer within {timeout_s:g}s", model=self.name)
        await self._sched.sleep(latency)
        if b.error_rate and rng.random() < b.error_rate:
            c.failures += 1
            raise ProviderError.of(ErrorClass.SERVER_ERROR, "simulated 500", status=500, model=self.name)
        return b

    async def complete(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        await self._before_answer(timeout_s)
        return self._completion

    async def stream(self, request: dict[str, Any], *, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        b = await self._before_answer(timeout_s)
        if b.break_rate and self._rng.random() < b.break_rate:
            self.counters.failures += 1
            yield self._chunks[0]
            yield self._chunks[1]
            raise stream_broken("simulated stream break", model=self.name, chunks_received=2)
        for chunk in self._chunks:
            yield chunk
