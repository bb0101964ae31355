"""JSON event log lines: one object per line, parseable, with ts/level/event and the event's fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from bundles import NOW

from routeguard.core.decision import Decision, DecisionStatus
from routeguard.core.events import RouteChanged, SafeModeChanged, TerminalEngaged
from routeguard.telemetry.logs import (
    JsonFormatter,
    configure_json_logging,
    log_decision,
    log_event,
    log_policy,
)


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = configure_json_logging("INFO", stream=out)
    yield out
    logging.getLogger("routeguard").removeHandler(handler)
    logging.getLogger("routeguard").propagate = True


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def decision() -> Decision:
    return Decision("t-1", "triage-agent", 3, "sha256:x", DecisionStatus.PRIMARY, "triage-v3", None, (),
                    False, False, None, None, 0.001, ())


def test_events_are_one_json_object_per_line(stream: io.StringIO) -> None:
    log_event(RouteChanged("triage-agent", "all", "triage-v3", "triage-v2", "unhealthy\nwith newline",
                           {"approved": True}, 300.0, NOW))
    log_event(SafeModeChanged(True, "incident", NOW, tenant="acme"))
    log_event(TerminalEngaged("triage-agent", "human_queue", "no model", NOW, "t-9", "humans"))
    log_policy("published", version=7, scope={"all": True})
    change, safe, terminal, policy = lines(stream)
    assert {"ts", "level", "event", "logger"} <= set(change)
    assert change["event"] == "agent.routing.change" and change["level"] == "INFO"
    assert (change["from_model"], change["to_model"], change["expected_duration"]) == (
        "triage-v3", "triage-v2", "300s")
    assert change["reason"] == "unhealthy\nwith newline" and change["kind"] == "route.changed"
    assert str(change["ts"]).endswith("Z") and str(change["at"]).startswith("2026-06-01T12:00:00")
    assert safe["event"] == "agent.routing.safe_mode" and safe["enabled"] is True and safe["tenant"] == "acme"
    assert terminal["event"] == "agent.routing.terminal" and terminal["queue"] == "humans"
    assert policy == {**policy, "event": "agent.routing.policy", "action": "published", "version": 7,
                      "scope": {"all": True}}


def test_decisions_are_debug_only(stream: io.StringIO) -> None:
    log_decision(decision(), 0.000042)
    assert stream.getvalue() == ""
    logging.getLogger("routeguard").setLevel(logging.DEBUG)
    log_decision(decision(), 0.000042)
    (line,) = lines(stream)
    assert line["event"] == "agent.routing.decision" and line["level"] == "DEBUG"
    assert line["model"] == "triage-v3" and line["status"] == "primary" and line["latency_us"] == 42.0


def test_formatter_handles_exceptions_and_odd_values() -> None:
    record = logging.LogRecord("routeguard.x", logging.ERROR, __file__, 1, "boom %s", ("now",), None)
    record.fields = {"level": "clash", "obj": object()}
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "boom now" and line["level"] == "ERROR" and line["field_level"] == "clash"
    assert "ValueError: bad" in line["exc"] and line["obj"].startswith("<object")
