"""The dispatcher delivers the outbox to a real webhook receiver on loopback, over real SQLite/PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from routeguard.core.model import Notifier as NotifierConfig
from routeguard.notify import Dispatcher, build_notifiers
from routeguard.notify.webhook import WebhookNotifier
from routeguard.store.db import Store
from support.notify_helpers import FAST, open_store_on, record_change, store_at
from support.receivers import WebhookReceiver, eventually, free_port
from support.stores import BACKENDS

CONTRACT_KEYS = {
    "event", "policy", "from_model", "to_model", "reason", "expected_duration", "ts", "audit_seq",
}


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with open_store_on(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with store_at(db_url) as s:
        yield s


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


async def test_webhook_gets_the_contract_payload_with_the_notifier_headers(
    store: Store, hook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RG_TEST_HOOK_TOKEN", "s3cret")
    config = NotifierConfig("governance", "webhook", url=hook.url,
                            headers={"authorization": "Bearer ${RG_TEST_HOOK_TOKEN}", "x-team": "gov"})
    dispatcher = Dispatcher(store, build_notifiers({"governance": config}), options=FAST)
    dispatcher.start()
    try:
        seq = record_change(store, ["governance"])
        (recorded,) = store.outbox.due()
        dispatcher.kick()
        await eventually(lambda: store.outbox.pending_count() == 0, what="delivery")
    finally:
        await dispatcher.stop()
    (got,) = hook.received
    assert got.body == recorded.payload  # exactly as recorded
    assert set(got.body) >= CONTRACT_KEYS
    body = got.body
    assert (body["event"], body["policy"], body["audit_seq"]) == ("route.changed", "triage-agent", seq)
    assert (got.body["from_model"], got.body["to_model"], got.body["expected_duration"]) == (
        "triage-v3", "triage-v2", "5m")
    assert got.headers["authorization"] == "Bearer s3cret" and got.headers["x-team"] == "gov"
    assert got.headers["x-routeguard-audit-seq"] == str(seq)
    assert got.headers["content-type"] == "application/json"
    done = store.outbox.get(recorded.id)
    assert done.delivered_at is not None and done.attempts == 1 and done.last_error is None


async def test_receiver_down_is_retried_with_backoff_until_up_then_delivered_once(store: Store) -> None:
    port = free_port()  # nothing listens here yet: connection refused
    hook = WebhookReceiver(port=port)
    dispatcher = Dispatcher(store, {"governance": WebhookNotifier("governance", hook.url)}, options=FAST)
    record_change(store, ["governance"])
    (message,) = store.outbox.due()
    dispatcher.start()
    try:
        await eventually(lambda: store.outbox.get(message.id).attempts >= 3, what="three failed attempts")
        failed = store.outbox.get(message.id)
        assert failed.delivered_at is None and "ConnectError" in (failed.last_error or "")
        hook.start()
        await eventually(lambda: store.outbox.pending_count() == 0, what="delivery once the receiver is up")
        await asyncio.sleep(0.3)  # several more polls: nothing is sent again
    finally:
        await dispatcher.stop()
        hook.stop()
    assert len(hook.received) == 1 and hook.received[0].body == message.payload
    done = store.outbox.get(message.id)
    assert done.attempts >= 4 and done.last_error is None


async def test_refusing_receiver_error_is_kept_on_the_row(store: Store, hook: WebhookReceiver) -> None:
    hook.status = 503
    dispatcher = Dispatcher(store, {"governance": WebhookNotifier("governance", hook.url)}, options=FAST)
    record_change(store, ["governance"])
    (message,) = store.outbox.due()
    dispatcher.start()
    try:
        await eventually(lambda: hook.refused >= 2, what="two refused attempts")
        assert "HTTP 503" in (store.outbox.get(message.id).last_error or "")
        hook.status = 200
        await eventually(lambda: store.outbox.pending_count() == 0, what="delivery")
    finally:
        await dispatcher.stop()
    assert len(hook.received) == 1


async def test_restart_delivers_undelivered_rows_exactly_as_recorded(
    db_url: str, hook: WebhookReceiver
) -> None:
    down = f"http://127.0.0.1:{free_port()}/hook"
    with store_at(db_url) as first:
        seqs = [record_change(first, ["governance"], n=i) for i in range(3)]
        recorded = {m.id: m.payload for m in first.outbox.due()}
        before = Dispatcher(first, {"governance": WebhookNotifier("governance", down)}, options=FAST)
        await before.deliver_due()  # one failed try, then the process "dies"
        first.outbox.claim(lease=timedelta(seconds=1))  # and another one died holding a claim
        assert first.outbox.pending_count() == 3
    with store_at(db_url) as second:  # a new process on the same database
        after = Dispatcher(second, {"governance": WebhookNotifier("governance", hook.url)}, options=FAST)
        after.start()
        try:
            await eventually(lambda: second.outbox.pending_count() == 0, what="delivery after restart")
        finally:
            await after.stop()
    assert sorted(b["audit_seq"] for b in hook.bodies()) == seqs  # each once
    assert sorted(hook.bodies(), key=lambda b: b["audit_seq"]) == [recorded[i] for i in sorted(recorded)]


async def test_two_replicas_never_send_the_same_message_twice(db_url: str, hook: WebhookReceiver) -> None:
    with store_at(db_url) as a, store_at(db_url) as b:
        seqs = [record_change(a, ["governance"], n=i) for i in range(30)]
        notifiers = {"governance": WebhookNotifier("governance", hook.url)}
        replicas = [Dispatcher(s, notifiers, options=FAST) for s in (a, b)]
        for replica in replicas:
            replica.start()
        try:
            await eventually(lambda: a.outbox.pending_count() == 0, what="all delivered")
            await asyncio.sleep(0.3)
        finally:
            for replica in replicas:
                await replica.stop()
    assert sorted(body["audit_seq"] for body in hook.bodies()) == seqs


async def test_unknown_notifier_stays_undelivered_with_the_error_until_configured(
    store: Store, hook: WebhookReceiver
) -> None:
    dispatcher = Dispatcher(store, {}, options=FAST)
    record_change(store, ["nobody"])
    (message,) = store.outbox.due()
    await dispatcher.deliver_due()
    row = store.outbox.get(message.id)
    assert row.delivered_at is None and store.outbox.pending_count() == 1
    assert "unknown notifier 'nobody'" in (row.last_error or "")
    assert row.next_attempt_at > message.next_attempt_at + timedelta(seconds=30)  # re-checked slowly
    dispatcher.set_notifiers({"nobody": WebhookNotifier("nobody", hook.url)})
    await dispatcher.deliver_due()
    assert store.outbox.pending_count() == 0 and len(hook.received) == 1


async def test_a_hanging_receiver_does_not_delay_another_notifier(
    store: Store, hook: WebhookReceiver
) -> None:
    slow = WebhookReceiver().start()
    slow.gate = threading.Event()
    notifiers = {"slow": WebhookNotifier("slow", slow.url), "fast": WebhookNotifier("fast", hook.url)}
    dispatcher = Dispatcher(store, notifiers, options=replace(FAST, send_timeout_s=20.0))
    dispatcher.start()
    try:
        record_change(store, ["slow"])
        dispatcher.kick()
        await eventually(lambda: slow.waiting == 1, what="the slow receiver holding a request")
        record_change(store, ["fast"])
        dispatcher.kick()
        await eventually(lambda: store.outbox.pending_count() == 1, what="the fast one delivered meanwhile")
        assert len(hook.received) == 1 and slow.received == [] and slow.waiting == 1
        slow.gate.set()
        await eventually(lambda: store.outbox.pending_count() == 0, what="the slow one delivered too")
    finally:
        slow.gate.set()
        await dispatcher.stop()
        slow.stop()
    assert len(slow.received) == 1 and len(hook.received) == 1
