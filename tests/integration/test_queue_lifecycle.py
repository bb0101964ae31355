"""The human queue (CONTRACT §3): a terminal `human_queue` call parks an entry; operators list it, claim it and
resolve it over HTTP and with `routeguard queue …`; each step is audited with its principal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.service import EXAMPLE, Service, run_cli, run_service

CALL = {"model": "triage-agent", "messages": [{"role": "user", "content": "Chest pain, 54."}],
        "metadata": {"task_type": "triage", "data_class": "restricted", "tenant": "acme"}}


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[Service]:
    with run_service(f"sqlite:///{tmp_path / 'q.db'}", config=EXAMPLE) as service:
        with service.client(principal="pager") as http:
            for model in ("triage-v3", "triage-v2"):
                signal = {"status": "down", "source": "pager", "ttl": "10m"}
                assert http.put(f"/v1/health/{model}", json=signal).status_code == 200
        yield service


def _park(http: httpx.Client) -> int:
    answer = http.post("/v1/chat/completions", json=CALL)
    assert answer.status_code == 503, answer.text
    return int(answer.json()["error"]["queue_entry"])


def _audit(http: httpx.Client, kind: str) -> list[dict[str, Any]]:
    return list(http.get("/v1/audit", params={"kind": kind}).json()["records"])


def test_list_claim_resolve_over_http(svc: Service) -> None:
    with svc.client(principal="nurse-a") as a, svc.client(principal="nurse-b") as b:
        first, second = _park(a), _park(a)
        listed = a.get("/v1/queue", params={"queue": "clinical-humans", "policy": "triage-agent",
                                            "status": "pending"}).json()["entries"]
        assert [e["id"] for e in listed] == [first, second]
        assert a.get("/v1/queue", params={"policy": "someone-else"}).json()["entries"] == []

        claimed = a.post(f"/v1/queue/{first}/claim")
        assert claimed.status_code == 200 and claimed.json()["claimed_by"] == "nurse-a"
        assert a.post(f"/v1/queue/{first}/claim").status_code == 200  # claiming one's own claim again
        taken = b.post(f"/v1/queue/{first}/claim")
        assert taken.status_code == 409 and "nurse-a" in taken.json()["error"]["message"]
        assert b.post(f"/v1/queue/{first}/resolve", json={"resolution": "answered"}).status_code == 409

        done = a.post(f"/v1/queue/{first}/resolve", json={"resolution": "answered", "note": "called back"})
        assert done.status_code == 200
        assert done.json()["status"] == "resolved" and done.json()["resolution"] == {
            "resolution": "answered", "note": "called back"}
        assert a.post(f"/v1/queue/{first}/resolve", json={"resolution": "again"}).status_code == 409
        assert a.post("/v1/queue/999999/claim").status_code == 404
        assert a.post(f"/v1/queue/{second}/resolve", json={}).status_code == 422  # resolution is required

        by_status = {s: [e["id"] for e in a.get("/v1/queue", params={"status": s}).json()["entries"]]
                     for s in ("pending", "claimed", "resolved")}
        assert by_status == {"pending": [second], "claimed": [], "resolved": [first]}
        claims, resolutions = _audit(a, "queue.claimed"), _audit(a, "queue.resolved")
        assert [(r["actor"], r["payload"]["entry"]) for r in claims] == [("nurse-a", first)]
        assert [(r["actor"], r["payload"]["entry"]) for r in resolutions] == [("nurse-a", first)]
        assert a.get("/v1/audit/verify").json()["ok"] is True


def test_the_queue_commands_against_a_server(svc: Service) -> None:
    with svc.client(principal="pager") as http:
        entry = _park(http)
    listed = run_cli("queue", "list", "--server", svc.url, "--status", "pending", "--json")
    assert listed.returncode == 0 and [e["id"] for e in json.loads(listed.stdout)["entries"]] == [entry]
    claim = run_cli("queue", "claim", str(entry), "--server", svc.url, "--as", "nurse-a")
    assert claim.returncode == 0 and "claimed entry" in claim.stdout and "nurse-a" in claim.stdout
    other = run_cli("queue", "claim", str(entry), "--server", svc.url, "--as", "nurse-b")
    assert other.returncode == 1 and "409" in other.stderr
    done = run_cli("queue", "resolve", str(entry), "--resolution", "escalated", "--note", "to cardiology",
                   "--server", svc.url, "--as", "nurse-a", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["resolution"]["resolution"] == "escalated"
    table = run_cli("queue", "list", "--server", svc.url)
    assert table.returncode == 0 and "resolved" in table.stdout and "escalated" in table.stdout
    usage = run_cli("queue", "resolve", str(entry), "--server", svc.url)
    assert usage.returncode == 2  # --resolution is required
