"""`approval.expiring`: audited once, `warn_s` (7 days) before the approval of a serving model expires.

Once means once per approval (model, profile, expiry) over the life of the store: the records already
in the audit log are read at start, so a restart does not repeat them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from routeguard.core.table import RoutingTable
from routeguard.store.db import Store

__all__ = ["KIND", "ApprovalWatch"]

KIND = "approval.expiring"
_Key = tuple[str, str, str]  # model, profile, approval ref


class ApprovalWatch:
    def __init__(self, store: Store, warn_s: float) -> None:
        self._store = store
        self._warn_s = warn_s
        self._seen: set[tuple[str, str, float]] | None = None
        self._lock = threading.Lock()

    def _load_seen(self) -> set[tuple[str, str, float]]:
        seen: set[tuple[str, str, float]] = set()
        after: int | None = None
        while True:
            records, nxt = self._store.audit.query(kind=KIND, after=after, limit=1000)
            for r in records:
                p = r.payload
                seen.add((str(p.get("model")), str(p.get("profile")), float(p.get("deadline_epoch", 0))))
            if nxt is None:
                return seen
            after = nxt

    def check(self, routes: Iterable[dict[str, Any]], tables: dict[str, RoutingTable], now: float) -> int:
        """Audit what newly falls inside the warning window; returns how many records were written."""
        with self._lock:
            if self._seen is None:
                self._seen = self._load_seen()
            written = 0
            for route in routes:
                table = tables.get(str(route.get("scope")))
                model, policy = route.get("model"), str(route.get("policy"))
                if table is None or not isinstance(model, str):
                    continue
                cand = table.candidate(policy, model)
                compiled = table.policies.get(policy)
                if cand is None or compiled is None or compiled.profile is None:
                    continue
                deadline = cand.approval_deadline
                if not (deadline - self._warn_s <= now < deadline):
                    continue
                key = (model, compiled.profile.name, deadline)
                if key in self._seen:
                    continue
                self._seen.add(key)
                self._write(route, table, model, compiled.profile.name, cand.approval_ref, deadline, now)
                written += 1
            return written

    def _write(
        self,
        route: dict[str, Any],
        table: RoutingTable,
        model: str,
        profile: str,
        ref: str | None,
        deadline: float,
        now: float,
    ) -> None:
        expires = next(
            (
                a.expires
                for a in table.bundle.approvals
                if a.model == model and a.profile == profile and a.ref == ref
            ),
            None,
        )
        payload = {
            "model": model,
            "profile": profile,
            "approval_ref": ref,
            "expires": expires,
            "expires_at": datetime.fromtimestamp(deadline, UTC).isoformat().replace("+00:00", "Z"),
            "deadline_epoch": deadline,
            "days_left": round((deadline - now) / 86400, 2),
            "policy_version": table.version,
        }
        self._store.events.record_event(
            KIND,
            payload,
            str(route.get("policy")),
            str(route.get("scope")),
            (),
            now=datetime.fromtimestamp(now, UTC),
        )
