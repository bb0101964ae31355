"""Properties of the health machine under random outcome and signal streams."""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from routeguard.core.health import TRANSITIONS, HealthTracker
from routeguard.core.health_view import HealthState
from routeguard.core.health_window import CLIENT_ERROR_CLASSES, PROVIDER_FAILURE_CLASSES
from routeguard.core.model import HealthConfig

POLICIES = {
    "strict": HealthConfig(
        window_s=20.0,
        min_samples=3,
        error_rate=0.3,
        degraded_error_rate=0.1,
        timeout_rate=0.3,
        p95_latency_s=1.0,
        cooldown_s=5.0,
        cooldown_max_s=20.0,
        probes=2,
        min_dwell_s=4.0,
        stale_after_s=30.0,
        consecutive_failures=3,
        max_probes_in_flight=2,
    ),
    "lenient": HealthConfig(window_s=45.0, min_samples=5, p95_latency_s=3.0, cooldown_s=8.0, min_dwell_s=7.5),
    "no-dwell": HealthConfig(min_samples=2, cooldown_s=3.0, min_dwell_s=0.0, consecutive_failures=2),
}
MODELS = ("a", "b")
ERRORS = sorted(PROVIDER_FAILURE_CLASSES | CLIENT_ERROR_CLASSES)


@dataclass(frozen=True)
class Op:
    dt: float
    kind: str
    model: str
    policy: str
    ok: bool
    error: str
    latency_s: float
    status: str
    ttl_s: float | None
    lost: bool  # a probe whose outcome never comes
    probe_fails: bool


ops = st.builds(
    Op,
    dt=st.one_of(st.just(0.0), st.floats(0.0, 12.0, allow_nan=False)),
    kind=st.sampled_from(["record", "record", "record", "probe", "probe", "probe", "signal", "look", "tick"]),
    model=st.sampled_from(MODELS),
    policy=st.sampled_from(sorted(POLICIES)),
    ok=st.booleans(),
    error=st.sampled_from(ERRORS),
    latency_s=st.floats(0.0, 5.0, allow_nan=False),
    status=st.sampled_from(["up", "degraded", "down"]),
    ttl_s=st.one_of(st.none(), st.floats(0.0, 40.0, allow_nan=False)),
    lost=st.sampled_from([False, False, False, True]),
    probe_fails=st.sampled_from([False, False, False, True]),
)


def run(t: HealthTracker, op: Op, now: float) -> None:
    if op.kind == "record":
        t.record(op.model, ok=op.ok, error_class=None if op.ok else op.error, latency_s=op.latency_s, now=now)
    elif op.kind == "probe":
        if t.begin_probe(op.policy, op.model, now) and not op.lost:
            error = op.error if op.probe_fails else None
            t.record(op.model, ok=error is None, error_class=error, now=now, probe=True, policy=op.policy)
    elif op.kind == "signal":
        t.signal(op.model, op.status, now, ttl_s=op.ttl_s, source="prop")
    elif op.kind == "look":
        t.model_health(op.policy, POLICIES[op.policy], op.model, now)
    else:
        t.states(now)


def long_stream(seed: int, dt_max: float, length: int) -> list[Op]:
    """A long seeded stream (outages, recoveries and probes need many steps to show up)."""
    rng = random.Random(seed)
    failing = {model: rng.random() for model in MODELS}  # each model's current failure odds
    stream = []
    for _ in range(length):
        model = rng.choice(MODELS)
        if rng.random() < 0.02:
            failing[model] = rng.choice([0.0, 0.05, 0.3, 0.9, 1.0])
        fails = rng.random() < failing[model]
        stream.append(
            Op(
                dt=rng.choice([0.0, rng.uniform(0.0, dt_max)]),
                kind=rng.choices(["record", "probe", "signal", "look", "tick"], [8, 4, 0.3, 3, 0.5])[0],
                model=model,
                policy=rng.choice(sorted(POLICIES)),
                ok=not fails,
                error=rng.choice(ERRORS),
                latency_s=rng.expovariate(1.0),
                status=rng.choice(["up", "degraded", "down"]),
                ttl_s=rng.choice([None, rng.uniform(0.0, 60.0)]),
                lost=rng.random() < 0.1,
                probe_fails=fails,
            )
        )
    return stream


def check(stream: list[Op]) -> None:
    """Replay ``stream``; every transition is a table edge, and healthy <-> degraded respects the dwell."""
    t = HealthTracker(POLICIES)
    now = 1000.0
    last: dict[tuple[str, str], tuple[HealthState, float]] = {}
    for op in stream:
        now += op.dt
        run(t, op, now)
        for change in t.drain_transitions():
            key = (change.policy, change.model)
            before, since = last.get(key, (HealthState.HEALTHY, float("-inf")))
            assert change.from_state is before
            assert change.to_state in TRANSITIONS[change.from_state]
            if {change.from_state, change.to_state} == {HealthState.HEALTHY, HealthState.DEGRADED}:
                assert change.at - since >= POLICIES[change.policy].min_dwell_s  # the only edge it damps
            assert change.at <= now and change.detail
            last[key] = (change.to_state, change.at)
    for (policy, model), (state_now, _) in last.items():
        health = t.model_health(policy, POLICIES[policy], model, now)
        assert health.state in (state_now, *TRANSITIONS[state_now])
        if health.state is HealthState.UNHEALTHY and health.cooldown_left_s is not None:
            assert 0.0 <= health.cooldown_left_s <= POLICIES[policy].cooldown_max_s
        assert not health.probe_admitted or health.state in (HealthState.PROBING, HealthState.DEGRADED)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(ops, min_size=1, max_size=200))
def test_min_dwell_damps_healthy_degraded_and_every_edge_is_in_the_table(stream: list[Op]) -> None:
    check(stream)


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.integers(0, 2**32), st.sampled_from([0.5, 2.0, 6.0, 15.0]), st.integers(100, 600))
def test_the_same_holds_over_long_outage_and_recovery_streams(seed: int, dt_max: float, length: int) -> None:
    check(long_stream(seed, dt_max, length))


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 3.0, allow_nan=False), st.sampled_from(ERRORS)), max_size=80))
def test_client_errors_alone_never_make_a_model_unhealthy(stream: list[tuple[float, str]]) -> None:
    t = HealthTracker(POLICIES)
    now = 0.0
    for dt, error in stream:
        now += dt
        if error in CLIENT_ERROR_CLASSES:
            t.record("a", ok=False, error_class=error, now=now)
        else:
            t.record("a", ok=True, latency_s=0.1, now=now)
        for policy, config in POLICIES.items():
            assert t.model_health(policy, config, "a", now).state is HealthState.HEALTHY
