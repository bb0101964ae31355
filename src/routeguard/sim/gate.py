"""The publish gate: standard chaos scenarios generated for any bundle, run fast, with a pass/fail each.

Used by ``routeguard validate --simulate`` and by the service's dry-run upload. For every policy the
gate generates traffic that resolves to it (its agent, first task type, first tenant, its tags, its
profile's data class; 2 requests/s), and runs three scenarios of 3 virtual minutes, faults from
45s to 2m:

* ``primary-outage``: the primary (every arm) of each policy is down;
* ``brownout``: the primaries fail 30% of their calls;
* ``double-failure``: the primaries and each policy's first fallback are down together.

Primaries are grouped so that no model taken down in a run is another faulted policy's fallback
(those run separately), so each policy sees exactly the scenario's fault. A scenario passes when
every check holds: ``no_unapproved`` (nothing served without a current approval), ``invariants``
(CONTRACT §2 on every decision), ``no_caller_errors`` (retryable failures are absorbed by retries,
fallbacks or the terminal action), ``decision_p99``, ``no_flaps``, and per scenario ``failed_over``
(each policy on a downed primary left it) or ``terminal_engaged`` (a policy with nothing approved
left got its terminal action).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from routeguard.config.load import LoadedBundle, load_bundle
from routeguard.core.context import RouteContext, RoutingError
from routeguard.core.engine import resolve_policy
from routeguard.core.model import Bundle, Policy
from routeguard.core.table import compile_bundle
from routeguard.sim.report import build_report
from routeguard.sim.scenario import Fault, FaultKind, Scenario, TrafficLine, today_utc
from routeguard.sim.simulator import Simulation

__all__ = ["STANDARD", "run_standard_scenarios", "standard_scenarios"]

STANDARD = ("primary-outage", "brownout", "double-failure")
_DURATION_S, _AT_S, _UNTIL_S, _RPS = 180.0, 45.0, 120.0, 2.0


def _line_for(policy: Policy, bundle: Bundle) -> TrafficLine:
    match = policy.match
    profile = bundle.profiles.get(policy.profile)
    return TrafficLine(
        agent=policy.agent,
        task_type=min(match.task_types) if match.task_types else None,
        tenant=min(match.tenants) if match.tenants else None,
        tags=tuple(sorted(match.tags or ())),
        data_class=profile.data_class if profile is not None else None,
        rps=_RPS,
        input_tokens=200,
        output_tokens=100,
    )


def _traffic(loaded: LoadedBundle) -> tuple[list[TrafficLine], list[str]]:
    """One line per policy that a generated context resolves to; notes for those it cannot reach."""
    table = compile_bundle(loaded.bundle)
    lines, notes = [], []
    for name, policy in loaded.bundle.policies.items():
        line = _line_for(policy, loaded.bundle)
        try:
            resolved = resolve_policy(RouteContext.from_dict(line.context()), table).name
        except RoutingError as exc:
            notes.append(f"policy {name}: no generated request reaches it ({exc.message})")
            continue
        if resolved != name:
            notes.append(f"policy {name}: the generated request resolves to {resolved}; not exercised")
            continue
        lines.append(line)
    return lines, notes


def _down_sets(bundle: Bundle, kind: str) -> dict[str, set[str]]:
    """Per primary model: every model that scenario ``kind`` takes down for the policies it is primary of."""
    out: dict[str, set[str]] = {}
    for policy in bundle.policies.values():
        for arm in policy.primary_models:
            down = out.setdefault(arm, set(policy.primary_models))
            if kind == "double-failure" and policy.fallbacks:
                down.add(policy.fallbacks[0].model)
    return out


def _groups(bundle: Bundle, kind: str) -> list[set[str]]:
    """Primaries grouped so that a run never takes down another faulted policy's chain by accident."""
    downs = _down_sets(bundle, kind)
    chains = {
        p.name: set(p.primary_models) | {f.model for f in p.fallbacks} for p in bundle.policies.values()
    }
    groups: list[tuple[set[str], set[str]]] = []  # (primaries, models down)
    for primary in sorted(downs):
        down = downs[primary]
        affected = {name for name, chain in chains.items() if chain & down}
        for prims, taken in groups:
            touched = {name for name, chain in chains.items() if chain & taken}
            if not (touched & affected) and not (taken & down):
                prims.add(primary)
                taken |= down
                break
        else:
            groups.append(({primary}, set(down)))
    return [prims for prims, _ in groups]


def standard_scenarios(loaded: LoadedBundle) -> list[tuple[Scenario, set[str]]]:
    """The generated scenarios with the primaries each one takes down."""
    lines, _notes = _traffic(loaded)
    out = []
    bundle = loaded.bundle
    for kind in STANDARD:
        downs = _down_sets(bundle, kind)
        for prims in _groups(bundle, kind):
            models = sorted(set().union(*(downs[p] for p in prims)))
            fault_kind = FaultKind.BROWNOUT if kind == "brownout" else FaultKind.OUTAGE
            faults = tuple(
                Fault(
                    model=m,
                    kind=fault_kind,
                    at_s=_AT_S,
                    until_s=_UNTIL_S,
                    error_rate=0.3 if kind == "brownout" else 1.0,
                    error="server_error" if kind == "brownout" else "connection",
                )
                for m in models
            )
            name = f"{kind}[{','.join(sorted(prims))}]"
            out.append(
                (
                    Scenario(
                        name=name,
                        duration_s=_DURATION_S,
                        seed=1,
                        traffic=tuple(lines),
                        faults=faults,
                        start=today_utc(),
                    ),
                    prims,
                )
            )
    return out


def _checks(scenario: Scenario, report: dict[str, Any], bundle: Bundle, prims: set[str]) -> dict[str, bool]:
    kind = scenario.name.split("[", 1)[0]
    checks = {
        "no_unapproved": report["unapproved_served"] == 0,
        "invariants": report["invariants"]["violations"] == 0,
        "no_caller_errors": report["failed"] == 0,
        "decision_p99": report["verdicts"]["decision_p99_under_200ms"] == "pass",
        "no_flaps": report["flaps"] == 0,
    }
    faulted = [p for p in bundle.policies.values() if set(p.primary_models) & prims]
    if kind == "primary-outage":
        left = {c["policy"] for c in report["routing_changes"] if c["from_model"] in prims}
        checks["failed_over"] = all(p.name in left for p in faulted)
    elif kind == "double-failure":
        down = {f.model for f in scenario.faults}
        stranded = [p for p in faulted if {p.primary_models[0], *(f.model for f in p.fallbacks)} <= down]
        checks["terminal_engaged"] = not stranded or sum(report["terminal"].values()) > 0
    return checks


def run_standard_scenarios(raw_bundle: Mapping[str, Any] | LoadedBundle) -> list[dict[str, Any]]:
    """Run the standard scenarios on a bundle (plain data as uploaded, or loaded); one result per run:
    ``{scenario, passed, verdicts, checks, requests, routing_changes, terminal, unapproved_served,
    time_to_failover_s, time_to_recover_s, wall_s, notes}``. Raises BundleError for a bundle that
    does not parse (check it first)."""
    loaded = raw_bundle if isinstance(raw_bundle, LoadedBundle) else load_bundle(dict(raw_bundle))
    _lines, notes = _traffic(loaded)
    results: list[dict[str, Any]] = []
    for scenario, prims in standard_scenarios(loaded):
        began = time.perf_counter()
        report = build_report(Simulation(loaded, scenario).run())
        checks = _checks(scenario, report, loaded.bundle, prims)
        results.append(
            {
                "scenario": scenario.name,
                "passed": all(checks.values()),
                "verdicts": report["verdicts"],
                "checks": checks,
                "requests": report["requests"],
                "routing_changes": len(report["routing_changes"]),
                "terminal": report["terminal"],
                "unapproved_served": report["unapproved_served"],
                "time_to_failover_s": report["time_to_failover_s"],
                "time_to_recover_s": report["time_to_recover_s"],
                "wall_s": round(time.perf_counter() - began, 3),
                "notes": notes,
            }
        )
    return results
