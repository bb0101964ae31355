"""The root Typer application; each command group lives in its own module."""

from __future__ import annotations

import typer

from routeguard.cli import bundle_cmds

app = typer.Typer(
    name="routeguard",
    help="Governed model routing for AI agents: decide, fall back safely, and prove what happened.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bundle_cmds.register(app)


def main() -> None:
    app()
