"""Scenario files (CONTRACT §7): traffic, model behaviour, a fault timeline, plus scenario-only extras.

The §7 keys are the base: ``duration``, ``seed``, ``traffic`` (Poisson lines, or ``{replay: FILE}``),
``models`` and ``faults``. Extras: ``config`` (the bundle, relative to the scenario file), ``start``
(the virtual start, RFC 3339 or a date; default today 00:00 UTC), ``signals`` (external health
signals, optionally renewed ``every``), ``reports`` (outcomes a client reports through
``router.report``, e.g. false successes), ``safe_mode`` (operator switches), ``thresholds`` (verdicts),
``tick`` (how often the route state is re-checked without traffic; default 1s).

A ``NAME`` is a file stem looked up in ``scenarios/`` at the repository root, then in the copies
shipped inside the package (``routeguard/sim/scenarios``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ClientReport",
    "Fault",
    "FaultKind",
    "ModelSpec",
    "SafeModeSwitch",
    "Scenario",
    "ScenarioError",
    "SignalSpec",
    "Thresholds",
    "TrafficLine",
    "find_scenario",
    "library",
    "load_scenario",
    "parse_scenario",
]

_PACKAGED = Path(__file__).resolve().parent / "scenarios"
_REPO = Path(__file__).resolve().parents[3] / "scenarios"


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names the key path."""


class FaultKind(StrEnum):
    OUTAGE = "outage"
    BROWNOUT = "brownout"
    LATENCY = "latency"
    RATE_LIMIT = "rate_limit"
    STREAM_BREAK = "stream_break"


@dataclass(frozen=True, slots=True)
class TrafficLine:
    """Poisson arrivals at ``rps`` of one kind of task context."""

    agent: str | None = None
    tenant: str | None = None
    task_type: str | None = None
    rps: float = 1.0
    data_class: str | None = None
    region: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    stream: bool = False
    sla_ms: float | None = None
    budget_usd: float | None = None
    tags: tuple[str, ...] = ()
    language: str | None = None
    at_s: float = 0.0
    until_s: float | None = None
    prompts: tuple[str, ...] = ()  # arrivals carry these in turn (a learned primary scores them)

    def context(self) -> dict[str, Any]:
        """The route request (CONTRACT §3) of this line, without a trace id."""
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in (
                "agent",
                "tenant",
                "task_type",
                "data_class",
                "region",
                "language",
                "sla_ms",
                "budget_usd",
            )
            if getattr(self, k) is not None
        }
        if self.tags:
            out["tags"] = list(self.tags)
        if self.input_tokens or self.output_tokens:
            out["estimated_tokens"] = {"input": self.input_tokens, "output": self.output_tokens}
        return out


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Baseline behaviour: lognormal latency through ``p50``/``p95`` and an error rate (server_error)."""

    p50_ms: float = 100.0
    p95_ms: float = 200.0
    error_rate: float = 0.0


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault window ``[at_s, until_s)``; with ``every_s`` it repeats, lasting ``for_s`` each time."""

    model: str
    kind: FaultKind
    at_s: float
    until_s: float | None = None
    error_rate: float = 1.0
    error: str = "connection"
    p50_ms: float | None = None
    p95_ms: float | None = None
    retry_after_s: float | None = 1.0
    every_s: float | None = None
    for_s: float | None = None

    def active(self, t: float) -> bool:
        if t < self.at_s or (self.until_s is not None and t >= self.until_s):
            return False
        if self.every_s is None or self.for_s is None:
            return True
        return (t - self.at_s) % self.every_s < self.for_s


@dataclass(frozen=True, slots=True)
class SignalSpec:
    """An external health signal at ``at_s`` (renewed every ``every_s`` until ``until_s``)."""

    model: str
    status: str
    at_s: float
    ttl_s: float | None = None
    every_s: float | None = None
    until_s: float | None = None
    source: str = "scenario"


@dataclass(frozen=True, slots=True)
class ClientReport:
    """Outcomes a client reports for ``model`` at ``rps`` (no trace id), e.g. false successes."""

    model: str
    at_s: float
    until_s: float | None
    rps: float = 1.0
    ok: bool = True
    error: str | None = None
    latency_ms: float = 100.0


@dataclass(frozen=True, slots=True)
class SafeModeSwitch:
    at_s: float
    enabled: bool
    tenant: str | None = None
    reason: str = "scenario"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Verdict thresholds: a figure at or past its threshold passes."""

    fallback_success_rate: float = 0.95
    hit_rate: float = 0.90
    decision_p99_ms: float = 200.0
    safe_mode_within_s: float = 60.0
    flap_window_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    duration_s: float
    seed: int = 0
    traffic: tuple[TrafficLine, ...] = ()
    replay: Path | None = None
    models: Mapping[str, ModelSpec] = field(default_factory=dict)
    faults: tuple[Fault, ...] = ()
    signals: tuple[SignalSpec, ...] = ()
    reports: tuple[ClientReport, ...] = ()
    safe_mode: tuple[SafeModeSwitch, ...] = ()
    thresholds: Thresholds = Thresholds()
    config: Path | None = None
    start: float | None = None
    tick_s: float = 1.0
    clients_report_trace_ids: bool = True  # False: outcomes reach the router without trace ids
    description: str = ""
    source: Path | None = None

    def model_spec(self, model: str) -> ModelSpec:
        return self.models.get(model) or ModelSpec()


def parse_scenario(data: object, *, name: str = "scenario", source: Path | None = None) -> Scenario:
    """A :class:`Scenario` from plain data; raises :class:`ScenarioError` naming the key path."""
    from routeguard.sim.scenario_parse import parse

    return parse(data, name=name, source=source)


def library() -> dict[str, Path]:
    """Scenario name -> file: the repository's ``scenarios/`` first, then the packaged copies."""
    found: dict[str, Path] = {}
    for folder in (_PACKAGED, _REPO):  # later wins: a checkout's own files over the shipped copies
        if folder.is_dir():
            found.update({p.stem: p for p in sorted(folder.glob("*.yaml"))})
    return dict(sorted(found.items()))


def find_scenario(name_or_file: str | Path) -> Path:
    """The file for a scenario path or a library name; ScenarioError listing the names otherwise."""
    path = Path(name_or_file)
    if path.is_file():
        return path
    found = library().get(str(name_or_file).removesuffix(".yaml"))
    if found is None:
        names = ", ".join(library()) or "none found"
        raise ScenarioError(
            f"no scenario file or library scenario named {str(name_or_file)!r} (library: {names})"
        )
    return found


def load_scenario(name_or_file: str | Path) -> Scenario:
    path = find_scenario(name_or_file)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: invalid YAML: {exc}") from exc
    return parse_scenario(data or {}, name=path.stem, source=path)


def today_utc() -> float:
    """The default virtual start: today 00:00 UTC (approvals are judged as of today)."""
    today = date.today()
    return datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp()
