"""`GET /v1/cluster`'s judgement of a replica, and the per-scope versions it compares (pure parts)."""

from __future__ import annotations

from datetime import UTC, datetime

from routeguard.core.table import RoutingTable
from routeguard.service.cluster import replica_status
from routeguard.service.tables import EMPTY_TABLE, LiveTables, scope_versions
from routeguard.store.fleet import ReplicaBeat
from routeguard.store.models import Publication, Scope
from routeguard.store.rollout import Rollout

T0 = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def _pub(pid: int, version: int, scope: Scope) -> Publication:
    return Publication(pid, version, scope, "bob", T0)


def _beat(serving: dict[str, int | None]) -> ReplicaBeat:
    return ReplicaBeat("b", "host", 1, "0.1.0", T0, T0, 3, serving)


def _versioned(version: int) -> RoutingTable:
    from dataclasses import replace

    return replace(EMPTY_TABLE, version=version)


def test_scope_versions_name_the_scopes_the_tables_are_built_for() -> None:
    rollout = Rollout(
        [
            _pub(1, 1, Scope.all()),
            _pub(2, 2, Scope.for_tenants(["acme"])),
            _pub(3, 3, Scope.for_percent(10)),
            _pub(4, 4, Scope.for_tenants(["acme"])),
        ]
    )
    live = LiveTables.build(rollout, _versioned, EMPTY_TABLE)
    expected = {key: table.version for key, table in live.tables.items()}
    assert scope_versions(rollout) == expected
    assert expected["all"] == 1 and expected["percent:10"] == 3


def test_nothing_published_is_all_none() -> None:
    assert scope_versions(Rollout([])) == {"all": None}


def test_a_fresh_replica_serving_the_store_is_ok() -> None:
    assert replica_status(_beat({"all": 2}), 0.4, {"all": 2}, stale_s=3.0) == ("ok", [])


def test_a_replica_serving_another_version_lags_and_says_where() -> None:
    status, reasons = replica_status(_beat({"all": 1, "tenants:acme": 3}), 0.4, {"all": 2}, stale_s=3.0)
    assert status == "lagging"
    assert reasons == [
        "scope all: serves 1, the store publishes 2",
        "scope tenants:acme: serves 3, the store publishes None",
    ]


def test_an_old_heartbeat_lags_then_is_gone() -> None:
    status, reasons = replica_status(_beat({"all": 2}), 4.0, {"all": 2}, stale_s=3.0)
    assert status == "lagging" and reasons == ["last heartbeat 4.0s ago"]
    assert replica_status(_beat({"all": 2}), 11.0, {"all": 2}, stale_s=3.0)[0] == "gone"
