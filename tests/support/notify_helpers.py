"""Stores on the real clock and recorded routing events, for the notification tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from routeguard.notify.dispatcher import DispatchOptions
from routeguard.store.db import Store, open_store
from support.services import postgres_schema

__all__ = ["FAST", "open_store_on", "record_change", "store_at"]

# quick retries so a test with a down receiver does not wait 1 s, 2 s, 4 s …
FAST = DispatchOptions(poll_interval_s=0.05, backoff_base_s=0.05, backoff_max_s=0.2, send_timeout_s=5.0)


@contextmanager
def open_store_on(backend: str, tmp_path: Path, name: str = "store.db") -> Iterator[str]:
    """Yields a store URL (SQLite file, or a fresh PostgreSQL schema) that several stores may open."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / name}"
        return
    with postgres_schema("rg_notify") as url:
        yield url


@contextmanager
def store_at(url: str) -> Iterator[Store]:
    store = open_store(url)
    try:
        yield store
    finally:
        store.close()


def record_change(store: Store, notifiers: list[str], **extra: Any) -> int:
    payload = {
        "from_model": "triage-v3",
        "to_model": "triage-v2",
        "reason": "unhealthy",
        "expected_duration": "5m",
        "verification": {"approved": True, "approval_ref": "EVAL-2025-090"},
        **extra,
    }
    return store.events.record_event("route.changed", payload, "triage-agent", "all", notifiers)
