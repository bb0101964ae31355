"""Fan-out of routing events to subscribed sinks; a failing sink is logged and never breaks routing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from routeguard.core.events import Event, EventSink

__all__ = ["EventBus"]

log = logging.getLogger("routeguard.runtime")


class EventBus:
    """Thread-safe list of sinks; events are delivered in order, outside any routing lock."""

    def __init__(self) -> None:
        self._sinks: list[EventSink] = []
        self._lock = threading.Lock()

    def subscribe(self, sink: EventSink) -> Callable[[], None]:
        """Call ``sink(event)`` for every event; returns a function that unsubscribes it."""
        with self._lock:
            self._sinks.append(sink)

        def unsubscribe() -> None:
            with self._lock:
                if sink in self._sinks:
                    self._sinks.remove(sink)

        return unsubscribe

    def publish(self, events: Iterable[Event]) -> None:
        with self._lock:
            sinks = list(self._sinks)
        if not sinks:
            return
        for event in events:
            for sink in sinks:
                try:
                    sink(event)
                except Exception:  # a failing sink is logged and never breaks routing
                    log.exception("event sink %r failed on %s", sink, event.event)
