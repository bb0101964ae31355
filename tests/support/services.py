"""Real backing services for tests: PostgreSQL and Redis, skipped when unreachable.

Rule: a test that needs a service it cannot reach is SKIPPED with the reason, unless
ROUTEGUARD_REQUIRE_SERVICES=1, in which case it FAILS (CI sets this so nothing is silently skipped).

    url = postgres_url_or_skip()                 # e.g. postgresql://postgres@127.0.0.1:5432/test
    with postgres_schema() as url:               # a fresh schema, search_path set, dropped afterwards
        store = open_store(url)
    url = redis_url_or_skip()                    # e.g. redis://127.0.0.1:6379/0

Override the addresses with ROUTEGUARD_TEST_POSTGRES_URL and ROUTEGUARD_TEST_REDIS_URL.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "DEFAULT_REDIS_URL",
    "postgres_schema",
    "postgres_url_or_skip",
    "redis_url_or_skip",
    "services_required",
]

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def services_required() -> bool:
    return os.environ.get("ROUTEGUARD_REQUIRE_SERVICES", "") == "1"


def _unavailable(what: str, url: str, why: str) -> NoReturn:
    message = f"{what} not reachable at {url}: {why}"
    if services_required():
        pytest.fail(f"{message} (ROUTEGUARD_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(f"{message} (set ROUTEGUARD_REQUIRE_SERVICES=1 to fail instead)")


def _libpq_url(url: str) -> str:
    """psycopg takes libpq URIs: drop an SQLAlchemy driver suffix (`postgresql+psycopg://`)."""
    scheme, sep, rest = url.partition("://")
    return scheme.split("+", 1)[0] + sep + rest


@functools.cache
def _probe_postgres(url: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(_libpq_url(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure means "not usable here"; the reason is shown
        return f"{type(exc).__name__}: {exc}".strip()
    return None


@functools.cache
def _probe_redis(url: str) -> str | None:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def postgres_url_or_skip() -> str:
    """The test PostgreSQL URL (plain `postgresql://`), or skip/fail per the rule above."""
    url = os.environ.get("ROUTEGUARD_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    error = _probe_postgres(url)
    if error is not None:
        _unavailable("PostgreSQL", url, error)
    return url


def redis_url_or_skip() -> str:
    """The test Redis URL, or skip/fail per the rule above."""
    url = os.environ.get("ROUTEGUARD_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    error = _probe_redis(url)
    if error is not None:
        _unavailable("Redis", url, error)
    return url


@contextmanager
def postgres_schema(prefix: str = "rg_test") -> Iterator[str]:
    """A fresh schema in the test database; yields a URL whose connections use it (search_path),
    and drops it (CASCADE) afterwards. Close engines on the URL before the block ends."""
    import psycopg
    from sqlalchemy import make_url

    base = postgres_url_or_skip()
    schema = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(_libpq_url(base), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq_url(base), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
