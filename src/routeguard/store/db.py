"""Engine, migrations and transactions; `open_store(url)` is the entry point of the store.

SQLite: WAL, foreign keys, busy_timeout, and `BEGIN IMMEDIATE` for write transactions, so two
writers never both read the chain head (the write lock is taken at BEGIN, not at the first write).
PostgreSQL through psycopg 3: `postgresql://` URLs are rewritten to `postgresql+psycopg://`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, pool
from sqlalchemy.orm import Session, sessionmaker

from routeguard.store._codec import utc, utcnow
from routeguard.store.audit import AuditLog
from routeguard.store.fleet import FleetStore
from routeguard.store.health_state import HealthStateStore
from routeguard.store.ledger import OutcomeLedger
from routeguard.store.outbox import Outbox
from routeguard.store.policies import PolicyStore
from routeguard.store.queue import HumanQueue
from routeguard.store.route_log import RouteLog
from routeguard.store.safe_mode import SafeModeStore

__all__ = [
    "DEFAULT_URL",
    "Database",
    "Store",
    "alembic_config",
    "create_store_engine",
    "current_revision",
    "normalize_url",
    "open_store",
    "upgrade",
]

DEFAULT_URL = "sqlite:///./routeguard.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE = "routeguard_write"

Clock = Callable[[], datetime]


def normalize_url(url: str | URL) -> URL:
    """`postgresql://` and `postgres://` become `postgresql+psycopg://` (psycopg 3); others unchanged."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_store_engine(url: str | URL) -> Engine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if _is_memory(parsed):
        kwargs["poolclass"] = pool.StaticPool
    engine = create_engine(parsed, **kwargs)
    memory = _is_memory(parsed)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


def alembic_config(url: str | URL | None = None, connection: Connection | None = None) -> Config:
    """An Alembic Config built in code (no alembic.ini): the packaged script location, a URL or connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = normalize_url(url).render_as_string(hide_password=False)
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(target: str | URL | Engine, revision: str = "head") -> None:
    """Migrate a database to `revision` (default head); idempotent."""
    engine = target if isinstance(target, Engine) else create_store_engine(target)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection=connection), revision)
    finally:
        if engine is not target:
            engine.dispose()


def head_revision() -> str:
    """The newest migration this package ships (a single head: the chain never branches)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class Database:
    """The engine, a clock, and the two kinds of session: write transactions and reads."""

    def __init__(self, engine: Engine, clock: Clock | None = None) -> None:
        self.engine = engine
        self.clock: Clock = clock or utcnow
        self._write = sessionmaker(engine.execution_options(**{_WRITE: True}), expire_on_commit=False)
        self._read = sessionmaker(engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def now(self, now: datetime | None = None) -> datetime:
        return utc(now) if now is not None else utc(self.clock())

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One write transaction: commits on success, rolls back on an exception. A state change and its
        audit record (and outbox messages) written in here commit together or not at all."""
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._read() as session, session.begin():
            yield session


class Store:
    """Everything durable: policy lifecycle, audit chain, outbox, human queue, safe mode, route events."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.policies = PolicyStore(db)
        self.audit = AuditLog(db)
        self.outbox = Outbox(db)
        self.queue = HumanQueue(db)
        self.safe_mode = SafeModeStore(db)
        self.events = RouteLog(db)
        self.health = HealthStateStore(db)
        self.fleet = FleetStore(db)
        self.ledger = OutcomeLedger(db)  # the outcome ledger (CONTRACT §7)

    @property
    def engine(self) -> Engine:
        return self.db.engine

    def transaction(self) -> AbstractContextManager[Session]:
        """See `Database.transaction`."""
        return self.db.transaction()

    def close(self) -> None:
        self.db.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_store(url: str | URL | None = None, *, clock: Clock | None = None, migrate: bool = True) -> Store:
    """Open (by default migrating to head) the store at `url`, else `ROUTEGUARD_DB`, else ./routeguard.db."""
    engine = create_store_engine(url or os.environ.get("ROUTEGUARD_DB") or DEFAULT_URL)
    try:
        if migrate:
            upgrade(engine)
        return Store(Database(engine, clock))
    except BaseException:
        engine.dispose()
        raise
