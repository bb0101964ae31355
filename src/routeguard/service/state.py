"""The running service: the durable store wired to the Router.

- tables per live scope are rebuilt from the store's publications (`apply`), under one lock, before a
  publish / rollback answers;
- router events go to the audit log and outbox (`AuditSink`);
- safe mode is persisted and restored on start; the human queue of the executor is the store's;
- a background ticker calls `router.refresh()` every `tick_s` and audits `approval.expiring`;
- the notification dispatcher drains the store's outbox (kicked after every event that enqueues);
- metrics (`GET /metrics`), decision logs and spans are fed from router events and executor observers.
Always read `state.router` afresh: it is replaced once if legacy mode gives way to a published version
(the new one is wired exactly like the first, in `_new_router`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from routeguard.core.context import SafeMode
from routeguard.core.decision import Decision
from routeguard.core.events import Event, RouteChanged, SafeModeChanged, TerminalEngaged
from routeguard.core.model import Notifier as NotifierConfig
from routeguard.core.table import RoutingTable
from routeguard.notify import Dispatcher, DispatchOptions, Notifier, build_notifiers
from routeguard.runtime import Router
from routeguard.service.approvals import ApprovalWatch
from routeguard.service.audit_sink import AuditSink
from routeguard.service.auth import AuthConfig, check_exposure, load_auth_file
from routeguard.service.bootstrap import BootReport, bootstrap
from routeguard.service.ledger import LedgerFeed, LedgerRouter
from routeguard.service.reviews import ReviewScheduler
from routeguard.service.settings import Settings
from routeguard.service.tables import EMPTY_TABLE, LiveTables, TableCache
from routeguard.store.db import Store, open_store
from routeguard.telemetry import logs, tracing
from routeguard.telemetry.metrics import RoutingMetrics

__all__ = ["DurableHumanQueue", "ServiceState"]

log = logging.getLogger("routeguard.service")


class DurableHumanQueue:
    """The executor's human queue, backed by the store (survives restarts)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def put(self, queue: str, policy: str, trace_id: str, request: dict[str, Any], reason: str) -> str:
        # the reason is in the `terminal` audit record of the same trace id; the request stays replayable
        return str(self._store.queue.put(queue, policy, trace_id, request))


class ServiceState:
    def __init__(self, settings: Settings, store: Store, auth: AuthConfig, report: BootReport) -> None:
        self.settings = settings
        self.store = store
        self.auth = auth
        self.report = report
        self.lock = threading.RLock()  # serialises publish, rollback, safe mode and table rebuilds
        self.cache = TableCache()
        self.queue = DurableHumanQueue(store)
        self.sink = AuditSink(store, self.notifier_names)
        self.watch = ApprovalWatch(store, settings.approval_warning_s)
        self.metrics = RoutingMetrics()
        self._fallback = report.legacy_table or EMPTY_TABLE
        self._live = self._build()
        send_timeout_s = DispatchOptions().send_timeout_s
        options = DispatchOptions(
            poll_interval_s=max(0.01, settings.outbox_poll_s),
            lease_s=max(settings.outbox_lease_s, send_timeout_s + 2.0),  # the dispatcher's floor
        )
        self.dispatcher = Dispatcher(
            store,
            self._notifiers(),
            options=options,
            on_age=self.metrics.set_outbox_age,
            on_attempt=self.metrics.observe_notification,
        )
        self.ledger = LedgerFeed(store, retain_s=settings.retain_s, clock=settings.clock)
        self.reviews = ReviewScheduler(
            self, every_s=settings.review_every_s, directory=settings.reviews_dir, evals=settings.review_evals
        )
        self.router = self._new_router(self._live, legacy=report.legacy_table is not None)
        self._ticker: asyncio.Task[None] | None = None
        self._retired: list[Router] = []
        self._owns_store = False

    # ------------------------------------------------------------------ construction
    @classmethod
    def open(cls, settings: Settings) -> ServiceState:
        """Load auth, refuse unsafe exposure, open (and migrate) the store, bootstrap. Raises AuthError,
        StartupError; the CLI maps them to exit 2 / exit 1."""
        auth = load_auth_file(settings.auth_file) if settings.auth_file is not None else AuthConfig()
        check_exposure(auth, settings.host)
        store = open_store(settings.db_url)
        try:
            report = bootstrap(store, settings.config_path, settings.clock(), legacy_env=settings.legacy_env)
            state = cls(settings, store, auth, report)
        except BaseException:
            store.close()
            raise
        state._owns_store = True
        return state

    def _new_router(self, live: LiveTables, *, legacy: bool) -> Router:
        router = LedgerRouter(
            live.stable, clock=self.settings.clock, legacy=legacy, artifact_root=self.settings.artifact_root
        )
        router.ledger = self.ledger  # every outcome reported to it is written to the outcome ledger
        router.set_tables(live.tables, live.scope_function())
        router.subscribe(self.sink)  # first (it also logs): the outbox row exists before the dispatcher is kicked
        router.subscribe(self.metrics.observe_event)
        router.subscribe(self._kick_on)
        router.subscribe(self.reviews.observe)  # a quality drop makes a scheduled review due
        executor = router.executor
        executor.queue = self.queue
        executor.observers.append(self.metrics.observe_served)
        executor.decision_observers.append(self.observe_decision)
        executor.failure_observers.append(self._observe_failed)
        safe = self.store.safe_mode.state()
        router.load_safe_mode(SafeMode(safe.global_on, safe.tenants_on))
        self.metrics.set_safe_mode(router.safe_mode)
        return router

    # ------------------------------------------------------------------ telemetry and notifications
    def observe_decision(self, decision: Decision, seconds: float) -> None:
        """A route decision was made (`POST /v1/route`, or the first of a proxied call)."""
        self.metrics.observe_decision(decision, seconds)
        logs.log_decision(decision, seconds)

    def _observe_failed(self, first: Decision, left_first_model: bool) -> None:
        self.metrics.observe_failed(first.policy, first.model, fell_back=left_first_model)

    def _kick_on(self, event: Event) -> None:
        if isinstance(event, RouteChanged | TerminalEngaged | SafeModeChanged):
            self.dispatcher.kick()

    def notifier_configs(self) -> dict[str, NotifierConfig]:
        """The notifiers of every live bundle, by name (the stable bundle's first)."""
        configs: dict[str, NotifierConfig] = {}
        for table in self._live.tables.values():
            for name, config in table.bundle.notifiers.items():
                configs.setdefault(name, config)
        return configs

    def _notifiers(self) -> dict[str, Notifier]:
        return build_notifiers(self.notifier_configs(), strict=False)

    def safe_mode_changed(self) -> None:
        """After the safe-mode endpoint wrote and applied a change."""
        self.metrics.set_safe_mode(self.router.safe_mode)
        self.dispatcher.kick()

    def _table_of(self, version: int) -> RoutingTable:
        def content() -> tuple[dict[str, Any], str]:
            pv = self.store.policies.get_version(version)
            return dict(pv.content or {}), pv.content_hash

        return self.cache.get(version, content)

    def _build(self) -> LiveTables:
        return LiveTables.build(self.store.policies.rollout(), self._table_of, self._fallback)

    # ------------------------------------------------------------------ serving
    @property
    def live(self) -> LiveTables:
        return self._live

    def apply(self) -> LiveTables:
        """Rebuild the tables from the store's live publications and install them (before answering)."""
        with self.lock:
            live = self._build()
            if self.router.legacy and live.rollout.publications:
                self._retired.append(self.router)  # its pooled connections are closed on stop
                self.router = self._new_router(live, legacy=False)
            else:
                self.router.set_tables(live.tables, live.scope_function())
            self._live = live
            self.dispatcher.set_notifiers(self._notifiers())  # also kicks: publish records may notify
            return live

    def notifier_names(self) -> tuple[str, ...]:
        names: dict[str, None] = {}
        for table in self._live.tables.values():
            names.update(dict.fromkeys(table.bundle.notifiers))
        return tuple(names)

    def known_models(self) -> set[str]:
        models: set[str] = set()
        for table in self._live.tables.values():
            models.update(table.bundle.models)
        return models

    def serving_version(self) -> int | None:
        return self._live.stable.version

    # ------------------------------------------------------------------ background
    def tick(self) -> None:
        """One refresh: time-based health and route changes, then approval warnings."""
        router = self.router
        router.refresh()
        if self.watch.check(router.routes(), self._live.tables, self.settings.clock()):
            self.dispatcher.kick()
        self.metrics.sync_health(router.health())

    async def _run_ticker(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.tick)
            except Exception:
                log.exception("background refresh failed")
            await asyncio.sleep(self.settings.tick_s)

    def start(self) -> None:
        self.dispatcher.start()
        self.ledger.start()
        self.reviews.start()
        tracing.configure_tracing()
        if self._ticker is None and self.settings.tick_s > 0:
            self._ticker = asyncio.get_running_loop().create_task(
                self._run_ticker(), name="routeguard-ticker"
            )

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.reviews.stop()
        await self.dispatcher.stop()
        await self.ledger.stop()
        tracing.shutdown_tracing()
        for old in self._retired:
            await old.aclose()
        self._retired.clear()
        await self.router.aclose()

    def close(self) -> None:
        if self._owns_store:
            self.store.close()
