"""Outbox leases per replica (real SQLite and PostgreSQL): a message is leased to the replica that claimed it,
taken over when the lease ends, never handed back by a replica that lost it, and a notifier's later messages
wait while another replica holds its earlier ones (so deliveries keep their order across a fleet)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from routeguard.notify import Dispatcher
from routeguard.notify.webhook import WebhookNotifier
from routeguard.store.db import Store
from support.notify_helpers import FAST, open_store_on, record_change, store_at
from support.receivers import WebhookReceiver, eventually
from support.stores import BACKENDS, T0, open_test_store

LEASE = timedelta(seconds=30)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_test_store(request.param, tmp_path) as s:
        yield s


def _change(store: Store, notifiers: list[str], at_s: float = 0) -> int:
    return store.events.record_event(
        "route.changed", {"to_model": "triage-v2"}, "triage-agent", "all", notifiers,
        now=T0 + timedelta(seconds=at_s),
    )


def test_a_notifier_held_by_one_replica_waits_for_it_others_go_on(store: Store) -> None:
    _change(store, ["hook"])
    claimed = store.outbox.claim(now=T0, limit=1, lease=LEASE, owner="a")
    assert len(claimed) == 1
    _change(store, ["hook"], 1)  # a later message to the same notifier
    _change(store, ["slack"], 1)  # and one to another notifier
    later = T0 + timedelta(seconds=2)
    taken = store.outbox.claim(now=later, lease=LEASE, owner="b")
    assert [m.notifier for m in taken] == ["slack"]  # not `hook`: replica a still sends its earlier message
    store.outbox.mark_delivered(claimed[0].id, later, owner="a")
    assert [m.notifier for m in store.outbox.claim(now=later, lease=LEASE, owner="b")] == ["hook"]


def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_hand_it_back(store: Store) -> None:
    _change(store, ["hook"])
    (first,) = store.outbox.claim(now=T0, lease=LEASE, owner="a")
    assert store.outbox.claim(now=T0 + timedelta(seconds=29), lease=LEASE, owner="b") == []
    (again,) = store.outbox.claim(now=T0 + LEASE, lease=LEASE, owner="b")  # a's lease ended: b takes it
    assert again.id == first.id
    store.outbox.reschedule(first.id, T0, owner="a")  # a, late, tries to hand it back: ignored
    store.outbox.mark_failed(first.id, T0, "late", T0, owner="a")
    row = store.outbox.get(first.id)
    assert row.attempts == 0 and row.next_attempt_at == T0 + 2 * LEASE
    assert store.outbox.claim(now=T0 + LEASE + timedelta(seconds=1), lease=LEASE, owner="c") == []


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with open_store_on(request.param, tmp_path) as url:
        yield url


async def test_three_replicas_deliver_each_message_once_in_order(db_url: str) -> None:
    hook = WebhookReceiver().start()
    try:
        with store_at(db_url) as a, store_at(db_url) as b, store_at(db_url) as c:
            seqs = [record_change(a, ["governance"], n=i) for i in range(24)]
            options = replace(FAST, batch=2)  # small claims, so the replicas interleave
            replicas = [
                Dispatcher(s, {"governance": WebhookNotifier("governance", hook.url)}, options=options, owner=name)
                for s, name in ((a, "a"), (b, "b"), (c, "c"))
            ]
            for replica in replicas:
                replica.start()
            try:
                await eventually(lambda: a.outbox.pending_count() == 0, what="all delivered")
                await asyncio.sleep(0.3)
            finally:
                for replica in replicas:
                    await replica.stop()
        assert [body["audit_seq"] for body in hook.bodies()] == seqs  # once each, in audit order
    finally:
        hook.stop()
