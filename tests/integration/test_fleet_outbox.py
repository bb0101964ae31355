"""A fleet's notifications and a replica killed under load (three `routeguard serve` on one PostgreSQL).

- every outbox message is delivered once for the whole fleet, whichever replicas drain it;
- kill -9 one replica while clients send route requests: a client that retries a connection error on the
  next replica sees no error, `/v1/cluster` shows the dead one lagging, the audit chain verifies, and what
  it had claimed is delivered by the others once its lease ends."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from support.fleet import fleet, poll_until, postgres_database
from support.receivers import WebhookReceiver
from support.service import ROUTE, bundle, write_bundle

pytestmark = pytest.mark.services

OPERATOR = {"x-routeguard-principal": "olga"}


def _outbox(url: str) -> tuple[int, list[int]]:
    """(undelivered count, audit_seq of every message) read straight from the database."""
    with psycopg.connect(url) as conn:
        pending = conn.execute("SELECT count(*) FROM outbox WHERE delivered_at IS NULL").fetchone()
        seqs = conn.execute("SELECT audit_seq FROM outbox ORDER BY id").fetchall()
    return int(pending[0] if pending else 0), [int(s[0]) for s in seqs]


class Load:
    """Threads sending /v1/route round-robin over the replicas; a connection error is retried on the next."""

    def __init__(self, urls: list[str], threads: int = 4) -> None:
        self.urls = urls
        self.ok = 0
        self.errors: list[str] = []
        self.retried = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, offset: int) -> None:
        clients = [httpx.Client(base_url=u, timeout=5.0) for u in self.urls]
        turn = itertools.count(offset)
        while not self._stop.is_set():
            start = next(turn)
            for attempt in range(len(clients)):
                client = clients[(start + attempt) % len(clients)]
                try:
                    r = client.post("/v1/route", json=ROUTE)
                except httpx.TransportError:
                    with self._lock:
                        self.retried += 1
                    continue
                with self._lock:
                    if r.status_code == 200 and r.json()["model"]:
                        self.ok += 1
                    else:
                        self.errors.append(f"{r.status_code} {r.text[:200]}")
                break
            else:
                with self._lock:
                    self.errors.append("no replica answered")
        for c in clients:
            c.close()

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)


def _toggle(http: list[httpx.Client], times: int) -> None:
    for i in range(times):
        r = http[i % len(http)].post(
            "/v1/safe-mode", json={"enabled": i % 2 == 0, "reason": f"drill {i}"}, headers=OPERATOR
        )
        assert r.status_code == 200, r.text
        time.sleep(0.15)


def test_each_message_once_for_the_fleet_and_a_killed_replica_costs_no_request(tmp_path: Path) -> None:
    hook = WebhookReceiver().start()
    raw = bundle()
    raw["notifiers"] = {"governance": {"type": "webhook", "url": hook.url}}
    config = write_bundle(tmp_path / "v1.yaml", raw)
    env = {"ROUTEGUARD_OUTBOX_LEASE_S": "8", "ROUTEGUARD_OUTBOX_POLL_S": "0.2"}
    try:
        with postgres_database() as url, fleet(url, config, "abc", cwd=tmp_path, env=env) as replicas:
            http = [httpx.Client(base_url=r.url, timeout=10.0) for r in replicas.values()]
            with Load([r.url for r in replicas.values()]) as load:
                _toggle(http, 6)  # safe-mode changes on every replica, route changes they cause
                poll_until(lambda: _outbox(url)[0] == 0, time.monotonic() + 20, "the outbox drained")
                time.sleep(0.5)  # a duplicate send would have arrived by now
                _, seqs = _outbox(url)
                received = Counter(b["audit_seq"] for b in hook.bodies())
                assert len(seqs) >= 6 and sorted(received) == sorted(set(seqs))
                assert max(received.values()) == 1  # each message delivered by exactly one replica
                # kill -9 one replica under load
                before = load.ok
                replicas["b"].kill()
                killed = time.monotonic()
                _toggle([http[0], http[2]], 4)
                poll_until(lambda: load.ok > before + 50, time.monotonic() + 20, "traffic after the kill")
            assert load.errors == [], load.errors[:5]
            assert load.retried > 0  # the dead replica was tried, and the request answered by another
            a = http[0]

            def b_lagging() -> bool:
                rows = {r["id"]: r for r in a.get("/v1/cluster").json()["replicas"]}
                return rows["b"]["status"] in ("lagging", "gone") and rows["a"]["status"] == "ok"

            poll_until(b_lagging, killed + 8, "/v1/cluster showing the killed replica lagging", every_s=0.2)
            verify = a.get("/v1/audit/verify").json()
            assert verify["ok"] is True and verify["first_broken"] is None
            # what the killed replica held is taken over once its lease ends: every change is notified
            poll_until(lambda: _outbox(url)[0] == 0, time.monotonic() + 30, "the outbox drained after the kill")
            _, seqs = _outbox(url)
            assert {b["audit_seq"] for b in hook.bodies()} == set(seqs)
            for client in http:
                client.close()
    finally:
        hook.stop()
