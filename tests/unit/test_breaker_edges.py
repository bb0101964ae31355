"""Every edge of the breaker (`core/breaker.py`), table-driven over the pure step function: the state before,
the signal, the time, and the state after — plus the edges the table refuses."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from routeguard.core.breaker import (
    Breaker,
    CheckEnded,
    Look,
    Override,
    ProbeEnded,
    ProbeTaken,
    Signal,
    cooldown_for,
    probe_admitted,
    step,
)
from routeguard.core.health_machine import TRANSITIONS, ExternalSignal, Figures, Proof, SignalStatus
from routeguard.core.health_view import HealthState
from routeguard.core.model import HealthConfig

H, D, U, P, S = (HealthState.HEALTHY, HealthState.DEGRADED, HealthState.UNHEALTHY, HealthState.PROBING,
                 HealthState.STALE)
CFG = HealthConfig(min_samples=10, cooldown_s=30, cooldown_max_s=300, probes=3, min_dwell_s=10,
                   p95_latency_s=2.0, quality_min=0.8, quality_min_samples=10, probe_timeout_s=20)
T = 1000.0


def fig(judged: int = 0, failures: int = 0, timeouts: int = 0, streak: int = 0, p95: float | None = None,
        lat: int = 0, qn: int = 0, q: float | None = None) -> Figures:
    return Figures(60.0, judged, failures, timeouts, streak, p95, lat, qn, q)


def sig(status: str, at: float = T - 1, ttl: float | None = 60.0, source: str = "ops") -> ExternalSignal:
    return ExternalSignal(SignalStatus(status), at, ttl, source)


QUIET = Look(fig(20, 0, 0, 0, 0.1, 20, 0, None), None)
BAD = Look(fig(20, 12), None)  # error rate 0.6 >= 0.5
STREAK = Look(fig(3, 3, streak=5), None)
SLOW = Look(fig(20, 0, p95=3.0, lat=20), None)
LOW_Q = Look(fig(20, 0, qn=12, q=0.3), None)
CLEAN = Look(fig(20, 0, p95=0.2, lat=20, qn=12, q=0.99), None)
DOWN = Look(fig(), sig("down"))
EXPIRED = Look(fig(), sig("up", at=T - 100, ttl=10))

healthy = Breaker(H, since=T - 100)
degraded = Breaker(D, since=T - 100, trouble_since=T - 100, proof=Proof.P95 | Proof.QUALITY)
unhealthy = Breaker(U, since=T - 40, ejections=1, cooldown_until=T - 10, trouble_since=T - 40)
cooling = replace(unhealthy, cooldown_until=T + 20)
probing = Breaker(P, since=T - 5, ejections=1, trouble_since=T - 45)
stale = Breaker(S, since=T - 50, trouble_since=T - 50)

EDGES: list[tuple[str, Breaker, Signal, HealthState | None, str]] = [
    ("healthy stays on quiet figures", healthy, QUIET, None, ""),
    ("healthy -> unhealthy on the error rate", healthy, BAD, U, "error_rate"),
    ("healthy -> unhealthy on consecutive failures", healthy, STREAK, U, "5 consecutive failures"),
    ("healthy -> unhealthy on a down signal", healthy, DOWN, U, "external signal down"),
    ("healthy -> degraded on p95", healthy, SLOW, D, "p95"),
    ("healthy -> degraded on quality", healthy, LOW_Q, D, "quality 0.30 < 0.80"),
    ("healthy -> stale when a signal expired", healthy, EXPIRED, S, "expired"),
    ("degraded -> healthy on clean evidence", degraded, CLEAN, H, ""),
    ("degraded -> unhealthy on the error rate", degraded, BAD, U, "error_rate"),
    ("degraded stays without evidence (silence is not evidence)", degraded, Look(fig(), None), None, ""),
    ("degraded -> stale", degraded, EXPIRED, S, "expired"),
    ("unhealthy -> probing once the cooldown is over", unhealthy, QUIET, P, "cooldown"),
    ("unhealthy stays during the cooldown", cooling, QUIET, None, ""),
    ("unhealthy stays while a down signal holds", unhealthy, DOWN, None, ""),
    ("unhealthy -> probing on an operator override", cooling, Override(), P, "override"),
    ("unhealthy -> probing on a successful active check", cooling, CheckEnded(True), P, "active health check"),
    ("probing -> healthy after `probes` successes", replace(probing, successes=3, permits=3), QUIET, H, "3 probes"),
    ("probing -> unhealthy on a failed probe", replace(probing, failure="probe failed: timeout"), QUIET, U, "probe"),
    ("probing -> unhealthy on a lost probe", replace(probing, permits=1, in_flight=(T - 21,)), QUIET, U, "without"),
    ("probing -> unhealthy on a down signal", probing, DOWN, U, "external signal down"),
    ("probing -> stale after its probes when the signal expired", replace(probing, successes=3), EXPIRED, S, "3"),
    ("stale -> healthy when the signal is renewed", stale, Look(fig(), sig("up")), H, "renewed"),
    ("stale -> unhealthy on the error rate", stale, BAD, U, "error_rate"),
    ("stale -> degraded on a degraded signal", stale, Look(fig(), sig("degraded")), D, "external signal degraded"),
    ("probing -> degraded after its probes, on a degraded signal", replace(probing, successes=3),
     Look(fig(), sig("degraded")), D, "external signal degraded"),
]


@pytest.mark.parametrize(("name", "before", "signal", "after", "detail"), EDGES, ids=[e[0] for e in EDGES])
def test_edge(name: str, before: Breaker, signal: Signal, after: HealthState | None, detail: str) -> None:
    new, moved = step(before, signal, T, CFG)
    if after is None:
        assert moved is None and new.state is before.state, name
        return
    assert moved is not None and moved[0] is before.state and moved[1] is after, name
    assert new.state is after and new.since == T
    assert detail in moved[2], moved[2]
    assert after in TRANSITIONS[before.state]


def test_every_table_edge_is_taken_by_some_row() -> None:
    taken = {(b.state, a) for _n, b, _s, a, _d in EDGES if a is not None}
    table = {(frm, to) for frm, tos in TRANSITIONS.items() for to in tos}
    assert table <= taken | {(D, D)}, sorted(table - taken)


def test_min_dwell_delays_only_healthy_and_degraded() -> None:
    fresh = replace(healthy, since=T - 1)
    assert step(fresh, SLOW, T, CFG).moved is None  # healthy -> degraded waits for the dwell
    assert step(fresh, BAD, T, CFG).moved is not None  # an ejection never does
    just = replace(degraded, since=T - 1)
    assert step(just, CLEAN, T, CFG).moved is None  # degraded -> healthy waits too


def test_a_reejection_grows_the_cooldown_and_a_lost_probe_does_not() -> None:
    failed = replace(probing, ejections=2, failure="probe failed: overloaded")
    new, _ = step(failed, QUIET, T, CFG)
    assert new.ejections == 3 and new.cooldown_until == T + cooldown_for(3, CFG) == T + 120
    lost = replace(probing, ejections=2, permits=1, in_flight=(T - 25,))
    new, _ = step(lost, QUIET, T, CFG)
    assert new.ejections == 2 and new.cooldown_until == T + 60


def test_the_probe_budget_and_in_flight_limit() -> None:
    p = probing
    for i in range(3):
        assert probe_admitted(p, CFG, T)
        p, _ = step(p, ProbeTaken(), T, CFG)
        p, _ = step(p, ProbeEnded(True), T, CFG) if i < 2 else (p, None)
    assert p.permits == 3 and not probe_admitted(p, CFG, T)  # the budget is spent
    refunded, _ = step(p, ProbeEnded(None), T, CFG)  # a client error gives its permit back
    assert refunded.permits == 2 and probe_admitted(refunded, CFG, T)


def test_cooldowns_cap_and_decay() -> None:
    assert [cooldown_for(n, CFG) for n in (1, 2, 3, 4, 5, 6)] == [30, 60, 120, 240, 300, 300]
    veteran = Breaker(H, since=T - 1000, ejections=4, decay_anchor=T - 650)
    new, moved = step(veteran, QUIET, T, CFG)
    assert moved is None and new.ejections == 1  # two cooldown_max periods healthy: 4 -> 2 -> 1
    assert not math.isinf(new.decay_anchor)
