"""What a fleet of replicas shares through the store: the governance generation and the heartbeat rows.

- `bump(session)` runs in the transaction of every governance change (publish, rollback, safe mode): it
  increments the one `governance` row and, on PostgreSQL, queues `NOTIFY routeguard_governance` with the
  new generation. PostgreSQL delivers a NOTIFY only when its transaction commits, so a replica woken by it
  always reads the committed change; the counter is the backstop a replica polls when a NOTIFY is lost.
- `FleetStore.beat` upserts a replica's heartbeat row (id, host, pid, started, last_seen, the generation
  it applied and the policy version it serves per scope); `replicas()` reads them all for `GET /v1/cluster`.
Hand-written because it is two small tables and a counter; nothing here needs a library beyond SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from routeguard.store._codec import rfc3339, utc
from routeguard.store.tables import GovernanceRow, ReplicaRow

if TYPE_CHECKING:
    from routeguard.store.db import Database

__all__ = ["CHANNEL", "FleetStore", "ReplicaBeat", "bump"]

CHANNEL = "routeguard_governance"
_ROW = 1


def bump(session: Session, at: datetime) -> int:
    """Increment the governance generation inside the caller's transaction; returns the new value."""
    result = session.execute(
        update(GovernanceRow)
        .where(GovernanceRow.id == _ROW)
        .values(generation=GovernanceRow.generation + 1, changed_at=utc(at))
        .returning(GovernanceRow.generation)
    ).scalar_one_or_none()
    if result is None:  # a store migrated by hand without the seed row
        session.add(GovernanceRow(id=_ROW, generation=1, changed_at=utc(at)))
        session.flush()
        result = 1
    generation = int(result)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": str(generation)})
    return generation


@dataclass(frozen=True, slots=True)
class ReplicaBeat:
    """One replica as its heartbeat row records it."""

    id: str
    host: str
    pid: int
    software: str
    started_at: datetime
    last_seen: datetime
    generation: int
    serving: Mapping[str, int | None] = field(default_factory=dict)
    address: str | None = None
    redis: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "address": self.address,
            "routeguard_version": self.software,
            "started": rfc3339(self.started_at),
            "last_seen": rfc3339(self.last_seen),
            "generation": self.generation,
            "version": self.serving.get("all"),
            "serving": dict(self.serving),
            "redis": self.redis,
        }


def _beat(row: ReplicaRow) -> ReplicaBeat:
    return ReplicaBeat(
        id=row.id,
        host=row.host,
        pid=row.pid,
        software=row.software,
        started_at=row.started_at,
        last_seen=row.last_seen,
        generation=row.generation,
        serving=dict(row.serving or {}),
        address=row.address,
        redis=row.redis,
    )


class FleetStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def generation(self) -> int:
        """The governance generation (0 before any change); one primary-key read."""
        with self._db.read() as session:
            value = session.execute(select(GovernanceRow.generation).where(GovernanceRow.id == _ROW)).scalar()
        return int(value or 0)

    def beat(self, beat: ReplicaBeat) -> None:
        """Insert or refresh this replica's row (only its own process writes it, so no race on the id)."""
        values = {
            "host": beat.host,
            "pid": beat.pid,
            "address": beat.address,
            "software": beat.software,
            "started_at": utc(beat.started_at),
            "last_seen": utc(beat.last_seen),
            "generation": beat.generation,
            "serving": dict(beat.serving),
            "redis": beat.redis,
        }
        with self._db.transaction() as session:
            row = session.get(ReplicaRow, beat.id)
            if row is None:
                session.add(ReplicaRow(id=beat.id, **values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)

    def replicas(self) -> list[ReplicaBeat]:
        with self._db.read() as session:
            rows = session.execute(select(ReplicaRow).order_by(ReplicaRow.started_at, ReplicaRow.id)).scalars()
            return [_beat(r) for r in rows]

    def remove(self, replica_id: str) -> None:
        """A replica that stops cleanly takes its row away."""
        with self._db.transaction() as session:
            session.execute(delete(ReplicaRow).where(ReplicaRow.id == replica_id))

    def prune(self, seen_before: datetime) -> int:
        """Forget replicas not seen since `seen_before` (killed long ago); returns how many."""
        with self._db.transaction() as session:
            result = session.execute(delete(ReplicaRow).where(ReplicaRow.last_seen < utc(seen_before)))
            return int(getattr(result, "rowcount", 0) or 0)
