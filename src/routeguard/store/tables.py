"""The schema (SQLAlchemy 2 typed ORM). Migrations in `migrations/versions` must match it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from routeguard.store._codec import canonical_json, utc

__all__ = [
    "ApprovalRow",
    "AuditHeadRow",
    "AuditRow",
    "Base",
    "GovernanceRow",
    "HealthStateRow",
    "HumanQueueRow",
    "JSONText",
    "OutboxRow",
    "OutcomeRow",
    "PolicyVersionRow",
    "PublicationRow",
    "ReplicaRow",
    "RouteServingRow",
    "SafeModeRow",
    "UTCDateTime",
    "metadata",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (naive text) and PostgreSQL (timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc(value)


class JSONText(TypeDecorator[Any]):
    """JSON stored as canonical text (sorted keys, compact), so raw rows are exactly what was hashed."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else canonical_json(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


class Base(DeclarativeBase):
    metadata = metadata


class PolicyVersionRow(Base):
    __tablename__ = "policy_versions"
    __table_args__ = ({"sqlite_autoincrement": True},)

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSONText, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(80), nullable=False)
    label: Mapped[str | None] = mapped_column(String(200))
    author: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    intended_scope: Mapped[dict[str, Any] | None] = mapped_column(JSONText)  # publish's default scope
    required_approver: Mapped[str | None] = mapped_column(String(200))  # the only principal who may approve


class ApprovalRow(Base):
    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(ForeignKey("policy_versions.version"), nullable=False, index=True)
    approver: Mapped[str] = mapped_column(String(200), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    comment: Mapped[str | None] = mapped_column(Text)


class PublicationRow(Base):
    __tablename__ = "publications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(ForeignKey("policy_versions.version"), nullable=False, index=True)
    scope_kind: Mapped[str] = mapped_column(String(16), nullable=False)
    tenants: Mapped[list[str] | None] = mapped_column(JSONText)
    percent: Mapped[int | None] = mapped_column(Integer)
    excluded: Mapped[list[str] | None] = mapped_column(JSONText)
    published_by: Mapped[str] = mapped_column(String(200), nullable=False)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(200))


class AuditRow(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    actor: Mapped[str] = mapped_column(String(200), nullable=False)
    policy: Mapped[str | None] = mapped_column(String(200), index=True)
    scope: Mapped[str | None] = mapped_column(String(400))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONText, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(80), nullable=False)
    hash: Mapped[str] = mapped_column(String(80), nullable=False)


class AuditHeadRow(Base):
    """One row (id 1): the last seq and hash. Locked by every append; detects deletion of the tail."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    hash: Mapped[str] = mapped_column(String(80), nullable=False)


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONText, nullable=False)
    notifier: Mapped[str] = mapped_column(String(200), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    audit_seq: Mapped[int | None] = mapped_column(Integer)
    claimed_by: Mapped[str | None] = mapped_column(String(200))  # the replica holding (or last holding) it
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)  # set while a replica sends it


class HumanQueueRow(Base):
    __tablename__ = "human_queue"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    queue: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    policy: Mapped[str | None] = mapped_column(String(200))
    trace_id: Mapped[str | None] = mapped_column(String(100))
    request: Mapped[dict[str, Any]] = mapped_column(JSONText, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[dict[str, Any] | None] = mapped_column(JSONText)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SafeModeRow(Base):
    """Key `global`, or `tenant:<id>` (prefixed so a tenant called "global" cannot collide)."""

    __tablename__ = "safe_mode"

    scope: Mapped[str] = mapped_column(String(300), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    set_by: Mapped[str] = mapped_column(String(200), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class HealthStateRow(Base):
    """Durable health (CONTRACT §1 "Health survives restarts"): one row per kind (`signals`, `breakers`,
    `routes`), rewritten on transitions only — never per request."""

    __tablename__ = "health_state"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    payload: Mapped[Any] = mapped_column(JSONText, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class GovernanceRow(Base):
    """One row (id 1): a counter bumped in the transaction of every governance change (publication,
    rollback, safe mode), so a replica sees with one cheap read whether it must reload."""

    __tablename__ = "governance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    generation: Mapped[int] = mapped_column(Integer, nullable=False)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReplicaRow(Base):
    """One row per `routeguard serve` process on this store, refreshed by its heartbeat."""

    __tablename__ = "fleet_replicas"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    pid: Mapped[int] = mapped_column(Integer, nullable=False)
    address: Mapped[str | None] = mapped_column(String(300))
    software: Mapped[str] = mapped_column(String(50), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    generation: Mapped[int] = mapped_column(Integer, nullable=False)
    serving: Mapped[dict[str, Any]] = mapped_column(JSONText, nullable=False)
    redis: Mapped[str | None] = mapped_column(String(200))


class RouteServingRow(Base):
    """The serving model per (policy, scope, version) as the fleet last logged it: the compare-and-set that
    makes each routing change recorded and notified once, whichever replica saw it first."""

    __tablename__ = "route_serving"

    policy: Mapped[str] = mapped_column(String(200), primary_key=True)
    scope: Mapped[str] = mapped_column(String(300), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    model: Mapped[str | None] = mapped_column(String(200))
    audit_seq: Mapped[int] = mapped_column(Integer, nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class OutcomeRow(Base):
    """The outcome ledger (CONTRACT §7): one row per served call or reported outcome; kept `--retain` (30d)."""

    __tablename__ = "outcome_ledger"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    ts: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    trace_id: Mapped[str | None] = mapped_column(String(100))
    policy: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int | None] = mapped_column(Integer)
    tenant: Mapped[str | None] = mapped_column(String(200))
    task_class: Mapped[str | None] = mapped_column(String(200))
    data_class: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    ok: Mapped[bool] = mapped_column(Boolean, nullable=False)
    error: Mapped[str | None] = mapped_column(String(32))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    input_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    quality: Mapped[float | None] = mapped_column(Float)
    deployment: Mapped[str | None] = mapped_column(String(200))  # r0006: the deployment the call went to
