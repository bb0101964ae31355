"""The policy-version lifecycle: create → approve (four eyes) → publish (all / tenants / percent) →
rollback. Each method is one transaction that writes its audit record (and, when notifiers are given,
its outbox messages) with the change. Bundles are opaque here: the service validates them first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from routeguard.store import _publications as ops
from routeguard.store import audit, fleet
from routeguard.store._codec import normalize_json, rfc3339
from routeguard.store.errors import FourEyesViolation, NotTheApprover, StateConflict
from routeguard.store.models import (
    Approval,
    AuditRecord,
    PolicyVersion,
    Publication,
    Scope,
    ScopeKind,
    VersionStatus,
)
from routeguard.store.outbox import enqueue
from routeguard.store.rollout import Rollout, applies_to
from routeguard.store.tables import ApprovalRow, PolicyVersionRow, PublicationRow

if TYPE_CHECKING:
    from routeguard.store.db import Database

__all__ = ["BOOTSTRAP_APPROVER", "PolicyStore"]

BOOTSTRAP_APPROVER = "routeguard:bootstrap"
# records of a change to what serves (or to what `GET /v1/policies` lists): each bumps the fleet's generation
_GOVERNANCE_KINDS = frozenset(
    {"policy.created", "policy.approved", "policy.published", "policy.rolled_back",
     "policy.tenant_rolled_back", "policy.bootstrap"}
)
POLICY_EVENT = "agent.routing.policy"
_ACTIONS = {
    "policy.published": "published",
    "policy.rolled_back": "rolled_back",
    "policy.tenant_rolled_back": "tenant_rolled_back",
}


class PolicyStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- audit + outbox in the caller's transaction ------------------------------------------------
    def _record(
        self,
        session: Session,
        kind: str,
        actor: str,
        payload: dict[str, Any],
        at: datetime,
        scope: str | None = None,
        notifiers: Sequence[str] = (),
    ) -> AuditRecord:
        record = audit.append(session, kind, actor, payload, None, scope, now=at)
        if kind in _GOVERNANCE_KINDS:
            fleet.bump(session, at)  # other replicas reload (NOTIFY at commit on PostgreSQL, else their poll)
        if notifiers:
            # CONTRACT §5: publications and rollbacks reach the notifiers as `agent.routing.policy`
            message = {
                "policy": None,
                "expected_duration": None,
                "expected_duration_basis": "unknown",
                **record.payload,
                "event": POLICY_EVENT,
                "action": _ACTIONS.get(kind, kind),
                "kind": kind,
                "scope": scope,  # the scope key(s), as on routing changes; the payload's form is `rollout`
                "rollout": record.payload.get("scope"),
                "by": actor,
                "ts": rfc3339(at),
                "audit_seq": record.seq,
            }
            enqueue(session, kind, message, notifiers, record.seq, now=at)
        return record

    # -- versions ------------------------------------------------------------------------------------
    def create_version(
        self,
        content: Mapping[str, Any],
        content_hash: str,
        label: str | None = None,
        author: str = "anonymous",
        *,
        intended_scope: Scope | None = None,
        required_approver: str | None = None,
        now: datetime | None = None,
    ) -> PolicyVersion:
        """Store a bundle (opaque JSON) as a new draft version; `intended_scope` is what publish uses when it
        names none, `required_approver` the only principal who may approve it."""
        if not content_hash.startswith("sha256:"):
            raise ValueError("content_hash must look like 'sha256:<hex>'")
        at = self._db.now(now)
        with self._db.transaction() as session:
            audit.lock_chain(session)
            row = PolicyVersionRow(
                content=normalize_json(dict(content)),
                content_hash=content_hash,
                label=label,
                author=author,
                created_at=at,
                status=VersionStatus.DRAFT.value,
                intended_scope=intended_scope.to_dict() if intended_scope is not None else None,
                required_approver=required_approver,
            )
            session.add(row)
            session.flush()
            payload: dict[str, Any] = {"version": row.version, "hash": content_hash, "label": label}
            if intended_scope is not None:
                payload["intended_scope"] = intended_scope.to_dict()
            if required_approver is not None:
                payload["approver"] = required_approver
            self._record(session, "policy.created", author, payload, at)
            return self._load(session, row.version, with_content=True)

    def list_versions(self, *, with_content: bool = False) -> list[PolicyVersion]:
        with self._db.read() as session:
            stmt = select(PolicyVersionRow).order_by(PolicyVersionRow.version)
            if not with_content:
                stmt = stmt.options(defer(PolicyVersionRow.content))
            rows = list(session.execute(stmt).scalars())
            approvals = self._approvals(session, None)
            live = [ops.publication(r) for r in ops.active_rows(session)]
            return [self._build(r, approvals, live, with_content) for r in rows]

    def get_version(self, version: int) -> PolicyVersion:
        with self._db.read() as session:
            return self._load(session, version, with_content=True)

    def _load(self, session: Session, version: int, *, with_content: bool) -> PolicyVersion:
        row = ops.version_row(session, version)
        live = [ops.publication(r) for r in ops.active_rows(session)]
        return self._build(row, self._approvals(session, version), live, with_content)

    @staticmethod
    def _approvals(session: Session, version: int | None) -> dict[int, list[Approval]]:
        stmt = select(ApprovalRow).order_by(ApprovalRow.id)
        if version is not None:
            stmt = stmt.where(ApprovalRow.version == version)
        out: dict[int, list[Approval]] = {}
        for r in session.execute(stmt).scalars():
            out.setdefault(r.version, []).append(Approval(r.version, r.approver, r.at, r.comment))
        return out

    @staticmethod
    def _build(
        row: PolicyVersionRow,
        approvals: dict[int, list[Approval]],
        live: list[Publication],
        with_content: bool,
    ) -> PolicyVersion:
        return PolicyVersion(
            version=row.version,
            content_hash=row.content_hash,
            label=row.label,
            author=row.author,
            created_at=row.created_at,
            status=VersionStatus(row.status),
            approvals=tuple(approvals.get(row.version, ())),
            live=tuple(p for p in live if p.version == row.version),
            content=row.content if with_content else None,
            intended_scope=Scope.from_dict(row.intended_scope) if row.intended_scope else None,
            required_approver=row.required_approver,
        )

    # -- approval ------------------------------------------------------------------------------------
    def approve(
        self, version: int, approver: str, comment: str | None = None, *, now: datetime | None = None
    ) -> PolicyVersion:
        """Record an approval; the author can never approve their own version (four eyes)."""
        at = self._db.now(now)
        with self._db.transaction() as session:
            audit.lock_chain(session)
            row = ops.version_row(session, version)
            if approver == row.author:
                raise FourEyesViolation(version, approver)
            if row.required_approver is not None and approver != row.required_approver:
                raise NotTheApprover(version, approver, row.required_approver)
            if any(a.approver == approver for a in self._approvals(session, version).get(version, ())):
                raise StateConflict(f"{approver!r} has already approved version {version}")
            session.add(ApprovalRow(version=version, approver=approver, at=at, comment=comment))
            if row.status == VersionStatus.DRAFT.value:
                row.status = VersionStatus.APPROVED.value
            session.flush()
            payload = {"version": version, "hash": row.content_hash, "approver": approver, "comment": comment}
            self._record(session, "policy.approved", approver, payload, at)
            return self._load(session, version, with_content=False)

    # -- publication ---------------------------------------------------------------------------------
    def publish(
        self,
        version: int,
        scope: Scope | Mapping[str, Any],
        by: str,
        *,
        notifiers: Sequence[str] = (),
        now: datetime | None = None,
    ) -> Publication:
        """Publish an approved version to `all`, named `tenants` or a sticky `percent` of tenants.
        Earlier publications this one fully covers end; where others overlap, the later one wins."""
        scope = (scope if isinstance(scope, Scope) else Scope.from_dict(scope)).checked()
        at = self._db.now(now)
        with self._db.transaction() as session:
            audit.lock_chain(session)
            row = ops.version_row(session, version)
            ops.require_approved(row)
            pub, ended = ops.insert_publication(session, version, scope, by, at)
            payload = {
                "version": version,
                "hash": row.content_hash,
                "publication": pub.id,
                "scope": scope.to_dict(),
                "ended": [ops.brief(p) for p in ended],
            }
            self._record(session, "policy.published", by, payload, at, scope.describe(), notifiers)
            return pub

    def rollback_to_version(
        self, version: int, by: str, *, notifiers: Sequence[str] = (), now: datetime | None = None
    ) -> list[Publication]:
        """Publish `version` again to the scope now served by later versions: to `all` when a later version
        is live for all, else to each later staged scope (tenants, or percent) in turn. Returns the new
        publications. The version must have been published before and no later version may be absent."""
        at = self._db.now(now)
        with self._db.transaction() as session:
            audit.lock_chain(session)
            row = ops.version_row(session, version)
            ops.require_approved(row)
            if row.status not in (VersionStatus.PUBLISHED.value, VersionStatus.SUPERSEDED.value):
                raise StateConflict(f"version {version} was never published; publish it instead")
            later = [ops.publication(r) for r in ops.active_rows(session) if r.version > version]
            if not later:
                raise StateConflict(f"no version later than {version} is live")
            targets: list[tuple[Scope, frozenset[str]]]
            if any(p.scope.kind is ScopeKind.ALL for p in later):
                targets = [(Scope.all(), frozenset())]
            else:
                targets = [self._remaining(p) for p in later]
            created = [ops.insert_publication(session, version, s, by, at, excl)[0] for s, excl in targets]
            payload = {
                "version": version,
                "hash": row.content_hash,
                "replaced": [ops.brief(p) for p in later],
                "publications": [ops.brief(p) for p in created],
            }
            scopes = ";".join(p.scope.describe() for p in created)
            self._record(session, "policy.rolled_back", by, payload, at, scopes, notifiers)
            return created

    @staticmethod
    def _remaining(pub: Publication) -> tuple[Scope, frozenset[str]]:
        if pub.scope.kind is ScopeKind.TENANTS:
            return Scope.for_tenants(sorted(set(pub.scope.tenants) - pub.excluded)), frozenset()
        return pub.scope, pub.excluded

    def rollback_tenant(
        self, tenant: str, by: str, *, notifiers: Sequence[str] = (), now: datetime | None = None
    ) -> list[Publication]:
        """Take `tenant` out of every staged (tenants / percent) publication that serves it, so it returns
        to the stable version; a tenants publication left with no tenant ends. Returns those changed."""
        at = self._db.now(now)
        with self._db.transaction() as session:
            audit.lock_chain(session)
            active = ops.active_rows(session)
            rows = [
                r
                for r in active
                if r.scope_kind != ScopeKind.ALL.value and applies_to(ops.publication(r), tenant)
            ]
            if not rows:
                raise StateConflict(f"tenant {tenant!r} has no staged publication")
            for row in rows:
                row.excluded = sorted(set(row.excluded or ()) | {tenant})
                if row.scope_kind == ScopeKind.TENANTS.value and set(row.tenants or ()) <= set(row.excluded):
                    ops.end_publication(row, by, at)
            session.flush()
            ops.refresh_status(session, {r.version for r in rows})
            changed = [ops.publication(r) for r in rows]
            stable = Rollout(ops.publication(r) for r in ops.active_rows(session)).stable_version()
            payload = {
                "tenant": tenant,
                "publications": [ops.brief(p) for p in changed],
                "now_serving": stable,
            }
            self._record(
                session, "policy.tenant_rolled_back", by, payload, at, f"tenants:{tenant}", notifiers
            )
            return changed

    def record_failed_publish(
        self,
        version: int | None,
        by: str,
        reason: str,
        *,
        findings: Sequence[Mapping[str, Any]] = (),
        now: datetime | None = None,
    ) -> AuditRecord:
        """Audit a refused publish; nothing else changes."""
        at = self._db.now(now)
        with self._db.transaction() as session:
            payload = {"version": version, "reason": reason, "findings": [dict(f) for f in findings]}
            return self._record(session, "policy.publish_failed", by, payload, at)

    def bootstrap(
        self,
        content: Mapping[str, Any],
        content_hash: str,
        label: str | None,
        by: str,
        *,
        now: datetime | None = None,
    ) -> PolicyVersion:
        """First start with `--config` on a store that never published: store, approve (as
        `routeguard:bootstrap`) and publish to all in one transaction, audited as `policy.bootstrap`."""
        at = self._db.now(now)
        with self._db.transaction() as session:
            audit.lock_chain(session)
            if session.execute(select(PublicationRow.id).limit(1)).first() is not None:
                raise StateConflict("the store already has a published version")
            row = PolicyVersionRow(
                content=normalize_json(dict(content)),
                content_hash=content_hash,
                label=label,
                author=by,
                created_at=at,
                status=VersionStatus.APPROVED.value,
            )
            session.add(row)
            session.flush()
            session.add(
                ApprovalRow(version=row.version, approver=BOOTSTRAP_APPROVER, at=at, comment="bootstrap")
            )
            pub, _ = ops.insert_publication(session, row.version, Scope.all(), by, at)
            payload = {"version": row.version, "hash": content_hash, "label": label, "publication": pub.id}
            self._record(session, "policy.bootstrap", by, payload, at, "all")
            return self._load(session, row.version, with_content=True)

    # -- reading what serves -------------------------------------------------------------------------
    def live_publications(self) -> list[Publication]:
        """Active publications, oldest first (feed them to `Rollout`)."""
        with self._db.read() as session:
            return [ops.publication(r) for r in ops.active_rows(session)]

    def publications(self) -> list[Publication]:
        """Every publication ever made, ended ones included, oldest first."""
        with self._db.read() as session:
            rows = session.execute(select(PublicationRow).order_by(PublicationRow.id)).scalars()
            return [ops.publication(r) for r in rows]

    def rollout(self) -> Rollout:
        return Rollout(self.live_publications())

    def has_published(self) -> bool:
        with self._db.read() as session:
            return session.execute(select(PublicationRow.id).limit(1)).first() is not None
