"""The virtual-time scheduler: ordering, sleeping, callbacks and results."""

from __future__ import annotations

from typing import Any

import pytest

from routeguard.sim.clock import Scheduler, SleepNotAllowed

EPOCH = 1_800_000_000.0


def test_coroutines_resume_in_virtual_time_order() -> None:
    sched = Scheduler(EPOCH)
    seen: list[tuple[str, float]] = []

    async def worker(name: str, delays: list[float]) -> str:
        for d in delays:
            await sched.sleep(d)
            seen.append((name, sched.t))
        return name

    results: list[Any] = []
    sched.spawn(worker("a", [1.0, 2.0]), done=lambda r, e: results.append(r))
    sched.spawn(worker("b", [0.5, 0.5, 5.0]), at_s=0.25, done=lambda r, e: results.append(r))
    sched.run_until()
    assert seen == [("b", 0.75), ("a", 1.0), ("b", 1.25), ("a", 3.0), ("b", 6.25)]
    assert results == ["a", "b"]
    assert sched.now() == EPOCH + 6.25


def test_equal_times_run_in_insertion_order_and_callbacks_interleave() -> None:
    sched = Scheduler(EPOCH)
    order: list[str] = []
    sched.call_at(1.0, lambda: order.append("first"))
    sched.call_at(1.0, lambda: order.append("second"))
    sched.call_at(0.5, lambda: order.append("earlier"))
    sched.run_until()
    assert order == ["earlier", "first", "second"]


def test_run_until_stops_at_the_boundary_and_advances_the_clock() -> None:
    sched = Scheduler(EPOCH)
    hits: list[float] = []
    for t in (1.0, 2.0, 3.0):
        sched.call_at(t, lambda t=t: hits.append(t))  # type: ignore[misc]
    sched.run_until(2.0)
    assert hits == [1.0, 2.0]
    assert sched.t == 2.0
    sched.run_until(2.5)
    assert sched.t == 2.5 and hits == [1.0, 2.0]
    sched.run_until()
    assert hits == [1.0, 2.0, 3.0]


def test_exceptions_reach_the_done_callback() -> None:
    sched = Scheduler(EPOCH)
    got: list[BaseException | None] = []

    async def boom() -> None:
        await sched.sleep(1)
        raise ValueError("x")

    sched.spawn(boom(), done=lambda r, e: got.append(e))
    sched.run_until()
    assert isinstance(got[0], ValueError)


def test_awaiting_anything_but_the_virtual_sleep_is_refused() -> None:
    import asyncio

    sched = Scheduler(EPOCH)

    async def real_sleep() -> None:
        await asyncio.sleep(0)

    sched.spawn(real_sleep())
    with pytest.raises(SleepNotAllowed):
        sched.run_until()


def test_negative_sleep_is_zero() -> None:
    sched = Scheduler(EPOCH)

    async def nap() -> float:
        await sched.sleep(-3)
        return sched.t

    out: list[Any] = []
    sched.spawn(nap(), at_s=2, done=lambda r, e: out.append(r))
    sched.run_until()
    assert out == [2.0]
