"""The Redis link of fleet-wide health, in one process against the machine's Redis (a fresh key prefix per
test; its keys are deleted afterwards, nothing else is touched). Links are stepped by hand (push, leases,
read), so each assertion follows a known number of rounds.

- outcomes reported on one replica eject the model on the other; a replica never re-applies its own items;
- probe leases: one owner at a time, renewed by its token only, released only by it;
- the active-check lock: one claim per interval;
- per-principal grants on one replica come out of the other's bucket (and over HTTP: a token's `rate`);
- a lost link keeps what it saw and pushes it when Redis answers again.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from routeguard.runtime import Router
from routeguard.service.fleet_health import FleetHealth
from routeguard.service.rate_limit import RateLimiter
from routeguard.store.redis_bus import RedisBus, fleet_prefix
from support.fleet import poll_until
from support.service import EXAMPLE, ManualClock, bundle, run_service
from support.services import redis_url_or_skip

pytestmark = pytest.mark.services

PRIMARY, FALLBACK = "triage-v3", "triage-v2"
ROUTE = {"agent": "triage-agent", "task_type": "triage", "data_class": "restricted", "region": "eu-west-2"}
HEALTH = {"consecutive_failures": 3, "cooldown": "30s", "probes": 2, "probes_in_flight": 2}


@pytest.fixture
def prefix() -> Iterator[str]:
    import redis

    url = redis_url_or_skip()
    prefix = f"routeguard:{{test-{secrets.token_hex(6)}}}:"
    yield prefix
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _replica(name: str, prefix: str, clock: ManualClock, limiter: RateLimiter | None = None) -> tuple[Router, Any]:
    router = Router.from_bundle(bundle(health=HEALTH), clock=clock)
    link = FleetHealth(RedisBus(redis_url_or_skip(), prefix), name, lambda: router, limiter, flush_s=0.01)
    router.attach_fleet(link)
    link._connect()
    return router, link


def test_outcomes_on_one_replica_eject_on_the_other_and_nobody_reapplies_its_own(prefix: str) -> None:
    clock = ManualClock()
    (a, link_a), (b, link_b) = _replica("a", prefix, clock), _replica("b", prefix, clock)
    for _ in range(3):
        a.report({"model": PRIMARY, "ok": False, "error": "server_error"})
    assert a.decide(ROUTE).model == FALLBACK
    assert b.decide(ROUTE).model == PRIMARY  # nothing pushed yet
    link_a.step()
    link_b.step()
    assert b.decide(ROUTE).model == FALLBACK
    assert b.health()[PRIMARY]["policies"]["triage-agent"]["state"] == "unhealthy"
    link_a.step()
    assert link_a.applied == 0 and link_b.applied >= 3  # outcomes, and the ejection itself
    assert b.tracker.breaker("triage-agent", PRIMARY).cooldown_until == pytest.approx(  # type: ignore[union-attr]
        a.tracker.breaker("triage-agent", PRIMARY).cooldown_until, abs=1.0)  # type: ignore[union-attr]


def test_probe_leases_have_one_owner_at_a_time(prefix: str) -> None:
    bus = RedisBus(redis_url_or_skip(), prefix)
    assert bus.take_lease("probe:p:m", "a", 1000)
    assert not bus.take_lease("probe:p:m", "b", 1000)
    assert bus.take_lease("probe:p:m", "a", 1000)  # renewed by its owner
    assert not bus.release_lease("probe:p:m", "b")  # only the owner gives it back
    assert bus.holder("probe:p:m") == "a"
    assert bus.release_lease("probe:p:m", "a")
    assert bus.take_lease("probe:p:m", "b", 1000)
    assert bus.claim("check:m", "a", 5000) and not bus.claim("check:m", "b", 5000)
    bus.close()


def test_a_recovering_model_is_probed_only_under_the_lease(prefix: str) -> None:
    clock = ManualClock()
    (a, link_a), (b, link_b) = _replica("a", prefix, clock), _replica("b", prefix, clock)
    for _ in range(3):
        a.report({"model": PRIMARY, "ok": False, "error": "server_error"})
    link_a.step()
    link_b.step()
    clock.advance(31)  # the cooldown ends on both: both probe now, within one fleet-wide budget of 2
    first = [a.decide(ROUTE), b.decide(ROUTE)]
    assert not any(d.probe for d in first)  # nobody holds the lease yet: both want it
    link_a.step()
    link_b.step()
    decisions = [r.decide(ROUTE) for r in (a, b, a, b, a, b)]
    probes = [d for d in decisions if d.probe]
    assert len(probes) == 2 and {d.model for d in probes} == {PRIMARY}
    assert len({d.policy for d in probes}) == 1
    link_a.step()
    link_b.step()
    assert a.probe_gate is not None and b.probe_gate is not None
    assert len(a.probe_gate.leased | b.probe_gate.leased) == 1


def test_principal_grants_are_taken_from_every_replicas_bucket(prefix: str) -> None:
    clock = ManualClock()
    limit_a, limit_b = RateLimiter(clock), RateLimiter(clock)
    (_, link_a), (_, link_b) = _replica("a", prefix, clock, limit_a), _replica("b", prefix, clock, limit_b)
    assert limit_b.take("carol", 4.0) is None  # b has served carol: she has a bucket there (3 left)
    for _ in range(3):
        assert limit_a.take("carol", 4.0) is None
    assert limit_a.take("dave", 2.0) is None and limit_a.take("dave", 2.0) is None  # dave's burst, all on a
    link_a.step()
    link_b.step()
    assert limit_b.take("carol", 4.0) is not None  # 4 granted fleet-wide within the second: over the rate
    assert limit_b.take("dave", 2.0) is not None  # b never served dave: a's grants still count here


def test_a_lost_link_keeps_what_it_saw_and_pushes_it_on_return(prefix: str) -> None:
    clock = ManualClock()
    (a, link_a), (b, link_b) = _replica("a", prefix, clock), _replica("b", prefix, clock)
    link_a._went_down(ConnectionError("gone"))
    assert link_a.status() == "down: ConnectionError" and a.probe_gate is not None and not a.probe_gate.active
    for _ in range(3):
        a.report({"model": PRIMARY, "ok": False, "error": "server_error"})
    assert link_a.describe()["backlog"] >= 3
    link_a._connect()
    link_a.step()
    link_b.step()
    assert b.decide(ROUTE).model == FALLBACK


def test_quotas_count_the_fleets_traffic(prefix: str) -> None:
    clock = ManualClock()
    raw = bundle(health=HEALTH)
    raw["models"][PRIMARY]["limits"] = {"rpm": 4, "tpm": 100_000}
    routers = []
    for name in "ab":
        router = Router.from_bundle(raw, clock=clock)
        link = FleetHealth(RedisBus(redis_url_or_skip(), prefix), name, lambda r=router: r, flush_s=0.01)
        router.attach_fleet(link)
        link._connect()
        routers.append((router, link))
    (a, link_a), (b, link_b) = routers
    for _ in range(2):
        a.report({"model": PRIMARY, "ok": True, "latency_ms": 10})
        b.report({"model": PRIMARY, "ok": True, "latency_ms": 10})
    assert a.decide(ROUTE).model == PRIMARY  # 2 requests seen here: under 4 per minute
    link_a.step()
    link_b.step()
    link_a.step()
    assert a.decide(ROUTE).model == FALLBACK and b.decide(ROUTE).model == FALLBACK  # 4 in the fleet's minute


def test_a_peers_malformed_items_are_skipped_and_the_link_stays_up(prefix: str) -> None:
    clock = ManualClock()
    b, link_b = _replica("b", prefix, clock, RateLimiter(clock))
    bad: list[dict[str, Any]] = [
        {"k": "o"}, {"k": "o", "m": PRIMARY, "ok": False, "ts": "yesterday"}, {"k": "?", "m": PRIMARY},
        {"k": "o", "m": PRIMARY, "ok": False, "e": "no_such_class"}, {"k": "s", "m": PRIMARY, "st": "sideways"},
        {"k": "r", "p": "carol", "n": "many", "ts": clock()}, {"k": "r", "ts": clock()},
    ]
    good = [{"k": "s", "m": PRIMARY, "st": "down", "src": "pager", "ttl": 60, "at": clock()}]
    link_b.bus.push("z", [*bad, *good])
    link_b.step()
    assert link_b.up and link_b.applied == 1
    assert b.decide(ROUTE).model == FALLBACK


def test_a_tokens_rate_holds_across_replicas_over_http(tmp_path: Path) -> None:
    redis_url = redis_url_or_skip()
    db = f"sqlite:///{tmp_path / 'fleet.db'}"
    auth = tmp_path / "auth.yaml"
    auth.write_text("- {name: lim, token: lim-token-0123456789, roles: [router], rate: 4/s}\n", encoding="utf-8")
    with run_service(db, config=EXAMPLE, auth_file=auth, redis_url=redis_url) as a, \
            run_service(db, auth_file=auth, redis_url=redis_url) as b:
        try:
            for svc in (a, b):
                poll_until(lambda s=svc: s.state.fleet_health.up, time.monotonic() + 5, "link up")
            with a.client("lim-token-0123456789") as on_a, b.client("lim-token-0123456789") as on_b:
                assert all(on_a.post("/v1/route", json=ROUTE).status_code == 200 for _ in range(4))  # the burst
                granted_on_b, deadline = 0, time.monotonic() + 1.5
                while (status := on_b.post("/v1/route", json=ROUTE).status_code) == 200:
                    granted_on_b += 1
                    assert time.monotonic() < deadline, "b never saw a's grants"
                    time.sleep(0.05)
                assert status == 429
                assert granted_on_b <= 2, granted_on_b  # alone, b would grant its own burst of 4 first
        finally:
            _forget(redis_url, fleet_prefix(db))


def _forget(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()
