"""Scenario files: the CONTRACT §7 shape, extras, errors with key paths, the library and replays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from routeguard.sim import scenario as scenario_module
from routeguard.sim.scenario import (
    FaultKind,
    ScenarioError,
    find_scenario,
    library,
    load_scenario,
    parse_scenario,
)
from routeguard.sim.simulator import simulate
from routeguard.sim.traffic import load_replay

REPO = Path(__file__).resolve().parents[2]
CONTRACT_EXAMPLE = """
duration: 10m
seed: 7
traffic:                                        # Poisson arrivals per line
  - {agent: triage-agent, tenant: acme, rps: 20, data_class: restricted, region: eu-west-2,
     tokens: {input: 800, output: 200}, stream: false}
models:                                         # baseline behaviour
  triage-v3: {latency_ms: {p50: 400, p95: 900}, error_rate: 0.0}
faults:
  - {model: triage-v3, at: 2m, until: 6m, kind: outage}
  - {model: triage-v2, at: 4m, until: 5m, kind: brownout, error_rate: 0.3}
"""
LIBRARY = {
    "primary-outage",
    "latency-degradation",
    "brownout",
    "rate-limit-storm",
    "double-failure",
    "flapping-primary",
    "false-success-reports",
    "missing-signals",
    "untraced-recovery",
    "auto-safe-mode",
    "stream-break",
}


def test_the_contract_example_parses() -> None:
    sc = parse_scenario(yaml.safe_load(CONTRACT_EXAMPLE))
    assert sc.duration_s == 600 and sc.seed == 7
    (line,) = sc.traffic
    assert (
        line.agent,
        line.tenant,
        line.rps,
        line.region,
        line.input_tokens,
        line.output_tokens,
        line.stream,
    ) == ("triage-agent", "acme", 20, "eu-west-2", 800, 200, False)
    assert sc.models["triage-v3"].p50_ms == 400 and sc.models["triage-v3"].p95_ms == 900
    assert sc.model_spec("unnamed").p50_ms == 100 and sc.model_spec("unnamed").p95_ms == 200
    outage, brownout = sc.faults
    assert (outage.kind, outage.at_s, outage.until_s, outage.error) == (
        FaultKind.OUTAGE,
        120,
        360,
        "connection",
    )
    assert (brownout.kind, brownout.error_rate, brownout.error) == (FaultKind.BROWNOUT, 0.3, "server_error")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"duration": "10 minutes"}, "duration: invalid duration"),
        ({"traffic": [{"agent": "a", "rsp": 2}]}, "traffic[0].rsp: unknown key"),
        ({"faults": [{"model": "m", "kind": "meteor"}]}, "faults[0].kind: unknown fault kind"),
        ({"faults": [{"model": "m", "kind": "latency"}]}, "faults[0].p50"),
        ({"faults": [{"model": "m", "kind": "outage", "every": "10s"}]}, "'every' and 'for' go together"),
        ({"faults": [{"model": "m", "kind": "brownout", "error_rate": 2}]}, "faults[0].error_rate"),
        ({"signals": [{"model": "m", "status": "sideways"}]}, "signals[0].status"),
        ({"seed": "seven"}, "seed: expected an integer"),
        ({"surprise": 1}, "surprise: unknown key"),
    ],
)
def test_errors_name_the_key_path(data: dict[str, object], message: str) -> None:
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario(data)


def test_extras_parse() -> None:
    sc = parse_scenario(
        {
            "start": "2026-06-01",
            "faults": [
                {
                    "model": "m",
                    "kind": "outage",
                    "at": "1m",
                    "until": "9m",
                    "every": "10s",
                    "for": "5s",
                    "error": 503,
                }
            ],
            "signals": [{"model": "m", "status": "up", "every": "30s", "ttl": "60s", "until": "3m"}],
            "reports": [{"model": "m", "at": "2m", "rps": 10, "ok": True}],
            "safe_mode": [{"at": "5m", "enabled": True, "tenant": "acme"}],
            "thresholds": {"hit_rate": 0.5, "flap_window": "2m"},
        }
    )
    fault = sc.faults[0]
    assert fault.error == "overloaded"
    assert [fault.active(t) for t in (59, 60, 64.9, 65, 70, 539, 541)] == [
        False,
        True,
        True,
        False,
        True,
        False,
        False,
    ]
    assert sc.signals[0].every_s == 30 and sc.reports[0].rps == 10 and sc.safe_mode[0].tenant == "acme"
    assert sc.thresholds.hit_rate == 0.5 and sc.thresholds.flap_window_s == 120
    assert sc.start is not None


def test_the_library_holds_every_documented_scenario_with_a_header() -> None:
    names = set(library())
    assert names >= LIBRARY
    for name in LIBRARY:
        path = find_scenario(name)
        text = path.read_text(encoding="utf-8")
        assert text.startswith(f"# {name} — "), f"{name}: header comment missing"
        assert "Must hold:" in text
        sc = load_scenario(name)
        assert sc.config is not None and sc.config.is_file()


def test_packaged_copies_match_the_repository() -> None:
    """The wheel ships src/routeguard/sim/scenarios (and the example they name); keep them identical:
    cp scenarios/*.yaml src/routeguard/sim/scenarios/
    cp examples/clinical-triage.yaml src/routeguard/sim/examples/"""
    packaged = REPO / "src" / "routeguard" / "sim"
    for path in sorted((REPO / "scenarios").glob("*.yaml")):
        assert (packaged / "scenarios" / path.name).read_text() == path.read_text(), path.name
    assert (packaged / "examples" / "clinical-triage.yaml").read_text() == (
        REPO / "examples" / "clinical-triage.yaml"
    ).read_text()


def test_names_resolve_from_the_packaged_copies_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(scenario_module, "_REPO", tmp_path / "no-such-checkout")
    path = find_scenario("primary-outage")
    assert path.parent.name == "scenarios" and "sim" in path.parts
    assert load_scenario("primary-outage").config is not None
    assert load_scenario("primary-outage").config.is_file()  # type: ignore[union-attr]
    with pytest.raises(ScenarioError, match="library: "):
        find_scenario("no-such-scenario")


def test_replay_traffic(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    records = [
        {"t": 0.5 * i, "agent": "triage-agent", "task_type": "triage", "data_class": "restricted"}
        for i in range(40)
    ]
    records.append({"t": 30.0, "agent": "triage-agent", "task_type": "intake", "stream": True})
    trace.write_text("\n".join(json.dumps(r) for r in reversed(records)) + "\n")
    arrivals = load_replay(trace)
    assert [a.t_s for a in arrivals] == sorted(a.t_s for a in arrivals)
    sc = parse_scenario({"duration": "1m", "traffic": {"replay": trace.name}}, source=tmp_path / "s.yaml")
    report = simulate(REPO / "examples" / "clinical-triage.yaml", sc)
    assert report["requests"] == 41 and report["succeeded"] == 41


def test_replay_with_timestamps_starts_at_the_first(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    trace.write_text(
        '{"ts": "2026-06-01T10:00:05Z", "agent": "a"}\n{"ts": "2026-06-01T10:00:00Z", "agent": "a"}\n'
    )
    assert [a.t_s for a in load_replay(trace)] == [0.0, 5.0]
    trace.write_text('{"agent": "a"}\n')
    with pytest.raises(ScenarioError, match="needs a time"):
        load_replay(trace)
