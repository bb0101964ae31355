"""The keyed audit chain and its checkpoints (issue 13, D5): an HMAC chain cannot be recomputed without the
key, and a checkpoint kept outside the database detects records deleted together with a rewound head."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from routeguard.store.checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from routeguard.store.db import Store
from support.receivers import WebhookReceiver
from support.service import EXAMPLE, bundle, run_cli, run_service, write_bundle
from support.stores import BACKENDS, T0, open_test_store

KEY = "test-audit-key-0123456789"


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_test_store(request.param, tmp_path) as s:
        yield s


def fill(store: Store, n: int) -> None:
    for i in range(n):
        store.events.record_event("route.changed", {"i": i}, policy="p", scope="all", now=T0 + timedelta(seconds=i))


def rewind(store: Store, keep: int) -> None:
    """What an attacker with write access does: delete the tail and make the head row agree."""
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq > :keep"), {"keep": keep})
        last = conn.execute(text("SELECT hash FROM audit_log WHERE seq = :keep"), {"keep": keep}).scalar()
        conn.execute(text("UPDATE audit_head SET seq = :keep, hash = :h WHERE id = 1"),
                     {"keep": keep, "h": last or "sha256:" + "0" * 64})


def test_truncation_with_a_rewound_head_is_caught_only_by_the_checkpoint(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTEGUARD_AUDIT_KEY", KEY)
    fill(store, 6)
    checkpoint = store.audit.checkpoint()
    assert checkpoint.seq == 6 and checkpoint.alg == "hmac-sha256"
    assert store.audit.verify(checkpoint).ok
    rewind(store, 3)
    assert store.audit.verify().ok  # the chain alone looks intact: this is the D5 finding
    result = store.audit.verify(checkpoint)
    assert (result.ok, result.first_broken) == (False, 4), result
    assert "deleted" in (result.reason or "")
    rewind(store, 0)  # wiped
    result = store.audit.verify(checkpoint)
    assert (result.ok, result.records, result.first_broken) == (False, 0, 1)


def test_the_keyed_chain_needs_the_key_and_refuses_a_forged_checkpoint(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(store, 2)  # written before the key: plain hashes, accepted as the chain's prefix
    monkeypatch.setenv("ROUTEGUARD_AUDIT_KEY", KEY)
    fill(store, 2)
    records, _ = store.audit.query()
    assert [r.hash.split(":")[0] for r in records] == ["sha256", "sha256", "hmac-sha256", "hmac-sha256"]
    good = store.audit.checkpoint()
    assert store.audit.verify(good).ok
    forged = Checkpoint(good.seq, good.hash, good.ts, good.alg, "0" * 64)
    assert "signature" in (store.audit.verify(forged).reason or "")
    monkeypatch.setenv("ROUTEGUARD_AUDIT_KEY", "another-key")
    assert store.audit.verify().first_broken == 3
    monkeypatch.delenv("ROUTEGUARD_AUDIT_KEY")
    result = store.audit.verify()
    assert (result.ok, result.first_broken) == (False, 3) and "ROUTEGUARD_AUDIT_KEY" in (result.reason or "")


def test_cli_checkpoint_and_verify_detect_a_wipe(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    env = {"ROUTEGUARD_AUDIT_KEY": KEY}
    with run_service(url, config=EXAMPLE, checkpoint_every_s=0):
        pass
    out = tmp_path / "cp.json"
    result = run_cli("audit", "checkpoint", "--db", url, "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == read_checkpoint(out).to_dict()
    assert run_cli("audit", "verify", "--db", url, "--checkpoint", str(out), env=env).returncode == 0
    with open_test_store("sqlite", tmp_path) as store:
        rewind(store, 0)
    assert run_cli("audit", "verify", "--db", url, env=env).returncode == 0
    result = run_cli("audit", "verify", "--db", url, "--checkpoint", str(out), "--json", env=env)
    assert result.returncode == 1
    assert json.loads(result.stdout)["ok"] is False


def test_the_service_writes_checkpoints_and_its_verify_uses_them(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    with run_service(url, config=EXAMPLE, checkpoint_every_s=0.2) as svc, svc.client() as http:
        default = Path(str(db) + ".checkpoint.json")
        assert svc.state.checkpoints.path == default
        svc.state.checkpoints.write_now()
        assert read_checkpoint(default).seq >= 1
        assert http.get("/v1/audit/verify").json()["ok"] is True
        with open_test_store("sqlite", tmp_path) as store:
            rewind(store, 0)
        body = http.get("/v1/audit/verify").json()
        assert body["ok"] is False and body["first_broken"] == 1, body


def test_a_checkpoint_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "cp.json"
    write_checkpoint(path, Checkpoint(1, "sha256:ab", "2026-01-01T00:00:00Z"))
    write_checkpoint(path, Checkpoint(2, "sha256:cd", "2026-01-01T00:00:01Z"))
    assert read_checkpoint(path).seq == 2
    assert [p.name for p in path.parent.iterdir()] == ["cp.json"]


def test_checkpoints_also_go_to_a_notifier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEGUARD_AUDIT_KEY", KEY)
    hook = WebhookReceiver().start()
    try:
        raw = bundle()
        raw["notifiers"]["audit-archive"] = {"type": "webhook", "url": hook.url}
        config = write_bundle(tmp_path / "b.yaml", raw)
        url = f"sqlite:///{tmp_path / 'store.db'}"
        with run_service(url, config=config, checkpoint_every_s=0.1, checkpoint_notifier="audit-archive"):
            deadline = time.monotonic() + 30
            while not [b for b in hook.bodies() if b.get("event") == "audit.checkpoint"]:
                assert time.monotonic() < deadline, "no checkpoint delivered"
                time.sleep(0.05)
        sent = [b for b in hook.bodies() if b.get("event") == "audit.checkpoint"][-1]
        checkpoint = Checkpoint.from_dict({k: v for k, v in sent.items() if k != "event"})
        assert checkpoint.alg == "hmac-sha256" and checkpoint.check_signature(KEY.encode()) is None
        with open_test_store("sqlite", tmp_path) as store:
            assert store.audit.verify(checkpoint).ok
    finally:
        hook.stop()
