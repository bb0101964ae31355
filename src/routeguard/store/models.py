"""Value types returned by the store: frozen dataclasses and enums, no database types (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from routeguard.store._codec import rfc3339
from routeguard.store.errors import InvalidScope

__all__ = [
    "Approval",
    "AuditRecord",
    "OutboxMessage",
    "PolicyVersion",
    "Publication",
    "QueueEntry",
    "QueueStatus",
    "SafeModeEntry",
    "SafeModeState",
    "Scope",
    "ScopeKind",
    "VerifyResult",
    "VersionStatus",
]


class VersionStatus(StrEnum):
    DRAFT = "draft"  # stored, not approved yet
    APPROVED = "approved"  # approved, never published
    PUBLISHED = "published"  # at least one active publication
    SUPERSEDED = "superseded"  # was published, no active publication any more


class ScopeKind(StrEnum):
    ALL = "all"
    TENANTS = "tenants"
    PERCENT = "percent"
    BUSINESS_LINES = "business_lines"


class QueueStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a publication applies: every tenant, named tenants, or a sticky percentage of tenants."""

    kind: ScopeKind
    tenants: tuple[str, ...] = ()  # the tenants, or for BUSINESS_LINES the business lines
    percent: int | None = None

    @classmethod
    def all(cls) -> Scope:
        return cls(ScopeKind.ALL)

    @classmethod
    def for_tenants(cls, tenants: list[str] | tuple[str, ...]) -> Scope:
        return cls(ScopeKind.TENANTS, tenants=tuple(tenants))

    @classmethod
    def for_percent(cls, percent: int) -> Scope:
        return cls(ScopeKind.PERCENT, percent=percent)

    @classmethod
    def for_business_lines(cls, lines: list[str] | tuple[str, ...]) -> Scope:
        return cls(ScopeKind.BUSINESS_LINES, tenants=tuple(lines))

    @property
    def business_lines(self) -> tuple[str, ...]:
        return self.tenants if self.kind is ScopeKind.BUSINESS_LINES else ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scope:
        """The API form: `{all: true}`, `{tenants: [..]}` or `{percent: p}` (validated by `Scope.checked`)."""
        keys = {k for k, v in data.items() if v is not None and v is not False}
        if keys == {"all"}:
            return cls.all()
        if keys == {"tenants"} and isinstance(data["tenants"], list | tuple):
            return cls.for_tenants([str(t) for t in data["tenants"]])
        if keys == {"percent"} and isinstance(data["percent"], int) and not isinstance(data["percent"], bool):
            return cls.for_percent(data["percent"])
        if keys == {"business_lines"} and isinstance(data["business_lines"], list | tuple):
            return cls.for_business_lines([str(t) for t in data["business_lines"]])
        raise InvalidScope(
            "scope must be exactly one of {all: true}, {tenants: [...]}, {business_lines: [...]}, {percent: 1..100}"
        )

    def checked(self) -> Scope:
        if self.kind is ScopeKind.TENANTS:
            if not self.tenants or any(not t for t in self.tenants):
                raise InvalidScope("tenants scope needs a non-empty list of non-empty tenant ids")
            return Scope(ScopeKind.TENANTS, tenants=tuple(sorted(set(self.tenants))))
        if self.kind is ScopeKind.BUSINESS_LINES:
            if not self.tenants or any(not t for t in self.tenants):
                raise InvalidScope("business_lines scope needs a non-empty list of non-empty business lines")
            return Scope(ScopeKind.BUSINESS_LINES, tenants=tuple(sorted(set(self.tenants))))
        if self.kind is ScopeKind.PERCENT and (self.percent is None or not 1 <= self.percent <= 100):
            raise InvalidScope("percent scope needs an integer percent in 1..100")
        return self

    def describe(self) -> str:
        """A stable key: `all`, `tenants:a,b`, `percent:10`."""
        if self.kind is ScopeKind.TENANTS:
            return "tenants:" + ",".join(self.tenants)
        if self.kind is ScopeKind.PERCENT:
            return f"percent:{self.percent}"
        if self.kind is ScopeKind.BUSINESS_LINES:
            return "business_lines:" + ",".join(self.tenants)
        return "all"

    def to_dict(self) -> dict[str, Any]:
        if self.kind is ScopeKind.TENANTS:
            return {"tenants": list(self.tenants)}
        if self.kind is ScopeKind.PERCENT:
            return {"percent": self.percent}
        if self.kind is ScopeKind.BUSINESS_LINES:
            return {"business_lines": list(self.tenants)}
        return {"all": True}


@dataclass(frozen=True, slots=True)
class Publication:
    """One publication of a version to a scope; a later publication (higher id) wins where both apply."""

    id: int
    version: int
    scope: Scope
    published_by: str
    published_at: datetime
    excluded: frozenset[str] = frozenset()  # tenants taken out again by a tenant rollback
    active: bool = True
    ended_at: datetime | None = None
    ended_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "scope": self.scope.to_dict(),
            "scope_key": self.scope.describe(),
            "excluded_tenants": sorted(self.excluded),
            "by": self.published_by,
            "at": rfc3339(self.published_at),
            "active": self.active,
            "ended_at": rfc3339(self.ended_at) if self.ended_at else None,
            "ended_by": self.ended_by,
        }


@dataclass(frozen=True, slots=True)
class Approval:
    version: int
    approver: str
    at: datetime
    comment: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "approver": self.approver,
            "at": rfc3339(self.at),
            "comment": self.comment,
        }


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    version: int
    content_hash: str
    label: str | None
    author: str
    created_at: datetime
    status: VersionStatus
    approvals: tuple[Approval, ...] = ()
    live: tuple[Publication, ...] = ()  # its active publications
    content: dict[str, Any] | None = None  # None when listed without content
    intended_scope: Scope | None = None  # the upload's `scope`: what publish uses when it names none
    required_approver: str | None = None  # the upload's `approver`: the only principal who may approve it

    def to_dict(self, *, with_content: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "hash": self.content_hash,
            "label": self.label,
            "author": self.author,
            "created_at": rfc3339(self.created_at),
            "status": self.status.value,
            "approvals": [a.to_dict() for a in self.approvals],
            "scopes": [p.scope.to_dict() for p in self.live],
            "intended_scope": self.intended_scope.to_dict() if self.intended_scope is not None else None,
            "approver": self.required_approver,
        }
        if with_content:
            out["config"] = self.content
        return out


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    ts: datetime
    kind: str
    actor: str
    policy: str | None
    scope: str | None
    payload: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": rfc3339(self.ts),
            "kind": self.kind,
            "actor": self.actor,
            "policy": self.policy,
            "scope": self.scope,
            "payload": self.payload,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int
    first_broken: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "first_broken": self.first_broken,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    created_at: datetime
    kind: str
    payload: dict[str, Any]
    notifier: str
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    audit_seq: int | None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    id: int
    created_at: datetime
    queue: str
    policy: str | None
    trace_id: str | None
    request: dict[str, Any]
    status: QueueStatus
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution: dict[str, Any] | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "claimed_by": self.claimed_by,
            "claimed_at": rfc3339(self.claimed_at) if self.claimed_at else None,
            "id": self.id,
            "created_at": rfc3339(self.created_at),
            "queue": self.queue,
            "policy": self.policy,
            "trace_id": self.trace_id,
            "request": self.request,
            "status": self.status.value,
            "resolved_at": rfc3339(self.resolved_at) if self.resolved_at else None,
            "resolved_by": self.resolved_by,
            "resolution": self.resolution,
        }


@dataclass(frozen=True, slots=True)
class SafeModeEntry:
    tenant: str | None  # None: global
    enabled: bool
    reason: str
    by: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "enabled": self.enabled,
            "reason": self.reason,
            "by": self.by,
            "at": rfc3339(self.at),
        }


class SafeModeState(NamedTuple):
    global_on: bool
    tenants_on: frozenset[str]
    details: dict[str | None, SafeModeEntry]  # key None: the global switch

    def active_for(self, tenant: str | None) -> bool:
        return self.global_on or (tenant is not None and tenant in self.tenants_on)
