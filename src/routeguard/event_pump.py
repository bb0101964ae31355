"""One pump for routing events (DESIGN "next shape", point 3): decide and report only queue them.

A single worker thread hands every event, in the order it was queued, to the sinks: *durable* sinks (the
audit log + outbox, durable health) are retried with backoff until they succeed — a failed audit write is
retried, never logged and dropped —, *best-effort* sinks (metrics, the dispatcher's kick, logs) are called
once and a failure is counted and logged. No store write runs on the decision path or the event loop.

:meth:`EventPump.wait_idle` is the read-your-writes barrier: an endpoint that reads what events wrote
(the audit log, metrics) first waits, briefly, until everything queued before it has been delivered.

Hand-written: a queue with a worker thread, ordered per-sink retries and an idle barrier is ~100 lines;
the libraries that do this (Celery, arq, dramatiq) bring a broker and are far heavier than the need.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence

from routeguard.core.events import Event, EventSink

__all__ = ["EventPump"]

log = logging.getLogger("routeguard.events")


class EventPump:
    def __init__(
        self,
        durable: Sequence[EventSink],
        best_effort: Sequence[EventSink] = (),
        *,
        backoff_s: float = 0.05,
        max_backoff_s: float = 2.0,
        name: str = "routeguard-event-pump",
    ) -> None:
        self._durable = tuple(durable)
        self._best_effort = tuple(best_effort)
        self._backoff_s, self._max_backoff_s = backoff_s, max_backoff_s
        self._queue: deque[Event] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.queued = 0  # events ever queued; with `delivered`, the barrier of wait_idle
        self.delivered = 0
        self.retries = 0
        self.failures = 0  # best-effort sink failures

    # ----------------------------------------------------------------- producers
    def __call__(self, event: Event) -> None:
        """Queue one event (non-blocking): the Router's subscriber."""
        with self._cond:
            self._queue.append(event)
            self.queued += 1
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + (1 if self._busy else 0)

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> EventPump:
        if not self._thread.is_alive():
            self._thread.start()
        return self

    def wait_idle(self, timeout_s: float = 2.0) -> bool:
        """Wait until every event queued before this call is delivered (or the timeout); whether it is.
        Events queued meanwhile by others are not waited for, so a busy pump never holds a reader up for long."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            mark = self.queued
            while self.delivered < mark:
                if not self._thread.is_alive():
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout_s``), then end the worker."""
        if self._thread.is_alive():
            self.wait_idle(timeout_s)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)

    # ----------------------------------------------------------------- the worker
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                event = self._queue.popleft()
                self._busy = True
            try:
                self._deliver(event)
            finally:
                with self._cond:
                    self._busy = False
                    self.delivered += 1
                    self._cond.notify_all()

    def _deliver(self, event: Event) -> None:
        for sink in self._durable:
            delay = self._backoff_s
            while True:
                try:
                    sink(event)
                    break
                except Exception:
                    self.retries += 1
                    if self._stopping:
                        log.exception("giving up on %s for %r at shutdown", event.event, sink)
                        break
                    log.warning("event sink %r failed on %s; retrying in %.2fs", sink, event.event, delay,
                                exc_info=True)
                    time.sleep(delay)
                    delay = min(self._max_backoff_s, delay * 2)
        for sink in self._best_effort:
            try:
                sink(event)
            except Exception:
                self.failures += 1
                log.exception("event sink %r failed on %s", sink, event.event)
