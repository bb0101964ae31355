"""Durable health (CONTRACT §1 "Health survives restarts"): the Router's exported signals, ejections and
serving routes, one row per kind, written only when they change (transitions), read once at start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from routeguard.store.tables import HealthStateRow

if TYPE_CHECKING:
    from routeguard.store.db import Database

__all__ = ["HealthStateStore"]

KINDS = ("signals", "breakers", "routes")


class HealthStateStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, state: Mapping[str, Any]) -> None:
        """Write every kind in ``state`` (an upsert per kind, one transaction)."""
        now = self._db.now()
        with self._db.transaction() as session:
            for kind in KINDS:
                if kind not in state:
                    continue
                row = session.get(HealthStateRow, kind)
                if row is None:
                    session.add(HealthStateRow(key=kind, payload=state[kind], updated_at=now))
                else:
                    row.payload, row.updated_at = state[kind], now

    def load(self) -> dict[str, Any]:
        with self._db.read() as session:
            rows = session.execute(select(HealthStateRow)).scalars().all()
            return {row.key: row.payload for row in rows if row.key in KINDS}
