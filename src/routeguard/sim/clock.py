"""Virtual time: a discrete-event scheduler that steps coroutines by hand (no asyncio loop, no real sleeping).

Every simulated request is a coroutine. When it awaits :meth:`Scheduler.sleep` the awaitable yields a
:class:`_Sleep` marker; the scheduler puts the coroutine back on its heap at ``now + delay`` and moves
on to the next entry. ``now`` only ever jumps forward to the time of the entry being run, so an hour of
traffic runs as fast as the code under test allows. The router's clock reads :meth:`Scheduler.now`.

Ordering is total and deterministic: entries run by ``(virtual time, insertion sequence)``.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Coroutine, Generator
from typing import Any

__all__ = ["Scheduler", "SimTask", "SleepNotAllowed"]


class SleepNotAllowed(RuntimeError):
    """A coroutine awaited something other than the scheduler's sleep (a real await would block)."""


class _Sleep:
    """The awaitable returned by :meth:`Scheduler.sleep`: yields itself once, to the scheduler."""

    __slots__ = ("delay",)

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def __await__(self) -> Generator[_Sleep, None, None]:
        yield self


Done = Callable[[Any, BaseException | None], None]


class SimTask:
    """One coroutine under the scheduler, with a callback for its result or exception."""

    __slots__ = ("coro", "done")

    def __init__(self, coro: Coroutine[Any, Any, Any], done: Done | None) -> None:
        self.coro = coro
        self.done = done


class Scheduler:
    """A heap of ``(virtual time, seq, task or callback)``; :meth:`run_until` drains it in order."""

    __slots__ = ("_heap", "_now", "_seq", "epoch", "steps")

    def __init__(self, epoch: float = 0.0) -> None:
        self.epoch = epoch  # absolute time (epoch seconds) of t = 0
        self._now = epoch
        self._heap: list[tuple[float, int, SimTask | Callable[[], None]]] = []
        self._seq = itertools.count()
        self.steps = 0

    # ------------------------------------------------------------------ time
    def now(self) -> float:
        """Absolute virtual time (epoch seconds): what the router's clock returns."""
        return self._now

    @property
    def t(self) -> float:
        """Seconds since the start of the run."""
        return self._now - self.epoch

    def sleep(self, delay: float) -> _Sleep:
        """An awaitable that resumes the awaiting coroutine ``delay`` virtual seconds later."""
        return _Sleep(delay if delay > 0 else 0.0)

    # ------------------------------------------------------------------ scheduling
    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, at_s: float | None = None, done: Done | None = None
    ) -> None:
        """Start ``coro`` at run time ``at_s`` (default: now); ``done(result, exc)`` when it ends."""
        at = self._now if at_s is None else max(self._now, self.epoch + at_s)
        heapq.heappush(self._heap, (at, next(self._seq), SimTask(coro, done)))

    def call_at(self, at_s: float, callback: Callable[[], None]) -> None:
        """Run ``callback()`` at run time ``at_s`` (seconds since the start)."""
        heapq.heappush(self._heap, (max(self._now, self.epoch + at_s), next(self._seq), callback))

    def pending(self) -> int:
        return len(self._heap)

    def run_until(self, end_s: float | None = None) -> None:
        """Run entries in time order until the heap is empty or the next one is after ``end_s``."""
        heap = self._heap
        end = float("inf") if end_s is None else self.epoch + end_s
        pop, push, seq = heapq.heappop, heapq.heappush, self._seq
        while heap and heap[0][0] <= end:
            at, _, entry = pop(heap)
            self._now = at
            self.steps += 1
            if not isinstance(entry, SimTask):
                entry()
                continue
            try:
                marker = entry.coro.send(None)
            except StopIteration as stop:
                if entry.done is not None:
                    entry.done(stop.value, None)
                continue
            except Exception as exc:  # the task's own failure, handed to its callback
                if entry.done is None:
                    raise
                entry.done(None, exc)
                continue
            if type(marker) is not _Sleep:
                entry.coro.close()
                raise SleepNotAllowed(f"a simulated task awaited {marker!r}; only Scheduler.sleep is virtual")
            push(heap, (at + marker.delay, next(seq), entry))
        if end_s is not None and self._now < end:
            self._now = end
