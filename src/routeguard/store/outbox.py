"""The durable notification outbox: one message per notifier, written in the transaction of the audit
record it announces, delivered (and retried) by the dispatcher until `mark_delivered`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, aliased

from routeguard.store._codec import normalize_json, utc, utcnow
from routeguard.store.errors import UnknownEntry
from routeguard.store.models import OutboxMessage
from routeguard.store.tables import OutboxRow

if TYPE_CHECKING:
    from routeguard.store.db import Database

__all__ = ["MAX_ERROR_CHARS", "Outbox", "enqueue"]

MAX_ERROR_CHARS = 2000


def enqueue(
    session: Session,
    kind: str,
    payload: Mapping[str, Any],
    notifiers: Sequence[str],
    audit_seq: int | None,
    *,
    now: datetime | None = None,
) -> list[int]:
    """One message per distinct notifier, due at once, inside the caller's transaction; returns the ids."""
    at = utc(now) if now is not None else utcnow()
    body = normalize_json(dict(payload))
    rows = [
        OutboxRow(
            created_at=at,
            kind=kind,
            payload=body,
            notifier=name,
            attempts=0,
            next_attempt_at=at,
            audit_seq=audit_seq,
        )
        for name in dict.fromkeys(notifiers)
    ]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def _message(row: OutboxRow) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        created_at=row.created_at,
        kind=row.kind,
        payload=row.payload,
        notifier=row.notifier,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
        audit_seq=row.audit_seq,
    )


def _due_stmt(now: datetime, limit: int) -> Any:
    """Due rows in outbox (= audit_seq) order. A row waits while an older undelivered row of the same notifier
    is not due (backing off after a failure, or claimed and in flight): deliveries to one notifier arrive in
    `audit_seq` order (CONTRACT §5), at the price of head-of-line blocking for that notifier only."""
    older = aliased(OutboxRow)
    blocked = (
        exists()
        .where(
            older.notifier == OutboxRow.notifier,
            older.id < OutboxRow.id,
            older.delivered_at.is_(None),
            older.next_attempt_at > now,
        )
        .correlate(OutboxRow)
    )
    return (
        select(OutboxRow)
        .where(OutboxRow.delivered_at.is_(None), OutboxRow.next_attempt_at <= now, ~blocked)
        .order_by(OutboxRow.id)
        .limit(limit)
    )


class Outbox:
    def __init__(self, db: Database) -> None:
        self._db = db

    def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        notifiers: Sequence[str],
        audit_seq: int | None,
        *,
        now: datetime | None = None,
    ) -> list[int]:
        with self._db.transaction() as session:
            return enqueue(session, kind, payload, notifiers, audit_seq, now=self._db.now(now))

    def due(self, now: datetime | None = None, limit: int = 100) -> list[OutboxMessage]:
        """Undelivered messages whose next attempt is due, oldest due first."""
        with self._db.read() as session:
            rows = session.execute(_due_stmt(self._db.now(now), limit)).scalars().all()
            return [_message(r) for r in rows]

    def claim(
        self, now: datetime | None = None, limit: int = 100, lease: timedelta = timedelta(seconds=30)
    ) -> list[OutboxMessage]:
        """Like `due`, but pushes each message's next attempt `lease` ahead so that another dispatcher
        (another replica) does not send it too; on PostgreSQL rows locked by another claim are skipped."""
        at = self._db.now(now)
        with self._db.transaction() as session:
            stmt = _due_stmt(at, limit).with_for_update(skip_locked=True)
            rows = session.execute(stmt).scalars().all()
            out = [_message(r) for r in rows]
            for row in rows:
                row.next_attempt_at = at + lease
            return out

    def get(self, message_id: int) -> OutboxMessage:
        with self._db.read() as session:
            row = session.get(OutboxRow, message_id)
            if row is None:
                raise UnknownEntry(f"no outbox message {message_id}")
            return _message(row)

    def mark_delivered(self, message_id: int, now: datetime | None = None) -> None:
        """Idempotent: a message delivered twice keeps its first delivery time."""
        with self._db.transaction() as session:
            row = session.get(OutboxRow, message_id, with_for_update=True)
            if row is None:
                raise UnknownEntry(f"no outbox message {message_id}")
            if row.delivered_at is None:
                row.attempts += 1
                row.delivered_at = self._db.now(now)
                row.last_error = None

    def mark_failed(
        self, message_id: int, now: datetime | None, error: str, next_attempt_at: datetime
    ) -> None:
        """Count a failed attempt and schedule the next one (ignored once delivered). `now` is accepted for a
        uniform signature; the schedule is `next_attempt_at`."""
        with self._db.transaction() as session:
            result = session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == message_id, OutboxRow.delivered_at.is_(None))
                .values(
                    attempts=OutboxRow.attempts + 1,
                    last_error=error[:MAX_ERROR_CHARS],
                    next_attempt_at=utc(next_attempt_at),
                )
            )
            if result.rowcount == 0 and session.get(OutboxRow, message_id) is None:  # type: ignore[attr-defined]
                raise UnknownEntry(f"no outbox message {message_id}")

    def reschedule(self, message_id: int, next_attempt_at: datetime) -> None:
        """Move an undelivered message's next attempt without counting an attempt: a dispatcher hands back
        a claimed message it did not try (shutting down, or running past its lease)."""
        with self._db.transaction() as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == message_id, OutboxRow.delivered_at.is_(None))
                .values(next_attempt_at=utc(next_attempt_at))
            )

    def oldest_undelivered_age(self, now: datetime | None = None) -> timedelta | None:
        """How long the oldest undelivered message has waited (None: nothing pending)."""
        with self._db.read() as session:
            oldest = session.execute(
                select(func.min(OutboxRow.created_at)).where(OutboxRow.delivered_at.is_(None))
            ).scalar_one_or_none()
        if oldest is None:
            return None
        return max(timedelta(0), self._db.now(now) - utc(oldest))

    def pending_count(self) -> int:
        with self._db.read() as session:
            return int(
                session.execute(
                    select(func.count()).select_from(OutboxRow).where(OutboxRow.delivered_at.is_(None))
                ).scalar_one()
            )
