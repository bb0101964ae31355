"""One replica's part in a fleet (CONTRACT §6 "Fleets"): governance that follows the store, and a heartbeat.

- **Sync.** The store's governance generation (`store.fleet`) is bumped in the transaction of every
  publication, rollback and safe-mode change. A background task re-reads it whenever PostgreSQL signals a
  change (`LISTEN routeguard_governance`, on its own psycopg 3 async connection, reconnected with backoff
  when lost) and every `poll_s` (0.5 s) as the backstop; when it moved, the replica reloads what serves
  (`ServiceState.reload_governance`). SQLite has no NOTIFY: the poll alone keeps processes on one file in step.
- **Consistent reads.** `consistent(read)` syncs first and retries when the generation moved during the
  read, so `GET /v1/policies` and `GET /v1/safe-mode` never describe a state other than the one this
  replica serves.
- **Heartbeat.** Every `heartbeat_s` (1 s), and at once after a reload, the replica upserts its row: id,
  host, pid, started, last_seen, the generation it applied and the version it serves per scope
  (`GET /v1/cluster` reads them). A clean stop deletes the row; a killed replica's row ages and shows as gone.
Hand-written: a counter, a LISTEN loop and a periodic upsert are smaller than any library that would do it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

from routeguard.store.fleet import CHANNEL, ReplicaBeat

if TYPE_CHECKING:
    from routeguard.service.tables import LiveTables
    from routeguard.store.db import Store

__all__ = ["FleetSync", "Governed", "default_replica_id", "redis_ping"]

log = logging.getLogger("routeguard.fleet")

T = TypeVar("T")
PRUNE_AFTER = timedelta(hours=1)  # rows of replicas not seen for this long are deleted
_RETRIES = 3


def default_replica_id() -> str:
    """host + pid + a random suffix: unique across restarts and hosts."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def redis_ping(url: str) -> Callable[[], str]:
    """A probe of the Redis link for the heartbeat: `up`, or `down: <error class>` (0.5 s timeouts)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)

    def probe() -> str:
        try:
            client.ping()
        except Exception as exc:
            return f"down: {type(exc).__name__}"
        return "up"

    return probe


class Governed(Protocol):
    """What the sync needs of the service state."""

    @property
    def store(self) -> Store: ...
    @property
    def live(self) -> LiveTables: ...
    def reload_governance(self) -> bool: ...


class FleetSync:
    def __init__(
        self,
        state: Governed,
        replica_id: str,
        generation: int,
        *,
        poll_s: float = 0.5,
        heartbeat_s: float = 1.0,
        address: str | None = None,
        redis_probe: Callable[[], str] | None = None,
    ) -> None:
        self._state = state
        self._store = state.store
        self.replica_id = replica_id
        self.applied = generation  # the generation whose state this replica serves
        self.poll_s = poll_s
        self.heartbeat_s = heartbeat_s
        self.address = address
        self.redis_probe = redis_probe  # replaced by a Redis health store that knows its link better
        self.redis_status: str | None = None
        self.listening = False
        self.last_error: str | None = None
        self.started_at = self._store.db.now()
        self._sync_lock = threading.Lock()
        self._beat_lock = threading.Lock()  # the sync and the heartbeat both beat: one upsert at a time
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ sync (blocking: call off the loop)
    def sync(self) -> int:
        """Reload what serves if the store's generation moved; returns the generation read."""
        with self._sync_lock:
            generation = self._store.fleet.generation()
            changed = generation != self.applied
            if changed:
                self._state.reload_governance()
                self.applied = generation
        if changed:
            self.beat()  # tell the fleet at once, not at the next heartbeat
        return generation

    def consistent(self, read: Callable[[], T]) -> T:
        """`read()` against the state this replica serves: synced first, retried if a change lands meanwhile."""
        generation = self.sync()
        result = read()
        for _ in range(_RETRIES):
            if self._store.fleet.generation() == generation:
                break
            generation = self.sync()
            result = read()
        return result

    def serving(self) -> dict[str, int | None]:
        """The policy version this replica serves, per scope key (`all`, `tenants:a,b`, `percent:10`)."""
        return {key: table.version for key, table in self._state.live.tables.items()}

    def readiness(self) -> dict[str, object]:
        """For `/readyz`: this replica, the generation it serves, how it hears of changes, the last sync error."""
        postgres = self._store.db.dialect == "postgresql"
        return {
            "replica": self.replica_id,
            "generation": self.applied,
            "changes": ("listen" if self.listening else "poll") if postgres else "poll",
            "sync_error": self.last_error,
        }

    def snapshot(self) -> ReplicaBeat:
        return ReplicaBeat(
            id=self.replica_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            software=_software(),
            started_at=self.started_at,
            last_seen=self._store.db.now(),
            generation=self.applied,
            serving=self.serving(),
            address=self.address,
            redis=self.redis_status,
        )

    def beat(self) -> None:
        with self._beat_lock:
            self._store.fleet.beat(self.snapshot())

    def _beat_and_probe(self) -> None:
        if self.redis_probe is not None:
            self.redis_status = self.redis_probe()
        self.beat()

    # ------------------------------------------------------------------ background tasks
    def start(self) -> None:
        """Start the sync loop, the heartbeat and (on PostgreSQL) the LISTEN connection."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._tasks = [
            loop.create_task(self._run_sync(), name="routeguard-fleet-sync"),
            loop.create_task(self._run_heartbeat(), name="routeguard-fleet-heartbeat"),
        ]
        if self._store.db.dialect == "postgresql":
            self._tasks.append(loop.create_task(self._run_listen(), name="routeguard-fleet-listen"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._tasks:
            self._tasks = []
            try:
                await asyncio.to_thread(self._store.fleet.remove, self.replica_id)
            except Exception:
                log.warning("could not remove this replica's heartbeat row", exc_info=True)

    async def _run_sync(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                await asyncio.to_thread(self.sync)
                self.last_error = None
            except Exception as exc:  # the store may be briefly unreachable: keep serving, retry
                if self.last_error is None:
                    log.warning("governance sync failed (retrying every %.1fs): %s", self.poll_s, exc)
                self.last_error = f"{type(exc).__name__}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def _run_heartbeat(self) -> None:
        every = 0
        while True:
            try:
                await asyncio.to_thread(self._beat_and_probe)
                every += 1
                if every % 60 == 1:
                    await asyncio.to_thread(self._store.fleet.prune, self._store.db.now() - PRUNE_AFTER)
            except Exception as exc:
                log.debug("heartbeat failed: %s", exc)
            await asyncio.sleep(self.heartbeat_s)

    async def _run_listen(self) -> None:
        import psycopg

        conninfo = self._store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=5,
                    keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
                )
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening, delay = True, 0.5
                    self._kick()  # catch up on what changed while not listening
                    async for _note in conn.notifies():
                        self._kick()
            except asyncio.CancelledError:
                self.listening = False
                raise
            except Exception as exc:
                log.warning("LISTEN %s lost (%s); polling every %.1fs until it is back", CHANNEL, exc, self.poll_s)
            self.listening = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()


def _software() -> str:
    import routeguard

    return str(getattr(routeguard, "__version__", "0"))
