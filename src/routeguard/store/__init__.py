"""The durable store: policy versions and their lifecycle, the audit hash chain, the notification outbox,
the human queue and safe mode, on SQLite or PostgreSQL (SQLAlchemy 2 + Alembic).

`from routeguard.store import open_store` loads SQLAlchemy only when first used; `routeguard.store.rollout`,
`.models` and `.errors` are pure and cheap to import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from routeguard.store.errors import (
    FourEyesViolation,
    InvalidScope,
    NotApproved,
    StateConflict,
    StoreError,
    UnknownEntry,
    UnknownVersion,
)
from routeguard.store.models import Publication, Scope, ScopeKind, VersionStatus
from routeguard.store.rollout import Rollout, tenant_bucket

if TYPE_CHECKING:
    from routeguard.store.db import Store, open_store, upgrade

__all__ = [
    "FourEyesViolation",
    "InvalidScope",
    "NotApproved",
    "Publication",
    "Rollout",
    "Scope",
    "ScopeKind",
    "StateConflict",
    "Store",
    "StoreError",
    "UnknownEntry",
    "UnknownVersion",
    "VersionStatus",
    "open_store",
    "tenant_bucket",
    "upgrade",
]

_LAZY = {"Store", "open_store", "upgrade"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from routeguard.store import db

        return getattr(db, name)
    raise AttributeError(f"module 'routeguard.store' has no attribute {name!r}")
