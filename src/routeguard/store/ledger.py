"""The outcome ledger (CONTRACT §7): what production did, per served call or reported outcome.

Written in batches by the service's background writer (never on the request path), read back page by page
(keyset on id) for ``GET /v1/outcomes/export``, and purged past the retention (``--retain``, default 30 days).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select

from routeguard.store._codec import utc
from routeguard.store.tables import OutcomeRow

__all__ = ["EXPORT_COLUMNS", "LedgerEntry", "OutcomeLedger"]

# the review's long form (CONTRACT §7) first, then what else the ledger knows
EXPORT_COLUMNS = (
    "task_id", "task_class", "model", "quality", "cost_usd", "latency_ms", "input_tokens", "output_tokens",
    "data_class", "ts", "ok", "error", "policy", "version", "tenant", "trace_id", "deployment",
)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    ts: datetime
    model: str
    ok: bool
    trace_id: str | None = None
    policy: str | None = None
    version: int | None = None
    tenant: str | None = None
    task_class: str | None = None
    data_class: str | None = None
    error: str | None = None
    latency_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    quality: float | None = None
    deployment: str | None = None  # the model's deployment the call went to (models with deployments)


class OutcomeLedger:
    def __init__(self, db: Any) -> None:
        self._db = db

    def append(self, entries: Sequence[LedgerEntry]) -> int:
        """One transaction for the whole batch."""
        if not entries:
            return 0
        rows = [{**asdict(e), "ts": utc(e.ts)} for e in entries]
        with self._db.transaction() as session:
            session.execute(insert(OutcomeRow), rows)
        return len(rows)

    def purge(self, before: datetime) -> int:
        """Delete rows older than ``before``; returns how many."""
        with self._db.transaction() as session:
            result = session.execute(delete(OutcomeRow).where(OutcomeRow.ts < utc(before)))
        return int(getattr(result, "rowcount", 0) or 0)

    def count(self) -> int:
        with self._db.read() as session:
            return int(session.scalar(select(func.count()).select_from(OutcomeRow)) or 0)

    def page(self, since: datetime | None, after_id: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Up to ``limit`` rows with id > ``after_id`` (and ts >= ``since``), oldest first, in export form."""
        query = select(OutcomeRow).where(OutcomeRow.id > after_id).order_by(OutcomeRow.id).limit(limit)
        if since is not None:
            query = query.where(OutcomeRow.ts >= utc(since))
        with self._db.read() as session:
            return [_export(r) for r in session.scalars(query)]

    def rows(self, since: datetime | None, batch: int = 1000) -> Iterator[dict[str, Any]]:
        after = 0
        while True:
            page = self.page(since, after, batch)
            yield from page
            if len(page) < batch:
                return
            after = int(page[-1]["_id"])


def _export(r: OutcomeRow) -> dict[str, Any]:
    return {
        "_id": r.id,
        "task_id": r.trace_id or f"ledger-{r.id}",
        "task_class": r.task_class,
        "model": r.model,
        "quality": r.quality,
        "cost_usd": r.cost_usd,
        "latency_ms": r.latency_ms,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "data_class": r.data_class,
        "ts": utc(r.ts).isoformat().replace("+00:00", "Z"),
        "ok": r.ok,
        "error": r.error,
        "policy": r.policy,
        "version": r.version,
        "tenant": r.tenant,
        "trace_id": r.trace_id,
        "deployment": r.deployment,
    }
