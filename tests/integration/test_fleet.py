"""A fleet: three `routeguard serve` processes on one PostgreSQL database (CONTRACT §6 "Fleets").

A change made through any replica is in effect there before it answers, and on the other two within a second
(asserted with 1.5 s, for the harness's own HTTP polling): what they serve (`/v1/route`'s policy_version,
safe mode's trusted-only choice), what they report (`/v1/policies`, `/v1/safe-mode`, `/v1/cluster`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.fleet import fleet, poll_until, postgres_database
from support.service import ROUTE, bundle, write_bundle

pytestmark = pytest.mark.services

WITHIN_S = 1.5
ALICE = {"x-routeguard-principal": "alice"}
BOB = {"x-routeguard-principal": "bob"}


def _client(url: str, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(base_url=url, headers=headers or {}, timeout=10.0)


def _upload_and_approve(http: httpx.Client, raw: dict[str, Any]) -> int:
    r = http.post("/v1/policies", json={"config": raw}, headers=ALICE)
    assert r.status_code == 201, r.text
    version = int(r.json()["version"])
    assert http.post(f"/v1/policies/{version}/approve", json={}, headers=BOB).status_code == 200
    return version


def _serves(http: httpx.Client, version: int) -> bool:
    return bool(http.post("/v1/route", json=ROUTE).json()["policy_version"] == version)


def _lists(http: httpx.Client, version: int) -> bool:
    body = http.get("/v1/policies").json()
    status = {v["version"]: v["status"] for v in body["versions"]}
    return bool(body["stable_version"] == version and status[version] == "published")


def _cluster_agrees(http: httpx.Client, version: int, replicas: int) -> bool:
    body = http.get("/v1/cluster").json()
    rows = [r for r in body["replicas"] if r["status"] != "gone"]
    return bool(
        body["policy_versions"]["all"] == version
        and body["agreed"]
        and len(rows) == replicas
        and all(r["serving"]["all"] == version and r["version"] == version for r in rows)
    )


def _everywhere(clients: dict[str, httpx.Client], names: str, check: Any, what: str, started: float) -> None:
    for name in names:
        poll_until(lambda n=name: check(clients[n]), started + WITHIN_S, f"{what} on {name}")


def test_publish_safe_mode_and_rollback_reach_every_replica_within_a_second(tmp_path: Path) -> None:
    config = write_bundle(tmp_path / "v1.yaml", bundle())
    with postgres_database() as url, fleet(url, config, "abc", cwd=tmp_path) as replicas:
        http = {name: _client(r.url) for name, r in replicas.items()}
        for client in http.values():
            assert _serves(client, 1)
        # publish v2 on A: A serves it as it answers, B and C within a second, and say so
        v2 = _upload_and_approve(http["a"], bundle(primary="triage-v2"))
        r = http["a"].post(f"/v1/policies/{v2}/publish", json={"scope": {"all": True}}, headers=BOB)
        published = time.monotonic()
        assert r.status_code == 200, r.text
        assert _serves(http["a"], v2) and _lists(http["a"], v2)
        _everywhere(http, "bc", lambda c: _serves(c, v2), "serving the publication", published)
        _everywhere(http, "bc", lambda c: _lists(c, v2), "listing it as published", published)
        _everywhere(http, "abc", lambda c: _cluster_agrees(c, v2, 3), "/v1/cluster agreeing", published)
        # safe mode on B: A and C choose only trusted models within a second, and report it
        assert http["a"].post("/v1/route", json=ROUTE).json()["model"] == "triage-v2"
        r = http["b"].post("/v1/safe-mode", json={"enabled": True, "reason": "fleet test"}, headers=BOB)
        switched = time.monotonic()
        assert r.status_code == 200, r.text
        assert http["b"].post("/v1/route", json=ROUTE).json()["safe_mode"] is True

        def in_safe_mode(c: httpx.Client) -> bool:
            decision = c.post("/v1/route", json=ROUTE).json()
            status = c.get("/v1/safe-mode").json()
            return bool(decision["safe_mode"] and status["enabled"] and status["global"]["enabled"])

        _everywhere(http, "ac", in_safe_mode, "safe mode", switched)
        off = http["c"].post("/v1/safe-mode", json={"enabled": False, "reason": "over"}, headers=BOB)
        switched = time.monotonic()
        assert off.status_code == 200

        def out_of_safe_mode(c: httpx.Client) -> bool:
            status = c.get("/v1/safe-mode").json()
            decision = c.post("/v1/route", json=ROUTE).json()
            return bool(not decision["safe_mode"] and not status["enabled"] and not status["global"]["enabled"])

        _everywhere(http, "ab", out_of_safe_mode, "safe mode off", switched)
        # rollback on C to version 1: A and B serve and list version 1 within a second
        r = http["c"].post("/v1/rollback", json={"version": 1}, headers=BOB)
        rolled = time.monotonic()
        assert r.status_code == 200, r.text
        assert _serves(http["c"], 1)
        _everywhere(http, "ab", lambda c: _serves(c, 1), "serving the rollback", rolled)
        _everywhere(http, "ab", lambda c: _lists(c, 1), "listing the rollback", rolled)
        _everywhere(http, "abc", lambda c: _cluster_agrees(c, 1, 3), "/v1/cluster after the rollback", rolled)
        # one record per change for the whole fleet, and the chain intact
        records = http["b"].get("/v1/audit", params={"limit": 1000}).json()["records"]
        kinds = [rec["kind"] for rec in records]
        assert kinds.count("policy.published") == 1 and kinds.count("policy.rolled_back") == 1
        assert kinds.count("safe_mode") == 2
        assert http["c"].get("/v1/audit/verify").json()["ok"] is True
        for client in http.values():
            client.close()


def test_a_staged_publication_reaches_every_replica_per_scope(tmp_path: Path) -> None:
    config = write_bundle(tmp_path / "v1.yaml", bundle())
    with postgres_database() as url, fleet(url, config, "ab", cwd=tmp_path) as replicas:
        a, b = _client(replicas["a"].url), _client(replicas["b"].url)
        v2 = _upload_and_approve(b, bundle(primary="triage-v2"))
        r = b.post(f"/v1/policies/{v2}/publish", json={"scope": {"tenants": ["acme"]}}, headers=BOB)
        assert r.status_code == 200, r.text
        started = time.monotonic()
        acme = {**ROUTE, "tenant": "acme"}
        poll_until(lambda: a.post("/v1/route", json=acme).json()["policy_version"] == v2, started + WITHIN_S, "acme")
        assert a.post("/v1/route", json={**ROUTE, "tenant": "beta"}).json()["policy_version"] == 1

        def scoped(c: httpx.Client) -> bool:
            body = c.get("/v1/cluster").json()
            want = {"all": 1, "tenants:acme": v2}
            return bool(body["policy_versions"] == want and all(r["serving"] == want for r in body["replicas"]))

        poll_until(lambda: scoped(a) and scoped(b), started + WITHIN_S, "per-scope versions in /v1/cluster")
        a.close()
        b.close()


def _listeners(url: str) -> list[int]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'"
        ).fetchall()
    return [int(r[0]) for r in rows]


def test_a_lost_listen_connection_is_bridged_by_the_poll_and_comes_back(tmp_path: Path) -> None:
    import psycopg

    config = write_bundle(tmp_path / "v1.yaml", bundle())
    with postgres_database() as url, fleet(url, config, "ab", cwd=tmp_path) as replicas:
        a, b = _client(replicas["a"].url), _client(replicas["b"].url)
        poll_until(lambda: len(_listeners(url)) == 2, time.monotonic() + 10, "both replicas listening")
        with psycopg.connect(url, autocommit=True) as conn:  # cut every LISTEN connection
            for pid in _listeners(url):
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        v2 = _upload_and_approve(a, bundle(primary="triage-v2"))
        assert a.post(f"/v1/policies/{v2}/publish", json={}, headers=BOB).status_code == 200
        published = time.monotonic()
        poll_until(lambda: _serves(b, v2), published + WITHIN_S, "b serving without its LISTEN connection")
        poll_until(lambda: len(_listeners(url)) == 2, time.monotonic() + 15, "LISTEN connections restored")
        poll_until(lambda: b.get("/readyz").json()["fleet"]["changes"] == "listen", time.monotonic() + 5, "listen")
        a.close()
        b.close()
