"""The audit hash chain against real SQLite and PostgreSQL: append, query, verify, tamper, concurrency."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from routeguard.store.audit import GENESIS_HASH, append
from routeguard.store.db import Store
from support.stores import BACKENDS, T0, open_test_store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_test_store(request.param, tmp_path) as s:
        yield s


def fill(store: Store, n: int) -> None:
    for i in range(n):
        store.events.record_event(
            "route.changed" if i % 2 else "terminal",
            {"i": i, "from_model": "a", "to_model": "b", "ratio": 0.25, "note": "naïve ✓"},
            policy="triage-agent" if i % 3 else "intake",
            scope="all",
            now=T0 + timedelta(seconds=i),
        )


def raw(store: Store, sql: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(sql), params)


def independent_hash(record: dict[str, object]) -> str:
    body = {k: record[k] for k in ("seq", "ts", "kind", "actor", "policy", "scope", "payload", "prev_hash")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_empty_chain_verifies(store: Store) -> None:
    result = store.audit.verify()
    assert (result.ok, result.records, result.first_broken) == (True, 0, None)
    assert store.audit.head() == (0, GENESIS_HASH)


def test_chain_links_and_export_is_independently_checkable(store: Store) -> None:
    fill(store, 5)
    assert store.audit.verify().ok and store.audit.verify().records == 5
    out = io.StringIO()
    assert store.audit.export_jsonl(out) == 5
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["seq"] for r in lines] == [1, 2, 3, 4, 5]
    assert lines[0]["prev_hash"] == GENESIS_HASH and lines[0]["ts"] == "2026-03-01T12:00:00.000000Z"
    for prev, rec in zip([None, *lines], lines, strict=False):
        assert rec["hash"] == independent_hash(rec)
        if prev is not None:
            assert rec["prev_hash"] == prev["hash"]
    assert store.audit.head() == (5, lines[-1]["hash"])


def test_query_filters_and_cursor(store: Store) -> None:
    fill(store, 12)
    page, cursor = store.audit.query(limit=5)
    assert [r.seq for r in page] == [1, 2, 3, 4, 5] and cursor == 5
    page, cursor = store.audit.query(after=cursor, limit=5)
    assert [r.seq for r in page] == [6, 7, 8, 9, 10] and cursor == 10
    page, cursor = store.audit.query(after=cursor, limit=5)
    assert [r.seq for r in page] == [11, 12] and cursor is None
    assert {r.kind for r in store.audit.query(kind="terminal")[0]} == {"terminal"}
    assert [r.seq for r in store.audit.query(policy="intake")[0]] == [1, 4, 7, 10]
    assert [r.seq for r in store.audit.query(since=T0 + timedelta(seconds=10))[0]] == [11, 12]
    record = store.audit.query(limit=1)[0][0]
    assert record.payload["note"] == "naïve ✓" and record.to_dict()["ts"].endswith("Z")


def test_edited_payload_is_detected(store: Store) -> None:
    fill(store, 5)
    raw(store, "UPDATE audit_log SET payload = :p WHERE seq = 3", p='{"i":99}')
    result = store.audit.verify()
    assert (result.ok, result.first_broken) == (False, 3)
    assert result.reason is not None and "altered" in result.reason


@pytest.mark.parametrize(
    ("column", "value"),
    [("kind", "forged"), ("actor", "mallory"), ("policy", "other"), ("payload", "not json")],
)
def test_any_edited_field_is_detected(store: Store, column: str, value: str) -> None:
    fill(store, 4)
    raw(store, f"UPDATE audit_log SET {column} = :v WHERE seq = 2", v=value)
    result = store.audit.verify()
    assert (result.ok, result.first_broken) == (False, 2)


def test_edited_timestamp_is_detected(store: Store) -> None:
    fill(store, 4)
    raw(store, "UPDATE audit_log SET ts = :ts WHERE seq = 2", ts=T0 - timedelta(days=1))
    assert store.audit.verify().first_broken == 2


def test_deleted_middle_record_is_detected(store: Store) -> None:
    fill(store, 5)
    raw(store, "DELETE FROM audit_log WHERE seq = 2")
    result = store.audit.verify()
    assert (result.ok, result.first_broken, result.records) == (False, 2, 4)


def test_deleted_last_records_are_detected_through_the_head(store: Store) -> None:
    fill(store, 5)
    raw(store, "DELETE FROM audit_log WHERE seq >= 4")
    result = store.audit.verify()
    assert (result.ok, result.first_broken) == (False, 4)
    fill(store, 1)  # appending afterwards does not heal the gap
    assert store.audit.verify().first_broken == 4


def test_inserted_record_is_detected(store: Store) -> None:
    fill(store, 3)
    raw(
        store,
        "INSERT INTO audit_log (seq, ts, kind, actor, payload, prev_hash, hash)"
        " VALUES (4, :ts, 'x', 'm', '{}', 'p', 'h')",
        ts=T0,
    )
    result = store.audit.verify()
    assert (result.ok, result.first_broken) == (False, 4)


def test_relinked_rewrite_is_detected_by_the_head(store: Store) -> None:
    """Rewriting the last record and recomputing its hash is caught: the head holds the old hash."""
    fill(store, 3)
    out = io.StringIO()
    store.audit.export_jsonl(out)
    last = json.loads(out.getvalue().splitlines()[-1])
    last["payload"] = {"forged": True}
    raw(
        store,
        "UPDATE audit_log SET payload = :p, hash = :h WHERE seq = 3",
        p='{"forged":true}',
        h=independent_hash(last),
    )
    assert store.audit.verify().first_broken == 3


def test_append_rolls_back_with_its_transaction(store: Store) -> None:
    fill(store, 2)
    with pytest.raises(RuntimeError), store.transaction() as session:
        append(session, "route.changed", "x", {"a": 1}, now=T0)
        raise RuntimeError("the change failed")
    assert store.audit.head()[0] == 2 and store.audit.verify().ok


def test_concurrent_appends_keep_one_chain(store: Store) -> None:
    threads, per_thread = 8, 25
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                store.events.record_event(
                    "route.changed", {"thread": n, "i": i}, "p", "all", notifiers=["hook"]
                )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    result = store.audit.verify()
    assert (result.ok, result.records) == (True, threads * per_thread)
    records = store.audit.query(limit=1000)[0]
    assert [r.seq for r in records] == list(range(1, threads * per_thread + 1))
    assert sorted(m.audit_seq or 0 for m in store.outbox.due(limit=1000)) == [r.seq for r in records]
