"""Fleet-wide health over Redis (``routeguard serve --redis URL``, CONTRACT §6 "Fleets").

One background thread per replica, the *link*, does all Redis I/O; the decision path only appends to a
queue (:meth:`FleetHealth.put`) and reads local state. Every ``flush_s`` (50 ms) the link:

1. pushes what this replica saw since the last push — outcomes, signals, withdrawals, check results,
   probe permits, ejections (from the Router) and per-principal grants (from the rate limiter) — as one
   stream entry (:mod:`routeguard.store.redis_bus`);
2. keeps the probe leases this replica's decisions want (a pair a decision wanted to probe, or probed in
   the last ``lease_s``), renews them while used, releases the rest, and tells the Router's probe gate;
3. reads the other replicas' entries (``XREAD BLOCK``) and replays them into the Router (and the grants
   into the rate limiter). Its own entries are skipped.

Losing Redis: any Redis error marks the link ``down`` (connect and socket timeouts are 0.5 s, so within a
second); the probe gate goes inactive (each replica probes on its own budget), the check lock is granted
locally, and what this replica sees meanwhile is kept (up to ``buffer`` items, oldest dropped first) and
pushed when Redis answers again — the link retries every 0.2 s and rejoins by itself, reading on from the
last entry it saw. Items older than ``STALE_S`` when they arrive are dropped (outcomes past the quota
minute say nothing any more); signals carry their own time and TTL. Routing changes are logged once per
fleet by the store's compare-and-set whether Redis is up or not.
Hand-written: a batching loop over three Redis calls is smaller than any framework that would host it.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from routeguard.store.redis_bus import RedisBus

if TYPE_CHECKING:
    from routeguard.runtime import Router
    from routeguard.service.rate_limit import RateLimiter

__all__ = ["FleetHealth"]

log = logging.getLogger("routeguard.fleet")
STALE_S = 60.0
_RETRY_S = 0.2


class FleetHealth:
    """The Redis link of one replica (also the Router's :class:`~routeguard.runtime_fleet.FleetPort`)."""

    def __init__(
        self,
        bus: RedisBus,
        replica_id: str,
        router: Callable[[], Router],
        limiter: RateLimiter | None = None,
        *,
        flush_s: float = 0.05,
        lease_s: float = 1.0,
        buffer: int = 50_000,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.bus = bus
        self.replica_id = replica_id
        self._router = router
        self._limiter = limiter
        self.flush_s = flush_s
        self.lease_s = lease_s
        self._clock = clock or (lambda: router().now())  # the Router's clock: permits and leases share it
        self._token = f"{replica_id}:{secrets.token_hex(4)}"
        self._queue: deque[dict[str, Any]] = deque(maxlen=buffer)
        self._pending: deque[dict[str, Any]] = deque(maxlen=buffer)  # taken from the queue, not yet pushed
        self._leases: dict[tuple[str, str], float] = {}  # pair -> until when we may count on it
        self._last_id: str | None = None
        self.up = False
        self.error: str | None = "not connected yet"
        self.down_since: float | None = None
        self.pushed = self.applied = self.dropped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the port (any thread, never blocks)
    def put(self, item: dict[str, Any]) -> None:
        self._queue.append(item)

    def status(self) -> str:
        """``up``, or ``down: <error class>`` (for `/readyz`, `/v1/cluster` and the heartbeat)."""
        return "up" if self.up else f"down: {self.error or 'unknown'}"

    def describe(self) -> dict[str, Any]:
        return {"status": "up" if self.up else "down", "error": None if self.up else self.error,
                "down_since": self.down_since, "backlog": len(self._queue) + len(self._pending),
                "pushed": self.pushed, "applied": self.applied, "leases": sorted(f"{p}/{m}" for p, m in self._leases)}

    def claim_check(self, model: str, interval_s: float) -> bool:
        """Whether this replica runs ``model``'s active check this interval (always, while Redis is down)."""
        if not self.up:
            return True
        try:
            return self.bus.claim(f"check:{model}", self._token, int(interval_s * 900))
        except Exception as exc:
            self._went_down(exc)
            return True

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="routeguard-redis-link", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self.up:
            for pair in list(self._leases):
                self._release(pair)
        self.bus.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.up:
                    self._connect()
                self.step()
            except Exception as exc:  # redis errors, and anything odd: the link must not die
                self._went_down(exc)
                self._stop.wait(_RETRY_S)

    def _connect(self) -> None:
        self.bus.ping()
        if self._last_id is None:
            self._last_id = self.bus.last_id()  # a new replica starts from now (durable health is in the store)
        self.up, self.error, self.down_since = True, None, None
        gate = self._router().probe_gate
        if gate is not None:
            gate.active = True
        log.info("redis link up (%s)", self.bus.stream)

    def _went_down(self, exc: BaseException) -> None:
        if self.up or self.down_since is None:
            log.warning("redis link down (%s): serving from this replica's own health view", type(exc).__name__)
            self.down_since = self._clock()
        self.up, self.error = False, type(exc).__name__
        self._leases.clear()
        gate = self._router().probe_gate
        if gate is not None:
            gate.active, gate.leased = False, frozenset()

    # ------------------------------------------------------------------ one round
    def step(self) -> None:
        """Push, keep leases, read (blocking up to ``flush_s``)."""
        self._push()
        self._keep_leases()
        self._receive(int(self.flush_s * 1000))

    def _push(self) -> None:
        now = self._clock()
        while self._queue:
            item = self._queue.popleft()
            item.setdefault("ts", now)
            if len(self._pending) == self._pending.maxlen:
                self.dropped += 1
            self._pending.append(item)
        if self._limiter is not None:
            for name, (count, rate) in self._limiter.drain_taken().items():
                self._pending.append({"k": "r", "p": name, "n": count, "rate": rate, "ts": now})
        while self._pending:
            batch = [self._pending[i] for i in range(min(500, len(self._pending)))]
            self.bus.push(self.replica_id, batch)  # raises when down: the batch stays pending
            for _ in batch:
                self._pending.popleft()
            self.pushed += len(batch)

    def _receive(self, block_ms: int) -> None:
        assert self._last_id is not None
        entries = self.bus.read(self._last_id, block_ms)
        if not entries:
            return
        now = self._clock()
        router = self._router()
        for entry_id, replica, items in entries:
            self._last_id = entry_id
            if replica == self.replica_id:
                continue
            fresh = [i for i in items if _fresh(i, now)]
            self._absorb([i for i in fresh if i.get("k") == "r"], now)
            health = [i for i in fresh if i.get("k") != "r"]
            try:
                if health:
                    self.applied += router.apply_fleet(health, replica)
            except Exception:  # a peer's odd batch must not take the link down
                log.exception("a batch from replica %s could not be applied", replica)

    def _absorb(self, grants: list[dict[str, Any]], now: float) -> None:
        """Other replicas' grants of per-principal rates (those of the last 2 s) come out of our buckets."""
        if self._limiter is None:
            return
        for item in grants:
            try:
                if now - float(item["ts"]) < 2.0:
                    self._limiter.absorb(str(item["p"]), int(item["n"]), float(item["rate"]))
            except (KeyError, TypeError, ValueError):
                continue

    def _keep_leases(self) -> None:
        gate = self._router().probe_gate
        if gate is None:
            return
        now = self._clock()
        for pair, when in list(gate.wanted.items()):
            if now - when > self.lease_s:
                gate.wanted.pop(pair, None)
        for pair, when in list(gate.used.items()):
            if now - when > self.lease_s:
                gate.used.pop(pair, None)
        want = set(gate.wanted) | set(gate.used)
        ttl_ms = int(self.lease_s * 1000)
        for pair in want:
            until = self._leases.get(pair)
            if until is not None and until - now > self.lease_s / 2:
                continue
            if self.bus.take_lease(_lease_key(pair), self._token, ttl_ms):
                self._leases[pair] = now + self.lease_s * 0.8  # count on it for less than Redis keeps it
            else:
                self._leases.pop(pair, None)
        for pair in [p for p in self._leases if p not in want]:
            self._release(pair)
        gate.leased = frozenset(p for p, until in self._leases.items() if until > now)

    def _release(self, pair: tuple[str, str]) -> None:
        self._leases.pop(pair, None)
        try:
            self.bus.release_lease(_lease_key(pair), self._token)
        except Exception as exc:
            log.debug("lease release failed: %s", exc)


def _fresh(item: object, now: float) -> bool:
    """Outcomes, permits, checks and grants older than ``STALE_S`` say nothing any more; signals and
    ejections carry their own time (TTL, cooldown end)."""
    if not isinstance(item, dict):
        return False
    if item.get("k") in ("s", "w", "x"):
        return True
    try:
        return now - float(item.get("ts", now)) < STALE_S
    except (TypeError, ValueError):
        return False


def _lease_key(pair: tuple[str, str]) -> str:
    return f"probe:{pair[0]}:{pair[1]}"
