"""Report definitions on hand-made runs, and the §2 oracle catching every kind of breach."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from routeguard.config.load import load_bundle
from routeguard.core.context import RouteContext, SafeMode
from routeguard.core.decision import Decision, DecisionStatus
from routeguard.core.events import RouteChanged, SafeModeChanged
from routeguard.core.model import Terminal, TerminalAction
from routeguard.sim.invariants import InvariantChecker
from routeguard.sim.report import build_report
from routeguard.sim.scenario import Fault, FaultKind, Scenario
from routeguard.sim.simulator import SimRun
from routeguard.sim.tally import OK, TERMINAL, Tally

BUNDLE = load_bundle(Path(__file__).resolve().parents[2] / "examples" / "clinical-triage.yaml").bundle
EPOCH = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
CTX = RouteContext(
    trace_id="t1",
    agent="triage-agent",
    task_type="triage",
    data_class="restricted",
    region="eu-west-2",
    tenant="acme",
)


def _decision(
    model: str | None, status: DecisionStatus = DecisionStatus.FALLBACK, terminal: Terminal | None = None
) -> Decision:
    return Decision(
        "t1", "triage-agent", None, "", status, model, None, (), False, False, terminal, None, None, ()
    )


def _violations(
    d: Decision, *, safe: SafeMode = SafeMode(), now: float = EPOCH, ctx: RouteContext = CTX
) -> set[int]:
    checker = InvariantChecker(BUNDLE)
    checker.logged("triage-agent", d.model)  # the routing log agrees unless a test says otherwise
    checker.check(ctx, d, safe, now)
    return {v.invariant for v in checker.violations}


def test_a_governed_decision_breaks_nothing() -> None:
    assert _violations(_decision("triage-v2")) == set()
    assert (
        _violations(_decision(None, DecisionStatus.TERMINAL, Terminal(TerminalAction.HUMAN_QUEUE, "q")))
        == set()
    )


def test_the_oracle_catches_each_breach() -> None:
    assert _violations(_decision("general-xl")) == {1, 2, 3}  # unapproved, broader, low clearance, us-east-1
    expired = datetime(2028, 3, 1, tzinfo=UTC).timestamp()  # triage-v2's approval ended 2028-01-31
    assert _violations(_decision("triage-v2"), now=expired) == {1}
    assert _violations(
        _decision("triage-v4"),
        ctx=RouteContext(trace_id="t1", agent="triage-agent"),
        safe=SafeMode(global_on=True),
    ) == {4}
    assert _violations(_decision("triage-v4")) == {3}  # the request asked for eu-west-2; v4 runs elsewhere
    assert _violations(_decision(None, DecisionStatus.FALLBACK)) == {5}
    assert _violations(_decision("triage-v2", DecisionStatus.TERMINAL)) == {5}


def test_a_decision_off_the_routing_log_is_invariant_6() -> None:
    checker = InvariantChecker(BUNDLE)  # the log says triage-agent is on its primary
    checker.check(CTX, _decision("triage-v2"), SafeMode(), EPOCH)
    assert [v.invariant for v in checker.violations] == [6]
    checker.logged("triage-agent", "triage-v2")
    checker.check(CTX, _decision("triage-v2"), SafeMode(), EPOCH)
    assert len(checker.violations) == 1


def _change(t: float, frm: str | None, to: str | None) -> RouteChanged:
    return RouteChanged("triage-agent", "all", frm, to, "test", {}, None, EPOCH + t, notify=("governance",))


def _run(changes: list[RouteChanged], faults: tuple[Fault, ...] = ()) -> SimRun:
    scenario = Scenario(name="unit", duration_s=600, faults=faults)
    return SimRun(scenario, BUNDLE, "sha256:x", EPOCH, 600, Tally(), route_changes=changes)


def test_flaps_count_returns_that_did_not_hold() -> None:
    v3, v2 = "triage-v3", "triage-v2"
    # leave, return 40s later (a recovery, not a flap), leave again 10s after returning (a flap)
    run = _run([_change(100, v3, v2), _change(140, v2, v3), _change(150, v3, v2), _change(400, v2, v3)])
    assert build_report(run)["flaps"] == 1
    # the same pattern stretched past the flap window is not flapping
    run = _run([_change(100, v3, v2), _change(140, v2, v3), _change(260, v3, v2)])
    assert build_report(run)["flaps"] == 0


def test_failover_recovery_and_timeline() -> None:
    fault = Fault("triage-v3", FaultKind.OUTAGE, at_s=120, until_s=300)
    run = _run([_change(121.5, "triage-v3", "triage-v2"), _change(360, "triage-v2", "triage-v3")], (fault,))
    report = build_report(run)
    assert report["time_to_failover_s"] == 1.5 and report["time_to_recover_s"] == 60.0
    assert report["route_timeline"]["triage-agent"] == [
        {"from_s": 0.0, "to_s": 121.5, "model": "triage-v3"},
        {"from_s": 121.5, "to_s": 360.0, "model": "triage-v2"},
        {"from_s": 360.0, "to_s": 600, "model": "triage-v3"},
    ]
    assert report["routing_changes"][0] == {
        "t_s": 121.5,
        "policy": "triage-agent",
        "from_model": "triage-v3",
        "to_model": "triage-v2",
        "reason": "test",
    }


def test_counts_add_up_and_rates_follow_their_definitions() -> None:
    run = _run([])
    tally = run.tally
    tally.add(
        t_s=1,
        end_s=1.5,
        policy="triage-agent",
        first_model="triage-v3",
        needed_fallback=False,
        served="triage-v3",
        kind=OK,
    )
    tally.add(
        t_s=2,
        end_s=3,
        policy="triage-agent",
        first_model="triage-v3",
        needed_fallback=True,
        served="triage-v2",
        kind=OK,
    )
    tally.add(
        t_s=61,
        end_s=62,
        policy="triage-agent",
        first_model="triage-v2",
        needed_fallback=True,
        served=None,
        kind=TERMINAL,
        detail="human_queue",
    )
    report = build_report(run)
    assert report["requests"] == 3 and report["succeeded"] == 2 and report["terminal"] == {"human_queue": 1}
    assert report["hit_rate"] == pytest.approx(1 / 3)
    assert report["fallback_success_rate"] == 0.5 and report["fallback_requests"] == 2
    assert report["per_minute"][0] == {
        "minute": 0,
        "succeeded": 2,
        "via_fallback": 1,
        "terminal": 0,
        "failed": 0,
    }
    assert report["per_minute"][1]["terminal"] == 1


def test_safe_mode_verdict_from_the_fallback_failure_window() -> None:
    run = _run([])
    # 20 fallback requests, the last 5 failed: the rate passes 5% at the first failure (with >= 10 samples)
    run.tally.fallback_results.extend((float(i), i >= 15) for i in range(20))
    report = build_report(run)
    assert report["safe_mode"]["breach_at_s"] == 15.0
    assert report["verdicts"]["safe_mode_within_1m"] == "fail"  # never engaged
    run.safe_mode_changes.append(SafeModeChanged(True, "auto", EPOCH + 70.0, automatic=True))
    assert build_report(run)["verdicts"]["safe_mode_within_1m"] == "pass"
    run.safe_mode_changes[0] = SafeModeChanged(True, "auto", EPOCH + 80.0, automatic=True)
    assert build_report(run)["verdicts"]["safe_mode_within_1m"] == "fail"


def test_safe_mode_switched_off_before_the_breach_does_not_count() -> None:
    run = _run([])
    run.tally.fallback_results.extend((float(i), i >= 15) for i in range(20))
    run.safe_mode_changes.extend(
        [SafeModeChanged(True, "operator", EPOCH + 1.0), SafeModeChanged(False, "operator", EPOCH + 2.0)]
    )
    report = build_report(run)
    assert report["safe_mode"]["engaged_at_s"] == 1.0 and report["safe_mode"]["engaged_for_breach_s"] is None
    assert report["verdicts"]["safe_mode_within_1m"] == "fail"
    run.safe_mode_changes[1] = SafeModeChanged(True, "tenant only", EPOCH + 2.0, tenant="acme")
    assert build_report(run)["verdicts"]["safe_mode_within_1m"] == "pass"  # globally on since t=1


def test_a_route_not_back_by_the_end_means_not_recovered() -> None:
    fault = Fault("triage-v3", FaultKind.OUTAGE, at_s=120, until_s=360)
    report = build_report(_run([_change(121.0, "triage-v3", "triage-v2")], (fault,)))
    assert report["time_to_failover_s"] == 1.0
    assert report["time_to_recover_s"] is None and report["routes_not_recovered"] == 1
