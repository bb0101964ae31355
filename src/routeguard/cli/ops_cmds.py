"""Operator commands against a running service: `routeguard policy …` and `routeguard safe-mode …`."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from routeguard.cli.client import DEFAULT_SERVER, AsOpt, Client, JsonOpt, ServerOpt, fail
from routeguard.cli.output import console, print_json

__all__ = ["register"]

policy_app = typer.Typer(
    help="Policy versions on a running service: upload, approve, publish, roll back.", no_args_is_help=True
)
safe_app = typer.Typer(
    help="Safe mode on a running service: only trusted models are selected.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(policy_app, name="policy")
    app.add_typer(safe_app, name="safe-mode")


def _scope(scope: dict[str, Any] | None) -> str:
    if not scope:
        return "-"
    if scope.get("all"):
        return "all"
    if "tenants" in scope:
        return "tenants " + ",".join(scope["tenants"])
    if "business_lines" in scope:
        return "business lines " + ",".join(scope["business_lines"])
    return f"{scope.get('percent')}% of tenants"


def _done(data: Any, as_json: bool, text: str) -> None:
    if as_json:
        print_json(data)
    else:
        console.print(text)


# ------------------------------------------------------------------ policy
@policy_app.command("upload")
def upload(
    file: Annotated[Path, typer.Argument(help="bundle file (YAML or JSON)", exists=True, dir_okay=False)],
    label: Annotated[str | None, typer.Option("--label", help="a label for the version")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only check it; store nothing")] = False,
    approver: Annotated[
        str | None, typer.Option("--approver", help="the only principal who may approve this version")
    ] = None,
    server: ServerOpt = DEFAULT_SERVER,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload a bundle as a new draft version (exit 1 with every finding when it breaks a rule)."""
    body: dict[str, Any] = {"config": file.read_text(encoding="utf-8"), "label": label or file.name, "dry_run": dry_run}
    if approver is not None:
        body["approver"] = approver
    data = Client(server, principal, as_json).call("POST", "/v1/policies", body)
    if dry_run:
        _done(data, as_json, f"[green]✓[/] {escape(str(file))} passes every check ({data['hash'][:19]}…)")
    else:
        _done(
            data,
            as_json,
            f"uploaded {escape(str(file))} as version [bold]{data['version']}[/] (draft, "
            f"{data['hash'][:19]}…); next: routeguard policy approve {data['version']}",
        )


@policy_app.command("list")
def list_versions(
    server: ServerOpt = DEFAULT_SERVER, principal: AsOpt = None, as_json: JsonOpt = False
) -> None:
    """Every policy version with its status, author, approvals and live scope."""
    data = Client(server, principal, as_json).call("GET", "/v1/policies")
    if as_json:
        print_json(data)
        return
    table = Table(title=f"policy versions (stable: {data.get('stable_version')})")
    for col in ("version", "status", "label", "author", "approved by", "scope", "created"):
        table.add_column(col, overflow="fold")
    for v in data["versions"]:
        approvers = ", ".join(a["approver"] for a in v.get("approvals", [])) or "-"
        scopes = "; ".join(_scope(s) for s in v.get("scopes", [])) or "-"
        table.add_row(
            str(v["version"]),
            v["status"],
            v.get("label") or "",
            v["author"],
            approvers,
            scopes,
            v["created_at"],
        )
    console.print(table)


@policy_app.command("show")
def show(
    version: Annotated[int, typer.Argument(help="version number")],
    server: ServerOpt = DEFAULT_SERVER,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One version: status, approvals, scope and its bundle."""
    data = Client(server, principal, as_json).call("GET", f"/v1/policies/{version}")
    if as_json:
        print_json(data)
        return
    console.print(
        f"[bold]version {data['version']}[/] {data['status']} — {escape(str(data.get('label') or ''))}"
    )
    console.print(f"  hash {data['hash']}\n  author {escape(data['author'])}, created {data['created_at']}")
    for a in data.get("approvals", []):
        console.print(f"  approved by {escape(a['approver'])} at {a['at']}")
    console.print(f"  scope: {'; '.join(_scope(s) for s in data.get('scopes', [])) or '-'}")
    typer.echo(yaml.safe_dump(data.get("config"), sort_keys=False, allow_unicode=True))


@policy_app.command("diff")
def diff(
    a: Annotated[int, typer.Argument(help="the older version")],
    b: Annotated[int, typer.Argument(help="the newer version")],
    server: ServerOpt = DEFAULT_SERVER,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A unified diff of two versions' bundles (as sorted YAML)."""
    client = Client(server, principal, as_json)
    texts = [
        yaml.safe_dump(client.call("GET", f"/v1/policies/{v}").get("config"), sort_keys=True).splitlines(True)
        for v in (a, b)
    ]
    lines = list(difflib.unified_diff(texts[0], texts[1], f"version {a}", f"version {b}"))
    if as_json:
        print_json({"a": a, "b": b, "same": not lines, "diff": "".join(lines)})
    elif not lines:
        console.print(f"versions {a} and {b} have the same bundle")
    else:
        typer.echo("".join(lines), nl=False)


@policy_app.command("approve")
def approve(
    version: Annotated[int, typer.Argument(help="version number")],
    comment: Annotated[str | None, typer.Option("--comment", help="why it is approved")] = None,
    server: ServerOpt = DEFAULT_SERVER,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approve a version (you must not be its author)."""
    data = Client(server, principal, as_json).call(
        "POST", f"/v1/policies/{version}/approve", {"comment": comment}
    )
    _done(
        data,
        as_json,
        f"version {version} approved ({data['status']}); next: routeguard policy publish {version}",
    )


@policy_app.command("publish")
def publish(
    version: Annotated[int, typer.Argument(help="version number")],
    to_all: Annotated[bool, typer.Option("--all", help="publish to every tenant (the default)")] = False,
    tenants: Annotated[str | None, typer.Option("--tenants", help="comma-separated tenant ids")] = None,
    percent: Annotated[int | None, typer.Option("--percent", min=1, max=100, help="a sticky share")] = None,
    business_lines: Annotated[
        str | None, typer.Option("--business-lines", help="comma-separated business lines")
    ] = None,
    server: ServerOpt = DEFAULT_SERVER,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish an approved version: to all, named tenants or business lines, or a percentage of tenants
    (none given: the upload's intended scope, else all)."""
    if sum((to_all, tenants is not None, percent is not None, business_lines is not None)) > 1:
        fail("give at most one of --all, --tenants, --business-lines, --percent", as_json, "usage")
    scope: dict[str, Any] | None = {"all": True} if to_all else None
    if tenants is not None:
        scope = {"tenants": [t.strip() for t in tenants.split(",") if t.strip()]}
    elif business_lines is not None:
        scope = {"business_lines": [b.strip() for b in business_lines.split(",") if b.strip()]}
    elif percent is not None:
        scope = {"percent": percent}
    data = Client(server, principal, as_json).call(
        "POST", f"/v1/policies/{version}/publish", {"scope": scope} if scope is not None else {}
    )
    _done(
        data,
        as_json,
        f"version {version} published to {_scope(data['scope'])} "
        f"(stable version: {data.get('stable_version')})",
    )


@policy_app.command("rollback")
def rollback(
    version: Annotated[int | None, typer.Option("--version", help="publish this version again")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="return this tenant to stable")] = None,
    server: ServerOpt = DEFAULT_SERVER,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Roll back: `--version N` where a later version serves, or `--tenant T` to the stable version."""
    if (version is None) == (tenant is None):
        fail("give exactly one of --version and --tenant", as_json, "usage")
    body = {"version": version} if version is not None else {"tenant": tenant}
    data = Client(server, principal, as_json).call("POST", "/v1/rollback", body)
    if tenant is not None:
        _done(data, as_json, f"tenant {escape(tenant)} now served by version {data.get('now_serving')}")
    else:
        scopes = ", ".join(_scope(p["scope"]) for p in data["publications"])
        _done(data, as_json, f"version {version} published again to {scopes}")


# ------------------------------------------------------------------ safe mode
def _safe(
    enabled: bool, tenant: str | None, reason: str | None, server: str, principal: str | None, as_json: bool
) -> None:
    body = {"enabled": enabled, "tenant": tenant, "reason": reason or ""}
    data = Client(server, principal, as_json).call("POST", "/v1/safe-mode", body)
    where = f"for tenant {escape(tenant)}" if tenant else "globally"
    _done(data, as_json, f"safe mode {'[yellow]on[/]' if enabled else '[green]off[/]'} {where}")


TenantOpt = Annotated[str | None, typer.Option("--tenant", help="only for this tenant")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="recorded in the audit log")]


@safe_app.command("on")
def safe_on(
    tenant: TenantOpt = None,
    reason: ReasonOpt = None,
    server: ServerOpt = DEFAULT_SERVER,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Switch safe mode on (only `trusted: true` models are selected)."""
    _safe(True, tenant, reason, server, principal, as_json)


@safe_app.command("off")
def safe_off(
    tenant: TenantOpt = None,
    reason: ReasonOpt = None,
    server: ServerOpt = DEFAULT_SERVER,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Switch safe mode off."""
    _safe(False, tenant, reason, server, principal, as_json)


@safe_app.command("status")
def safe_status(
    tenant: Annotated[str | None, typer.Option("--tenant", help="is it on for this tenant?")] = None,
    server: ServerOpt = DEFAULT_SERVER,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show safe mode: global, and the tenants it is on for."""
    data = Client(server, principal, as_json).call("GET", "/v1/safe-mode")
    if tenant is not None:
        data["tenant"] = tenant
        data["active_for_tenant"] = bool(data["enabled"] or tenant in data["tenants"])
    if as_json:
        print_json(data)
        return
    console.print(f"safe mode globally: {'[yellow]on[/]' if data['enabled'] else '[green]off[/]'}")
    if data["tenants"]:
        console.print(f"on for tenants: {escape(', '.join(data['tenants']))}")
    if tenant is not None:
        console.print(f"tenant {escape(tenant)}: {'on' if data['active_for_tenant'] else 'off'}")
