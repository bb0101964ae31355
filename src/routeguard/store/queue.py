"""The human queue: requests parked by a `human_queue` terminal action until someone resolves them."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from routeguard.store import audit
from routeguard.store._codec import fits_int4, normalize_json
from routeguard.store.errors import StateConflict, UnknownEntry
from routeguard.store.models import QueueEntry, QueueStatus
from routeguard.store.tables import HumanQueueRow

if TYPE_CHECKING:
    from routeguard.store.db import Database

__all__ = ["HumanQueue"]


def _entry(row: HumanQueueRow) -> QueueEntry:
    return QueueEntry(
        id=row.id,
        created_at=row.created_at,
        queue=row.queue,
        policy=row.policy,
        trace_id=row.trace_id,
        request=row.request,
        status=QueueStatus(row.status),
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution=row.resolution,
        claimed_by=row.claimed_by,
        claimed_at=row.claimed_at,
    )


class HumanQueue:
    def __init__(self, db: Database) -> None:
        self._db = db

    def put(
        self,
        queue: str,
        policy: str | None,
        trace_id: str | None,
        request: Mapping[str, Any],
        *,
        now: datetime | None = None,
    ) -> int:
        """Park a request; returns the entry id (named in the 503 body of the proxied call)."""
        with self._db.transaction() as session:
            row = HumanQueueRow(
                created_at=self._db.now(now),
                queue=queue,
                policy=policy,
                trace_id=trace_id,
                request=normalize_json(dict(request)),
                status=QueueStatus.PENDING.value,
            )
            session.add(row)
            session.flush()
            return row.id

    def get(self, entry_id: int) -> QueueEntry:
        with self._db.read() as session:
            row = session.get(HumanQueueRow, entry_id) if fits_int4(entry_id) else None
            if row is None:
                raise UnknownEntry(f"no human-queue entry {entry_id}")
            return _entry(row)

    def list(
        self,
        queue: str | None = None,
        status: QueueStatus | str | None = None,
        limit: int = 100,
        policy: str | None = None,
    ) -> builtins.list[QueueEntry]:
        """Entries oldest first, optionally of one queue, policy and/or status."""
        stmt = select(HumanQueueRow).order_by(HumanQueueRow.id).limit(max(1, min(limit, 1000)))
        if queue is not None:
            stmt = stmt.where(HumanQueueRow.queue == queue)
        if policy is not None:
            stmt = stmt.where(HumanQueueRow.policy == policy)
        if status is not None:
            stmt = stmt.where(HumanQueueRow.status == QueueStatus(status).value)
        with self._db.read() as session:
            return [_entry(r) for r in session.execute(stmt).scalars()]

    def claim(self, entry_id: int, by: str, *, now: datetime | None = None) -> QueueEntry:
        """Take a pending entry (audited as `queue.claimed`); claiming one's own claim again changes nothing.
        An entry claimed by someone else, or closed, is a StateConflict (409)."""
        at = self._db.now(now)
        with self._db.transaction() as session:
            audit.lock_chain(session)
            row = session.get(HumanQueueRow, entry_id)
            if row is None:
                raise UnknownEntry(f"no human-queue entry {entry_id}")
            if row.status == QueueStatus.CLAIMED.value and row.claimed_by == by:
                return _entry(row)
            if row.status != QueueStatus.PENDING.value:
                holder = f" by {row.claimed_by!r}" if row.status == QueueStatus.CLAIMED.value else ""
                raise StateConflict(f"human-queue entry {entry_id} is already {row.status}{holder}")
            row.status, row.claimed_by, row.claimed_at = QueueStatus.CLAIMED.value, by, at
            payload = {"entry": entry_id, "queue": row.queue, "trace_id": row.trace_id, "status": row.status}
            audit.append(session, "queue.claimed", by, payload, row.policy, None, now=at)
            session.flush()
            return _entry(row)

    def resolve(
        self,
        entry_id: int,
        by: str,
        resolution: Mapping[str, Any] | None = None,
        status: QueueStatus = QueueStatus.RESOLVED,
        *,
        now: datetime | None = None,
    ) -> QueueEntry:
        """Close a pending entry, or one this principal claimed (resolved or cancelled), audited as
        `queue.resolved`; an entry claimed by someone else is a StateConflict (409)."""
        if status in (QueueStatus.PENDING, QueueStatus.CLAIMED):
            raise ValueError("resolve needs a final status")
        at = self._db.now(now)
        with self._db.transaction() as session:
            audit.lock_chain(session)
            row = session.get(HumanQueueRow, entry_id) if fits_int4(entry_id) else None
            if row is None:
                raise UnknownEntry(f"no human-queue entry {entry_id}")
            if row.status == QueueStatus.CLAIMED.value and row.claimed_by != by:
                raise StateConflict(f"human-queue entry {entry_id} is claimed by {row.claimed_by!r}")
            if row.status not in (QueueStatus.PENDING.value, QueueStatus.CLAIMED.value):
                raise StateConflict(f"human-queue entry {entry_id} is already {row.status}")
            row.status, row.resolved_at, row.resolved_by = status.value, at, by
            row.resolution = normalize_json(dict(resolution)) if resolution is not None else None
            payload = {
                "entry": entry_id,
                "queue": row.queue,
                "trace_id": row.trace_id,
                "status": status.value,
                "resolution": row.resolution,
            }
            audit.append(session, "queue.resolved", by, payload, row.policy, None, now=at)
            session.flush()
            return _entry(row)
