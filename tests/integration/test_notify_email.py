"""E-mail notifications reach a real SMTP server on loopback (aiosmtpd), through dispatcher and outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from routeguard.core.model import Notifier as NotifierConfig
from routeguard.notify import Dispatcher, build_notifier
from routeguard.store.db import Store
from support.notify_helpers import FAST, open_store_on, record_change, store_at
from support.receivers import SmtpReceiver, eventually, free_port
from support.stores import BACKENDS


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_store_on(request.param, tmp_path) as url, store_at(url) as s:
        yield s


def mail_config(port: int) -> NotifierConfig:
    return NotifierConfig("ops-mail", "email", host="127.0.0.1", port=port, sender="routeguard@example.org",
                          to=("governance@example.org", "oncall@example.org"))


async def test_email_has_a_subject_a_readable_body_and_the_payload(store: Store) -> None:
    smtp = SmtpReceiver().start()
    dispatcher = Dispatcher(store, {"ops-mail": build_notifier(mail_config(smtp.port))}, options=FAST)
    try:
        seq = record_change(store, ["ops-mail"])
        (recorded,) = store.outbox.due()
        dispatcher.start()
        await eventually(lambda: store.outbox.pending_count() == 0, what="e-mail delivery")
    finally:
        await dispatcher.stop()
        smtp.stop()
    (message,) = smtp.messages
    assert smtp.envelopes == [("routeguard@example.org", ["governance@example.org", "oncall@example.org"])]
    assert message["Subject"] == "[routeguard] Routing change: triage-agent triage-v3 → triage-v2"
    assert message["From"] == "routeguard@example.org"
    assert message["Message-ID"] == f"<routeguard.{seq}.ops-mail@routeguard>"
    body = message.get_content()
    assert "reason: unhealthy" in body and "expected duration: 5m" in body
    assert json.loads(body.split("Payload:", 1)[1]) == recorded.payload


async def test_smtp_server_down_is_retried_until_it_answers_then_delivered_once(store: Store) -> None:
    port = free_port()
    dispatcher = Dispatcher(store, {"ops-mail": build_notifier(mail_config(port))}, options=FAST)
    record_change(store, ["ops-mail"])
    (message,) = store.outbox.due()
    smtp = SmtpReceiver(port)
    dispatcher.start()
    try:
        await eventually(lambda: store.outbox.get(message.id).attempts >= 2, what="failed attempts")
        assert store.outbox.get(message.id).last_error
        smtp.start()
        await eventually(lambda: store.outbox.pending_count() == 0, what="delivery once the server is up")
    finally:
        await dispatcher.stop()
        smtp.stop()
    assert len(smtp.messages) == 1
