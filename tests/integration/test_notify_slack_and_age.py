"""Slack-compatible webhook notifications, and the outbox-age alert metric while a message waits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from routeguard.notify import Dispatcher
from routeguard.notify.slack import SlackNotifier
from routeguard.notify.webhook import WebhookNotifier
from routeguard.store.db import Store
from routeguard.telemetry.metrics import RoutingMetrics
from support.notify_helpers import FAST, open_store_on, record_change, store_at
from support.receivers import WebhookReceiver, eventually, free_port
from support.stores import BACKENDS


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_store_on(request.param, tmp_path) as url, store_at(url) as s:
        yield s


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def outbox_age(metrics: RoutingMetrics) -> float:
    text = metrics.render()[0].decode()
    for family in text_string_to_metric_families(text):
        if family.name == "agent_routing_notification_outbox_age_seconds":
            return float(family.samples[0].value)
    raise AssertionError("outbox age metric missing")


async def test_slack_message_has_text_and_blocks(store: Store, hook: WebhookReceiver) -> None:
    dispatcher = Dispatcher(store, {"chat": SlackNotifier("chat", hook.url)}, options=FAST)
    seq = record_change(store, ["chat"])
    store.events.record_event("safe_mode", {"enabled": True, "reason": "incident 42", "tenant": None},
                              None, None, ["chat"])
    dispatcher.start()
    try:
        await eventually(lambda: len(hook.received) == 2, what="two Slack messages")
    finally:
        await dispatcher.stop()
    change, safe = sorted(hook.bodies(), key=lambda b: b["text"])
    assert change["text"].startswith("Routing change: triage-agent triage-v3 → triage-v2\n")
    assert "reason: unhealthy" in change["text"] and f"audit #{seq}" in change["text"]
    assert [b["type"] for b in change["blocks"]] == ["section", "section", "context"]
    assert safe["text"].startswith("Safe mode ON (global)") and "incident 42" in safe["text"]


async def test_outbox_age_metric_rises_while_a_message_waits_and_falls_when_delivered(
    store: Store, hook: WebhookReceiver
) -> None:
    metrics = RoutingMetrics()
    later = timedelta(minutes=6)  # the dispatcher's clock runs 6 minutes after the recording

    def clock() -> datetime:
        return datetime.now(UTC) + later

    down = WebhookNotifier("governance", f"http://127.0.0.1:{free_port()}/hook")
    dispatcher = Dispatcher(store, {"governance": down}, clock, options=FAST, on_age=metrics.set_outbox_age,
                            on_attempt=metrics.observe_notification)
    record_change(store, ["governance"])
    assert outbox_age(metrics) == 0.0
    await dispatcher.deliver_due()
    assert outbox_age(metrics) > 300  # the alert threshold (deploy/prometheus-alerts.yaml)
    assert dispatcher.oldest_undelivered_age_s() > 300 and dispatcher.last_age_s > 300
    dispatcher.set_notifiers({"governance": WebhookNotifier("governance", hook.url)})
    await eventually(lambda: store.outbox.due(clock()) != [], what="the retry to fall due")
    await dispatcher.deliver_due()
    assert store.outbox.pending_count() == 0 and outbox_age(metrics) == 0.0
    await dispatcher.stop()
    text = metrics.render()[0].decode()
    assert 'agent_routing_notification_attempts_total{notifier="governance",result="failed"} 1.0' in text
    assert 'agent_routing_notification_attempts_total{notifier="governance",result="delivered"} 1.0' in text
