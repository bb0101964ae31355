"""The root Typer application; each command group lives in its own module."""

from __future__ import annotations

from typing import Annotated

import typer

from routeguard.cli import bundle_cmds, ops_cmds, queue_cmds, serve_cmds
from routeguard.sim import command as sim_command

app = typer.Typer(
    name="routeguard",
    help="Governed model routing for AI agents: decide, fall back safely, and prove what happened.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        from routeguard import __version__

        typer.echo(f"routeguard {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Governed model routing for AI agents: decide, fall back safely, and prove what happened."""


bundle_cmds.register(app)
serve_cmds.register(app)
ops_cmds.register(app)
queue_cmds.register(app)
sim_command.register(app)


def _mount_review() -> None:
    from routeguard.review.command import app as review_app

    app.add_typer(review_app, name="review", help="Propose cheaper or safer routing from evidence (never applies it).")


_mount_review()


def main() -> None:
    app()
