"""`routeguard queue list|claim|resolve`: the human queue of a running service (CONTRACT §3, §6)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from routeguard.cli.client import DEFAULT_SERVER, AsOpt, Client, JsonOpt, ServerOpt
from routeguard.cli.output import console, print_json

__all__ = ["register"]

queue_app = typer.Typer(
    help="The human queue on a running service: requests parked by a human_queue terminal action.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(queue_app, name="queue")


def _summary(entry: dict[str, Any]) -> str:
    who = f" by {entry['claimed_by']}" if entry.get("claimed_by") else ""
    return f"entry {entry['id']} ({entry['queue']}, policy {entry.get('policy') or '-'}): {entry['status']}{who}"


@queue_app.command("list")
def list_entries(
    queue: Annotated[str | None, typer.Option("--queue", help="only this queue")] = None,
    policy: Annotated[str | None, typer.Option("--policy", help="only this policy")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, claimed, resolved or cancelled")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="at most this many")] = 100,
    server: ServerOpt = DEFAULT_SERVER,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Entries oldest first, with who claimed or resolved them."""
    params = {k: v for k, v in (("queue", queue), ("policy", policy), ("status", status)) if v is not None}
    data = Client(server, principal, as_json).call("GET", "/v1/queue", params={**params, "limit": limit})
    if as_json:
        print_json(data)
        return
    table = Table(title=f"human queue ({len(data['entries'])} entries)")
    for col in ("id", "queue", "policy", "status", "claimed by", "created", "resolution"):
        table.add_column(col)
    for e in data["entries"]:
        resolution = (e.get("resolution") or {}).get("resolution") or ""
        table.add_row(
            str(e["id"]), e["queue"], e.get("policy") or "-", e["status"], e.get("claimed_by") or "-",
            e["created_at"], resolution,
        )
    console.print(table)


@queue_app.command("claim")
def claim(
    entry: Annotated[int, typer.Argument(help="entry id (named in the 503 of the call)", min=1)],
    server: ServerOpt = DEFAULT_SERVER,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Claim a pending entry (exit 1 when someone else holds it or it is closed)."""
    data = Client(server, principal, as_json).call("POST", f"/v1/queue/{entry}/claim")
    if as_json:
        print_json(data)
    else:
        console.print(f"claimed {escape(_summary(data))}; next: routeguard queue resolve {entry} --resolution …")


@queue_app.command("resolve")
def resolve(
    entry: Annotated[int, typer.Argument(help="entry id", min=1)],
    resolution: Annotated[str, typer.Option("--resolution", help="what was done, e.g. answered, escalated")],
    note: Annotated[str | None, typer.Option("--note", help="free text kept in the audit log")] = None,
    server: ServerOpt = DEFAULT_SERVER,
    principal: AsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Resolve an entry you claimed (or an unclaimed one)."""
    body = {"resolution": resolution, "note": note}
    data = Client(server, principal, as_json).call("POST", f"/v1/queue/{entry}/resolve", body)
    if as_json:
        print_json(data)
    else:
        console.print(f"resolved {escape(_summary(data))}")
