"""Outbox, route events, safe mode and the human queue against real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from routeguard.store import StateConflict, UnknownEntry
from routeguard.store.db import Store
from routeguard.store.models import QueueStatus
from support.stores import BACKENDS, T0, open_test_store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_test_store(request.param, tmp_path) as s:
        yield s


def change(store: Store, notifiers: list[str], at_s: int = 0) -> int:
    payload = {
        "from_model": "triage-v3",
        "to_model": "triage-v2",
        "reason": "unhealthy",
        "expected_duration": "5m",
        "verification": {"approved": True},
    }
    return store.events.record_event(
        "route.changed", payload, "triage-agent", "all", notifiers, now=T0 + timedelta(seconds=at_s)
    )


def test_record_event_writes_audit_and_outbox_together(store: Store) -> None:
    seq = change(store, ["governance", "slack", "governance"])
    record = store.audit.query()[0][0]
    assert (record.seq, record.kind, record.policy, record.scope, record.actor) == (
        seq,
        "route.changed",
        "triage-agent",
        "all",
        "routeguard",
    )
    messages = store.outbox.due(now=T0)
    assert sorted(m.notifier for m in messages) == ["governance", "slack"]  # one per distinct notifier
    payload = messages[0].payload
    assert payload == {
        "event": "route.changed",
        "policy": "triage-agent",
        "from_model": "triage-v3",
        "to_model": "triage-v2",
        "reason": "unhealthy",
        "expected_duration": "5m",
        "verification": {"approved": True},
        "ts": "2026-03-01T12:00:00.000000Z",
        "audit_seq": seq,
    }
    assert all(m.audit_seq == seq and m.attempts == 0 and m.delivered_at is None for m in messages)


def test_outbox_due_retry_delivered(store: Store) -> None:
    change(store, ["hook"])
    (message,) = store.outbox.due(now=T0)
    assert store.outbox.due(now=T0 - timedelta(seconds=1)) == []  # not due before it was written
    store.outbox.mark_failed(message.id, T0, "connection refused", next_attempt_at=T0 + timedelta(seconds=30))
    assert store.outbox.due(now=T0 + timedelta(seconds=29)) == []
    (retry,) = store.outbox.due(now=T0 + timedelta(seconds=30))
    assert (retry.attempts, retry.last_error) == (1, "connection refused")
    assert store.outbox.oldest_undelivered_age(now=T0 + timedelta(seconds=40)) == timedelta(seconds=40)
    store.outbox.mark_delivered(message.id, now=T0 + timedelta(seconds=31))
    store.outbox.mark_delivered(message.id, now=T0 + timedelta(seconds=99))  # idempotent
    done = store.outbox.get(message.id)
    assert (done.attempts, done.delivered_at, done.last_error) == (2, T0 + timedelta(seconds=31), None)
    store.outbox.mark_failed(message.id, T0, "late failure", T0)  # ignored once delivered
    assert store.outbox.get(message.id).attempts == 2
    assert store.outbox.due(now=T0 + timedelta(days=1)) == []
    assert store.outbox.oldest_undelivered_age(now=T0) is None and store.outbox.pending_count() == 0
    with pytest.raises(UnknownEntry):
        store.outbox.mark_delivered(9999)
    with pytest.raises(UnknownEntry):
        store.outbox.mark_failed(9999, T0, "x", T0)


def test_outbox_keeps_audit_seq_order_per_notifier(store: Store, tmp_path: Path) -> None:
    for i in range(3):
        change(store, ["hook"], at_s=i)
    change(store, ["other"], at_s=3)
    first = store.outbox.due(now=T0 + timedelta(seconds=5))
    assert [m.payload["audit_seq"] for m in first] == [1, 2, 3, 4]
    store.outbox.mark_failed(first[0].id, T0, "boom", next_attempt_at=T0 + timedelta(seconds=10))
    # while seq 1 backs off, the later messages to the same notifier wait; another notifier's do not
    assert [m.payload["audit_seq"] for m in store.outbox.due(now=T0 + timedelta(seconds=5))] == [4]
    assert [m.payload["audit_seq"] for m in store.outbox.due(now=T0 + timedelta(seconds=10))] == [1, 2, 3, 4]
    assert len(store.outbox.due(now=T0 + timedelta(seconds=10), limit=2)) == 2


def test_outbox_claim_leases_messages(store: Store) -> None:
    change(store, ["a", "b"])
    claimed = store.outbox.claim(now=T0, lease=timedelta(seconds=30))
    assert len(claimed) == 2
    assert store.outbox.claim(now=T0 + timedelta(seconds=1)) == []  # leased to the first claimer
    assert len(store.outbox.claim(now=T0 + timedelta(seconds=30))) == 2  # lease expired, not delivered


def test_safe_mode_global_and_tenant(store: Store) -> None:
    state = store.safe_mode.state()
    assert (state.global_on, state.tenants_on, state.details) == (False, frozenset(), {})
    entry, seq = store.safe_mode.set(
        True, None, "provider incident", "oscar", notifiers=["governance"], now=T0
    )
    assert entry.enabled and entry.tenant is None and entry.at == T0
    store.safe_mode.set(True, "acme", "tenant request", "oscar")
    store.safe_mode.set(True, "global", "a tenant named global", "oscar")
    global_on, tenants_on, details = store.safe_mode.state()
    assert global_on and tenants_on == {"acme", "global"} and details[None].reason == "provider incident"
    store.safe_mode.set(False, None, "resolved", "oscar")
    state = store.safe_mode.state()
    assert not state.global_on and state.active_for("acme") and not state.active_for("other")
    records = store.audit.query(kind="safe_mode")[0]
    assert [(r.scope, r.payload["enabled"], r.actor) for r in records] == [
        ("global", True, "oscar"),
        ("tenant:acme", True, "oscar"),
        ("tenant:global", True, "oscar"),
        ("global", False, "oscar"),
    ]
    assert records[0].seq == seq and [m.audit_seq for m in store.outbox.due(now=T0)] == [seq]


def test_human_queue_put_list_resolve(store: Store) -> None:
    first = store.queue.put("clinical-humans", "triage-agent", "trace-1", {"messages": [{"role": "user"}]})
    second = store.queue.put("other", None, None, {})
    assert first != second
    assert [e.id for e in store.queue.list()] == [first, second]
    assert [e.id for e in store.queue.list(queue="clinical-humans")] == [first]
    entry = store.queue.resolve(first, "nurse-1", {"answer": "seen"})
    assert (entry.status, entry.resolved_by, entry.resolution) == (
        QueueStatus.RESOLVED,
        "nurse-1",
        {"answer": "seen"},
    )
    assert [e.id for e in store.queue.list(status="pending")] == [second]
    assert store.queue.get(first).request == {"messages": [{"role": "user"}]}
    with pytest.raises(StateConflict):
        store.queue.resolve(first, "nurse-2")
    with pytest.raises(UnknownEntry):
        store.queue.resolve(12345, "nurse-2")
    assert store.audit.query(kind="queue.resolved")[0][0].payload["entry"] == first
    assert store.audit.verify().ok
