"""Parsing scenario files into :class:`routeguard.sim.scenario.Scenario` (errors name the key path)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from routeguard.core.durations import parse_duration
from routeguard.sim.scenario import (
    ClientReport,
    Fault,
    FaultKind,
    ModelSpec,
    SafeModeSwitch,
    Scenario,
    ScenarioError,
    SignalSpec,
    Thresholds,
    TrafficLine,
)

__all__ = ["parse"]


# ---------------------------------------------------------------------------------------------- parsing
class _Reader:
    """Typed access to one mapping of the scenario, with key paths in every error."""

    def __init__(self, data: object, path: str, keys: frozenset[str]) -> None:
        if not isinstance(data, Mapping):
            raise ScenarioError(f"{path or 'scenario'}: expected a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - keys)
        if unknown:
            raise ScenarioError(
                f"{path}.{unknown[0]}: unknown key (known: {', '.join(sorted(keys))})".lstrip(".")
            )
        self.data, self.path = data, path

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def duration(self, key: str, default: float | None = None) -> float | None:
        value = self.data.get(key)
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ScenarioError(f"{self._at(key)}: {exc}") from exc

    def need_duration(self, key: str) -> float:
        value = self.duration(key)
        if value is None:
            raise ScenarioError(f"{self._at(key)}: required")
        return value

    def number(
        self, key: str, default: float | None = None, *, lo: float = 0.0, hi: float | None = None
    ) -> float | None:
        value = self.data.get(key)
        if value is None:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or value < lo
            or (hi is not None and value > hi)
        ):
            bounds = f">= {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
            raise ScenarioError(f"{self._at(key)}: expected a number {bounds}, got {value!r}")
        return float(value)

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise ScenarioError(f"{self._at(key)}: expected a non-empty string, got {value!r}")
        return value

    def need_text(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise ScenarioError(f"{self._at(key)}: required")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise ScenarioError(f"{self._at(key)}: expected true or false, got {value!r}")
        return value

    def items(self, key: str) -> list[tuple[str, object]]:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            raise ScenarioError(f"{self._at(key)}: expected a list")
        return [(f"{self._at(key)}[{i}]", item) for i, item in enumerate(value)]


_TOP = frozenset(
    {
        "name",
        "description",
        "duration",
        "seed",
        "start",
        "config",
        "traffic",
        "models",
        "faults",
        "signals",
        "reports",
        "safe_mode",
        "thresholds",
        "tick",
        "clients_report_trace_ids",
    }
)
_LINE = frozenset(
    {
        "agent",
        "tenant",
        "task_type",
        "rps",
        "data_class",
        "region",
        "tokens",
        "stream",
        "sla_ms",
        "budget_usd",
        "tags",
        "language",
        "at",
        "until",
        "prompt",
        "prompts",
    }
)
_FAULT = frozenset(
    {
        "model",
        "kind",
        "at",
        "until",
        "error_rate",
        "error",
        "p50",
        "p95",
        "latency_ms",
        "retry_after",
        "every",
        "for",
    }
)
_FAULT_ERRORS = {
    "connection": "connection",
    "503": "overloaded",
    "overloaded": "overloaded",
    "500": "server_error",
    "server_error": "server_error",
    "timeout": "timeout",
}


def _line(path: str, item: object) -> TrafficLine:
    r = _Reader(item, path, _LINE)
    tokens = r.data.get("tokens") or {}
    tr = _Reader(tokens, f"{path}.tokens", frozenset({"input", "output"}))
    tags = r.data.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ScenarioError(f"{path}.tags: expected a list of strings")
    rps = r.number("rps", 1.0)
    assert rps is not None
    if rps <= 0:
        raise ScenarioError(f"{path}.rps: expected a positive number")
    return TrafficLine(
        agent=r.text("agent"),
        tenant=r.text("tenant"),
        task_type=r.text("task_type"),
        rps=rps,
        data_class=r.text("data_class"),
        region=r.text("region"),
        input_tokens=int(tr.number("input", 0) or 0),
        output_tokens=int(tr.number("output", 0) or 0),
        stream=r.flag("stream", False),
        sla_ms=r.number("sla_ms"),
        budget_usd=r.number("budget_usd"),
        tags=tuple(tags),
        language=r.text("language"),
        at_s=r.duration("at", 0.0) or 0.0,
        until_s=r.duration("until"),
        prompts=_prompts(path, r.data),
    )


def _prompts(path: str, data: Mapping[str, object]) -> tuple[str, ...]:
    """``prompt: text`` or ``prompts: [text, …]`` (arrivals take them in turn), for a learned primary."""
    if data.get("prompt") is not None and data.get("prompts") is not None:
        raise ScenarioError(f"{path}: give prompt or prompts, not both")
    if isinstance(data.get("prompt"), str):
        return (str(data["prompt"]),)
    if data.get("prompt") is not None:
        raise ScenarioError(f"{path}.prompt: expected a string")
    value = data.get("prompts")
    if value is None:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ScenarioError(f"{path}.prompts: expected a non-empty list of strings")
    return tuple(value)


def _fault(path: str, item: object) -> Fault:
    r = _Reader(item, path, _FAULT)
    kind_text = r.need_text("kind")
    try:
        kind = FaultKind(kind_text)
    except ValueError as exc:
        raise ScenarioError(
            f"{path}.kind: unknown fault kind {kind_text!r} (one of {', '.join(k.value for k in FaultKind)})"
        ) from exc
    latency = r.data.get("latency_ms") or {}
    lr = _Reader(latency, f"{path}.latency_ms", frozenset({"p50", "p95"}))
    p50 = r.number("p50") if "p50" in r.data else lr.number("p50")
    p95 = r.number("p95") if "p95" in r.data else lr.number("p95")
    if kind is FaultKind.LATENCY and p50 is None:
        raise ScenarioError(f"{path}.p50: a latency fault needs p50 (ms) and optionally p95")
    default_error = {FaultKind.BROWNOUT: "server_error", FaultKind.RATE_LIMIT: "rate_limit"}.get(
        kind, "connection"
    )
    error = str(r.data.get("error", default_error))
    if kind is not FaultKind.RATE_LIMIT:
        if error not in _FAULT_ERRORS:
            raise ScenarioError(f"{path}.error: expected one of {', '.join(_FAULT_ERRORS)}, got {error!r}")
        error = _FAULT_ERRORS[error]
    default_rate = 0.5 if kind is FaultKind.BROWNOUT else 1.0
    every, for_s = r.duration("every"), r.duration("for")
    if (every is None) != (for_s is None):
        raise ScenarioError(f"{path}: 'every' and 'for' go together (a fault lasting 'for' once per 'every')")
    return Fault(
        model=r.need_text("model"),
        kind=kind,
        at_s=r.duration("at", 0.0) or 0.0,
        until_s=r.duration("until"),
        error_rate=r.number("error_rate", default_rate, hi=1.0) or 0.0,
        error=error,
        p50_ms=p50,
        p95_ms=p95 if p95 is not None else p50,
        retry_after_s=r.duration("retry_after", 1.0),
        every_s=every,
        for_s=for_s,
    )


def _model_spec(path: str, item: object) -> ModelSpec:
    r = _Reader(item, path, frozenset({"latency_ms", "error_rate"}))
    lr = _Reader(r.data.get("latency_ms") or {}, f"{path}.latency_ms", frozenset({"p50", "p95"}))
    p50 = lr.number("p50", 100.0) or 0.0
    return ModelSpec(
        p50_ms=p50,
        p95_ms=max(p50, lr.number("p95", 2 * p50) or 0.0),
        error_rate=r.number("error_rate", 0.0, hi=1.0) or 0.0,
    )


def _start(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ScenarioError(f"start: expected an RFC 3339 time or a date, got {text!r}") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def parse(data: object, *, name: str = "scenario", source: Path | None = None) -> Scenario:
    """A :class:`Scenario` from plain data; raises :class:`ScenarioError` naming the key path."""
    r = _Reader(data, "", _TOP)
    base = source.parent if source is not None else Path.cwd()
    traffic: tuple[TrafficLine, ...] = ()
    replay: Path | None = None
    raw_traffic = r.data.get("traffic")
    if isinstance(raw_traffic, Mapping):
        replay = base / _Reader(raw_traffic, "traffic", frozenset({"replay"})).need_text("replay")
    else:
        traffic = tuple(_line(p, item) for p, item in r.items("traffic"))
    models_raw = r.data.get("models") or {}
    if not isinstance(models_raw, Mapping):
        raise ScenarioError("models: expected a mapping of model name to behaviour")
    signals = []
    for p, item in r.items("signals"):
        s = _Reader(item, p, frozenset({"model", "at", "status", "ttl", "every", "until", "source"}))
        status = s.need_text("status")
        if status not in ("up", "degraded", "down"):
            raise ScenarioError(f"{p}.status: expected up, degraded or down, got {status!r}")
        signals.append(
            SignalSpec(
                s.need_text("model"),
                status,
                s.duration("at", 0.0) or 0.0,
                s.duration("ttl"),
                s.duration("every"),
                s.duration("until"),
                s.text("source", "scenario") or "scenario",
            )
        )
    reports = []
    for p, item in r.items("reports"):
        c = _Reader(item, p, frozenset({"model", "at", "until", "rps", "ok", "error", "latency_ms"}))
        reports.append(
            ClientReport(
                c.need_text("model"),
                c.duration("at", 0.0) or 0.0,
                c.duration("until"),
                c.number("rps", 1.0) or 1.0,
                c.flag("ok", True),
                c.text("error"),
                c.number("latency_ms", 100.0) or 0.0,
            )
        )
    switches = []
    for p, item in r.items("safe_mode"):
        w = _Reader(item, p, frozenset({"at", "enabled", "tenant", "reason"}))
        switches.append(
            SafeModeSwitch(
                w.duration("at", 0.0) or 0.0,
                w.flag("enabled", True),
                w.text("tenant"),
                w.text("reason", "scenario") or "scenario",
            )
        )
    th = _Reader(
        r.data.get("thresholds") or {},
        "thresholds",
        frozenset(
            {"fallback_success_rate", "hit_rate", "decision_p99_ms", "safe_mode_within", "flap_window"}
        ),
    )
    d = Thresholds()
    thresholds = Thresholds(
        th.number("fallback_success_rate", d.fallback_success_rate, hi=1.0) or 0.0,
        th.number("hit_rate", d.hit_rate, hi=1.0) or 0.0,
        th.number("decision_p99_ms", d.decision_p99_ms) or 0.0,
        th.duration("safe_mode_within", d.safe_mode_within_s) or 0.0,
        th.duration("flap_window", d.flap_window_s) or 0.0,
    )
    seed = r.data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ScenarioError(f"seed: expected an integer, got {seed!r}")
    config = r.text("config")
    return Scenario(
        name=r.text("name", name) or name,
        duration_s=r.duration("duration", 600.0) or 600.0,
        seed=seed,
        traffic=traffic,
        replay=replay,
        models={str(m): _model_spec(f"models.{m}", spec) for m, spec in models_raw.items()},
        faults=tuple(_fault(p, item) for p, item in r.items("faults")),
        signals=tuple(signals),
        reports=tuple(reports),
        safe_mode=tuple(switches),
        thresholds=thresholds,
        config=(base / config) if config else None,
        start=_start(r.data.get("start")),
        tick_s=r.duration("tick", 1.0) or 1.0,
        clients_report_trace_ids=r.flag("clients_report_trace_ids", True),
        description=r.text("description", "") or "",
        source=source,
    )
