"""No exfiltration through an approved bundle (issue 13, D2) and no leaked webhook URLs (D8), over real
HTTP with a real receiver: refused at dry run, upload and publish; redacted in API answers, logs and the
outbox's stored delivery error."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from routeguard.notify import Dispatcher
from routeguard.notify.slack import SlackNotifier
from routeguard.store.db import Store
from support.notify_helpers import FAST, open_store_on, record_change, store_at
from support.receivers import WebhookReceiver, eventually
from support.service import EXAMPLE, Service, bundle, run_service

SLACK_PATH = "/services/T0ACME/B0ROUTE/s3cr3tW3bh00kT0ken"


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def svc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-never-leaves")
    monkeypatch.setenv("HOOK_TOKEN", "hook-token-123")
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("HOOK_TOKEN: [127.0.0.1]\nACME_KEY: [127.0.0.1]\nBIGCLOUD_KEY: [127.0.0.1]\n", encoding="utf-8")
    with run_service(f"sqlite:///{tmp_path / 'store.db'}", config=EXAMPLE, secrets_file=secrets) as service:
        yield service


def _codes(response: httpx.Response) -> set[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return {(f["code"], f["path"]) for f in response.json()["error"]["findings"]}


def test_an_unbound_secret_or_a_metadata_host_is_refused_at_dry_run_and_upload(svc: Service) -> None:
    raw = bundle()
    raw["notifiers"]["governance"] = {"type": "webhook", "url": "http://127.0.0.1:9300/hook"}
    raw["notifiers"]["governance"]["headers"] = {"authorization": "Bearer ${OPENAI_API_KEY}"}
    raw["notifiers"]["leak"] = {"type": "webhook", "url": "http://169.254.169.254/latest/meta-data"}
    with svc.client() as http:
        for dry_run in (True, False):
            r = http.post("/v1/policies", json={"config": raw, "dry_run": dry_run})
            assert _codes(r) == {
                ("secret_not_allowed", "notifiers.governance.headers.authorization"),
                ("egress_not_allowed", "notifiers.leak.url"),
            }
        # a bound secret to its host passes
        raw = bundle()
        raw["notifiers"]["governance"] = {"type": "webhook", "url": "http://127.0.0.1:9300/hook"}
        raw["notifiers"]["governance"]["headers"] = {"authorization": "Bearer ${HOOK_TOKEN}"}
        r = http.post("/v1/policies", json={"config": raw, "dry_run": True})
        assert r.status_code == 200, r.text


def test_a_stored_version_that_breaks_the_rules_is_refused_at_publish(tmp_path: Path) -> None:
    """A version uploaded under lax rules cannot be published under strict ones."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    raw = bundle()
    raw["models"]["triage-v3"]["endpoint"]["api_key_env"] = "OPENAI_API_KEY"
    with run_service(db, config=EXAMPLE) as lax, lax.client(principal="alice") as alice:
        version = alice.post("/v1/policies", json={"config": raw}).json()["version"]
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("ACME_KEY: [127.0.0.1]\nBIGCLOUD_KEY: [127.0.0.1]\n", encoding="utf-8")
    with run_service(db, secrets_file=secrets) as strict, strict.client(principal="bob") as bob:
        assert bob.post(f"/v1/policies/{version}/approve", json={}).status_code == 200
        r = bob.post(f"/v1/policies/{version}/publish", json={"scope": {"all": True}})
        assert ("secret_not_allowed", "models.triage-v3.endpoint.api_key_env") in _codes(r)


def test_a_version_read_back_shows_webhook_urls_and_headers_redacted(svc: Service) -> None:
    raw = bundle()
    raw["notifiers"]["chat"] = {"type": "slack", "url": "https://hooks.slack.com" + SLACK_PATH,
                                "headers": {"x-api-key": "plain-header-secret"}}
    with svc.client() as http:
        version = http.post("/v1/policies", json={"config": raw}).json()["version"]
        r = http.get(f"/v1/policies/{version}")
    assert r.status_code == 200
    assert "s3cr3t" not in r.text and "plain-header-secret" not in r.text
    assert r.json()["config"]["notifiers"]["chat"]["url"] == "https://hooks.slack.com/***"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store_on("sqlite", tmp_path) as url, store_at(url) as s:
        yield s


async def test_a_failing_slack_webhook_leaks_its_url_nowhere(
    store: Store, hook: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    hook.status = 500
    url = hook.url.rsplit("/", 1)[0] + SLACK_PATH
    dispatcher = Dispatcher(store, {"chat": SlackNotifier("chat", url)}, options=FAST)
    record_change(store, ["chat"])
    caplog.set_level(logging.DEBUG)
    dispatcher.start()
    try:
        await eventually(lambda: hook.refused >= 2, what="two failed attempts")
    finally:
        await dispatcher.stop()
    message: Any = store.outbox.due(now=datetime.now(UTC) + timedelta(hours=1), limit=10)[0]
    assert message.last_error and "HTTP 500" in message.last_error
    assert "s3cr3t" not in message.last_error, message.last_error
    assert "s3cr3t" not in caplog.text
    hook.status = 200
    dispatcher = Dispatcher(store, {"chat": SlackNotifier("chat", url)}, options=FAST)
    dispatcher.start()
    try:
        await eventually(lambda: len(hook.received) == 1, what="the delivery")
    finally:
        await dispatcher.stop()
    assert hook.received[0].path == SLACK_PATH  # the real URL was used to deliver
    assert "s3cr3t" not in caplog.text
