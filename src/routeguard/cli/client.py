"""A small HTTP client for the operator commands: token from ROUTEGUARD_TOKEN, clear errors, exit 1 on 4xx."""

from __future__ import annotations

import os
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from routeguard.cli.output import err_console, print_json

__all__ = ["DEFAULT_SERVER", "AsOpt", "Client", "JsonOpt", "ServerOpt", "fail"]

DEFAULT_SERVER = "http://127.0.0.1:8080"

ServerOpt = Annotated[
    str,
    typer.Option(
        "--server", envvar="ROUTEGUARD_SERVER", help="the routeguard service (token: ROUTEGUARD_TOKEN)"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
AsOpt = Annotated[
    str | None,
    typer.Option(
        "--as",
        envvar="ROUTEGUARD_PRINCIPAL",
        help="principal name sent as x-routeguard-principal (only a server without tokens uses it)",
    ),
]


def fail(
    message: str, as_json: bool = False, code: str = "error", extra: dict[str, Any] | None = None
) -> NoReturn:
    if as_json:
        print_json({"error": {"code": code, "message": message, **(extra or {})}})
    else:
        err_console.print(f"[red]error[/]: {escape(message)}")
    raise typer.Exit(1)


class Client:
    def __init__(self, server: str, principal: str | None = None, as_json: bool = False) -> None:
        self.server = server.rstrip("/")
        self.as_json = as_json
        self.headers = {"accept": "application/json"}
        token = os.environ.get("ROUTEGUARD_TOKEN")
        if token:
            self.headers["authorization"] = f"Bearer {token}"
        if principal:
            self.headers["x-routeguard-principal"] = principal

    def call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        import httpx

        try:
            response = httpx.request(
                method, self.server + path, json=body, params=params, headers=self.headers, timeout=30.0
            )
        except httpx.HTTPError as exc:
            fail(f"cannot reach {self.server}: {exc}", self.as_json, "unreachable")
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400:
            self._error(response.status_code, data)
        return data

    def _error(self, status: int, data: Any) -> NoReturn:
        error = data.get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict):
            fail(f"HTTP {status} from {self.server}", self.as_json, "http_error")
        code, message = str(error.get("code", "error")), str(error.get("message", ""))
        if self.as_json:
            print_json({"status": status, **data})
            raise typer.Exit(1)
        err_console.print(f"[red]error[/] ({status} {escape(code)}): {escape(message)}")
        for finding in error.get("findings") or []:
            line = f":{finding['line']}" if finding.get("line") else ""
            err_console.print(
                f"  {escape(str(finding.get('path', '')))}{line}: "
                f"[yellow]{escape(str(finding.get('code')))}[/] {escape(str(finding.get('message')))}"
            )
        if status == 401:
            err_console.print("  set ROUTEGUARD_TOKEN to a token from the server's --auth file")
        raise typer.Exit(1)
