"""`routeguard audit verify|export --server URL`: the audit commands against a running service instead of a store.

`verify` asks `GET /v1/audit/verify`; `export` pages through `GET /v1/audit` (`after` cursor, 1,000 records a page)
and writes each record in its stored form (seq, ts, kind, actor, policy, scope, payload, prev_hash, hash), the same
JSON lines `audit export --db` writes, so an export taken either way verifies the same.
"""

from __future__ import annotations

from typing import Any, TextIO

import typer
from rich.markup import escape

from routeguard.cli.client import Client
from routeguard.cli.output import console, err_console, print_json
from routeguard.store._codec import canonical_json

__all__ = ["export_remote", "verify_remote"]

_STORED = ("seq", "ts", "kind", "actor", "policy", "scope", "payload", "prev_hash", "hash")
_PAGE = 1000


def verify_remote(server: str, as_json: bool) -> None:
    """Exit 0 when the service reports an intact chain, 1 with the first broken record otherwise."""
    result: dict[str, Any] = Client(server, None, as_json).call("GET", "/v1/audit/verify")
    if as_json:
        print_json(result)
    elif result.get("ok"):
        console.print(f"[green]✓[/] audit chain intact: {result.get('records')} record(s) ({escape(server)})")
    else:
        err_console.print(
            f"[red]✗[/] audit chain broken at record {result.get('first_broken')}: "
            f"{escape(str(result.get('reason') or ''))} ({result.get('records')} record(s), {escape(server)})"
        )
    raise typer.Exit(0 if result.get("ok") else 1)


def export_remote(server: str, fp: TextIO) -> tuple[int, int | None, str | None]:
    """Write every record as a JSON line; returns (count, last seq, last hash)."""
    client = Client(server)
    count, after = 0, None
    last: dict[str, Any] = {}
    while True:
        params: dict[str, Any] = {"limit": _PAGE}
        if after is not None:
            params["after"] = after
        page = client.call("GET", "/v1/audit", params=params)
        for record in page.get("records", []):
            last = {k: record.get(k) for k in _STORED}
            fp.write(canonical_json(last) + "\n")
            count += 1
        after = page.get("next")
        if after is None or not page.get("records"):
            return count, last.get("seq"), last.get("hash")
