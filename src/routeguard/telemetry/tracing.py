"""OpenTelemetry spans for route decisions and proxied calls; a no-op unless an exporter is configured.

Configuration follows the OpenTelemetry environment variables:
- `OTEL_TRACES_EXPORTER`: `otlp`, `console` or `none` (comma-separated list allowed). Unset: `otlp` when
  `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, otherwise tracing stays off.
- `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`: `http/protobuf` (default; the `routeguard[otlp]` extra) or `grpc`
  (needs `opentelemetry-exporter-otlp-proto-grpc`). Endpoint, headers, timeout: read by the exporter itself.
- `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SDK_DISABLED=true`: as OpenTelemetry documents.

The exporter is imported lazily; a missing package logs a warning and leaves tracing off. The span helpers
never raise because of OpenTelemetry (an exception from the traced block is recorded and re-raised as is):

    configure_tracing()                                   # at service start
    with span_decision(policy_hint) as span:
        decision = router.decide(ctx); span.record_decision(decision)
    with span_proxy_call(decision.policy, decision.model, stream=True) as span:
        ...; span.record_served(served)
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from routeguard.core.decision import Decision
    from routeguard.execution.executor import Served

__all__ = [
    "SpanHandle",
    "configure_tracing",
    "shutdown_tracing",
    "span_decision",
    "span_proxy_call",
    "tracing_enabled",
]

log = logging.getLogger("routeguard.telemetry")

_OTLP_MODULES = {
    "http/protobuf": "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "grpc": "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
}


@dataclass(slots=True)
class _State:
    tracer: Any = None
    provider: Any = None


_state = _State()


class SpanHandle:
    """What a traced block may add to its span; every method is a no-op when tracing is off."""

    __slots__ = ("_span",)

    def __init__(self, span: Any = None) -> None:
        self._span = span

    @property
    def recording(self) -> bool:
        return self._span is not None

    def set(self, key: str, value: Any) -> None:
        if self._span is None or value is None:
            return
        try:
            plain = value if isinstance(value, str | bool | int | float) else str(value)
            self._span.set_attribute(key, plain)
        except Exception:  # never let telemetry break a request
            log.debug("could not set span attribute %s", key, exc_info=True)

    def record_decision(self, decision: Decision) -> None:
        if self._span is None:
            return
        self.set("routeguard.policy", decision.policy)
        self.set("routeguard.policy_version", decision.policy_version)
        self.set("routeguard.status", decision.status.value)
        self.set("routeguard.model", decision.model)
        self.set("routeguard.fallback", decision.status.value == "fallback")
        self.set("routeguard.safe_mode", decision.safe_mode)
        self.set("routeguard.degraded", decision.degraded)
        self.set("routeguard.trace_id", decision.trace_id)
        if decision.terminal is not None:
            self.set("routeguard.terminal", decision.terminal.action.value)

    def record_served(self, served: Served) -> None:
        if self._span is None:
            return
        self.set("routeguard.policy", served.decision.policy)
        self.set("routeguard.model", served.model)
        self.set("routeguard.status", "terminal" if served.model is None else "served")
        self.set("routeguard.fallback", served.fell_back)
        self.set("routeguard.attempts", served.attempts)
        self.set("routeguard.terminal", served.terminal)
        if served.deployment is not None:
            self.set("routeguard.deployment", served.deployment)
        self.set("gen_ai.response.model", served.model)


_NOOP = SpanHandle()


def _exporter_names(env: Mapping[str, str]) -> list[str]:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not names and endpoint:
        names = ["otlp"]
    return [] if "none" in names else names


def _make_exporter(name: str, env: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        log.warning("OTEL_TRACES_EXPORTER=%s is not supported by routeguard (use otlp or console)", name)
        return None
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip().lower()
    module_name = _OTLP_MODULES.get(protocol)
    if module_name is None:
        log.warning("OTLP protocol %r is not supported (http/protobuf, grpc); tracing stays off", protocol)
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        log.warning("the OTLP exporter is not installed (pip install 'routeguard[otlp]'); tracing stays off")
        return None
    return module.OTLPSpanExporter()


def configure_tracing(
    env: Mapping[str, str] | None = None,
    *,
    exporter: Any = None,
    service_name: str = "routeguard",
    set_global: bool = True,
) -> bool:
    """Set up spans from the environment (or with `exporter`, exported synchronously: tests). True if on.
    `set_global`: also make ours the global tracer provider when none is set yet (other instrumentation)."""
    shutdown_tracing()
    source = os.environ if env is None else env
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError:
        log.warning("opentelemetry-sdk is not installed; tracing stays off")
        return False
    try:
        processors: list[SpanProcessor]
        if exporter is not None:
            processors = [SimpleSpanProcessor(exporter)]
        else:
            made = [_make_exporter(name, source) for name in _exporter_names(source)]
            processors = [BatchSpanProcessor(e) for e in made if e is not None]
        if not processors:
            return False
        attributes = {} if source.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
        provider = TracerProvider(resource=Resource.create(attributes))
        for processor in processors:
            provider.add_span_processor(processor)
        if set_global and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(provider)  # let other instrumentation join our traces
        _state.provider, _state.tracer = provider, provider.get_tracer("routeguard")
        return True
    except Exception:
        log.warning("tracing could not be configured; it stays off", exc_info=True)
        return False


def tracing_enabled() -> bool:
    return _state.tracer is not None


def shutdown_tracing() -> None:
    """Flush and stop (service shutdown); spans are no-ops afterwards."""
    provider, _state.provider, _state.tracer = _state.provider, None, None
    if provider is not None:
        try:
            provider.shutdown()
        except Exception:
            log.debug("tracer provider shutdown failed", exc_info=True)


@contextmanager
def _span(name: str, attributes: Mapping[str, Any]) -> Iterator[SpanHandle]:
    tracer = _state.tracer
    if tracer is None:
        yield _NOOP
        return
    try:
        clean = {k: v for k, v in attributes.items() if v is not None}
        manager = tracer.start_as_current_span(
            name, attributes=clean, record_exception=True, set_status_on_exception=True
        )
        span = manager.__enter__()
    except Exception:
        log.debug("could not start span %s", name, exc_info=True)
        yield _NOOP
        return
    try:
        yield SpanHandle(span)
    except BaseException as exc:
        try:
            manager.__exit__(type(exc), exc, exc.__traceback__)
        except Exception:
            log.debug("could not end span %s", name, exc_info=True)
        raise
    try:
        manager.__exit__(None, None, None)
    except Exception:
        log.debug("could not end span %s", name, exc_info=True)


def span_decision(policy: str | None = None, **attributes: Any) -> AbstractContextManager[SpanHandle]:
    """A span `routeguard.decide` (attributes: routeguard.policy, plus `attributes` with the prefix)."""
    attrs = {"routeguard.policy": policy, **{f"routeguard.{k}": v for k, v in attributes.items()}}
    return _span("routeguard.decide", attrs)


def span_proxy_call(
    policy: str | None = None, model: str | None = None, *, stream: bool = False, **attributes: Any
) -> AbstractContextManager[SpanHandle]:
    """A span `routeguard.proxy` around a proxied chat completion (model: the first choice)."""
    attrs = {
        "routeguard.policy": policy,
        "routeguard.model": model,
        "routeguard.stream": stream,
        "gen_ai.request.model": model,
        **{f"routeguard.{k}": v for k, v in attributes.items()},
    }
    return _span("routeguard.proxy", attrs)
