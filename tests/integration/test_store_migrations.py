"""Migrations and engine setup: idempotent, matching the models, packaged, SQLite pragmas."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from routeguard.store.db import create_store_engine, current_revision, head_revision, normalize_url, open_store, upgrade
from routeguard.store.tables import metadata
from support.services import postgres_schema
from support.stores import StepClock

TABLES = {
    "policy_versions",
    "approvals",
    "publications",
    "audit_log",
    "audit_head",
    "outbox",
    "human_queue",
    "safe_mode",
    "health_state",
    "governance",
    "fleet_replicas",
    "outcome_ledger",
    "alembic_version",
}


def check_migrated(url: str) -> None:
    upgrade(url)
    upgrade(url)  # idempotent
    store = open_store(url, clock=StepClock())
    try:
        store.events.record_event("route.changed", {"a": 1})
        store.close()
        store = open_store(url)  # reopening runs the migrations again: nothing changes
        assert store.audit.verify().records == 1
        assert current_revision(store.engine) == head_revision() != "r0001"
        assert set(inspect(store.engine).get_table_names()) >= TABLES
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert diff == []
    finally:
        store.close()


def test_sqlite_migrations(tmp_path: Path) -> None:
    check_migrated(f"sqlite:///{tmp_path / 'rg.db'}")


@pytest.mark.services
def test_postgresql_migrations() -> None:
    with postgres_schema() as url:
        check_migrated(url)


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    finally:
        engine.dispose()


def test_in_memory_sqlite_works() -> None:
    store = open_store("sqlite://")
    try:
        store.events.record_event("terminal", {"action": "suspend"})
        assert store.audit.verify().ok
    finally:
        store.close()


def test_default_url_comes_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEGUARD_DB", f"sqlite:///{tmp_path / 'env.db'}")
    open_store().close()
    assert (tmp_path / "env.db").exists()


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///./routeguard.db", "sqlite"),
    ],
)
def test_postgres_urls_use_psycopg3(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


def test_migrations_are_packaged_next_to_the_code() -> None:
    import routeguard.store.db as db

    assert (db.MIGRATIONS_DIR / "env.py").is_file()
    assert any(db.MIGRATIONS_DIR.joinpath("versions").glob("r0001_*.py"))
