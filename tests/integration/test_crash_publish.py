"""kill -9 of `routeguard serve` in the middle of publishes and safe-mode changes (issue 13): after each
crash the audit chain verifies, no version is half-written, every acknowledged change is in the store and
its notification in the outbox, and after a restart every acknowledged change is delivered at least once.

`ROUTEGUARD_CHAOS_ROUNDS` rounds (default 3; `make chaos ROUNDS=50`).
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from routeguard.core.table import content_hash
from routeguard.store.db import Store, open_store
from support.receivers import WebhookReceiver
from support.service import bundle, serve_process, write_bundle

ROUNDS = int(os.environ.get("ROUTEGUARD_CHAOS_ROUNDS", "3"))


@dataclass
class Acked:
    uploads: set[int] = field(default_factory=set)
    published: set[int] = field(default_factory=set)
    safe_mode_seqs: set[int] = field(default_factory=set)


def _traffic(url: str, acked: Acked, stop: threading.Event, raw: dict[str, object], seed: int) -> None:
    rng = random.Random(seed)
    alice = httpx.Client(base_url=url, headers={"x-routeguard-principal": "alice"}, timeout=10)
    bob = httpx.Client(base_url=url, headers={"x-routeguard-principal": "bob"}, timeout=10)
    try:
        while not stop.is_set():
            r = alice.post("/v1/policies", json={"config": raw, "label": f"chaos-{rng.random():.6f}"})
            if r.status_code != 201:
                continue
            version = r.json()["version"]
            acked.uploads.add(version)
            if bob.post(f"/v1/policies/{version}/approve", json={}).status_code != 200:
                continue
            scope = {"all": True} if rng.random() < 0.5 else {"tenants": [f"t{rng.randint(1, 3)}"]}
            if bob.post(f"/v1/policies/{version}/publish", json={"scope": scope}).status_code == 200:
                acked.published.add(version)
            r = bob.post("/v1/safe-mode", json={"enabled": rng.random() < 0.5, "reason": "chaos"})
            if r.status_code == 200:
                acked.safe_mode_seqs.add(int(r.json()["audit_seq"]))
    except httpx.HTTPError:
        return  # the process was killed under us
    finally:
        alice.close()
        bob.close()


def _check_store(db_url: str, acked: Acked) -> None:
    store = open_store(db_url)
    try:
        assert store.audit.verify().ok, store.audit.verify()
        versions = {pv.version: pv for pv in store.policies.list_versions(with_content=True)}
        for pv in versions.values():  # nothing half-written: content and hash agree
            assert pv.content is not None and content_hash(pv.content) == pv.content_hash, pv.version
        assert acked.uploads <= set(versions)
        published, _ = store.audit.query(kind="policy.published", limit=1000)
        assert acked.published <= {r.payload["version"] for r in published}
        for version in acked.published:
            assert versions[version].status.value in ("published", "superseded"), version
        outbox_seqs = {m.audit_seq for m in store.outbox.due(now=_far(), limit=100_000)}
        delivered = _delivered_seqs(store)
        assert acked.safe_mode_seqs <= outbox_seqs | delivered
    finally:
        store.close()


def _far() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


def _delivered_seqs(store: Store) -> set[int]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT audit_seq FROM outbox WHERE delivered_at IS NOT NULL")).all()
    return {int(r[0]) for r in rows if r[0] is not None}


@pytest.mark.slow
def test_kill_9_during_publishes_loses_no_acknowledged_change(tmp_path: Path) -> None:
    hook = WebhookReceiver().start()
    try:
        raw = bundle()
        raw["notifiers"]["governance"] = {"type": "webhook", "url": hook.url}
        config = write_bundle(tmp_path / "bundle.yaml", raw)
        db_url = f"sqlite:///{tmp_path / 'store.db'}"
        acked = Acked()
        rng = random.Random(7)
        for round_no in range(ROUNDS):
            with serve_process("--config", str(config), "--db", db_url, cwd=tmp_path) as proc:
                stop = threading.Event()
                worker = threading.Thread(target=_traffic, args=(proc.url, acked, stop, raw, round_no))
                worker.start()
                time.sleep(rng.uniform(0.4, 1.5))
                proc.kill()
                stop.set()
                worker.join(timeout=30)
            _check_store(db_url, acked)
        assert acked.published and acked.safe_mode_seqs, "no change was acknowledged: the test proved nothing"
        with serve_process("--db", db_url, cwd=tmp_path):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                got = {int(b["audit_seq"]) for b in hook.bodies() if b.get("audit_seq") is not None}
                if acked.safe_mode_seqs <= got:
                    break
                time.sleep(0.2)
            got = {int(b["audit_seq"]) for b in hook.bodies() if b.get("audit_seq") is not None}
            assert acked.safe_mode_seqs <= got, sorted(acked.safe_mode_seqs - got)
    finally:
        hook.stop()
