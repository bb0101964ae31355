"""Deliver the durable outbox: every undelivered row, to its notifier, until it is delivered.

- Polls every `poll_interval_s` (0.5 s) and at once on `kick()` (call it after enqueueing), so a message
  reaches a receiver that answers within a second or so (CONTRACT §5: within 5 s).
- State is the outbox rows only. A message is `claim`ed (leased to this dispatcher's `owner`, a replica id,
  for `lease_s`; on PostgreSQL with `FOR UPDATE SKIP LOCKED`) before it is sent, so another replica does not
  send it too, and no dispatcher takes a notifier's messages while one of them is out on a lease; a
  dispatcher that dies mid-send leaves the claim, and the message is sent again, exactly as recorded, once
  the lease ends. Delivery is therefore at least once: receivers deduplicate on `audit_seq`.
- A failure is recorded on the row (`attempts`, `last_error`) and retried after an exponential backoff:
  1 s doubling per failed attempt, capped at 60 s, "equal jitter" (half fixed, half random), for ever.
- Notifiers work independently: one hanging receiver never delays another's messages. Within one notifier,
  messages go out one at a time in outbox order; after a failure the rest of that batch is handed back
  (no attempt counted): a down receiver costs one failed try per pass; each message backs off on its own.
- A row naming a notifier that is not configured stays undelivered with the error
  "unknown notifier …" on the row and is re-checked every `unknown_retry_s` (60 s): it shows in the outbox
  age (the alert fires after 5 min) and goes out at once when `set_notifiers` (a new bundle) defines it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from routeguard.notify.base import Notifier
from routeguard.store.models import OutboxMessage

__all__ = ["DispatchOptions", "Dispatcher", "OutboxPort", "backoff_delay"]

log = logging.getLogger("routeguard.notify")

Clock = Callable[[], datetime]


class OutboxPort(Protocol):
    def due(self, now: datetime | None = None, limit: int = 100) -> list[OutboxMessage]: ...
    def claim(self, now: datetime | None = None, limit: int = 100,
              lease: timedelta = ..., *, owner: str | None = None) -> list[OutboxMessage]: ...
    def mark_delivered(self, message_id: int, now: datetime | None = None, *, owner: str | None = None) -> None: ...
    def mark_failed(self, message_id: int, now: datetime | None, error: str,
                    next_attempt_at: datetime, *, owner: str | None = None) -> None: ...
    def reschedule(self, message_id: int, next_attempt_at: datetime, *, owner: str | None = None) -> None: ...
    def oldest_undelivered_age(self, now: datetime | None = None) -> timedelta | None: ...


class HasOutbox(Protocol):
    @property
    def outbox(self) -> OutboxPort: ...


@dataclass(frozen=True, slots=True)
class DispatchOptions:
    poll_interval_s: float = 0.5
    batch: int = 50
    lease_s: float = 30.0
    send_timeout_s: float = 5.0  # hard bound on one send, over the notifier's own timeout
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    unknown_retry_s: float = 60.0
    age_every_s: float = 5.0  # how often the outbox age is measured and reported (`on_age`)
    busy_retry_s: float = 1.0  # a message claimed while its notifier is busy is handed back this far ahead

    def __post_init__(self) -> None:
        if self.lease_s < self.send_timeout_s + 2.0:
            raise ValueError("lease_s must exceed send_timeout_s by 2 s or more (a send outliving its lease)")
        if min(self.poll_interval_s, self.backoff_base_s, self.send_timeout_s) <= 0 or self.batch < 1:
            raise ValueError("poll_interval_s, backoff_base_s, send_timeout_s and batch must be positive")


def backoff_delay(failures: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Delay after the `failures`-th failed attempt (1, 2, …): base·2^(n-1) capped, equal jitter."""
    full = min(max_s, base_s * 2.0 ** max(0, failures - 1))
    return full / 2 + rng.uniform(0.0, full / 2)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, TimeoutError) and not text:
        text = "no answer in time"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Dispatcher:
    """`start()` … `kick()` after each enqueue … `await stop()`; or `await deliver_due()` per pass."""

    def __init__(
        self,
        store: HasOutbox,
        notifiers: Mapping[str, Notifier],
        clock: Clock | None = None,
        *,
        options: DispatchOptions | None = None,
        on_age: Callable[[float], None] | None = None,
        on_attempt: Callable[[str, bool], None] | None = None,
        rng: random.Random | None = None,
        owner: str | None = None,
    ) -> None:
        self._outbox = store.outbox
        self.owner = owner or f"dispatcher-{secrets.token_hex(6)}"  # the replica id in a service
        self._notifiers = dict(notifiers)
        self._clock = clock or _utcnow
        self.options = options or DispatchOptions()
        self._on_age = on_age
        self._on_attempt = on_attempt
        self._rng = rng or random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._unknown: dict[int, str] = {}  # message id → notifier name not configured (re-checked on change)
        self._recheck_unknown = False
        self._retired: list[Notifier] = []  # replaced senders, closed once nothing is in flight
        self._swap = threading.Lock()  # set_notifiers may be called from another thread
        self.last_age_s = 0.0

    # ------------------------------------------------------------------ lifecycle
    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Begin polling on the running event loop (call from async code, e.g. the app's lifespan)."""
        if self.running:
            return
        self._stopping = False
        self._bind()
        self._task = asyncio.create_task(self._run(), name="routeguard-notify-dispatcher")

    async def stop(self, grace_s: float | None = None) -> None:
        """Stop polling; sends in flight get `grace_s` (default: the send timeout + 1 s) to finish. A claimed
        message not tried is handed back; one cut mid-send is sent again after its lease."""
        self._stopping = True
        self.kick()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        pending = [t for t in self._busy.values() if not t.done()]
        if pending:
            grace = self.options.send_timeout_s + 1.0 if grace_s is None else grace_s
            _done, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._busy.clear()
        with self._swap:
            closing, self._retired = self._retired + list(self._notifiers.values()), []
        await self._close(closing)

    def kick(self) -> None:
        """Look at the outbox now (thread-safe; a no-op before `start`)."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    def set_notifiers(self, notifiers: Mapping[str, Notifier]) -> None:
        """Replace the senders (a new bundle was published); rows waiting for a now-known name go out.
        The dispatcher owns its senders: it closes replaced ones (`aclose`, if they have one)."""
        kept = {id(n) for n in notifiers.values()}
        with self._swap:
            self._retired += [n for n in self._notifiers.values() if id(n) not in kept]
            self._notifiers = dict(notifiers)
            self._recheck_unknown = True
        self.kick()

    @property
    def notifier_names(self) -> list[str]:
        return sorted(self._notifiers)

    def notifier(self, name: str) -> Notifier | None:
        """The current sender of that name (for messages that do not go through the outbox)."""
        return self._notifiers.get(name)

    def oldest_undelivered_age_s(self) -> float:
        """Seconds the oldest undelivered message has waited (0.0: none). Blocking (one query)."""
        age = self._outbox.oldest_undelivered_age(self._clock())
        return 0.0 if age is None else age.total_seconds()

    # ------------------------------------------------------------------ the loop
    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._wake = loop, asyncio.Event()

    async def _run(self) -> None:
        assert self._wake is not None
        next_age = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            self._wake.clear()
            claimed = 0
            try:
                claimed = await self._pass()
            except Exception:  # the database may be briefly unavailable: log, keep polling
                log.exception("outbox pass failed")
            if loop.time() >= next_age:
                next_age = loop.time() + self.options.age_every_s
                await self._report_age()
            if claimed < self.options.batch and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.options.poll_interval_s)

    async def deliver_due(self) -> int:
        """One pass, waiting for its sends to finish; returns how many messages were claimed (tests, CLI)."""
        self._bind()
        claimed = await self._pass()
        busy = [t for t in self._busy.values() if not t.done()]
        if busy:
            await asyncio.gather(*busy, return_exceptions=True)
        await self._report_age()
        return claimed

    async def _report_age(self) -> None:
        try:
            self.last_age_s = await asyncio.to_thread(self.oldest_undelivered_age_s)
        except Exception:
            log.exception("could not measure the outbox age")
            return
        if self._on_age is not None:
            self._on_age(self.last_age_s)

    async def _pass(self) -> int:
        now = self._clock()
        if self._retired and all(t.done() for t in self._busy.values()):
            with self._swap:
                retired, self._retired = self._retired, []
            await self._close(retired)
        if self._recheck_unknown:
            self._recheck_unknown = False
            known = [i for i, name in self._unknown.items() if name in self._notifiers]
            for message_id in known:
                await asyncio.to_thread(self._outbox.reschedule, message_id, now)  # any holder's
                del self._unknown[message_id]
        if not await asyncio.to_thread(self._outbox.due, now, 1):
            return 0
        lease = timedelta(seconds=self.options.lease_s)
        messages = await asyncio.to_thread(self._outbox.claim, now, self.options.batch, lease, owner=self.owner)
        claimed_at = asyncio.get_running_loop().time()
        groups: dict[str, list[OutboxMessage]] = {}
        for message in messages:
            groups.setdefault(message.notifier, []).append(message)
        for name, group in groups.items():
            current = self._busy.get(name)
            if current is not None and not current.done():
                later = self._clock() + timedelta(seconds=self.options.busy_retry_s)
                await self._hand_back(group, later)
                continue
            task = asyncio.create_task(self._deliver_group(name, group, claimed_at))
            task.add_done_callback(lambda _t: self.kick())
            self._busy[name] = task
        return len(messages)

    async def _deliver_group(self, name: str, group: list[OutboxMessage], claimed_at: float) -> None:
        try:
            await self._deliver_in_order(group, claimed_at)
        except Exception:  # the database failed while handing back: the lease brings the messages back
            log.exception("delivering to %r stopped early", name)

    async def _deliver_in_order(self, group: list[OutboxMessage], claimed_at: float) -> None:
        loop = asyncio.get_running_loop()
        # never start a send that could still be running when the lease ends (another replica may claim then)
        deadline = claimed_at + self.options.lease_s - self.options.send_timeout_s - 1.0
        for index, message in enumerate(group):
            if self._stopping or loop.time() > deadline:
                await self._hand_back(group[index:], self._clock())
                return
            try:
                ok = await self._deliver(message)
            except Exception:  # bookkeeping failed (database): the lease brings the message back
                log.exception("outbox bookkeeping failed for message %s", message.id)
                ok = False
            if not ok:
                await self._hand_back(group[index + 1 :], self._clock())
                return

    async def _deliver(self, message: OutboxMessage) -> bool:
        notifier = self._notifiers.get(message.notifier)
        if notifier is None:
            known = ", ".join(sorted(self._notifiers)) or "none"
            error = (f"unknown notifier {message.notifier!r} (configured: {known}); kept undelivered, "
                     f"re-checked every {self.options.unknown_retry_s:g}s")
            retry_at = self._clock() + timedelta(seconds=self.options.unknown_retry_s)
            await asyncio.to_thread(
                self._outbox.mark_failed, message.id, self._clock(), error, retry_at, owner=self.owner
            )
            self._unknown[message.id] = message.notifier
            log.error("outbox message %s: %s", message.id, error)
            self._attempted(message.notifier, False)
            return True  # not a receiver failure: the rest of the group is unaffected
        try:
            await asyncio.wait_for(notifier.send(message.payload), self.options.send_timeout_s)
        except Exception as exc:
            redact = getattr(notifier, "redact", None)  # no URL path, query or header value in the error
            error = redact(_describe(exc)) if callable(redact) else _describe(exc)
            failures = message.attempts + 1
            opts = self.options
            delay = backoff_delay(failures, opts.backoff_base_s, opts.backoff_max_s, self._rng)
            now = self._clock()
            await asyncio.to_thread(
                self._outbox.mark_failed, message.id, now, error, now + timedelta(seconds=delay),
                owner=self.owner,
            )
            log.warning("notification %s to %r failed (attempt %d, next in %.1fs): %s",
                        message.id, message.notifier, failures, delay, error)
            self._attempted(message.notifier, False)
            return False
        await asyncio.to_thread(self._outbox.mark_delivered, message.id, self._clock(), owner=self.owner)
        self._unknown.pop(message.id, None)
        log.info("notification %s delivered to %r (%s)", message.id, message.notifier, message.kind)
        self._attempted(message.notifier, True)
        return True

    async def _hand_back(self, messages: list[OutboxMessage], at: datetime) -> None:
        for message in messages:
            await asyncio.to_thread(self._outbox.reschedule, message.id, at, owner=self.owner)

    @staticmethod
    async def _close(notifiers: list[Notifier]) -> None:
        for notifier in notifiers:
            close = getattr(notifier, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:
                    log.debug("closing notifier %r failed", notifier, exc_info=True)

    def _attempted(self, notifier: str, ok: bool) -> None:
        if self._on_attempt is not None:
            try:
                self._on_attempt(notifier, ok)
            except Exception:
                log.exception("on_attempt callback failed")
