"""Losing Redis mid-traffic (CONTRACT §6 "Fleets"): two replicas on one PostgreSQL database and a private
`redis-server`, killed with SIGKILL while a client keeps routing through both.

- every request is answered within governance (200, a model the policy allows) while Redis is gone;
- `/readyz` stays 200 and says `redis: down` within a second; `/v1/cluster` shows the link down;
- health is per replica meanwhile (A's failures eject the model on A only);
- Redis comes back empty: both rejoin by themselves, A pushes what B missed, B ejects the model too, and the
  routing change is recorded once for the fleet.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from support.fleet import fleet, poll_until, postgres_database
from support.redis_server import redis_server
from support.service import ROUTE, bundle, write_bundle

pytestmark = pytest.mark.services

PRIMARY, FALLBACK = "triage-v3", "triage-v2"
HEALTH = {"window": "60s", "min_samples": 10, "error_rate": 0.5, "consecutive_failures": 3, "cooldown": "60s"}


class Traffic(threading.Thread):
    """Routes through every replica in turn until stopped; counts answers by (status, model)."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__(daemon=True)
        self.urls = urls
        self.seen: Counter[tuple[int, str | None]] = Counter()
        self.halt = threading.Event()

    def run(self) -> None:
        clients = [httpx.Client(base_url=u, timeout=10.0) for u in self.urls]
        while not self.halt.is_set():
            for client in clients:
                r = client.post("/v1/route", json=ROUTE)
                self.seen[(r.status_code, r.json().get("model") if r.status_code == 200 else None)] += 1
            time.sleep(0.005)


def _redis(client: httpx.Client, want: str) -> bool:
    r = client.get("/readyz")
    return r.status_code == 200 and r.json()["checks"].get("redis") == want


def _model(client: httpx.Client) -> str:
    return str(client.post("/v1/route", json=ROUTE).json()["model"])


def test_losing_redis_keeps_serving_reports_it_and_rejoins(tmp_path: Path) -> None:
    config = write_bundle(tmp_path / "v1.yaml", bundle(health=HEALTH))
    with redis_server() as server, postgres_database("rg_redis_loss") as url, \
            fleet(url, config, "ab", cwd=tmp_path, extra=("--redis", server.url)) as replicas:
        a, b = (httpx.Client(base_url=replicas[n].url, timeout=10.0) for n in "ab")
        for client in (a, b):
            poll_until(lambda c=client: _redis(c, "up"), time.monotonic() + 5, "redis link up")
        traffic = Traffic([replicas["a"].url, replicas["b"].url])
        traffic.start()
        time.sleep(0.3)
        server.kill()
        killed = time.monotonic()
        for client in (a, b):
            poll_until(lambda c=client: _redis(c, "down"), killed + 1.5, "readyz saying redis: down")
        assert b.get("/v1/cluster").json()["redis"]["status"] == "down"
        # while Redis is gone each replica judges health from its own view
        outcomes = [{"model": PRIMARY, "ok": False, "error": "server_error"} for _ in range(3)]
        assert a.post("/v1/outcomes", json=outcomes).status_code == 202
        assert _model(a) == FALLBACK
        time.sleep(0.5)
        assert _model(b) == PRIMARY
        # Redis returns (empty): both rejoin, and what A saw meanwhile reaches B
        server.start()
        restarted = time.monotonic()
        for client in (a, b):
            poll_until(lambda c=client: _redis(c, "up"), restarted + 3, "the link back up")
        poll_until(lambda: _model(b) == FALLBACK, time.monotonic() + 1.5, "A's ejection pushed to B on return")
        traffic.halt.set()
        traffic.join(timeout=10)
        answers = dict(traffic.seen)
        assert answers and set(answers) <= {(200, PRIMARY), (200, FALLBACK)}, answers
        changes = [r for r in a.get("/v1/audit", params={"kind": "route.changed"}).json()["records"]
                   if r.get("policy") == "triage-agent"]
        assert len(changes) == 1, changes
