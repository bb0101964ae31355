"""Each routing change is recorded and notified once for the whole fleet (CONTRACT §2 invariant 6, §6).

Safe mode switched on one replica reaches the other two within a second, and every replica then sees its
untrusted primary refused: three replicas observe the same transition, under concurrent traffic on all of
them. The compare-and-set on (policy, scope, version) lets exactly one of them write the `route.changed`
record and its outbox message.
"""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from support.fleet import _libpq, fleet, poll_until, postgres_database
from support.service import ROUTE, bundle, write_bundle

pytestmark = pytest.mark.services

OPERATOR = {"x-routeguard-principal": "olga"}


def _serving(url: str) -> str | None:
    routes = httpx.get(url + "/v1/routes", timeout=10).json()["routes"]
    return next(r["model"] for r in routes if r["policy"] == "triage-agent" and r["scope"] == "all")


def _traffic(urls: list[str], seconds: float) -> int:
    """Route requests on every replica at once for `seconds`; how many were answered."""
    deadline = time.monotonic() + seconds

    def loop(url: str) -> int:
        answered = 0
        with httpx.Client(base_url=url, timeout=10) as http:
            while time.monotonic() < deadline:
                assert http.post("/v1/route", json=ROUTE).status_code == 200
                answered += 1
        return answered

    with concurrent.futures.ThreadPoolExecutor(len(urls)) as pool:
        return sum(pool.map(loop, urls))


def _counts(db_url: str) -> tuple[int, int]:
    with psycopg.connect(_libpq(db_url)) as conn:
        records = conn.execute(
            "SELECT count(*) FROM audit_log WHERE kind = 'route.changed' AND policy = 'triage-agent'"
        ).fetchone()
        messages = conn.execute(
            "SELECT count(*) FROM outbox WHERE kind = 'route.changed' AND payload LIKE '%triage-agent%'"
        ).fetchone()
    assert records is not None and messages is not None
    return int(records[0]), int(messages[0])


def test_a_transition_seen_by_three_replicas_is_logged_and_notified_once(tmp_path: Path) -> None:
    raw = bundle(primary="triage-v4")  # an untrusted primary: safe mode moves every replica to triage-v2
    raw["notifiers"] = {"governance": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}}
    config = write_bundle(tmp_path / "bundle.yaml", raw)
    with postgres_database() as url, fleet(url, config, "abc", cwd=tmp_path) as replicas:
        urls = [r.url for r in replicas.values()]
        assert {_serving(u) for u in urls} == {"triage-v4"}
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            load = pool.submit(_traffic, urls, 3.0)
            on = httpx.post(urls[0] + "/v1/safe-mode", json={"enabled": True, "reason": "drill"}, headers=OPERATOR)
            assert on.status_code == 200
            for u in urls:
                poll_until(lambda u=u: _serving(u) == "triage-v2", time.monotonic() + 3, f"safe mode on {u}")
            assert load.result() > 0
        assert _counts(url) == (1, 1)  # three replicas saw v4 -> v2: one record, one notification
        off = httpx.post(urls[1] + "/v1/safe-mode", json={"enabled": False, "reason": "drill over"},
                         headers=OPERATOR)
        assert off.status_code == 200
        for u in urls:
            poll_until(lambda u=u: _serving(u) == "triage-v4", time.monotonic() + 3, f"safe mode off on {u}")
        _traffic(urls, 1.0)
        assert _counts(url) == (2, 2)
        verify = httpx.get(urls[2] + "/v1/audit/verify", timeout=10).json()
        assert verify["ok"] is True
