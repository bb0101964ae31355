"""A model served by several deployments (DeploymentSet): spread by weight, residency, failover inside the
model before the executor sees a failure, never after output, and each deployment's own breaker (the real one,
here over a tracker of the set's own: 3 failures in a row eject, cooldown 30 s doubling, one probe closes)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from routeguard.core.errors import ErrorClass, ProviderError
from routeguard.core.model import HealthConfig
from routeguard.execution.deployments import SERVED_DEPLOYMENT, DeploymentSet, LocalHealth, Member
from routeguard.execution.providers import FakeProvider, Step

REQUEST: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


CONFIG = HealthConfig(consecutive_failures=3, probes=1, cooldown_s=30.0)


def make(*members: tuple[str, FakeProvider, frozenset[str] | None, int], clock: Clock | None = None) -> DeploymentSet:
    clock = clock or Clock()
    return DeploymentSet("m", [Member(n, p, r, w) for n, p, r, w in members], clock,
                         health=LocalHealth(clock, CONFIG), rng=random.Random(7))


async def test_spread_by_weight_and_drained_deployments() -> None:
    a, b, c = FakeProvider("a"), FakeProvider("b"), FakeProvider("c")
    ds = make(("a", a, None, 3), ("b", b, None, 1), ("c", c, None, 0))
    served = []
    for _ in range(200):
        await ds.complete(REQUEST, timeout_s=1)
        served.append(SERVED_DEPLOYMENT.get())
    assert c.calls == 0 and a.calls + b.calls == 200
    assert a.calls > b.calls > 0  # 3:1 (a seeded draw)
    assert set(served) == {"a", "b"}


async def test_region_is_a_requirement() -> None:
    eu, us = FakeProvider("eu"), FakeProvider("us")
    ds = make(("eu", eu, frozenset({"eu-west-2"}), 1), ("us", us, frozenset({"us-east-1"}), 1))
    for _ in range(20):
        await ds.in_region("eu-west-2").complete(REQUEST, timeout_s=1)
    assert (eu.calls, us.calls) == (20, 0)
    us.script = ["overloaded"]
    with pytest.raises(ProviderError) as info:
        await ds.in_region("us-east-1").complete(REQUEST, timeout_s=1)
    assert info.value.error_class is ErrorClass.OVERLOADED and eu.calls == 20  # never left its region
    with pytest.raises(ProviderError) as info:
        await ds.in_region("ap-south-1").complete(REQUEST, timeout_s=1)
    assert "no deployment of m can serve in region ap-south-1" in str(info.value)


async def test_retryable_failure_moves_to_another_deployment() -> None:
    bad, good = FakeProvider("bad", default="overloaded"), FakeProvider("good")
    ds = make(("bad", bad, None, 1), ("good", good, None, 1))
    for _ in range(10):
        answer = await ds.complete(REQUEST, timeout_s=1)
        assert answer["choices"][0]["message"]["content"] == "ok" and SERVED_DEPLOYMENT.get() == "good"
    assert good.calls == 10 and 1 <= bad.calls <= 3  # ejected after three failures in a row


async def test_non_retryable_errors_end_the_call() -> None:
    bad, good = FakeProvider("bad", default="bad_request"), FakeProvider("good")
    ds = make(("bad", bad, None, 1000), ("good", good, None, 1))  # 'bad' is tried first; a 400 ends the call
    with pytest.raises(ProviderError) as info:
        await ds.complete(REQUEST, timeout_s=1)
    assert info.value.error_class is ErrorClass.BAD_REQUEST and info.value.model == "m" and good.calls == 0


async def test_breaker_cooldown_probe_and_recovery() -> None:
    clock = Clock()
    flaky, steady = FakeProvider("flaky", default="server_error"), FakeProvider("steady")
    ds = make(("flaky", flaky, None, 1000), ("steady", steady, None, 1), clock=clock)
    for _ in range(3):
        await ds.complete(REQUEST, timeout_s=1)
    assert flaky.calls == 3  # weight 1000: always tried first, failed, and the call moved on
    for _ in range(5):
        await ds.complete(REQUEST, timeout_s=1)
    assert flaky.calls == 3  # ejected: left out during its cooldown (30 s)
    clock.t += 31
    await ds.complete(REQUEST, timeout_s=1)
    assert flaky.calls == 4  # the probe failed: out again, for twice as long
    clock.t += 31
    await ds.complete(REQUEST, timeout_s=1)
    assert flaky.calls == 4
    clock.t += 30
    flaky.default = "ok"
    await ds.complete(REQUEST, timeout_s=1)
    assert flaky.calls == 5 and SERVED_DEPLOYMENT.get() == "flaky"
    await ds.complete(REQUEST, timeout_s=1)
    assert flaky.calls == 6  # closed again


async def test_streams_move_only_before_output() -> None:
    broken = FakeProvider("broken", default=Step(content="abcdef", break_after=0))
    good = FakeProvider("good", default="fine")
    ds = make(("broken", broken, None, 1000), ("good", good, None, 1))
    chunks = [c async for c in ds.stream(REQUEST, timeout_s=1)]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "fine"
    assert SERVED_DEPLOYMENT.get() == "good"
    late = FakeProvider("late", default=Step(content="abcdef", chunks=3, break_after=2))
    ds = make(("late", late, None, 1000), ("good", good, None, 1))
    got: list[dict[str, Any]] = []
    with pytest.raises(ProviderError):
        async for chunk in ds.stream(REQUEST, timeout_s=1):
            got.append(chunk)
    assert any(c["choices"][0]["delta"].get("content") for c in got if c["choices"])
    assert good.calls == 1  # the earlier stream only: output had reached the caller
