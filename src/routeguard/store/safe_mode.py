"""Safe mode switches (global, or per tenant), each change audited (kind `safe_mode`) and, when
notifiers are given, queued to them in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from routeguard.store import audit, fleet, route_log
from routeguard.store.models import SafeModeEntry, SafeModeState
from routeguard.store.tables import SafeModeRow

if TYPE_CHECKING:
    from routeguard.store.db import Database

__all__ = ["GLOBAL_KEY", "SafeModeStore", "scope_key"]

GLOBAL_KEY = "global"
_TENANT_PREFIX = "tenant:"


def scope_key(tenant: str | None) -> str:
    """`global`, or `tenant:<id>` (the prefix keeps a tenant named "global" apart)."""
    return GLOBAL_KEY if tenant is None else _TENANT_PREFIX + tenant


def _entry(row: SafeModeRow) -> SafeModeEntry:
    tenant = None if row.scope == GLOBAL_KEY else row.scope.removeprefix(_TENANT_PREFIX)
    return SafeModeEntry(tenant=tenant, enabled=row.enabled, reason=row.reason, by=row.set_by, at=row.at)


class SafeModeStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def set(
        self,
        enabled: bool,
        tenant: str | None = None,
        reason: str = "",
        by: str = "anonymous",
        *,
        notifiers: Sequence[str] = (),
        now: datetime | None = None,
        expected_duration: str | None = None,
    ) -> tuple[SafeModeEntry, int]:
        """Switch safe mode on/off globally (tenant None) or for one tenant; returns (entry, audit seq)."""
        at = self._db.now(now)
        key = scope_key(tenant)
        with self._db.transaction() as session:
            # the audit append below locks the chain head; take it first so concurrent sets serialise
            audit.lock_chain(session)
            row = session.get(SafeModeRow, key)
            previous = row.enabled if row is not None else False
            if row is None:
                row = SafeModeRow(scope=key, enabled=enabled, reason=reason, set_by=by, at=at)
                session.add(row)
            else:
                row.enabled, row.reason, row.set_by, row.at = enabled, reason, by, at
            payload = {"enabled": enabled, "previous": previous, "tenant": tenant, "reason": reason}
            # CONTRACT §5: an operator's statement of how long it lasts, else unknown
            payload["expected_duration"] = expected_duration
            payload["expected_duration_basis"] = "operator" if expected_duration else "unknown"
            seq = route_log.record_event(
                session, "safe_mode", payload, None, key, notifiers, actor=by, now=at
            )
            fleet.bump(session, at)  # every replica applies it within a second
            session.flush()
            return _entry(row), seq

    def state(self) -> SafeModeState:
        """(global_on, tenants_on, details) - details keyed by tenant, None for the global switch."""
        with self._db.read() as session:
            rows = list(session.execute(select(SafeModeRow)).scalars())
        details = {e.tenant: e for e in map(_entry, rows)}
        global_entry = details.get(None)
        tenants_on = frozenset(t for t, e in details.items() if t is not None and e.enabled)
        return SafeModeState(global_entry is not None and global_entry.enabled, tenants_on, details)
