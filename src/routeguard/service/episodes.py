"""What governance notifications say beyond the bare event (CONTRACT §5): expected durations with their basis, and
terminal episodes instead of one message per terminal request.

- `expected_duration` is the best estimate routeguard has, and `expected_duration_basis` says where it comes from:
  `signal_ttl` (an unexpired external `down`/`degraded` signal on the model that was left: the time left on it),
  `next_check` (the model was ejected: the time until its cooldown ends and it is probed again), `operator`
  (a person stated it, e.g. with a safe-mode switch) or `unknown`.
- A terminal episode of a policy starts with its first terminal request and ends when the policy is served by a model
  again (a routing change to a model), or, when no change comes, at the next terminal request after `idle_s` without
  one. Start and end are notified; the requests in between are counted, and the end carries their number and the
  episode's actual duration.

Hand-written: a small per-policy state machine over the router's events; the service's audit sink calls it before it
writes each record, under its own lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from routeguard.core.durations import format_duration
from routeguard.core.events import RouteChanged, TerminalEngaged, rfc3339

if TYPE_CHECKING:
    from routeguard.store.db import Store
    from routeguard.store.models import AuditRecord

__all__ = ["Basis", "EpisodeBook", "SignalLedger", "restore_episodes"]

IDLE_S = 600.0
RESTORE_DAYS = 7


class Basis:
    SIGNAL_TTL = "signal_ttl"
    NEXT_CHECK = "next_check"
    OPERATOR = "operator"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class _Signal:
    status: str
    expires_at: float | None


class SignalLedger:
    """The external signals the service accepted (`PUT /v1/health`, pull sources), kept to explain durations."""

    def __init__(self) -> None:
        self._signals: dict[tuple[str, str], _Signal] = {}
        self._lock = threading.Lock()

    def note(self, model: str, status: str, source: str, ttl_s: float | None, now: float) -> None:
        with self._lock:
            self._signals[(model, source)] = _Signal(status, now + ttl_s if ttl_s is not None else None)

    def withdraw(self, model: str, source: str) -> None:
        with self._lock:
            self._signals.pop((model, source), None)

    def time_left(self, model: str, now: float) -> float | None:
        """Seconds left on the longest unexpired `down`/`degraded` signal with a ttl for `model`, else None."""
        with self._lock:
            left = [
                s.expires_at - now
                for (m, _source), s in self._signals.items()
                if m == model and s.status in ("down", "degraded") and s.expires_at is not None and s.expires_at > now
            ]
        return max(left) if left else None


@dataclass
class _Episode:
    policy: str
    action: str
    queue: str | None
    started_at: float
    last_at: float
    requests: int
    notify: tuple[str, ...]


def _estimate(seconds: float | None, basis: str) -> dict[str, Any]:
    if seconds is None or basis == Basis.UNKNOWN:
        return {"expected_duration": None, "expected_duration_s": None, "expected_duration_basis": Basis.UNKNOWN}
    return {
        "expected_duration": format_duration(max(0.0, seconds)),
        "expected_duration_s": round(max(0.0, seconds), 3),
        "expected_duration_basis": basis,
    }


class EpisodeBook:
    """Expected durations for routing changes, and the open terminal episode of each policy."""

    def __init__(self, signals: SignalLedger | None = None, idle_s: float = IDLE_S) -> None:
        self.signals = signals or SignalLedger()
        self.idle_s = idle_s
        self._open: dict[str, _Episode] = {}
        self._last_estimate: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def change_estimate(self, event: RouteChanged) -> dict[str, Any]:
        """`expected_duration(_s)` and its basis for a routing change away from `event.from_model`."""
        left = self.signals.time_left(event.from_model, event.at) if event.from_model is not None else None
        if left is not None:
            out = _estimate(left, Basis.SIGNAL_TTL)
        elif event.expected_duration_s is not None and event.from_model is not None:
            out = _estimate(event.expected_duration_s, Basis.NEXT_CHECK)
        else:
            out = _estimate(None, Basis.UNKNOWN)
        if event.to_model is None:
            with self._lock:
                self._last_estimate[event.policy] = out
        return out

    def on_change(self, event: RouteChanged) -> dict[str, Any] | None:
        """The end of the policy's open episode, when this change serves it from a model again."""
        if event.to_model is None:
            return None
        with self._lock:
            episode = self._open.pop(event.policy, None)
        return self._ending(episode, event.at, "served by " + event.to_model) if episode is not None else None

    def on_terminal(self, event: TerminalEngaged) -> list[dict[str, Any]]:
        """Records to write and notify for this terminal request: [] (counted), [start], or [end, start]."""
        out: list[dict[str, Any]] = []
        with self._lock:
            episode = self._open.get(event.policy)
            if episode is not None and event.at - episode.last_at > self.idle_s:
                del self._open[event.policy]
                out.append(self._ending(episode, episode.last_at, f"no terminal request for {self.idle_s:.0f}s"))
                episode = None
            if episode is not None:
                episode.requests += 1
                episode.last_at = event.at
                return out
            self._open[event.policy] = _Episode(
                event.policy, event.action, event.queue, event.at, event.at, 1, event.notify
            )
            estimate = self._last_estimate.pop(event.policy, None) or _estimate(None, Basis.UNKNOWN)
        out.append(
            {
                "event": TerminalEngaged.event,
                "phase": "start",
                "policy": event.policy,
                "action": event.action,
                "queue": event.queue,
                "reason": event.reason,
                "started": rfc3339(event.at),
                "requests": 1,
                "notify": event.notify,
                **estimate,
            }
        )
        return out

    def reopen(self, record: dict[str, Any], requests: int, last_at: float) -> None:
        """An episode that was open when the service stopped (from its `terminal.started` audit record)."""
        started = datetime.fromisoformat(str(record["started"]).replace("Z", "+00:00")).timestamp()
        with self._lock:
            self._open[str(record["policy"])] = _Episode(
                str(record["policy"]), str(record.get("action")), record.get("queue"), started,
                max(started, last_at), max(1, requests), tuple(record.get("notifiers") or ()),
            )

    def open_episodes(self) -> dict[str, int]:
        with self._lock:
            return {p: e.requests for p, e in self._open.items()}

    @staticmethod
    def _ending(episode: _Episode, at: float, why: str) -> dict[str, Any]:
        duration = max(0.0, at - episode.started_at)
        return {
            "event": TerminalEngaged.event,
            "phase": "end",
            "policy": episode.policy,
            "action": episode.action,
            "queue": episode.queue,
            "reason": why,
            "started": rfc3339(episode.started_at),
            "ended": rfc3339(at),
            "requests": episode.requests,
            "duration": format_duration(duration),
            "duration_s": round(duration, 3),
            "notify": episode.notify,
            "expected_duration": None,
            "expected_duration_s": None,
            "expected_duration_basis": Basis.UNKNOWN,
            "at": at,
        }


def _records(store: Store, kind: str, policy: str | None = None, after: int | None = None) -> list[AuditRecord]:
    since = datetime.now(UTC) - timedelta(days=RESTORE_DAYS)
    out: list[AuditRecord] = []
    while True:
        page, after = store.audit.query(kind, policy, since, after, 1000)
        out.extend(page)
        if after is None:
            return out


def restore_episodes(store: Store, book: EpisodeBook) -> None:
    """Reopen the episodes whose `terminal.started` record has no `terminal.ended` after it (a restart)."""
    ended = {(r.policy, r.payload.get("started")) for r in _records(store, "terminal.ended")}
    latest: dict[str, AuditRecord] = {}
    for record in _records(store, "terminal.started"):
        latest[str(record.policy)] = record
    for policy, start in latest.items():
        if (policy, start.payload.get("started")) in ended:
            continue
        requests = _records(store, "terminal", policy, after=start.seq)
        last_at = requests[-1].ts.timestamp() if requests else start.ts.timestamp()
        book.reopen(dict(start.payload), len(requests), last_at)  # the first request is among them
