"""Runtime events that must be audited and notified together: `route.changed`, `terminal`, `safe_mode`, ...

`record_event` writes the audit record and one outbox message per notifier in one transaction; the
outbox payload is the CONTRACT §5 shape: {event, policy, ...payload, ts, audit_seq}."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from routeguard.store import audit
from routeguard.store._codec import rfc3339
from routeguard.store.outbox import enqueue
from routeguard.store.tables import RouteServingRow

if TYPE_CHECKING:
    from routeguard.store.db import Database

__all__ = ["RouteLog", "record_event"]

SYSTEM_ACTOR = "routeguard"


def record_event(
    session: Session,
    kind: str,
    payload: Mapping[str, Any],
    policy: str | None = None,
    scope: str | None = None,
    notifiers: Sequence[str] = (),
    *,
    actor: str = SYSTEM_ACTOR,
    now: datetime,
) -> int:
    """Audit + outbox inside the caller's transaction; returns the audit seq."""
    record = audit.append(session, kind, actor, payload, policy, scope, now=now)
    if notifiers:
        message = {
            "event": kind,
            "policy": policy,
            **record.payload,
            "ts": rfc3339(record.ts),
            "audit_seq": record.seq,
        }
        enqueue(session, kind, message, notifiers, record.seq, now=now)
    return record.seq


class RouteLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record_event(
        self,
        kind: str,
        payload: Mapping[str, Any],
        policy: str | None = None,
        scope: str | None = None,
        notifiers: Sequence[str] = (),
        *,
        actor: str = SYSTEM_ACTOR,
        now: datetime | None = None,
    ) -> int:
        """E.g. `record_event("route.changed", {"from_model": ..., "to_model": ..., "reason": ...,
        "verification": {...}, "expected_duration": ...}, policy="triage-agent", scope="all",
        notifiers=["governance"])` → the audit seq."""
        with self._db.transaction() as session:
            return record_event(
                session, kind, payload, policy, scope, notifiers, actor=actor, now=self._db.now(now)
            )

    def record_route_change(
        self,
        payload: Mapping[str, Any],
        policy: str,
        scope: str,
        version: int,
        from_model: str | None,
        to_model: str | None,
        notifiers: Sequence[str] = (),
        *,
        now: datetime | None = None,
    ) -> int | None:
        """A `route.changed` record, once per fleet: a compare-and-set on (policy, scope, version) — the replica
        that moves the logged model from ``from_model`` to ``to_model`` writes the record and its outbox messages
        in the same transaction; a replica that finds ``to_model`` already logged writes nothing (None)."""
        with self._db.transaction() as session:
            row = session.get(RouteServingRow, (policy, scope, version), with_for_update=True)
            if row is not None and row.model == to_model:
                return None  # another replica logged this transition
            when = self._db.now(now)
            seq = record_event(session, "route.changed", payload, policy, scope, notifiers, now=when)
            if row is None:
                session.add(RouteServingRow(policy=policy, scope=scope, version=version, model=to_model,
                                            audit_seq=seq, changed_at=when))
            else:
                row.model, row.audit_seq, row.changed_at = to_model, seq, when
            return seq
