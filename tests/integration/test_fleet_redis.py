"""Fleet-wide health with `--redis` (CONTRACT §6 "Fleets"): three `routeguard serve` processes on one
PostgreSQL database and the machine's Redis (keys prefixed by the test's own database: nothing else is touched).

- outcomes sent to A eject the model on B and C within a second (asserted with 1.5 s: the harness polls);
- the probe budget is the fleet's: at most `probes` requests, over all replicas, reach the recovering model
  before it serves again, and the switch back is one `route.changed` record for the whole fleet;
- an external signal put on C holds on A and B within a second;
- one replica runs each model's active health check per interval (a Redis lock).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from routeguard.store.redis_bus import fleet_prefix
from support.fleet import fleet, poll_until, postgres_database
from support.service import ROUTE, bundle, write_bundle
from support.services import redis_url_or_skip
from support.upstream import UpstreamServer, upstream_server

pytestmark = pytest.mark.services

WITHIN_S = 1.5
PRIMARY, FALLBACK = "triage-v3", "triage-v2"
PROBES = 3
HEALTH = {"window": "60s", "min_samples": 10, "error_rate": 0.5, "consecutive_failures": 3, "cooldown": "2s",
          "probes": PROBES, "probes_in_flight": PROBES, "timeout_rate": 0.5, "stale_after": "5m"}


def _route(http: httpx.Client) -> dict[str, Any]:
    r = http.post("/v1/route", json=ROUTE)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _state(http: httpx.Client, model: str = PRIMARY) -> str:
    body = http.get("/v1/health").json()["models"]
    entry = next(m for m in body if m["model"] == model) if isinstance(body, list) else body[model]
    return str(entry["policies"]["triage-agent"]["state"])


def _fail(http: httpx.Client, n: int) -> None:
    outcomes = [{"model": PRIMARY, "ok": False, "error": "server_error"} for _ in range(n)]
    assert http.post("/v1/outcomes", json=outcomes).status_code == 202


def _recover(http: dict[str, httpx.Client], deadline: float) -> list[str]:
    """Bursts of traffic on every replica until each serves the primary as a non-probe. Returns the replica of
    every request that reached the primary before that; their callers report successes after each burst
    (so several probes may be in flight at once, on several replicas)."""
    reached: list[str] = []
    back: set[str] = set()
    while back != set(http):
        assert time.monotonic() < deadline, f"no recovery: {reached}, back on {sorted(back)}"
        probes: list[tuple[httpx.Client, str]] = []
        for name, client in http.items():
            for _ in range(PROBES):
                decision = _route(client)
                if decision["model"] != PRIMARY:
                    continue
                if not decision.get("probe"):
                    back.add(name)
                    continue
                reached.append(name)
                probes.append((client, decision["trace_id"]))
        for client, trace_id in probes:
            outcome = {"trace_id": trace_id, "model": PRIMARY, "ok": True, "latency_ms": 5}
            assert client.post("/v1/outcomes", json=outcome).status_code == 202
        time.sleep(0.02)
    return reached


def _forget(redis_url: str, db_url: str) -> None:
    """Delete this test's keys (its own prefix) from the shared Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{fleet_prefix(db_url)}*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_health_is_fleet_wide_ejection_probe_budget_and_signals(tmp_path: Path) -> None:
    redis_url = redis_url_or_skip()
    config = write_bundle(tmp_path / "v1.yaml", bundle(health=HEALTH))
    with postgres_database("rg_redis") as url:
        try:
            _fleet_health(url, redis_url, config, tmp_path)
        finally:
            _forget(redis_url, url)


def _fleet_health(url: str, redis_url: str, config: Path, tmp_path: Path) -> None:
    with fleet(url, config, "abc", cwd=tmp_path, extra=("--redis", redis_url)) as replicas:
        http = {name: httpx.Client(base_url=r.url, timeout=10.0) for name, r in replicas.items()}
        for name, client in http.items():
            poll_until(lambda c=client: c.get("/readyz").json()["checks"].get("redis") == "up",
                       time.monotonic() + 5, f"redis link up on {name}")
            assert _route(client)["model"] == PRIMARY
        # outcomes sent to A eject the primary on B and C within a second
        _fail(http["a"], 3)
        sent = time.monotonic()
        assert _route(http["a"])["model"] == FALLBACK
        for name in "bc":
            poll_until(lambda n=name: _route(http[n])["model"] == FALLBACK, sent + WITHIN_S, f"ejection on {name}")
            assert _state(http[name]) == "unhealthy"
        # the probe budget is shared: at most PROBES requests fleet-wide reach it before it serves again
        reached = _recover(http, time.monotonic() + 20)
        assert 1 <= len(reached) <= PROBES, reached
        for name, client in http.items():
            assert _state(client) == "healthy", name
        with httpx.Client(base_url=replicas["a"].url) as a:
            changes = [r for r in a.get("/v1/audit", params={"kind": "route.changed", "limit": 50}).json()["records"]
                       if r.get("policy") == "triage-agent"]
        assert len(changes) == 2, changes  # away and back, once each for the whole fleet
        # a signal on C holds everywhere
        r = http["c"].put(f"/v1/health/{PRIMARY}", json={"status": "down", "source": "pager", "ttl": "60s"})
        assert r.status_code == 200, r.text
        signalled = time.monotonic()
        for name in "ab":
            poll_until(lambda n=name: _route(http[n])["model"] == FALLBACK, signalled + WITHIN_S, f"signal on {name}")
        cluster = http["b"].get("/v1/cluster").json()
        assert cluster["redis"]["status"] == "up" and cluster["redis"]["applied"] > 0


def test_one_replica_runs_each_models_active_check_per_interval(tmp_path: Path) -> None:
    redis_url = redis_url_or_skip()
    with upstream_server() as upstream, postgres_database("rg_redis_checks") as url:
        raw = bundle()
        raw["models"][PRIMARY]["endpoint"]["base_url"] = upstream.base_url
        raw["models"][PRIMARY]["health_check"] = {"interval": "1s", "timeout": "1s", "always": True}
        config = write_bundle(tmp_path / "v1.yaml", raw)
        try:
            with fleet(url, config, "abc", cwd=tmp_path, extra=("--redis", redis_url), env={"ACME_KEY": "k"}):
                time.sleep(1.5)  # every replica's link is up and checking
                before = _checks(upstream)
                time.sleep(4.0)
                checks = _checks(upstream) - before
        finally:
            _forget(redis_url, url)
    assert 3 <= checks <= 6, checks  # one per second for the fleet (three replicas alone would send ~12)


def _checks(upstream: UpstreamServer) -> int:
    return sum(1 for r in upstream.requests if r.model == PRIMARY and r.body.get("max_tokens") == 16)
