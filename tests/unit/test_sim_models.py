"""Simulated models: baseline latency, every fault kind, timeouts, and the fault timeline's edges."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Coroutine
from typing import Any

import pytest

from routeguard.core.errors import ErrorClass, ProviderError, StreamBroken
from routeguard.sim.clock import Scheduler
from routeguard.sim.models import SimulatedModel, lognormal_params
from routeguard.sim.scenario import Fault, FaultKind, ModelSpec

EPOCH = 1_800_000_000.0


def _model(*faults: Fault, spec: ModelSpec | None = None) -> tuple[Scheduler, SimulatedModel]:
    sched = Scheduler(EPOCH)
    return sched, SimulatedModel("m", spec or ModelSpec(), faults, sched, random.Random(1))


def _run(
    sched: Scheduler, coro: Coroutine[Any, Any, Any], at_s: float = 0.0
) -> tuple[Any, BaseException | None, float]:
    out: list[tuple[Any, BaseException | None, float]] = []
    start = at_s

    sched.spawn(coro, at_s=at_s, done=lambda r, e: out.append((r, e, sched.t - start)))
    sched.run_until()
    return out[0]


async def _stream(model: SimulatedModel, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    return [chunk async for chunk in model.stream({}, timeout_s=timeout_s)]


def test_lognormal_params_hit_the_percentiles() -> None:
    mu, sigma = lognormal_params(400, 900)
    rng = random.Random(3)
    samples = sorted(rng.lognormvariate(mu, sigma) for _ in range(20_000))
    assert statistics.median(samples) == pytest.approx(0.4, rel=0.03)
    assert samples[int(0.95 * len(samples))] == pytest.approx(0.9, rel=0.05)
    assert lognormal_params(100, 100)[1] == 0.0


def test_baseline_answers_after_its_latency() -> None:
    sched, model = _model(spec=ModelSpec(p50_ms=250, p95_ms=250))
    result, error, took = _run(sched, model.complete({}, timeout_s=30))
    assert error is None and result["choices"][0]["message"]["content"]
    assert took == pytest.approx(0.25)


def test_latency_past_the_timeout_is_a_timeout_after_the_timeout() -> None:
    sched, model = _model(Fault("m", FaultKind.LATENCY, at_s=0, p50_ms=9000, p95_ms=9000))
    _result, error, took = _run(sched, model.complete({}, timeout_s=2.0))
    assert isinstance(error, ProviderError) and error.error_class is ErrorClass.TIMEOUT
    assert took == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("error", "expected", "status"),
    [
        ("connection", ErrorClass.CONNECTION, None),
        ("overloaded", ErrorClass.OVERLOADED, 503),
    ],
)
def test_outage_fails_at_once(error: str, expected: ErrorClass, status: int | None) -> None:
    sched, model = _model(Fault("m", FaultKind.OUTAGE, at_s=10, until_s=20, error=error))
    _r, before, _t = _run(sched, model.complete({}, timeout_s=30), at_s=5)
    _r, during, took = _run(sched, model.complete({}, timeout_s=30), at_s=10)
    _r, after, _t = _run(sched, model.complete({}, timeout_s=30), at_s=20)
    assert before is None and after is None
    assert isinstance(during, ProviderError) and during.error_class is expected and during.status == status
    assert took == 0.0
    assert model.counters.calls == 3 and model.counters.calls_while_down == 1


def test_outage_as_timeout_hangs_until_the_timeout() -> None:
    sched, model = _model(Fault("m", FaultKind.OUTAGE, at_s=0, error="timeout"))
    _r, error, took = _run(sched, model.complete({}, timeout_s=7))
    assert isinstance(error, ProviderError) and error.error_class is ErrorClass.TIMEOUT and took == 7


def test_rate_limit_carries_retry_after() -> None:
    sched, model = _model(Fault("m", FaultKind.RATE_LIMIT, at_s=0, retry_after_s=3.0, error="rate_limit"))
    _r, error, _t = _run(sched, model.complete({}, timeout_s=30))
    assert isinstance(error, ProviderError) and error.error_class is ErrorClass.RATE_LIMIT
    assert error.classified.retry_after_s == 3.0 and error.status == 429


def test_brownout_fails_about_its_share_after_the_latency() -> None:
    sched, model = _model(Fault("m", FaultKind.BROWNOUT, at_s=0, error_rate=0.3, error="server_error"))
    errors = 0
    for i in range(2000):
        _r, error, _t = _run(sched, model.complete({}, timeout_s=30), at_s=float(i))
        errors += error is not None
    assert 0.26 < errors / 2000 < 0.34


def test_stream_break_delivers_output_then_breaks() -> None:
    sched, model = _model(Fault("m", FaultKind.STREAM_BREAK, at_s=0, until_s=10))
    chunks: list[dict[str, Any]] = []

    async def consume() -> None:
        async for chunk in model.stream({}, timeout_s=30):
            chunks.append(chunk)

    _r, error, _t = _run(sched, consume())
    assert isinstance(error, StreamBroken) and error.chunks_received == 2
    assert chunks[1]["choices"][0]["delta"]["content"]
    # plain completions are not affected, and after `until` streams are whole again
    _r, plain, _t = _run(sched, model.complete({}, timeout_s=30), at_s=1)
    whole, after, _t = _run(sched, _stream(model), at_s=10)
    assert plain is None and after is None and whole[-1]["choices"][0]["finish_reason"] == "stop"


def test_behaviour_cache_follows_repeating_fault_edges() -> None:
    fault = Fault("m", FaultKind.OUTAGE, at_s=60, until_s=540, every_s=10, for_s=5)
    _sched, model = _model(fault)
    for t in [0, 59.999, 60, 61, 64.999, 65, 69.9, 70, 300.5, 305, 539.9, 540, 600, 3]:
        assert model.behaviour(t).down is fault.active(t), t
    assert not math.isnan(model.behaviour(1e9).mu)
