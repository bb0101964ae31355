"""D9: a tenant-scoped version whose notifier has the same name as the stable version's notifier sends the
events of its scope to its own notifier, not to the stable one's."""

from __future__ import annotations

import time
from pathlib import Path

from support.receivers import WebhookReceiver
from support.service import ROUTE, bundle, run_service, write_bundle


def _wait(predicate: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "not delivered in time"
        time.sleep(0.05)


def test_each_scope_notifies_its_own_version_notifier(tmp_path: Path) -> None:
    stable_hook, staged_hook = WebhookReceiver().start(), WebhookReceiver().start()
    try:
        stable = bundle()
        stable["notifiers"]["governance"] = {"type": "webhook", "url": stable_hook.url}
        staged = bundle()
        staged["notifiers"]["governance"] = {"type": "webhook", "url": staged_hook.url}
        config = write_bundle(tmp_path / "stable.yaml", stable)
        db = f"sqlite:///{tmp_path / 'store.db'}"
        with (
            run_service(db, config=config, outbox_poll_s=0.05) as svc,
            svc.client(principal="alice") as alice,
            svc.client(principal="bob") as bob,
        ):
            version = alice.post("/v1/policies", json={"config": staged}).json()["version"]
            assert bob.post(f"/v1/policies/{version}/approve", json={}).status_code == 200
            r = bob.post(f"/v1/policies/{version}/publish", json={"scope": {"tenants": ["acme"]}})
            assert r.status_code == 200, r.text
            assert svc.state.notifier_configs()[f"governance@v{version}"].url == staged_hook.url
            r = bob.put("/v1/health/triage-v3", json={"status": "down", "source": "test", "ttl": "5m"})
            assert r.status_code == 200, r.text
            for tenant in ("acme", "other"):
                assert bob.post("/v1/route", json={**ROUTE, "tenant": tenant}).status_code == 200

            def changes(hook: WebhookReceiver) -> list[dict[str, object]]:
                return [b for b in hook.bodies() if b.get("to_model") == "triage-v2"]

            _wait(lambda: changes(stable_hook) and changes(staged_hook))
        staged_scopes = {str(b.get("scope")) for b in changes(staged_hook)}
        stable_scopes = {str(b.get("scope")) for b in changes(stable_hook)}
        assert staged_scopes and not staged_scopes & stable_scopes, (staged_scopes, stable_scopes)
    finally:
        stable_hook.stop()
        staged_hook.stop()
