"""The tracker's fleet inputs (pure): another replica's probe permits count against this replica's budget,
and another replica's ejection holds here with the same cooldown end."""

from __future__ import annotations

from routeguard.core.health_fleet import FleetTracker
from routeguard.core.health_view import HealthState
from routeguard.core.model import HealthConfig

CFG = HealthConfig(consecutive_failures=3, cooldown_s=10.0, probes=2, max_probes_in_flight=2)


def _ejected(tracker: FleetTracker, now: float) -> None:
    for i in range(3):
        tracker.record("m", ok=False, now=now + i * 0.01, error_class="server_error")
    assert tracker.model_health("p", CFG, "m", now + 0.1).state is HealthState.UNHEALTHY


def test_another_replicas_permits_use_up_this_replicas_budget() -> None:
    tracker = FleetTracker({"p": CFG})
    _ejected(tracker, 0.0)
    assert tracker.model_health("p", CFG, "m", 11.0).state is HealthState.PROBING
    assert tracker.note_probe("p", "m", 11.1) and tracker.note_probe("p", "m", 11.2)
    health = tracker.model_health("p", CFG, "m", 11.3)
    assert not health.probe_admitted and health.probes_left == 0
    assert not tracker.begin_probe("p", "m", 11.3)
    tracker.record("m", ok=True, now=11.4)
    tracker.record("m", ok=True, now=11.5)
    assert tracker.model_health("p", CFG, "m", 11.6).state is HealthState.HEALTHY


def test_a_permit_noted_outside_probing_is_ignored() -> None:
    tracker = FleetTracker({"p": CFG})
    assert not tracker.note_probe("p", "m", 1.0)


def test_an_adopted_ejection_holds_with_the_remote_cooldown_end() -> None:
    tracker = FleetTracker({"p": CFG})
    tracker.model_health("p", CFG, "m", 0.0)
    assert tracker.adopt_ejection("p", "m", 1.0, cooldown_until=11.0, ejections=1, detail="3 failures (a)")
    health = tracker.model_health("p", CFG, "m", 2.0)
    assert health.state is HealthState.UNHEALTHY and health.cooldown_left_s == 9.0
    moves = tracker.drain_transitions()
    assert [(t.from_state, t.to_state) for t in moves] == [(HealthState.HEALTHY, HealthState.UNHEALTHY)]
    assert not tracker.adopt_ejection("p", "m", 3.0, cooldown_until=12.0, ejections=1, detail="again")
    assert tracker.model_health("p", CFG, "m", 11.5).state is HealthState.UNHEALTHY  # the later end wins
    assert tracker.model_health("p", CFG, "m", 12.0).state is HealthState.PROBING


def test_an_ejection_already_over_is_not_adopted() -> None:
    tracker = FleetTracker({"p": CFG})
    assert not tracker.adopt_ejection("p", "m", 20.0, cooldown_until=11.0, ejections=1, detail="old")
    assert tracker.model_health("p", CFG, "m", 20.0).state is HealthState.HEALTHY
