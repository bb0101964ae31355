"""The running service: the durable store wired to the Router.

- tables per live scope are rebuilt from the store's publications (`apply`), under one lock, before a
  publish / rollback answers;
- router events go to the audit log and outbox (`AuditSink`);
- safe mode is persisted and restored on start; the human queue of the executor is the store's;
- a background ticker calls `router.refresh()` every `tick_s` and audits `approval.expiring`;
- the notification dispatcher drains the store's outbox (kicked after every event that enqueues);
- metrics (`GET /metrics`), decision logs and spans are fed from router events and executor observers;
- in a fleet (`service.fleet`), changes made by other replicas are reloaded (`reload_governance`) within a
  second, and a heartbeat row tells `GET /v1/cluster` what this replica serves.
Always read `state.router` afresh: it is replaced once if legacy mode gives way to a published version
(the new one is wired exactly like the first, in `_new_router`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

from routeguard.config.secrets import egress_rules
from routeguard.core.context import SafeMode
from routeguard.core.decision import Decision
from routeguard.core.egress import EgressRules
from routeguard.core.events import Event, RouteChanged, SafeModeChanged, TerminalEngaged
from routeguard.core.model import Model
from routeguard.core.model import Notifier as NotifierConfig
from routeguard.core.table import RoutingTable
from routeguard.event_pump import EventPump
from routeguard.execution.health_checks import run_checks
from routeguard.notify import Dispatcher, DispatchOptions, Notifier, build_notifiers
from routeguard.runtime import Router
from routeguard.service.approvals import ApprovalWatch
from routeguard.service.audit_sink import AuditSink
from routeguard.service.auth import AuthConfig, check_exposure, is_loopback, load_auth_file
from routeguard.service.bootstrap import BootReport, bootstrap
from routeguard.service.checkpoints import CheckpointWriter, checkpoint_path
from routeguard.service.fleet import FleetSync, default_replica_id
from routeguard.service.fleet_health import FleetHealth
from routeguard.service.health_keeper import HealthKeeper
from routeguard.service.ledger import LedgerFeed, LedgerRouter
from routeguard.service.reviews import ReviewScheduler
from routeguard.service.settings import Settings
from routeguard.service.tables import EMPTY_TABLE, LiveTables, TableCache
from routeguard.service.trace_binding import TraceBook
from routeguard.store.db import Store, open_store
from routeguard.store.models import SafeModeState
from routeguard.store.redis_bus import RedisBus, fleet_prefix
from routeguard.store.rollout import Rollout
from routeguard.telemetry import logs, tracing
from routeguard.telemetry.metrics import RoutingMetrics

__all__ = ["DurableHumanQueue", "ServiceState"]

log = logging.getLogger("routeguard.service")
_CHECK_EVERY_S = 0.5  # how often due active health checks are looked for


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
        self.egress = service_egress(settings)
        self.store = store
        self.auth = auth
        self.report = report
        self.lock = threading.RLock()  # serialises publish, rollback, safe mode and table rebuilds
        self.cache = TableCache()
        self.queue = DurableHumanQueue(store)
        self.sink = AuditSink(store, self.notifier_names, self.qualify_notifiers)
        self.watch = ApprovalWatch(store, settings.approval_warning_s)
        self.metrics = RoutingMetrics()
        self.replica_id = settings.replica_id or default_replica_id()
        generation = store.fleet.generation()  # read before the state it stands for: a later change is seen
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
            owner=self.replica_id,
        )
        self.ledger = LedgerFeed(store, retain_s=settings.retain_s, clock=settings.clock)
        self.reviews = ReviewScheduler(
            self, every_s=settings.review_every_s, directory=settings.reviews_dir, evals=settings.review_evals
        )
        self.health_keeper = HealthKeeper(store)
        # audit + outbox first (the outbox row exists before the dispatcher is kicked), then durable health
        self.pump = EventPump(
            [self.sink, self.health_keeper], [self.metrics.observe_event, self._kick_on, self.reviews.observe]
        ).start()
        self.traces = TraceBook()
        self.fleet_health: FleetHealth | None = None  # with --redis: health shared with the fleet
        self.redis_prefix = fleet_prefix(settings.db_url)  # one fleet = one store: its keys in Redis
        if settings.redis_url:
            bus = RedisBus(settings.redis_url, self.redis_prefix)
            self.fleet_health = FleetHealth(bus, self.replica_id, lambda: self.router, auth.limiter)
        self.router = self._new_router(self._live, legacy=report.legacy_table is not None)
        self._ticker: asyncio.Task[None] | None = None
        self._checks: asyncio.Task[None] | None = None
        self.checkpoints = CheckpointWriter(
            store, checkpoint_path(settings), settings.checkpoint_every_s,
            self._checkpoint_to_notifier if settings.checkpoint_notifier else None,
        )
        if not self.checkpoints.enabled and settings.checkpoint_every_s > 0:
            report.notes.append("audit checkpoints are off: give --checkpoint-file (no default beside this store)")
        self._checkpointer: asyncio.Task[None] | None = None
        self._retired: list[Router] = []
        self._owns_store = False
        self.fleet = FleetSync(
            self,
            self.replica_id,
            generation,
            poll_s=settings.fleet_poll_s,
            heartbeat_s=settings.heartbeat_s,
            address=f"{settings.host}:{settings.port}",
            redis_probe=self.fleet_health.status if self.fleet_health is not None else None,  # the link's state
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def open(cls, settings: Settings) -> ServiceState:
        """Load auth, refuse unsafe exposure, open (and migrate) the store, bootstrap. Raises AuthError,
        StartupError; the CLI maps them to exit 2 / exit 1."""
        auth = load_auth_file(settings.auth_file) if settings.auth_file is not None else AuthConfig()
        check_exposure(auth, settings.host)
        egress = service_egress(settings)  # a bad --secrets file stops the start before the store opens
        store = open_store(settings.db_url)
        try:
            report = bootstrap(
                store, settings.config_path, settings.clock(), legacy_env=settings.legacy_env, egress=egress
            )
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
        router.subscribe(self.pump)  # events leave through the pump: no store write on the decision path
        if self.fleet_health is not None:
            router.attach_fleet(self.fleet_health)
        executor = router.executor
        executor.queue = self.queue
        executor.observers.append(self.metrics.observe_served)
        executor.decision_observers.append(self.observe_decision)
        executor.failure_observers.append(self._observe_failed)
        safe = self.store.safe_mode.state()
        router.load_safe_mode(SafeMode(safe.global_on, safe.tenants_on))
        self.metrics.set_safe_mode(router.safe_mode)
        # durable health last, on the restored safe mode: a restart keeps signals, ejections and routes, and
        # judges them as they were (no spurious change from a half-restored state)
        self.health_keeper.restore(router)
        return router

    # ------------------------------------------------------------------ telemetry and notifications
    def observe_decision(self, decision: Decision, seconds: float) -> None:
        """A route decision was made (`POST /v1/route`, or the first of a proxied call)."""
        self.metrics.observe_decision(decision, seconds)
        self.traces.note(decision, self._attempts(decision))
        logs.log_decision(decision, seconds)

    def _attempts(self, decision: Decision) -> int:
        compiled = self.router.table_for(decision.tenant)[1].policies.get(decision.policy)
        return compiled.policy.retry.attempts if compiled is not None else 1

    def _observe_failed(self, first: Decision, left_first_model: bool) -> None:
        self.metrics.observe_failed(first.policy, first.model, fell_back=left_first_model)

    def _kick_on(self, event: Event) -> None:
        if isinstance(event, RouteChanged | TerminalEngaged | SafeModeChanged):
            self.dispatcher.kick()

    async def _checkpoint_to_notifier(self, payload: dict[str, Any]) -> None:
        name = self.settings.checkpoint_notifier or ""
        notifier = self.dispatcher.notifier(name)
        if notifier is None:
            raise LookupError(f"no notifier named {name!r} in the live bundles")
        await notifier.send(payload)

    def notifier_configs(self) -> dict[str, NotifierConfig]:
        """The notifiers of every live bundle, by name (the stable bundle's first). A staged version whose
        notifier differs from the one of the same name already listed is listed as `name@vN` too, so the
        events of its scope reach its own notifier (`qualify_notifiers`)."""
        configs: dict[str, NotifierConfig] = {}
        for table in self._live.tables.values():
            for name, config in table.bundle.notifiers.items():
                if configs.setdefault(name, config) != config:
                    configs[f"{name}@v{table.version}"] = config
        return configs

    def qualify_notifiers(self, scope: str | None, names: tuple[str, ...]) -> tuple[str, ...]:
        """The outbox names of ``names`` for an event of ``scope``: `name@vN` where that scope's version has
        its own notifier of that name, else the name itself."""
        table = self._live.tables.get(scope) if scope is not None else None
        if table is None or not names:
            return names
        configs = self.notifier_configs()
        return tuple(
            f"{n}@v{table.version}" if f"{n}@v{table.version}" in configs else n for n in names
        )

    def _notifiers(self) -> dict[str, Notifier]:
        return build_notifiers(self.notifier_configs(), strict=False, rules=self.egress)

    def safe_mode_changed(self) -> None:
        """After the safe-mode endpoint wrote and applied a change."""
        self.metrics.set_safe_mode(self.router.safe_mode)
        self.dispatcher.kick()

    def _table_of(self, version: int) -> RoutingTable:
        def content() -> tuple[dict[str, Any], str]:
            pv = self.store.policies.get_version(version)
            return dict(pv.content or {}), pv.content_hash

        return self.cache.get(version, content)

    def _build(self, rollout: Rollout | None = None) -> LiveTables:
        rollout = rollout if rollout is not None else self.store.policies.rollout()
        return LiveTables.build(rollout, self._table_of, self._fallback)

    # ------------------------------------------------------------------ serving
    @property
    def live(self) -> LiveTables:
        return self._live

    def apply(self, rollout: Rollout | None = None) -> LiveTables:
        """Rebuild the tables from the store's live publications and install them (before answering)."""
        with self.lock:
            live = self._build(rollout)
            if self.router.legacy and live.rollout.publications:
                self._retired.append(self.router)  # its pooled connections are closed on stop
                self.router = self._new_router(live, legacy=False)
            else:
                self.router.set_tables(live.tables, live.scope_function())
            self._live = live
            self.dispatcher.set_notifiers(self._notifiers())  # also kicks: publish records may notify
            return live

    def reload_governance(self) -> bool:
        """Serve what the store holds now (another replica published, rolled back or switched safe mode);
        nothing is audited here: the replica that made the change did. Returns whether anything changed."""
        with self.lock:
            rollout = self.store.policies.rollout()
            changed = rollout.publications != self._live.rollout.publications
            if changed:
                self.apply(rollout)
            changed = self._follow_safe_mode(self.store.safe_mode.state()) or changed
        if changed:
            self.safe_mode_changed()
        return changed

    def _follow_safe_mode(self, stored: SafeModeState) -> bool:
        router, changed = self.router, False
        current = router.safe_mode
        switches: list[str | None] = [None] if stored.global_on != current.global_on else []
        switches += sorted(stored.tenants_on ^ frozenset(current.tenants))
        for tenant in switches:
            entry = stored.details.get(tenant)
            enabled = stored.global_on if tenant is None else tenant in stored.tenants_on
            reason, by = (entry.reason, entry.by) if entry is not None else ("", "routeguard:fleet")
            router.set_safe_mode(enabled, tenant=tenant, reason=reason, by=by)
            changed = True
        return changed

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
        self.health_keeper.flush()
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

    async def _claim_check(self, model: Model) -> bool:
        link, check = self.fleet_health, model.health_check
        if link is None or check is None:
            return True
        return await asyncio.to_thread(link.claim_check, model.name, float(check.interval_s))

    def start(self) -> None:
        if self.fleet_health is not None:
            self.fleet_health.start()
        self.dispatcher.start()
        self.fleet.start()
        self.ledger.start()
        self.reviews.start()
        tracing.configure_tracing()
        if self._checkpointer is None and self.checkpoints.enabled:
            self._checkpointer = asyncio.get_running_loop().create_task(
                self.checkpoints.run(), name="routeguard-checkpoints"
            )
        if self._ticker is None and self.settings.tick_s > 0:
            self._ticker = asyncio.get_running_loop().create_task(
                self._run_ticker(), name="routeguard-ticker"
            )
        if self._checks is None:
            self._checks = asyncio.get_running_loop().create_task(
                run_checks(lambda: self.router, self.settings.clock, self._claim_check, _CHECK_EVERY_S),
                name="routeguard-health-checks",
            )

    def settle(self, timeout_s: float = 2.0) -> None:
        """Read-your-writes: wait until the events queued so far are written (audit, outbox, metrics)."""
        self.pump.wait_idle(timeout_s)

    async def stop(self) -> None:
        if self._checks is not None:
            self._checks.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checks
            self._checks = None
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
            self._checkpointer = None
            with contextlib.suppress(Exception):  # the last head, written as the service stops
                await asyncio.wait_for(self.checkpoints.once(), 10)
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self.fleet.stop()
        if self.fleet_health is not None:
            await asyncio.to_thread(self.fleet_health.stop)
        await asyncio.to_thread(self.pump.stop)
        await self.reviews.stop()
        await self.dispatcher.stop()
        await self.ledger.stop()
        tracing.shutdown_tracing()
        for old in self._retired:
            await old.aclose()
        self._retired.clear()
        await self.router.aclose()

    def close(self) -> None:
        self.pump.stop()
        if self._owns_store:
            self.store.close()


def service_egress(settings: Settings) -> EgressRules:
    """The secrets bindings and egress allow-list this service checks bundles and connections with."""
    return egress_rules(settings.secrets_file, settings.allow_egress, loopback=is_loopback(settings.host))
