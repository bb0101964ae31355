"""Governance notifications that inform (CONTRACT §5), seen by a real webhook receiver on loopback:
one start and one end per terminal episode (with the number of requests it answered and its actual duration),
`expected_duration` with its basis, and deliveries to one notifier in `audit_seq` order even across failures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.receivers import WebhookReceiver
from support.service import Service, bundle, run_service, write_bundle

CALL = {"model": "triage-agent", "messages": [{"role": "user", "content": "Chest pain, 54."}],
        "metadata": {"task_type": "triage", "data_class": "restricted"}}
TERMINAL_REQUESTS = 12


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def svc(tmp_path: Path, hook: WebhookReceiver) -> Iterator[Service]:
    raw = bundle()
    for model in raw["models"].values():
        model["trusted"] = False  # so safe mode leaves no model: the terminal action applies
    raw["notifiers"] = {"governance": {"type": "webhook", "url": hook.url}}
    with run_service(f"sqlite:///{tmp_path / 'n.db'}", config=write_bundle(tmp_path / "b.yaml", raw)) as service:
        yield service


def _wait(hook: WebhookReceiver, done: Any, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        bodies = hook.bodies()
        if done(bodies):
            return bodies
        time.sleep(0.05)
    raise AssertionError(f"notifications not delivered in time: {hook.bodies()}")


def _signal(http: httpx.Client, model: str, status: str, ttl: str = "10m") -> None:
    r = http.put(f"/v1/health/{model}", json={"status": status, "source": "statuspage", "ttl": ttl})
    assert r.status_code == 200, r.text


def test_a_terminal_episode_is_notified_once_at_start_and_once_at_end(svc: Service, hook: WebhookReceiver) -> None:
    hook.status = 503  # the receiver is down for the first messages: they are retried, in order
    with svc.client(principal="ops") as http:
        _signal(http, "triage-v3", "down")  # v3 -> v2, expected to last the signal's ttl
        # safe mode with no trusted model left: the policy's terminal action (human queue) for every request
        http.post("/v1/safe-mode", json={"enabled": True, "reason": "drill"}).raise_for_status()
        for _ in range(TERMINAL_REQUESTS):
            assert http.post("/v1/chat/completions", json=CALL).status_code == 503
        hook.status = 200
        http.post("/v1/safe-mode", json={"enabled": False, "reason": "drill over"}).raise_for_status()
        routes = http.get("/v1/routes").json()["routes"]
        assert next(r["model"] for r in routes if r["policy"] == "triage-agent") == "triage-v2"

    def ended(bodies: list[dict[str, Any]]) -> bool:
        return any(b["event"] == "agent.routing.terminal" and b.get("phase") == "end" for b in bodies)

    bodies = _wait(hook, ended)
    seqs = [b["audit_seq"] for b in bodies]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), seqs  # in audit_seq order, each once

    episodes = [b for b in bodies if b["event"] == "agent.routing.terminal" and b["policy"] == "triage-agent"]
    assert [e["phase"] for e in episodes] == ["start", "end"]
    start, end = episodes
    assert start["action"] == "human_queue" and start["queue"] == "clinical-humans" and start["requests"] == 1
    assert start["expected_duration_basis"] in ("unknown", "next_check", "signal_ttl", "operator")
    assert end["requests"] == TERMINAL_REQUESTS
    assert end["duration_s"] >= 0 and end["duration"] and end["started"] == start["started"]

    changes = [b for b in bodies if b["event"] == "agent.routing.change" and b["policy"] == "triage-agent"]
    away = next(c for c in changes if (c["from_model"], c["to_model"]) == ("triage-v3", "triage-v2"))
    assert away["expected_duration_basis"] == "signal_ttl" and 590 <= away["expected_duration_s"] <= 600
    to_terminal = next(c for c in changes if c["to_model"] is None)
    back = next(c for c in changes if c["from_model"] is None and c["to_model"] == "triage-v2")
    assert to_terminal["audit_seq"] < start["audit_seq"] < end["audit_seq"]
    assert back["audit_seq"] < end["audit_seq"] and back["expected_duration_basis"] == "unknown"
    assert all({"expected_duration", "expected_duration_basis", "audit_seq", "ts", "scope"} <= set(c) for c in changes)


def test_safe_mode_carries_an_operators_expected_duration(svc: Service, hook: WebhookReceiver) -> None:
    with svc.client(principal="ops") as http:
        on = http.post("/v1/safe-mode", json={"enabled": True, "reason": "incident 42", "expected_duration": "30m"})
        assert on.status_code == 200, on.text
        bad = http.post("/v1/safe-mode", json={"enabled": False, "expected_duration": "soon"})
        assert bad.status_code == 422 and "expected_duration" in bad.json()["error"]["message"]
        http.post("/v1/safe-mode", json={"enabled": False, "reason": "over"}).raise_for_status()
    bodies = _wait(hook, lambda b: len([x for x in b if x["event"] == "safe_mode"]) >= 2)
    switches = [b for b in bodies if b["event"] == "safe_mode"]
    assert [(s["enabled"], s["expected_duration"], s["expected_duration_basis"]) for s in switches] == [
        (True, "30m", "operator"), (False, None, "unknown")]


def test_an_episode_open_across_a_restart_has_one_start_and_one_end(tmp_path: Path, hook: WebhookReceiver) -> None:
    raw = bundle()
    for model in raw["models"].values():
        model["trusted"] = False
    raw["notifiers"] = {"governance": {"type": "webhook", "url": hook.url}}
    config, db = write_bundle(tmp_path / "b.yaml", raw), f"sqlite:///{tmp_path / 'r.db'}"
    with run_service(db, config=config) as first, first.client(principal="ops") as http:
        http.post("/v1/safe-mode", json={"enabled": True, "reason": "drill"}).raise_for_status()
        for _ in range(3):
            assert http.post("/v1/chat/completions", json=CALL).status_code == 503
    with run_service(db, config=config) as second, second.client(principal="ops") as http:
        for _ in range(2):
            assert http.post("/v1/chat/completions", json=CALL).status_code == 503
        http.post("/v1/safe-mode", json={"enabled": False, "reason": "over"}).raise_for_status()
        bodies = _wait(hook, lambda b: any(x.get("phase") == "end" and x["policy"] == "triage-agent" for x in b))
    episodes = [b for b in bodies if b["event"] == "agent.routing.terminal" and b["policy"] == "triage-agent"]
    assert [(e["phase"], e["requests"]) for e in episodes] == [("start", 1), ("end", 5)]
