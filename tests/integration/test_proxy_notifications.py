"""Governance notifications end to end: a routing change caused by proxied traffic reaches a real webhook
receiver and a real SMTP server; a change recorded just before a SIGKILL is delivered after the restart,
exactly as recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from routeguard.store.db import open_store
from support.proxy import AGENT, MESSAGES, UP, openai_client, poll, proxy_bundle, proxy_service
from support.receivers import SmtpReceiver, WebhookReceiver, free_port
from support.service import serve_process, write_bundle
from support.upstream import UpstreamServer, overloaded

CHANGE_FIELDS = ("policy", "scope", "from_model", "to_model", "reason", "expected_duration", "verification")


def _changes(url: str) -> list[dict[str, Any]]:
    r = httpx.get(url + "/v1/audit", params={"kind": "route.changed", "policy": AGENT}, timeout=30)
    assert r.status_code == 200, r.text
    return list(r.json()["records"])


def test_a_routing_change_reaches_webhook_and_email_within_5s(tmp_path: Path, upstream: UpstreamServer) -> None:
    hook, smtp = WebhookReceiver().start(), SmtpReceiver().start()
    notifiers = {"hook": {"type": "webhook", "url": hook.url},
                 "mail": {"type": "email", "host": "127.0.0.1", "port": smtp.port, "to": ["ward-ops@example.org"]}}
    upstream.set(UP["alpha"], overloaded())
    try:
        with proxy_service(tmp_path, upstream, notifiers=notifiers) as px:
            for _ in range(3):  # the third failure declares alpha down: the route changes to beta
                px.client.chat.completions.create(model=AGENT, messages=MESSAGES)
            [change] = _changes(px.svc.url)

            def delivered() -> bool:
                hooked = [b for b in hook.bodies() if b.get("audit_seq") == change["seq"]]
                return bool(hooked) and any("alpha" in str(m["Subject"]) for m in smtp.messages)

            poll(delivered, "webhook and e-mail delivery", timeout_s=5.0)  # CONTRACT §5: within 5 s
            [body] = [b for b in hook.bodies() if b.get("audit_seq") == change["seq"]]
            assert (body["policy"], body["from_model"], body["to_model"]) == (AGENT, "alpha", "beta")
            for key in ("event", "reason", "expected_duration", "ts", "audit_seq"):
                assert key in body, key
            mail = next(m for m in smtp.messages if "alpha" in str(m["Subject"]))
            assert "Routing change" in str(mail["Subject"]) and "beta" in str(mail["Subject"])
            assert str(mail["To"]) == "ward-ops@example.org"
            assert f'"audit_seq": {change["seq"]}' in mail.get_content()
    finally:
        hook.stop()
        smtp.stop()


def test_a_change_recorded_before_sigkill_is_delivered_after_restart(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    hook = WebhookReceiver(port=free_port())  # not listening yet: the receiver is down
    raw = proxy_bundle(upstream.base_url, notifiers={"hook": {"type": "webhook", "url": hook.url}})
    config = write_bundle(tmp_path / "bundle.yaml", raw)
    db = f"sqlite:///{tmp_path / 'store.db'}"
    args = ("--config", str(config), "--db", db, "--event-log-level", "warning")
    env = {"ROUTEGUARD_OUTBOX_LEASE_S": "8", "ROUTEGUARD_OUTBOX_POLL_S": "0.1"}
    with serve_process(*args, cwd=tmp_path, env=env) as first:
        down = httpx.put(first.url + "/v1/health/alpha", json={"status": "down", "ttl": "10m"}, timeout=30)
        assert down.status_code == 200, down.text
        poll(lambda: bool(_changes(first.url)), "the route.changed record")
        [recorded] = _changes(first.url)
        first.kill()  # SIGKILL: nothing delivered (the receiver is down), the change is in the outbox
    hook.start()
    try:
        with serve_process(*args, cwd=tmp_path, env=env) as second:
            poll(lambda: any(b.get("audit_seq") == recorded["seq"] for b in hook.bodies()),
                 "delivery after the restart", timeout_s=60.0)
            store = open_store(db, migrate=False)
            try:
                poll(lambda: store.outbox.pending_count() == 0, "an empty outbox")
            finally:
                store.close()
            client = openai_client(second.url + "/v1")
            assert client.chat.completions.create(model=AGENT, messages=MESSAGES).choices[0].message.content
            client.close()
        [body] = [b for b in hook.bodies() if b.get("audit_seq") == recorded["seq"]]  # exactly once
        for key in CHANGE_FIELDS:
            assert body.get(key) == recorded.get(key), key
        assert (body["from_model"], body["to_model"]) == ("alpha", "beta")
        assert body["ts"][:19] == recorded["ts"][:19]
    finally:
        hook.stop()
