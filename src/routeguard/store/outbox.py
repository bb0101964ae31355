"""The durable notification outbox: one message per notifier, written in the transaction of the audit
record it announces, delivered (and retried) by the dispatcher until `mark_delivered`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import exists, func, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from routeguard.store._codec import normalize_json, utc, utcnow
from routeguard.store.errors import UnknownEntry
from routeguard.store.models import OutboxMessage
from routeguard.store.tables import OutboxRow

if TYPE_CHECKING:
    from routeguard.store.db import Database

__all__ = ["MAX_ERROR_CHARS", "Outbox", "enqueue"]

MAX_ERROR_CHARS = 2000
# Any 64-bit constant: serialises claims across the replicas of one PostgreSQL database (a claim is one short
# query), so a replica never takes a notifier's later messages while another replica holds its earlier ones.
_PG_CLAIM_LOCK = 0x726F7574626F78


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


def _held_by(owner: str | None) -> Any:
    """Rows `owner` may still hand back: its own, or any when no owner is named."""
    if owner is None:
        return OutboxRow.id.is_not(None)
    return or_(OutboxRow.claimed_by == owner, OutboxRow.claimed_by.is_(None))


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
        self,
        now: datetime | None = None,
        limit: int = 100,
        lease: timedelta = timedelta(seconds=30),
        *,
        owner: str | None = None,
    ) -> list[OutboxMessage]:
        """Like `due`, but leases each message to `owner` for `lease` (its next attempt is pushed as far) so
        that no other dispatcher (replica) sends it too; a lease that ends undelivered is taken over. Rows
        locked by another claim are skipped (`FOR UPDATE SKIP LOCKED` on PostgreSQL), and a notifier with a
        message on a live lease is left alone until it is delivered or handed back, so one dispatcher at a time
        sends to a notifier and its messages keep their order."""
        at = self._db.now(now)
        with self._db.transaction() as session:
            if self._db.dialect == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_CLAIM_LOCK})
            # a notifier with a message out on a live lease (any replica's, this one's too) waits for it
            held = select(OutboxRow.notifier).where(OutboxRow.delivered_at.is_(None), OutboxRow.lease_until > at)
            stmt = _due_stmt(at, limit).where(OutboxRow.notifier.not_in(held)).with_for_update(skip_locked=True)
            rows = session.execute(stmt).scalars().all()
            for row in rows:
                row.next_attempt_at = at + lease
                row.lease_until = at + lease
                row.claimed_by = owner
            session.flush()
            return [_message(r) for r in rows]

    def get(self, message_id: int) -> OutboxMessage:
        with self._db.read() as session:
            row = session.get(OutboxRow, message_id)
            if row is None:
                raise UnknownEntry(f"no outbox message {message_id}")
            return _message(row)

    def mark_delivered(self, message_id: int, now: datetime | None = None, *, owner: str | None = None) -> None:
        """Idempotent: a message delivered twice keeps its first delivery time (and its deliverer)."""
        with self._db.transaction() as session:
            row = session.get(OutboxRow, message_id, with_for_update=True)
            if row is None:
                raise UnknownEntry(f"no outbox message {message_id}")
            if row.delivered_at is None:
                row.attempts += 1
                row.delivered_at = self._db.now(now)
                row.last_error = None
                row.lease_until = None
                if owner is not None:
                    row.claimed_by = owner

    def mark_failed(
        self,
        message_id: int,
        now: datetime | None,
        error: str,
        next_attempt_at: datetime,
        *,
        owner: str | None = None,
    ) -> None:
        """Count a failed attempt and schedule the next one (ignored once delivered, or when `owner` no longer
        holds it). `now` is accepted for a uniform signature; the schedule is `next_attempt_at`."""
        with self._db.transaction() as session:
            result = session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == message_id, OutboxRow.delivered_at.is_(None), _held_by(owner))
                .values(
                    attempts=OutboxRow.attempts + 1,
                    last_error=error[:MAX_ERROR_CHARS],
                    next_attempt_at=utc(next_attempt_at),
                    lease_until=None,
                )
            )
            if result.rowcount == 0 and session.get(OutboxRow, message_id) is None:  # type: ignore[attr-defined]
                raise UnknownEntry(f"no outbox message {message_id}")

    def reschedule(self, message_id: int, next_attempt_at: datetime, *, owner: str | None = None) -> None:
        """Move an undelivered message's next attempt without counting an attempt: a dispatcher hands back
        a claimed message it did not try (shutting down, or running past its lease); it is no longer leased."""
        with self._db.transaction() as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == message_id, OutboxRow.delivered_at.is_(None), _held_by(owner))
                .values(next_attempt_at=utc(next_attempt_at), lease_until=None)
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
