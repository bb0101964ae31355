"""A fleet for tests: one fresh PostgreSQL database (created, and dropped afterwards) and `routeguard serve`
subprocesses on it, on loopback.

    with postgres_database("rg_fleet") as url, fleet(url, config, ["a", "b", "c"], cwd=tmp_path) as replicas:
        replicas["a"].url ...
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from support.service import ServeProcess, serve_process
from support.services import postgres_url_or_skip

__all__ = ["fleet", "poll_until", "postgres_database"]


def _libpq(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return scheme.split("+", 1)[0] + sep + rest


@contextmanager
def postgres_database(prefix: str = "rg_fleet") -> Iterator[str]:
    """A new database on the test server (LISTEN/NOTIFY channels are per database, so tests stay apart);
    dropped afterwards, with any connection a killed replica left behind."""
    import psycopg
    from sqlalchemy import make_url

    base = postgres_url_or_skip()
    name = f"{prefix}_{secrets.token_hex(5)}"
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(base), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fleet(
    db_url: str,
    config: Path,
    names: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    extra: Sequence[str] = (),
) -> Iterator[dict[str, ServeProcess]]:
    """Start replicas named `names` (the first alone, so it bootstraps the store; then the rest)."""
    args = ("--db", db_url, "--config", str(config), "--event-log-level", "warning", *extra)
    with ExitStack() as stack:
        replicas: dict[str, ServeProcess] = {}
        for name in names:
            replicas[name] = stack.enter_context(
                serve_process(*args, "--replica-id", name, cwd=cwd, env=env)
            )
        yield replicas


def poll_until(check: Callable[[], Any], deadline: float, what: str, every_s: float = 0.02) -> Any:
    """Call `check` until it returns a truthy value; fail with `what` once `time.monotonic()` passes
    `deadline` (tests allow 1.5 s for the contract's 1 s: the harness polls over HTTP too)."""
    last: Any = None
    while True:
        try:
            last = check()
        except httpx.HTTPError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within the deadline (last: {last!r})")
        time.sleep(every_s)
