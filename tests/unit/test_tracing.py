"""Tracing: a no-op unless configured; spans with policy/model/status/fallback attributes when it is."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from routeguard.core.decision import Decision, DecisionStatus
from routeguard.execution.executor import Served
from routeguard.telemetry import tracing


@pytest.fixture(autouse=True)
def _off() -> Iterator[None]:
    tracing.shutdown_tracing()
    yield
    tracing.shutdown_tracing()


def decision() -> Decision:
    return Decision("t-1", "triage-agent", 3, "sha256:x", DecisionStatus.FALLBACK, "triage-v2", None, (),
                    False, False, None, None, None, ())


def test_not_configured_is_a_no_op() -> None:
    assert tracing.configure_tracing(set_global=False, env={}) is False
    assert tracing.configure_tracing(set_global=False, env={"OTEL_TRACES_EXPORTER": "none",
                                          "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}) is False
    disabled = {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"}
    assert tracing.configure_tracing(set_global=False, env=disabled) is False
    with tracing.span_decision("triage-agent") as span:
        span.record_decision(decision())
        assert not span.recording
    with pytest.raises(KeyError), tracing.span_proxy_call("p", "m"):
        raise KeyError("the block's own errors still propagate")


def test_console_exporter_from_the_environment() -> None:
    assert tracing.configure_tracing(set_global=False, env={"OTEL_TRACES_EXPORTER": "console"}) is True
    assert tracing.tracing_enabled()


def test_otlp_endpoint_alone_selects_otlp_and_a_missing_exporter_leaves_tracing_off() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
    except ImportError:
        assert tracing.configure_tracing(set_global=False, env=env) is False  # warned, no exception
    else:
        assert tracing.configure_tracing(set_global=False, env=env) is True


def test_spans_carry_the_routing_attributes() -> None:
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing(exporter=exporter, set_global=False) is True
    with tracing.span_decision("triage-agent", agent="triage-agent") as span:
        span.record_decision(decision())
    with tracing.span_proxy_call("triage-agent", "triage-v3", stream=True) as span:
        span.record_served(Served(decision(), "triage-v2", 3, fell_back=True))
    with pytest.raises(RuntimeError), tracing.span_proxy_call("triage-agent", "triage-v3"):
        raise RuntimeError("upstream broke")
    decide, proxy, failed = exporter.get_finished_spans()
    assert decide.name == "routeguard.decide"
    assert dict(decide.attributes or {}) == {
        "routeguard.policy": "triage-agent", "routeguard.agent": "triage-agent",
        "routeguard.policy_version": 3,
        "routeguard.status": "fallback", "routeguard.model": "triage-v2", "routeguard.fallback": True,
        "routeguard.safe_mode": False, "routeguard.degraded": False, "routeguard.trace_id": "t-1",
    }
    attrs = dict(proxy.attributes or {})
    assert proxy.name == "routeguard.proxy" and attrs["routeguard.stream"] is True
    assert (attrs["routeguard.model"], attrs["routeguard.fallback"], attrs["routeguard.attempts"]) == (
        "triage-v2", True, 3)
    assert attrs["gen_ai.request.model"] == "triage-v3"
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.events and failed.events[0].name == "exception"
