"""Offline commands on a bundle file: ``validate``, ``route``, ``schema``."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from routeguard.cli.output import console, err_console, print_json
from routeguard.config.artifacts import artifact_findings, score_context
from routeguard.config.load import load_bundle
from routeguard.config.schema import bundle_schema
from routeguard.config.secrets import SecretsFileError, egress_rules
from routeguard.core.checks import check_bundle
from routeguard.core.context import RouteContext, RoutingError, SafeMode
from routeguard.core.egress import EgressRules
from routeguard.core.engine import decide
from routeguard.core.findings import BundleError, Finding
from routeguard.core.health_view import HealthState, ModelHealth, StaticHealth
from routeguard.core.table import compile_bundle


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)
    app.command("route")(route)
    app.command("schema")(schema)


def _findings_for(path: Path, now: float, egress: EgressRules | None = None) -> tuple[list[Finding], Any]:
    try:
        loaded = load_bundle(path)
    except BundleError as exc:
        return exc.findings, None
    findings = check_bundle(loaded.bundle, now, egress) + artifact_findings(loaded.bundle, path.parent)
    return loaded.locate(findings), loaded


def validate(
    file: Annotated[Path, typer.Argument(help="bundle file (YAML or JSON)", exists=True, dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    simulate: Annotated[
        bool, typer.Option("--simulate", help="also run the standard chaos scenarios and report their verdicts")
    ] = False,
    at: Annotated[
        str | None, typer.Option("--now", help="check approvals as of this date (YYYY-MM-DD) instead of today")
    ] = None,
    secrets: Annotated[
        Path | None, typer.Option("--secrets", help="check secrets against this file (NAME -> hosts), as serve does")
    ] = None,
    allow_egress: Annotated[
        list[str] | None,
        typer.Option("--allow-egress", metavar="HOSTS", help="link-local/metadata hosts to allow, as serve does"),
    ] = None,
) -> None:
    """Check a bundle against every governance rule. Exit 0 clean, 1 with findings, 2 on usage errors."""
    try:
        egress = egress_rules(secrets, allow_egress or (), loopback=True)
    except SecretsFileError as exc:
        err_console.print(f"error: {exc}")
        raise typer.Exit(2) from exc
    findings, loaded = _findings_for(file, _when(at), egress)
    sim: list[dict[str, Any]] = []
    if simulate and loaded is not None and not findings:
        from routeguard.sim.gate import run_standard_scenarios

        sim = run_standard_scenarios(loaded.raw)
    if as_json:
        out: dict[str, Any] = {
            "file": str(file),
            "ok": not findings,
            "hash": loaded.content_hash if loaded is not None else None,
            "findings": [f.to_dict() for f in findings],
        }
        if simulate:
            out["simulation"] = sim
        print_json(out)
    elif findings:
        table = Table(title=f"{file}: {len(findings)} finding(s)", show_lines=False)
        for col in ("line", "code", "path", "message"):
            table.add_column(col, overflow="fold")
        for f in findings:
            table.add_row(str(f.line or ""), f.code, f.path, f.message)
        console.print(table)
    else:
        b = loaded.bundle
        console.print(
            f"[green]✓[/] {file}: {len(b.policies)} policies, {len(b.models)} models, "
            f"{len(b.approvals)} approvals — no findings ({loaded.content_hash[:19]}…)"
        )
        for row in sim:
            mark = "[green]pass[/]" if row.get("passed") else "[red]fail[/]"
            console.print(f"  scenario {row.get('scenario')}: {mark}")
    failed_sim = any(not row.get("passed") for row in sim)
    raise typer.Exit(1 if findings or failed_sim else 0)


def _when(text: str | None) -> float:
    if text is None:
        return time.time()
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    except ValueError as exc:
        raise typer.BadParameter(f"--now: expected a date like 2027-02-01, got {text!r}") from exc


def _parse_health(text: str | None) -> StaticHealth:
    """``{"model": "unhealthy"}`` or ``{"model": {"state": "degraded", "p95_ms": 900}}``."""
    if not text:
        return StaticHealth()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--health is not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise typer.BadParameter('--health must be an object like {"model": "unhealthy"}')
    by_model: dict[str, HealthState | ModelHealth] = {}
    for model, value in data.items():
        try:
            if isinstance(value, str):
                by_model[model] = HealthState(value)
            elif isinstance(value, dict):
                p95 = value.get("p95_ms")
                by_model[model] = ModelHealth(
                    HealthState(value.get("state", "healthy")),
                    since=float(value.get("since", float("-inf"))),
                    detail=str(value.get("detail", "")),
                    p95_latency_s=float(p95) / 1000 if p95 is not None else None,
                    probe_admitted=bool(value.get("probe_admitted", False)),
                )
            else:
                raise ValueError(value)
        except ValueError as exc:
            states = ", ".join(s.value for s in HealthState)
            raise typer.BadParameter(f"--health: {model}: expected one of {states}") from exc
    return StaticHealth(by_model)


def route(
    file: Annotated[Path, typer.Argument(help="bundle file (YAML or JSON)", exists=True, dir_okay=False)],
    context: Annotated[str, typer.Option("--context", help="the route request as JSON (CONTRACT §3)")],
    health: Annotated[str | None, typer.Option("--health", help='model health, e.g. {"m1": "unhealthy"}')] = None,
    safe_mode: Annotated[bool, typer.Option("--safe-mode", help="decide as if safe mode were on")] = False,
    now: Annotated[float | None, typer.Option("--now", help="decision time (epoch seconds)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the decision as JSON")] = False,
) -> None:
    """Print the decision for one task context under a bundle, offline."""
    at = time.time() if now is None else now
    try:
        loaded = load_bundle(file)
    except BundleError as exc:
        for f in exc.findings:
            err_console.print(f"[red]{f}[/]")
        raise typer.Exit(1) from exc
    try:
        raw_ctx = json.loads(context)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--context is not valid JSON: {exc.msg}") from exc
    table = compile_bundle(loaded.bundle, content_hash=loaded.content_hash)
    try:
        ctx = RouteContext.from_dict(raw_ctx, trace_id=raw_ctx.get("trace_id") or "cli")
        ctx = score_context(ctx, table, file.parent)
        decision = decide(ctx, table, _parse_health(health), SafeMode(global_on=safe_mode), at)
    except RoutingError as exc:
        if as_json:
            print_json({"error": {"code": exc.code, "message": exc.message}})
        else:
            err_console.print(f"[red]{exc.code}[/]: {exc.message}")
        raise typer.Exit(1) from exc
    if as_json:
        print_json(decision.to_dict())
        return
    d = decision.to_dict()
    colour = {"primary": "green", "fallback": "yellow", "terminal": "red"}[d["status"]]
    target = d["model"] or f"terminal: {d['terminal']['action']}"
    console.print(f"[bold]{d['policy']}[/] → [{colour}]{target}[/] ({d['status']})")
    if d.get("score") is not None:
        console.print(f"  learned primary score: {d['score']:.3f}")
    if d["backups"]:
        console.print(f"  backups: {', '.join(d['backups'])}")
    for r in d["rejected"]:
        console.print(f"  rejected {r['model']}: {r['reason']} — {r['detail']}")
    if d["terminal"]:
        console.print(f"  {d['terminal']['reason']}")


def schema(
    markdown: Annotated[
        bool, typer.Option("--markdown", help="the key table of docs/bundle.md instead of the JSON Schema")
    ] = False,
) -> None:
    """Print the JSON Schema of the bundle (for editors and CI)."""
    if markdown:
        from routeguard.config.schema_doc import markdown_table

        sys.stdout.write(markdown_table())
        return
    print_json(bundle_schema())
