"""Publication rows ↔ values, and the write steps shared by the lifecycle methods (inside a transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from routeguard.store._codec import fits_int4
from routeguard.store.errors import NotApproved, UnknownVersion
from routeguard.store.models import Publication, Scope, ScopeKind, VersionStatus
from routeguard.store.rollout import shadows
from routeguard.store.tables import PolicyVersionRow, PublicationRow

__all__ = [
    "active_rows",
    "brief",
    "end_publication",
    "insert_publication",
    "publication",
    "refresh_status",
    "require_approved",
    "version_row",
]


def publication(row: PublicationRow) -> Publication:
    kind = ScopeKind(row.scope_kind)
    scope = Scope(kind, tenants=tuple(row.tenants or ()), percent=row.percent)
    return Publication(
        id=row.id,
        version=row.version,
        scope=scope,
        published_by=row.published_by,
        published_at=row.published_at,
        excluded=frozenset(row.excluded or ()),
        active=row.active,
        ended_at=row.ended_at,
        ended_by=row.ended_by,
    )


def brief(pub: Publication) -> dict[str, Any]:
    return {
        "publication": pub.id,
        "version": pub.version,
        "scope": pub.scope.to_dict(),
        "excluded_tenants": sorted(pub.excluded),
    }


def version_row(session: Session, version: int) -> PolicyVersionRow:
    row = session.get(PolicyVersionRow, version) if fits_int4(version) else None
    if row is None:
        raise UnknownVersion(version)
    return row


def active_rows(session: Session) -> list[PublicationRow]:
    stmt = select(PublicationRow).where(PublicationRow.active.is_(True)).order_by(PublicationRow.id)
    return list(session.execute(stmt).scalars())


def refresh_status(session: Session, versions: set[int]) -> None:
    """published while a publication of it is active; superseded once the last one ends."""
    live = {row.version for row in active_rows(session)}
    for version in versions:
        row = version_row(session, version)
        if version in live:
            row.status = VersionStatus.PUBLISHED.value
        elif row.status == VersionStatus.PUBLISHED.value:
            row.status = VersionStatus.SUPERSEDED.value


def end_publication(row: PublicationRow, by: str, at: datetime) -> None:
    row.active, row.ended_at, row.ended_by = False, at, by


def insert_publication(
    session: Session,
    version: int,
    scope: Scope,
    by: str,
    at: datetime,
    excluded: frozenset[str] = frozenset(),
) -> tuple[Publication, list[Publication]]:
    """Insert a publication and end every active one it fully covers; returns (new, ended)."""
    ended: list[Publication] = []
    for row in active_rows(session):
        if shadows(scope, publication(row)):
            end_publication(row, by, at)
            ended.append(publication(row))
    row = PublicationRow(
        version=version,
        scope_kind=scope.kind.value,
        tenants=list(scope.tenants) if scope.kind in (ScopeKind.TENANTS, ScopeKind.BUSINESS_LINES) else None,
        percent=scope.percent if scope.kind is ScopeKind.PERCENT else None,
        excluded=sorted(excluded) or None,
        published_by=by,
        published_at=at,
        active=True,
    )
    session.add(row)
    session.flush()
    refresh_status(session, {version} | {p.version for p in ended})
    return publication(row), ended


def require_approved(row: PolicyVersionRow) -> None:
    if row.status == VersionStatus.DRAFT.value:
        raise NotApproved(row.version)
