"""Open a real store for a test: SQLite in a temp file, or PostgreSQL in a fresh schema (see services)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from routeguard.store.db import Store, open_store
from support.services import postgres_schema

__all__ = ["BACKENDS", "T0", "StepClock", "open_test_store"]

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

# parametrize a `store` fixture with these; the PostgreSQL case skips (or fails) per services
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)]


class StepClock:
    """A deterministic clock: starts at T0 and moves 1 ms per reading (thread-safe)."""

    def __init__(self, start: datetime = T0, step: timedelta = timedelta(milliseconds=1)) -> None:
        self._now, self._step, self._lock = start, step, threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self._now += self._step
            return self._now


@contextmanager
def open_test_store(backend: str, tmp_path: Path, clock: StepClock | None = None) -> Iterator[Store]:
    clock = clock or StepClock()
    if backend == "sqlite":
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}", clock=clock)
        try:
            yield store
        finally:
            store.close()
        return
    with postgres_schema() as url:
        store = open_store(url, clock=clock)
        try:
            yield store
        finally:
            store.close()
