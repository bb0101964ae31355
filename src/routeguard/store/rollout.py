"""Which published version serves a tenant (pure: no database, no clock).

Rules, given the active publications:
- a request with no tenant gets the stable version: the latest `all` publication;
- a tenant gets the version of the latest publication that applies to it: `all` applies to everyone,
  `tenants` to the tenants it names, `percent p` to tenants whose sticky bucket is below p;
- a tenant taken out of a staged publication by a tenant rollback (`excluded`) is not matched by it;
- `business_lines` applies to requests whose business line it names (like `tenants` for tenants).
The bucket is sha256(tenant id) mod 100, so a tenant never flips between versions while the
publications stay the same, and raising the percentage only ever adds tenants.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from routeguard.store.models import Publication, Scope, ScopeKind

__all__ = ["Rollout", "applies_to", "shadows", "tenant_bucket"]


def tenant_bucket(tenant: str) -> int:
    """The sticky bucket 0..99 of a tenant: the first 8 bytes of sha256(tenant id, UTF-8) mod 100."""
    return int.from_bytes(hashlib.sha256(tenant.encode("utf-8")).digest()[:8], "big") % 100


def applies_to(publication: Publication, tenant: str | None, business_line: str | None = None) -> bool:
    scope = publication.scope
    if scope.kind is ScopeKind.ALL:
        return True
    if scope.kind is ScopeKind.BUSINESS_LINES:
        return business_line is not None and business_line in scope.business_lines and (
            tenant is None or tenant not in publication.excluded
        )
    if tenant is None or tenant in publication.excluded:
        return False
    if scope.kind is ScopeKind.TENANTS:
        return tenant in scope.tenants
    return scope.percent is not None and tenant_bucket(tenant) < scope.percent


def shadows(newer: Scope, older: Publication) -> bool:
    """True when a publication to `newer` covers every tenant `older` serves, so `older` can end."""
    if newer.kind is ScopeKind.ALL:
        return True
    if newer.kind is ScopeKind.TENANTS and older.scope.kind is ScopeKind.TENANTS:
        return set(older.scope.tenants) - older.excluded <= set(newer.tenants)
    if newer.kind is ScopeKind.BUSINESS_LINES and older.scope.kind is ScopeKind.BUSINESS_LINES:
        return set(older.scope.business_lines) <= set(newer.business_lines)
    if newer.kind is ScopeKind.PERCENT and older.scope.kind is ScopeKind.PERCENT:
        return (older.scope.percent or 0) <= (newer.percent or 0)
    return False


class Rollout:
    """A snapshot of the live publications, answering which version serves a tenant."""

    __slots__ = ("_newest_first",)

    def __init__(self, publications: Iterable[Publication]) -> None:
        live = [p for p in publications if p.active]
        self._newest_first: tuple[Publication, ...] = tuple(sorted(live, key=lambda p: p.id, reverse=True))

    @property
    def publications(self) -> tuple[Publication, ...]:
        """The active publications, oldest first."""
        return tuple(reversed(self._newest_first))

    def resolve(self, tenant: str | None, business_line: str | None = None) -> Publication | None:
        """The publication serving this tenant (and business line); None: nothing is published for it."""
        for publication in self._newest_first:
            if applies_to(publication, tenant, business_line):
                return publication
        return None

    def version_for(self, tenant: str | None, business_line: str | None = None) -> int | None:
        publication = self.resolve(tenant, business_line)
        return publication.version if publication is not None else None

    def stable_version(self) -> int | None:
        return self.version_for(None)

    def live_scopes(self) -> list[tuple[int, str]]:
        """(version, scope key) per active publication, oldest first; the keys are stable while it lives."""
        return [(p.version, p.scope.describe()) for p in self.publications]

    def live_versions(self) -> list[int]:
        """Every version some tenant may be served by, ascending."""
        return sorted({p.version for p in self._newest_first})
