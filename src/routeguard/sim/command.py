"""CLI: ``routeguard simulate`` and ``routeguard demo`` (registered by ``routeguard.cli.app``).

Exit codes of ``simulate``: 0 done; 1 a governance breach in the simulation (an unapproved model
served, or a CONTRACT §2 invariant broken); 2 a bad scenario or bundle.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["demo", "register", "simulate"]


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)
    app.command("demo")(demo)


def _fail(message: str) -> typer.Exit:
    from routeguard.cli.output import err_console

    err_console.print(f"[red]error[/]: {message}")
    return typer.Exit(2)


def _load(config: Path | None, name: str, duration: str | None, seed: int | None) -> tuple[Any, Any]:
    """(loaded bundle, scenario) with the command line's overrides applied."""
    from routeguard.config.load import load_bundle
    from routeguard.core.durations import parse_duration
    from routeguard.core.findings import BundleError
    from routeguard.sim.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(name)
        if duration is not None:
            scenario = replace(scenario, duration_s=parse_duration(duration))
        if seed is not None:
            scenario = replace(scenario, seed=seed)
    except (ScenarioError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    path = config or scenario.config
    if path is None:
        raise _fail(f"scenario {scenario.name} names no bundle: pass --config BUNDLE")
    try:
        return load_bundle(Path(path)), scenario
    except BundleError as exc:
        raise _fail("; ".join(str(f) for f in exc.findings)) from exc


def _run(loaded: Any, scenario: Any, *, quiet: bool, to_stderr: bool) -> tuple[dict[str, Any], float]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from routeguard.cli.output import console, err_console
    from routeguard.sim.report import build_report
    from routeguard.sim.scenario import ScenarioError
    from routeguard.sim.simulator import Simulation

    try:
        sim = Simulation(loaded, scenario)
    except ScenarioError as exc:
        raise _fail(str(exc)) from exc
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[t]}"),
        TimeElapsedColumn(),
    )
    with Progress(
        *columns, console=err_console if to_stderr else console, transient=True, disable=quiet
    ) as bar:
        task = bar.add_task(f"simulating {scenario.name}", total=scenario.duration_s, t="")
        run = sim.run(
            lambda t, total: bar.update(task, completed=t, t=f"{t / 60:.1f}/{total / 60:g} min virtual")
        )
    return build_report(run), run.wall_s


def _breach(report: dict[str, Any]) -> bool:
    """Exit 1 (CONTRACT §6): any verdict `fail`, an unapproved model served, or a broken invariant."""
    failed = any(v == "fail" for v in report.get("verdicts", {}).values())
    return bool(failed or report["unapproved_served"] or report["invariants"]["violations"])


def simulate(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="bundle file (default: the scenario's `config`)", dir_okay=False),
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", help="scenario file, or a library name (see --list); repeatable"),
    ] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", help="override the scenario's duration, e.g. 1h")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="override the scenario's seed")] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="write report.md, report.html, report.json and PNG charts into this folder",
            file_okay=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print one JSON object on stdout, nothing else")
    ] = False,
    compare: Annotated[
        tuple[Path, Path] | None,
        typer.Option("--compare", help="OLD NEW: run the same scenarios on two bundles, side by side"),
    ] = None,
    list_library: Annotated[bool, typer.Option("--list", help="list the scenario library and exit")] = False,
) -> None:
    """Run chaos scenarios through the real router in virtual time and report what callers saw."""
    from routeguard.cli.output import console, print_json
    from routeguard.sim.render import print_summary, write_report_dir
    from routeguard.sim.scenario import library

    if list_library:
        names = {name: str(path) for name, path in library().items()}
        if as_json:
            print_json({"scenarios": names})
        else:
            for name, path in names.items():
                console.print(f"[bold]{name}[/]  {path}")
        return
    if compare is not None:
        _compare(compare, scenario or [], duration, seed, as_json)
        return
    if not scenario:
        raise _fail("pass --scenario NAME|FILE (see --list), or --compare OLD NEW")
    reports = []
    for name in scenario:
        loaded, sc = _load(config, name, duration, seed)
        result, wall = _run(loaded, sc, quiet=False, to_stderr=as_json)
        reports.append(result)
        if report is not None:
            folder = report if len(scenario) == 1 else report / sc.name
            write_report_dir(result, folder)
        if not as_json:
            print_summary(result, console, wall_s=wall)
            if report is not None:
                console.print(f"report written to {report}")
    if as_json:
        print_json(reports[0] if len(reports) == 1 else {"reports": reports})
    raise typer.Exit(1 if any(_breach(r) for r in reports) else 0)


def _compare(
    bundles: tuple[Path, Path], names: list[str], duration: str | None, seed: int | None, as_json: bool
) -> None:
    from routeguard.cli.output import console, print_json
    from routeguard.config.load import load_bundle
    from routeguard.core.findings import BundleError
    from routeguard.sim.gate import standard_scenarios
    from routeguard.sim.render import compare_rows, print_comparison

    try:
        old, new = load_bundle(bundles[0]), load_bundle(bundles[1])
    except BundleError as exc:
        raise _fail("; ".join(str(f) for f in exc.findings)) from exc
    if names:
        scenarios = [_load(bundles[0], n, duration, seed)[1] for n in names]
    else:  # the gate's standard scenarios, generated from the old bundle, on both
        scenarios = [sc for sc, _prims in standard_scenarios(old)]
    results = []
    for sc in scenarios:
        a, _wall = _run(old, sc, quiet=as_json, to_stderr=True)
        b, _wall = _run(new, sc, quiet=as_json, to_stderr=True)
        diffs = {fig: [x, y] for fig, x, y, differs in compare_rows(a, b) if differs}
        results.append({"scenario": sc.name, "old": a, "new": b, "differences": diffs})
        if not as_json:
            print_comparison(sc.name, a, b, console, (bundles[0].name, bundles[1].name))
    if as_json:
        print_json({"old": str(bundles[0]), "new": str(bundles[1]), "scenarios": results})


def demo(
    fast: Annotated[bool, typer.Option("--fast", help="a few seconds instead of about two minutes")] = False,
) -> None:
    """A guided run of the clinical triage example: outage, governed fallback, human queue, recovery."""
    from routeguard.cli.output import console
    from routeguard.sim.demo import run_demo

    report = run_demo(console, fast=fast)
    sys.stdout.flush()
    raise typer.Exit(1 if _breach(report) else 0)
