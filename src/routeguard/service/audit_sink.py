"""Router events → the durable store: each in one transaction with its outbox messages (CONTRACT §5).

- RouteChanged: audited with its expected duration and basis (`service.episodes`), and queued to the policy's
  notifiers;
- TerminalEngaged: each request audited (not notified); the terminal episode it starts, and the routing change
  that ends it, are audited and queued to the policy's notifiers (`terminal.started` / `terminal.ended`);
- SafeModeChanged: automatic ones are persisted (so a restart keeps them), audited and queued to every
  notifier; manual ones are written by the safe-mode endpoint itself, so they are skipped here;
- HealthChanged (`health.changed`), CanaryStepped (`canary.step`): audited;
- FallbackUsed: counted only (and logged).
Every event is also a structured JSON log line on the `routeguard.events` logger (`telemetry.logs.log_event`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from routeguard.core.events import (
    Event,
    FallbackUsed,
    RouteChanged,
    SafeModeChanged,
    TerminalEngaged,
)
from routeguard.service.episodes import EpisodeBook, restore_episodes
from routeguard.store.db import Store
from routeguard.telemetry.logs import log_event

__all__ = ["AUTO_SAFE_MODE_ACTOR", "AuditSink"]

AUTO_SAFE_MODE_ACTOR = "routeguard:auto"
log = logging.getLogger("routeguard.service")


def _ts(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


class AuditSink:
    """Subscribe an instance to the Router; `notifiers()` names every notifier of the stable bundle."""

    def __init__(
        self,
        store: Store,
        notifiers: Callable[[], tuple[str, ...]],
        qualify: Callable[[str | None, tuple[str, ...]], tuple[str, ...]] | None = None,
    ) -> None:
        self._store = store
        self._notifiers = notifiers
        self._qualify = qualify
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.failures = 0
        self.episodes = EpisodeBook()
        try:
            restore_episodes(store, self.episodes)
        except Exception:  # never block a start on it: the worst case is a second start notification
            log.exception("could not restore open terminal episodes from the audit log")

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.counts[event.event] = self.counts.get(event.event, 0) + 1
        log_event(event)
        if isinstance(event, FallbackUsed):
            return
        body = event.to_dict()
        try:
            self._record(event, body)
        except Exception:
            with self._lock:
                self.failures += 1
            raise

    def _record(self, event: Event, body: dict[str, Any]) -> None:
        if isinstance(event, SafeModeChanged):
            if event.automatic:
                reason = event.reason or "automatic"
                self._store.safe_mode.set(
                    event.enabled,
                    event.tenant,
                    reason,
                    AUTO_SAFE_MODE_ACTOR,
                    notifiers=self._notifiers(),
                    now=_ts(event.at),
                )
            return
        payload = {k: v for k, v in body.items() if k not in ("kind", "ts")}
        if isinstance(event, RouteChanged):
            notify = event.notify
            if self._qualify is not None:  # a staged scope's own notifier of a shared name
                notify = self._qualify(event.scope, notify)
            payload.update(self.episodes.change_estimate(event))
            if event.policy_version is not None:  # once per fleet: a replica that finds it logged writes nothing
                self._store.events.record_route_change(
                    payload, event.policy, event.scope, event.policy_version, event.from_model, event.to_model,
                    notify, now=_ts(event.at),
                )
            else:
                self._store.events.record_event(event.audit_kind, payload, event.policy, event.scope,
                                                notify, now=_ts(event.at))
            if (ending := self.episodes.on_change(event)) is not None:
                self._episode(ending, event.at)
            return
        if isinstance(event, TerminalEngaged):
            for record in self.episodes.on_terminal(event):
                self._episode(record, event.at)
        self._store.events.record_event(
            event.audit_kind,
            payload,
            getattr(event, "policy", None),
            getattr(event, "scope", None),
            (),
            now=_ts(event.at),
        )

    def _episode(self, record: dict[str, Any], at: float) -> None:
        notify = tuple(record.pop("notify", ()))
        record["notifiers"] = list(notify)  # so a restarted service can end the episode it started
        when = float(record.pop("at", at))
        kind = "terminal.started" if record["phase"] == "start" else "terminal.ended"
        self._store.events.record_event(kind, record, record["policy"], None, notify, now=_ts(when))
