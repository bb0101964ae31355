"""The append-only, hash-chained audit log.

hash(record) = "sha256:" + sha256(canonical JSON of {seq, ts, kind, actor, policy, scope, payload,
prev_hash}) with sorted keys, no whitespace, UTF-8, `ts` as fixed-width RFC 3339 UTC. The first
record's prev_hash is GENESIS_HASH. A one-row table `audit_head` holds the last seq and hash: every
append locks it (`SELECT ... FOR UPDATE` on PostgreSQL; on SQLite the write transaction already holds
the database write lock), so concurrent appends never fork the chain; and `verify` compares the
chain's end with it, which detects deletion of the last records. Not detected: an attacker with
write access who rewrites records AND recomputes every later hash AND the head - anchor the head
elsewhere (`AuditLog.head()`, exports) for that. Nothing here updates or deletes a record.

Keyed chain: with `ROUTEGUARD_AUDIT_KEY` set, each new record's hash is `hmac-sha256:` + HMAC-SHA256 of the
same canonical JSON, so nobody without the key can recompute a consistent chain. Records written before a
key was set keep their plain hashes (a plain record after a keyed one is a break). Checkpoints
(`store.checkpoint`) anchor the head outside the database: `verify(checkpoint)` then also detects a
truncated or wiped chain whose head row was rewound with it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO, cast

from sqlalchemy import Connection, Row, String, Table, Text, select, type_coerce, update
from sqlalchemy.orm import Session

from routeguard.store._codec import canonical_json, fits_int4, normalize_json, rfc3339, utc, utcnow
from routeguard.store.checkpoint import Checkpoint, audit_key
from routeguard.store.errors import StateConflict
from routeguard.store.models import AuditRecord, VerifyResult
from routeguard.store.tables import AuditHeadRow, AuditRow

if TYPE_CHECKING:
    from routeguard.store.db import Database

__all__ = ["GENESIS_HASH", "AuditLog", "append", "lock_chain", "record_hash"]

GENESIS_HASH = "sha256:" + "0" * 64
KEYED_PREFIX = "hmac-sha256:"
_HEAD_ID = 1
_BATCH = 1000
_LOG = cast(Table, AuditRow.__table__)
_HEAD = cast(Table, AuditHeadRow.__table__)


def record_hash(
    seq: int,
    ts: datetime,
    kind: str,
    actor: str,
    policy: str | None,
    scope: str | None,
    payload: Mapping[str, Any],
    prev_hash: str,
    key: bytes | None = None,
) -> str:
    """The record's hash: plain SHA-256, or HMAC-SHA256 with ``key`` (the `ROUTEGUARD_AUDIT_KEY`)."""
    body = {
        "seq": seq,
        "ts": rfc3339(ts),
        "kind": kind,
        "actor": actor,
        "policy": policy,
        "scope": scope,
        "payload": payload,
        "prev_hash": prev_hash,
    }
    data = canonical_json(body).encode("utf-8")
    if key is not None:
        return KEYED_PREFIX + hmac.new(key, data, hashlib.sha256).hexdigest()
    return "sha256:" + hashlib.sha256(data).hexdigest()


_SCOPE_CHARS = 400  # the column's size


def _fit(text: str | None, limit: int) -> str | None:
    """``text`` cut to the column's size, with a digest of the whole so distinct long values stay distinct."""
    if text is None or len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"{text[: limit - 19]}…#{digest}"


def lock_chain(session: Session) -> tuple[int, str]:
    """Lock the chain head for the rest of the caller's transaction; returns (last seq, last hash).

    Audited write methods call this first, which also serialises them against each other."""
    stmt = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == _HEAD_ID).with_for_update()
    row = session.execute(stmt).one_or_none()
    if row is None:
        raise StateConflict("the audit chain head is missing: store not migrated, or tampered with")
    return int(row.seq), str(row.hash)


def append(
    session: Session,
    kind: str,
    actor: str,
    payload: Mapping[str, Any],
    policy: str | None = None,
    scope: str | None = None,
    *,
    now: datetime | None = None,
) -> AuditRecord:
    """Append one record inside the caller's transaction (it commits or rolls back with the change)."""
    last_seq, last_hash = lock_chain(session)
    seq = last_seq + 1
    ts = utc(now) if now is not None else utcnow()
    body: dict[str, Any] = normalize_json(dict(payload))
    scope = _fit(scope, _SCOPE_CHARS)
    digest = record_hash(seq, ts, kind, actor, policy, scope, body, last_hash, audit_key())
    session.execute(
        _LOG.insert().values(
            seq=seq,
            ts=ts,
            kind=kind,
            actor=actor,
            policy=policy,
            scope=scope,
            payload=body,
            prev_hash=last_hash,
            hash=digest,
        )
    )
    session.execute(update(_HEAD).where(_HEAD.c.id == _HEAD_ID).values(seq=seq, hash=digest))
    return AuditRecord(seq, ts, kind, actor, policy, scope, body, last_hash, digest)


def _record(row: Row[Any]) -> AuditRecord:
    return AuditRecord(
        seq=row.seq,
        ts=row.ts,
        kind=row.kind,
        actor=row.actor,
        policy=row.policy,
        scope=row.scope,
        payload=row.payload,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _raw_ts(value: object) -> datetime:
    if isinstance(value, datetime):
        return utc(value)
    return utc(datetime.fromisoformat(str(value)))


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def append(
        self,
        kind: str,
        actor: str,
        payload: Mapping[str, Any],
        policy: str | None = None,
        scope: str | None = None,
        *,
        now: datetime | None = None,
    ) -> AuditRecord:
        """Append in a transaction of its own (use the module function inside a larger one)."""
        with self._db.transaction() as session:
            return append(session, kind, actor, payload, policy, scope, now=self._db.now(now))

    def query(
        self,
        kind: str | None = None,
        policy: str | None = None,
        since: datetime | None = None,
        after: int | None = None,
        limit: int = 100,
    ) -> tuple[list[AuditRecord], int | None]:
        """Records oldest first; `next` is the cursor (a seq) for `after` when more may follow, else None."""
        limit = max(1, min(int(limit), 1000))
        stmt = select(_LOG).order_by(_LOG.c.seq).limit(limit + 1)
        if kind is not None:
            stmt = stmt.where(_LOG.c.kind == kind)
        if policy is not None:
            stmt = stmt.where(_LOG.c.policy == policy)
        if since is not None:
            stmt = stmt.where(_LOG.c.ts >= utc(since))
        if after is not None:
            if not fits_int4(after):  # no seq lies past the column's range
                return ([], None) if after > 0 else self.query(kind, policy, since, None, limit)
            stmt = stmt.where(_LOG.c.seq > after)
        with self._db.read() as session:
            rows = session.execute(stmt).all()
        records = [_record(r) for r in rows[:limit]]
        return records, (records[-1].seq if len(rows) > limit else None)

    def head(self) -> tuple[int, str]:
        """(last seq, last hash): publish or store it elsewhere to anchor the chain."""
        with self._db.read() as session:
            row = session.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == _HEAD_ID)).one()
            return int(row.seq), str(row.hash)

    def checkpoint(self, now: datetime | None = None) -> Checkpoint:
        """The chain head, signed with `ROUTEGUARD_AUDIT_KEY` when set: keep it outside the database."""
        seq, digest = self.head()
        return Checkpoint.make(seq, digest, utc(now) if now is not None else utcnow(), audit_key())

    def verify(self, checkpoint: Checkpoint | None = None) -> VerifyResult:
        """Walk the chain in one consistent snapshot. `records` counts every stored record; `first_broken`
        is the first seq where the chain differs from an intact one: an edited record, the first missing
        seq (a deleted record, also at the end, found through the head), or a record that does not link.
        With a ``checkpoint``, the record it names must still be there with its hash (truncation, wipes)."""
        key = audit_key()
        seen: dict[int, str] = {}
        conn = self._db.engine.connect()
        if self._db.dialect == "postgresql":  # one snapshot: concurrent appends must not look like a fork
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn, conn.begin():
            head = conn.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == _HEAD_ID)).one_or_none()
            count, prev, expected, keyed = 0, GENESIS_HASH, 1, False
            broken: tuple[int, str] | None = None if head else (1, "the chain head row is missing")
            for row in self._raw_rows(conn):
                count += 1
                if checkpoint is not None and row.seq == checkpoint.seq:
                    seen[row.seq] = row.hash
                if broken is None:
                    broken = self._check(row, expected, prev, key, keyed)
                    keyed = keyed or str(row.hash).startswith(KEYED_PREFIX)
                    prev, expected = row.hash, expected + 1
        if broken is None and head is not None:
            broken = self._check_end(int(head.seq), str(head.hash), expected - 1, prev)
        if broken is None and checkpoint is not None:
            broken = _against(checkpoint, key, seen, expected - 1)
        if broken is not None:
            return VerifyResult(False, count, broken[0], broken[1])
        return VerifyResult(True, count)

    @staticmethod
    def _check_end(head_seq: int, head_hash: str, last: int, last_hash: str) -> tuple[int, str] | None:
        if head_seq > last:
            return last + 1, f"records {last + 1}..{head_seq} are missing (the chain head is at {head_seq})"
        if head_seq < last:
            return head_seq + 1, f"records after the chain head ({head_seq}) were added outside the log"
        if head_hash != last_hash:
            return last, f"record {last} does not match the chain head"
        return None

    @staticmethod
    def _raw_rows(conn: Connection) -> Iterator[Row[Any]]:
        # raw text, so a tampered value is reported as a broken record instead of failing the read
        ts = type_coerce(_LOG.c.ts, String).label("ts") if conn.dialect.name == "sqlite" else _LOG.c.ts
        payload = type_coerce(_LOG.c.payload, Text).label("payload")
        c = _LOG.c
        cols = [c.seq, ts, c.kind, c.actor, c.policy, c.scope, payload, c.prev_hash, c.hash]
        after = 0
        while True:
            stmt = select(*cols).where(c.seq > after).order_by(c.seq).limit(_BATCH)
            batch = conn.execute(stmt).all()
            yield from batch
            if len(batch) < _BATCH:
                return
            after = batch[-1].seq

    @staticmethod
    def _check(row: Row[Any], expected: int, prev: str, key: bytes | None, keyed: bool) -> tuple[int, str] | None:
        if row.seq != expected:
            return expected, f"record {expected} is missing"
        if row.prev_hash != prev:
            return row.seq, f"record {row.seq} does not link to record {row.seq - 1}"
        is_keyed = str(row.hash).startswith(KEYED_PREFIX)
        if is_keyed and key is None:
            return row.seq, f"record {row.seq} is keyed: set ROUTEGUARD_AUDIT_KEY to verify the chain"
        if keyed and not is_keyed:
            return row.seq, f"record {row.seq} has a plain hash after keyed records (rewritten without the key)"
        try:
            payload = json.loads(row.payload)
            digest = record_hash(
                row.seq, _raw_ts(row.ts), row.kind, row.actor, row.policy, row.scope, payload, row.prev_hash,
                key if is_keyed else None,
            )
        except (ValueError, TypeError):
            return row.seq, f"record {row.seq} is unreadable"
        if not hmac.compare_digest(digest, str(row.hash)):
            return row.seq, f"record {row.seq} was altered (hash mismatch)"
        return None

    def export_jsonl(self, fp: TextIO) -> int:
        """Write every record (with seq, prev_hash, hash) as one canonical JSON line; returns the count."""
        count, after = 0, 0
        while True:
            with self._db.read() as session:
                rows = session.execute(
                    select(_LOG).where(_LOG.c.seq > after).order_by(_LOG.c.seq).limit(_BATCH)
                ).all()
            for row in rows:
                fp.write(canonical_json(_record(row).to_dict()) + "\n")
            count += len(rows)
            if len(rows) < _BATCH:
                return count
            after = rows[-1].seq


def _against(checkpoint: Checkpoint, key: bytes | None, seen: Mapping[int, str], last: int) -> tuple[int, str] | None:
    """The break a checkpoint reveals in an otherwise consistent chain ending at ``last``, or None."""
    problem = checkpoint.check_signature(key)
    if problem is not None:
        return checkpoint.seq, problem
    if checkpoint.seq == 0:
        return None
    if checkpoint.seq > last:
        return (
            last + 1,
            f"the chain ends at record {last}, but the checkpoint of {checkpoint.ts} saw record {checkpoint.seq}: "
            "records were deleted (truncated or wiped) and the head row rewound",
        )
    if seen.get(checkpoint.seq) != checkpoint.hash:
        return checkpoint.seq, f"record {checkpoint.seq} differs from the checkpoint of {checkpoint.ts}"
    return None
