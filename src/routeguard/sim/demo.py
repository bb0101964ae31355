"""``routeguard demo``: a guided run of the clinical triage example through an outage and back.

No server, no network: the real Router and Executor run against simulated models in virtual time,
paced so the story takes about two minutes (a few seconds with ``--fast``). Routing changes and
safe-mode changes are written to a hash-chained audit log (the store's, in an in-memory SQLite
database) as they happen, and the chain is verified at the end.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.rule import Rule

from routeguard.core.events import Event, HealthChanged, RouteChanged, SafeModeChanged, TerminalEngaged
from routeguard.sim.scenario import Scenario, ScenarioError, parse_scenario

__all__ = ["demo_bundle_path", "demo_scenario", "run_demo"]

_POLICY = "triage-agent"
_ACTS: list[tuple[float, str, str]] = [
    (
        0,
        "1 · Normal operation",
        "triage-agent routes clinical triage to triage-v3, the validated on-prem model (10 requests/s).",
    ),
    (
        60,
        "2 · Primary outage",
        "triage-v3 stops answering. Health notices within a second; the route moves to triage-v2, the "
        "only other model validated for clinical triage — logged with its governance checks before it "
        "takes effect.",
    ),
    (
        120,
        "3 · Double failure",
        "triage-v2 fails too (HTTP 503). The catalogue still has general-xl, broader and not validated for "
        "clinical triage: it is never used. Requests go to the policy's terminal action: the human queue.",
    ),
    (
        180,
        "4 · The fallback recovers",
        "triage-v2 answers again. Once its cooldown is over, probes succeed and the route leaves the human "
        "queue for the fallback.",
    ),
    (
        240,
        "5 · The primary recovers",
        "triage-v3 is back. Its cooldown has doubled with each failed probe; once probes succeed the route "
        "returns.",
    ),
]
_SCENARIO: dict[str, Any] = {
    "name": "demo",
    "duration": "6m",
    "seed": 42,
    "traffic": [
        {
            "agent": _POLICY,
            "tenant": "st-marys",
            "task_type": "triage",
            "rps": 10,
            "data_class": "restricted",
            "region": "eu-west-2",
            "tokens": {"input": 800, "output": 200},
        }
    ],
    "models": {
        "triage-v3": {"latency_ms": {"p50": 400, "p95": 900}},
        "triage-v2": {"latency_ms": {"p50": 500, "p95": 1100}},
    },
    "faults": [
        {"model": "triage-v3", "at": "1m", "until": "4m", "kind": "outage"},
        {"model": "triage-v2", "at": "2m", "until": "3m", "kind": "outage", "error": 503},
    ],
}


def demo_bundle_path() -> Path:
    """The clinical triage example: the repository's, else the copy shipped with the package."""
    here = Path(__file__).resolve()
    for candidate in (
        here.parents[3] / "examples" / "clinical-triage.yaml",
        here.parent / "examples" / "clinical-triage.yaml",
    ):
        if candidate.is_file():
            return candidate
    raise ScenarioError("the clinical-triage example bundle is missing from this installation")


def demo_scenario() -> Scenario:
    return parse_scenario(_SCENARIO, name="demo")


@dataclass
class _Audit:
    """The store's hash-chained audit log in an in-memory database (a local list when the store is absent)."""

    store: Any = None
    records: int = 0
    last_hash: str = ""
    fallback: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def open(cls) -> _Audit:
        try:
            from routeguard.store.db import open_store

            return cls(store=open_store("sqlite://"))
        except Exception:  # the demo must run anywhere: without the store it keeps its own list
            return cls()

    def append(self, kind: str, policy: str | None, payload: dict[str, Any], at: float) -> tuple[int, str]:
        self.records += 1
        if self.store is None:
            self.fallback.append(payload)
            return self.records, "(not chained: store unavailable)"
        record = self.store.audit.append(
            kind, "routeguard-demo", payload, policy, "all", now=datetime.fromtimestamp(at, UTC)
        )
        self.last_hash = record.hash
        return int(record.seq), str(record.hash)

    def verify(self) -> str:
        if self.store is None:
            return f"{self.records} records (no store: chain not verified)"
        result = self.store.audit.verify()
        self.store.close()
        return f"{'intact' if result.ok else 'BROKEN'}: {result.records} records, head {self.last_hash[:23]}…"


class _Show:
    """Turns router events into what the audience sees, as they happen."""

    def __init__(self, console: Console, epoch: float) -> None:
        self.console, self.epoch = console, epoch
        self.audit = _Audit.open()
        self.pending: list[Event] = []
        self.queued = 0
        self.queued_shown = 0

    def clock(self, at: float) -> str:
        t = max(0.0, at - self.epoch)
        return f"{int(t // 60)}:{int(t % 60):02d}"

    def flush(self) -> None:
        events = list(self.pending)
        self.pending.clear()
        for event in events:
            if isinstance(event, TerminalEngaged):
                self.queued += 1
            elif isinstance(event, RouteChanged) and event.policy == _POLICY:
                self._route(event)
            elif isinstance(event, SafeModeChanged):
                seq, _digest = self.audit.append("safe_mode", None, event.to_dict(), event.at)
                self.console.print(
                    f"[bold magenta]{self.clock(event.at)} safe mode "
                    f"{'ON' if event.enabled else 'off'}[/] — {escape(event.reason)}  [dim]audit #{seq}[/]"
                )
            elif isinstance(event, HealthChanged) and event.policy == _POLICY:
                colour = "green" if event.to_state == "healthy" else "yellow"
                self.console.print(
                    f"[dim]{self.clock(event.at)} health[/] {event.model}: {event.from_state} → "
                    f"[{colour}]{event.to_state}[/] [dim]({escape(event.detail)})[/]"
                )
        if self.queued and not self.queued_shown:  # the first one; the status lines carry the count
            self.console.print(
                "[red]  requests now go to the human queue clinical-humans (terminal action human_queue)[/]"
            )
            self.queued_shown = self.queued

    def _route(self, e: RouteChanged) -> None:
        seq, digest = self.audit.append("route.changed", e.policy, e.to_dict(), e.at)
        v = e.verification
        checks = "  ".join(
            f"{k}={'✓' if v.get(k) else '✗' if v.get(k) is False else '—'}"
            for k in ("approved", "capabilities_within_primary", "clearance_ok", "residency_ok")
        )
        target = e.to_model or f"terminal: {e.terminal_action}"
        body = (
            f"[bold]{e.from_model or 'terminal'} → {target}[/]\nreason: {escape(e.reason)}\n"
            f"verification: {checks}  approval: {v.get('approval_ref') or '—'}\n"
            f"[dim]audit #{seq} route.changed  {digest[:30]}…[/]"
        )
        style = "red" if e.to_model is None else "yellow" if e.to_model != "triage-v3" else "green"
        self.console.print(
            Panel(body, title=f"{self.clock(e.at)} routing change · {e.policy}", border_style=style)
        )


def run_demo(console: Console, *, fast: bool = False, seconds: float | None = None) -> dict[str, Any]:
    """Play the story; returns the simulation report."""
    from routeguard.config.load import load_bundle
    from routeguard.sim.render import print_summary
    from routeguard.sim.report import build_report
    from routeguard.sim.simulator import Simulation

    scenario = demo_scenario()
    bundle = load_bundle(demo_bundle_path())
    console.print(Rule("[bold]routeguard demo[/] — clinical triage, governed fallback"))
    console.print(
        f"bundle: {demo_bundle_path().name}  ·  policy {_POLICY}: triage-v3 → triage-v2 → "
        "human_queue (clinical-humans)  ·  virtual time, no server, simulated models\n"
    )
    sim = Simulation(bundle, scenario)
    show = _Show(console, sim.scheduler.epoch)
    sim.router.subscribe(show.pending.append)
    real_total = seconds if seconds is not None else (6.0 if fast else 120.0)
    step = 2.0
    pause = real_total * step / scenario.duration_s
    acts = list(_ACTS)
    served: Counter[str] = Counter()
    sim.start()
    t = 0.0
    while t < scenario.duration_s:
        while acts and acts[0][0] <= t:
            _at, title, text = acts.pop(0)
            console.print(Rule(f"[bold cyan]{title}[/]"))
            console.print(f"[cyan]{text}[/]")
        t = min(scenario.duration_s, t + step)
        sim.advance(t)
        show.flush()
        if int(t) % 30 == 0:
            tally = sim.run_data.tally
            delta = tally.served_by - served
            served = Counter(tally.served_by)
            line = ", ".join(f"{m} {n}" for m, n in sorted(delta.items())) or "nothing served"
            console.print(
                f"[dim]{show.clock(sim.scheduler.now())}  last 30s: {line}; human queue {show.queued}[/]"
            )
        if pause > 0:
            time.sleep(pause)
    run = sim.finish()
    show.flush()
    report = build_report(run)
    console.print(Rule("[bold]What happened[/]"))
    print_summary(report, console)
    console.print(f"audit chain: {show.audit.verify()}")
    console.print(
        "[bold green]No unapproved model served.[/]"
        if report["unapproved_served"] == 0
        else f"[bold red]{report['unapproved_served']} requests served by unapproved models![/]"
    )
    return report
