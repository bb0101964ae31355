"""Routing tables per live scope, built from the store's publications.

Scope keys: `all` for the stable publication (there is always an `all` table; an empty bundle, or the
legacy one, stands in when nothing is published for everyone), and `tenants:a,b` / `percent:10` for
staged ones. `scope_of(tenant)` follows `store.rollout`: the latest publication that applies to the
tenant wins, percent buckets are sticky per tenant, and no tenant means the stable version.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from routeguard.config.load import LoadedBundle, load_bundle
from routeguard.core.model import Bundle
from routeguard.core.table import RoutingTable, compile_bundle
from routeguard.runtime import STABLE_SCOPE
from routeguard.store.models import Publication, ScopeKind
from routeguard.store.rollout import Rollout

__all__ = ["EMPTY_TABLE", "LiveTables", "TableCache", "empty_table", "scope_versions"]

_TENANT_CACHE_MAX = 100_000


def empty_table() -> RoutingTable:
    """A table with no policies: every route request is 404 until a version is published."""
    from routeguard.core.defaults import DATA_CLASSES

    bundle = Bundle(
        data_classes=DATA_CLASSES, models={}, profiles={}, approvals=(), notifiers={}, policies={}
    )
    return compile_bundle(bundle, content_hash="", version=None)


EMPTY_TABLE = empty_table()


class TableCache:
    """Compiled tables by version (a stored version never changes, so each compiles once)."""

    def __init__(self) -> None:
        self._tables: dict[int, RoutingTable] = {}
        self._lock = threading.Lock()

    def get(self, version: int, content: Callable[[], tuple[Mapping[str, Any], str]]) -> RoutingTable:
        with self._lock:
            table = self._tables.get(version)
        if table is None:
            raw, digest = content()
            table = self.compile(raw, digest, version)
        return table

    def compile(self, raw: Mapping[str, Any] | LoadedBundle, digest: str, version: int) -> RoutingTable:
        loaded = raw if isinstance(raw, LoadedBundle) else load_bundle(dict(raw))
        table = compile_bundle(loaded.bundle, content_hash=digest, version=version)
        with self._lock:
            self._tables[version] = table
        return table


@dataclass(frozen=True, slots=True)
class LiveTables:
    """The tables of one rollout snapshot and the tenant → scope function that goes with them."""

    tables: dict[str, RoutingTable]
    scope_keys: dict[int, str]  # publication id -> scope key
    rollout: Rollout

    @classmethod
    def build(
        cls, rollout: Rollout, table_of: Callable[[int], RoutingTable], fallback: RoutingTable
    ) -> LiveTables:
        stable = rollout.resolve(None)
        tables: dict[str, RoutingTable] = {STABLE_SCOPE: fallback}
        keys: dict[int, str] = {}
        for pub in rollout.publications:
            key = STABLE_SCOPE if stable is not None and pub.id == stable.id else _staged_key(pub, tables)
            keys[pub.id] = key
            tables[key] = table_of(pub.version)
        return cls(tables, keys, rollout)

    @property
    def stable(self) -> RoutingTable:
        return self.tables[STABLE_SCOPE]

    def scope_function(self) -> Callable[[str | None, str | None], str]:
        """(tenant, business line) -> scope key; memoised per pair (the snapshot never changes)."""
        cache: dict[tuple[str | None, str | None], str] = {}
        resolve, keys = self.rollout.resolve, self.scope_keys
        by_line = any(p.scope.kind is ScopeKind.BUSINESS_LINES for p in self.rollout.publications)

        def scope_of(tenant: str | None, business_line: str | None = None) -> str:
            line = business_line if by_line else None
            if tenant is None and line is None:
                return STABLE_SCOPE
            key = cache.get((tenant, line))
            if key is None:
                pub = resolve(tenant, line)
                key = keys.get(pub.id, STABLE_SCOPE) if pub is not None else STABLE_SCOPE
                if len(cache) >= _TENANT_CACHE_MAX:
                    cache.clear()
                cache[(tenant, line)] = key
            return key

        return scope_of

    def version_for(self, tenant: str | None, business_line: str | None = None) -> int | None:
        return self.tables[self.scope_function()(tenant, business_line)].version


def _staged_key(pub: Publication, taken: Mapping[str, RoutingTable]) -> str:
    key = pub.scope.describe()
    return key if key not in taken else f"{key}#{pub.id}"


def scope_versions(rollout: Rollout) -> dict[str, int | None]:
    """The version per scope key that `LiveTables.build` gives this rollout (without compiling anything):
    what every replica of a fleet should serve. `all` is None when nothing is published for everyone."""
    stable = rollout.resolve(None)
    out: dict[str, int | None] = {STABLE_SCOPE: None}
    for pub in rollout.publications:
        if stable is not None and pub.id == stable.id:
            key = STABLE_SCOPE
        else:
            key = pub.scope.describe()
            key = key if key not in out else f"{key}#{pub.id}"
        out[key] = pub.version
    return out
