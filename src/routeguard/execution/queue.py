"""Where ``human_queue`` terminal actions put requests: a protocol and an in-memory queue."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["HumanQueue", "MemoryHumanQueue", "QueuedRequest"]


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    id: str
    queue: str
    policy: str
    trace_id: str
    reason: str
    request: dict[str, Any] = field(default_factory=dict)


class HumanQueue(Protocol):
    def put(self, queue: str, policy: str, trace_id: str, request: dict[str, Any], reason: str) -> str:
        """Store the request for a human; return the entry id."""
        ...


class MemoryHumanQueue:
    """In-process queue (the service swaps in the durable one from the store)."""

    def __init__(self) -> None:
        self._items: list[QueuedRequest] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def put(self, queue: str, policy: str, trace_id: str, request: dict[str, Any], reason: str) -> str:
        with self._lock:
            entry = QueuedRequest(f"q-{next(self._ids)}", queue, policy, trace_id, reason, dict(request))
            self._items.append(entry)
            return entry.id

    def items(self) -> list[QueuedRequest]:
        with self._lock:
            return list(self._items)
