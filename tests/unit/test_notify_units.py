"""Notifier building blocks without a network: backoff, summaries, the factory's config checks."""

from __future__ import annotations

import random

import pytest

from routeguard.core.model import Notifier as NotifierConfig
from routeguard.notify import NotifierConfigError, build_notifier, build_notifiers
from routeguard.notify.base import Notifier, summarize
from routeguard.notify.dispatcher import backoff_delay
from routeguard.notify.email import EmailNotifier, email_message
from routeguard.notify.slack import SlackNotifier, slack_message
from routeguard.notify.webhook import WebhookNotifier


def test_backoff_doubles_from_one_second_capped_at_sixty_with_jitter() -> None:
    rng = random.Random(7)
    for failures in range(1, 12):
        full = min(60.0, 2.0 ** (failures - 1))
        for _ in range(50):
            assert full / 2 <= backoff_delay(failures, 1.0, 60.0, rng) <= full
    assert len({backoff_delay(3, 1.0, 60.0, rng) for _ in range(20)}) > 1  # jittered


def test_summaries_for_each_notified_event() -> None:
    head, lines = summarize({"event": "route.changed", "policy": "p", "from_model": "a", "to_model": None,
                             "terminal_action": "human_queue", "reason": "unhealthy", "ts": "T",
                             "audit_seq": 4})
    assert head == "Routing change: p a → terminal (human_queue)" and lines[-1] == "at: T (audit #4)"
    head, _ = summarize({"event": "agent.routing.terminal", "policy": "p", "action": "suspend"})
    assert head == "Terminal action: p → suspend"
    head, _ = summarize({"event": "safe_mode", "enabled": False, "tenant": "acme", "reason": "over"})
    assert head == "Safe mode OFF (tenant acme)"
    assert summarize({"event": "custom.thing", "policy": "p"})[0] == "custom.thing: p"


def test_slack_and_email_bodies() -> None:
    payload = {"event": "route.changed", "policy": "p", "from_model": "a", "to_model": "b", "reason": "r",
               "audit_seq": 9}
    message = slack_message(payload)
    assert message["text"].startswith("Routing change: p a → b") and len(message["blocks"]) == 3
    mail = email_message(payload, "rg@example.org", ["x@example.org"], "mail")
    assert mail["Message-ID"] == "<routeguard.9.mail@routeguard>" and mail["To"] == "x@example.org"
    assert '"audit_seq": 9' in mail.get_content()


def test_factory_builds_each_type_and_refuses_incomplete_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RG_SMTP_PASSWORD", "pw")
    built = build_notifiers({
        "hook": NotifierConfig("hook", "webhook", url="http://127.0.0.1:9/h"),
        "chat": NotifierConfig("chat", "slack", url="http://127.0.0.1:9/s"),
        "mail": NotifierConfig("mail", "email", url="smtps://bot:${RG_SMTP_PASSWORD}@mail.example.org",
                               to=("a@example.org",)),
    })
    assert isinstance(built["hook"], WebhookNotifier) and isinstance(built["chat"], SlackNotifier)
    mail = built["mail"]
    assert isinstance(mail, EmailNotifier) and isinstance(mail, Notifier)
    assert (mail.host, mail.port, mail.use_tls, mail.username, mail.password) == (
        "mail.example.org", 465, True, "bot", "pw")
    for bad in (NotifierConfig("x", "webhook"), NotifierConfig("x", "email", host="h"),
                NotifierConfig("x", "email", to=("a@b",)), NotifierConfig("x", "pager", url="u")):
        with pytest.raises(NotifierConfigError):
            build_notifier(bad)
    assert list(build_notifiers({"bad": NotifierConfig("bad", "webhook")}, strict=False)) == []
