"""Durable health for the service (CONTRACT §1 "Health survives restarts").

The Router's exported state — external signals per source, ejections (state, cooldown end, ejection
count) and the serving model per policy and scope — is written to the store when it changes: at once
for a routing change, an ejection or a recovery and for an external signal (rare events, so a kill -9
right after them loses nothing), and on the next background tick for other transitions. Never per
request. On start the service restores it before it serves; a move the evidence then makes is an
ordinary, logged routing change.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from routeguard.core.events import Event, HealthChanged, RouteChanged

if TYPE_CHECKING:
    from routeguard.runtime import Router
    from routeguard.store.db import Store

__all__ = ["HealthKeeper"]

log = logging.getLogger("routeguard.service")
_URGENT = frozenset({"unhealthy", "probing"})


class HealthKeeper:
    """Subscribe an instance to the Router; call :meth:`flush` from the background tick."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._router: Router | None = None
        self._dirty = False
        self._lock = threading.Lock()

    def restore(self, router: Router) -> None:
        """Load the stored state into ``router`` (before it serves) and keep it in step from now on."""
        self._router = router
        try:
            data = self._store.health.load()
        except Exception:  # an unreadable row must not stop the service: it starts from the evidence
            log.exception("durable health could not be read; starting from a clean slate")
            return
        if data:
            router.import_health(data)

    def __call__(self, event: Event) -> None:
        if isinstance(event, RouteChanged) or (
            isinstance(event, HealthChanged) and ({event.from_state, event.to_state} & _URGENT)
        ):
            self.save()
        elif isinstance(event, HealthChanged):
            self._dirty = True

    def save(self) -> None:
        """Write the router's durable state now."""
        router = self._router
        if router is None:
            return
        with self._lock:
            self._dirty = False
            self._store.health.save(router.export_health())

    def flush(self) -> None:
        """Write it when something changed since the last write (the background tick)."""
        if self._dirty:
            self.save()
