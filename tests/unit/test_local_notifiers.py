"""The `log` and `file` notifiers: delivered without a receiver, one JSON line per message."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from routeguard.config.load import load_bundle
from routeguard.notify.base import build_notifiers

PAYLOAD = {"event": "agent.routing.change", "policy": "p", "from_model": "a", "to_model": "b", "audit_seq": 7}


async def test_file_and_log_notifiers_deliver_json_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = {
        "models": {"m": {"capabilities": ["text"], "clearance": "public"}},
        "profiles": {"p": {"data_class": "public"}},
        "approvals": [{"model": "m", "profile": "p"}],
        "notifiers": {"ops": {"type": "log"}, "archive": {"type": "file", "path": str(tmp_path / "n" / "a.jsonl")}},
        "policies": {"p": {"profile": "p", "primary": "m", "notify": ["ops", "archive"]}},
    }
    notifiers = build_notifiers(load_bundle(raw).bundle.notifiers)
    with caplog.at_level(logging.INFO, logger="routeguard.notify"):
        for notifier in notifiers.values():
            await notifier.send(PAYLOAD)
            await notifier.send({**PAYLOAD, "audit_seq": 8})
    lines = (tmp_path / "n" / "a.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["audit_seq"] for line in lines] == [7, 8]
    logged = [r for r in caplog.records if r.name == "routeguard.notify"]
    assert len(logged) == 2 and '"audit_seq":7' in logged[0].getMessage()


def test_a_file_notifier_needs_a_path() -> None:
    from routeguard.core.findings import BundleError

    raw = {"models": {}, "profiles": {}, "policies": {"p": {"profile": "x", "primary": "m"}},
           "notifiers": {"archive": {"type": "file"}}}
    with pytest.raises(BundleError, match=r"notifiers\.archive\.path"):
        load_bundle(raw)
