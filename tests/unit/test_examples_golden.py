"""The example bundles: expected decisions under named health situations, and broken copies refused.

Decisions are pinned at fixed instants (approvals expire: moving ``now`` past an expiry is a situation of
its own). The CLI checks rewrite every expiry to 2099 so they do not depend on today's date.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from bundles import ts
from typer.testing import CliRunner

from routeguard.cli import app
from routeguard.config.load import LoadedBundle, load_bundle
from routeguard.core.checks import check_bundle
from routeguard.core.context import RouteContext, RoutingError, SafeMode
from routeguard.core.engine import CanaryRamp, decide
from routeguard.core.health_view import HealthState, StaticHealth
from routeguard.core.table import RoutingTable, compile_bundle

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NAMES = ("clinical-triage", "finance-locked", "multi-tenant")
NOW = ts("2026-12-01T12:00:00")


@cache
def _loaded(name: str) -> LoadedBundle:
    return load_bundle(EXAMPLES / f"{name}.yaml")


@cache
def _table(name: str) -> RoutingTable:
    loaded = _loaded(name)
    return compile_bundle(loaded.bundle, content_hash=loaded.content_hash, version=1)


def _decide(name: str, context: dict[str, Any], down: tuple[str, ...] = (), *, degraded: tuple[str, ...] = (),
            safe: bool = False, now: float = NOW, canary: CanaryRamp | None = None, trace_id: str = "golden"
            ) -> dict[str, Any]:
    states = {m: HealthState.UNHEALTHY for m in down} | {m: HealthState.DEGRADED for m in degraded}
    ctx = RouteContext.from_dict(context, trace_id=trace_id)
    return decide(ctx, _table(name), StaticHealth(states), SafeMode(global_on=safe), now, canary).to_dict()


def _summary(d: dict[str, Any]) -> tuple[Any, ...]:
    """(policy, status, model, arm, backups, terminal action, [(model, reason)])."""
    action = d["terminal"]["action"] if d["terminal"] else None
    return (d["policy"], d["status"], d["model"], d["arm"], tuple(d["backups"]), action,
            tuple((r["model"], r["reason"]) for r in d["rejected"]))


# ------------------------------------------------------------------------------------------ the examples


@pytest.mark.parametrize("name", NAMES)
def test_each_example_is_clean(name: str) -> None:
    assert check_bundle(_loaded(name).bundle, NOW) == []


TRIAGE = {"agent": "triage-agent", "task_type": "triage", "data_class": "restricted"}
GOLDEN_CLINICAL = [
    ("all healthy", {}, ("triage-agent", "primary", "triage-v3", None, ("triage-v2",), None, ())),
    ("primary down", {"down": ("triage-v3",)},
     ("triage-agent", "fallback", "triage-v2", None, (), None, (("triage-v3", "unhealthy"),))),
    ("primary degraded", {"degraded": ("triage-v3",)},
     ("triage-agent", "fallback", "triage-v2", None, (), None, (("triage-v3", "degraded"),))),
    ("primary and fallback down", {"down": ("triage-v3", "triage-v2")},
     ("triage-agent", "terminal", None, None, (), "human_queue",
      (("triage-v3", "unhealthy"), ("triage-v2", "unhealthy")))),
    ("safe mode", {"safe": True}, ("triage-agent", "primary", "triage-v3", None, ("triage-v2",), None, ())),
    ("safe mode, primary down", {"safe": True, "down": ("triage-v3",)},
     ("triage-agent", "fallback", "triage-v2", None, (), None, (("triage-v3", "unhealthy"),))),
    ("fallback's approval expired", {"now": ts("2028-02-01")},
     ("triage-agent", "primary", "triage-v3", None, (), None, ())),
    ("fallback's approval expired, primary down", {"now": ts("2028-02-01"), "down": ("triage-v3",)},
     ("triage-agent", "terminal", None, None, (), "human_queue",
      (("triage-v3", "unhealthy"), ("triage-v2", "approval_expired")))),
    ("every approval expired", {"now": ts("2028-07-01")},
     ("triage-agent", "terminal", None, None, (), "human_queue",
      (("triage-v3", "approval_expired"), ("triage-v2", "approval_expired")))),
]


@pytest.mark.parametrize(("situation", "how", "expected"), GOLDEN_CLINICAL, ids=[g[0] for g in GOLDEN_CLINICAL])
def test_clinical_triage(situation: str, how: dict[str, Any], expected: tuple[Any, ...]) -> None:
    d = _decide("clinical-triage", TRIAGE, **how)
    assert _summary(d) == expected
    if d["status"] == "terminal":
        assert d["terminal"]["queue"] == "clinical-humans"


def test_clinical_triage_other_requests() -> None:
    intake = _decide("clinical-triage", {"agent": "triage-agent", "task_type": "intake"})
    assert (intake["policy"], intake["model"]) == ("triage-agent-intake", "triage-v2")
    assert _decide("clinical-triage", {"agent": "triage-agent"})["policy"] == "triage-agent"
    override = _decide("clinical-triage", {**TRIAGE, "metadata": {"policy": "triage-agent-intake"}})
    assert (override["policy"], override["model"]) == ("triage-agent-intake", "triage-v2")
    elsewhere = _decide("clinical-triage", {**TRIAGE, "region": "eu-central-1"})
    assert _summary(elsewhere)[1:] == (
        "terminal", None, None, (), "human_queue",
        (("triage-v3", "region_not_allowed"), ("triage-v2", "region_not_allowed")))
    with pytest.raises(RoutingError) as caught:
        _decide("clinical-triage", {**TRIAGE, "capabilities": ["tool_use"]})
    assert caught.value.code == "capability_not_allowed"


LEDGER = {"agent": "ledger-agent", "data_class": "restricted", "region": "eu-west-2"}
STATEMENT = {"agent": "ledger-agent", "task_type": "statement"}
GOLDEN_FINANCE = [
    ("all healthy", LEDGER, {}, ("ledger-agent", "primary", "ledger-core", None, ("ledger-lite",), None, ())),
    ("primary down", LEDGER, {"down": ("ledger-core",)},
     ("ledger-agent", "fallback", "ledger-lite", None, (), None, (("ledger-core", "unhealthy"),))),
    ("primary and fallback down", LEDGER, {"down": ("ledger-core", "ledger-lite")},
     ("ledger-agent", "terminal", None, None, (), "read_only",
      (("ledger-core", "unhealthy"), ("ledger-lite", "unhealthy")))),
    ("everything else down too", LEDGER, {"down": ("ledger-core", "ledger-lite", "ledger-next")},
     ("ledger-agent", "terminal", None, None, (), "read_only",
      (("ledger-core", "unhealthy"), ("ledger-lite", "unhealthy")))),
    ("safe mode", LEDGER, {"safe": True},
     ("ledger-agent", "primary", "ledger-core", None, ("ledger-lite",), None, ())),
    ("statement: all healthy", STATEMENT, {},
     ("ledger-agent-statements", "primary", "ledger-next", None, ("ledger-core",), None, ())),
    ("statement: safe mode (ledger-next is not trusted)", STATEMENT, {"safe": True},
     ("ledger-agent-statements", "fallback", "ledger-core", None, (), None, (("ledger-next", "safe_mode"),))),
    ("statement: both down", STATEMENT, {"down": ("ledger-next", "ledger-core")},
     ("ledger-agent-statements", "terminal", None, None, (), "static_response",
      (("ledger-next", "unhealthy"), ("ledger-core", "unhealthy")))),
    ("approvals expired", LEDGER, {"now": ts("2028-04-01")},
     ("ledger-agent", "terminal", None, None, (), "read_only",
      (("ledger-core", "approval_expired"), ("ledger-lite", "approval_expired")))),
    ("statement: fallback's approval expired", STATEMENT, {"now": ts("2028-04-01")},
     ("ledger-agent-statements", "primary", "ledger-next", None, (), None, ())),
]


@pytest.mark.parametrize(("situation", "context", "how", "expected"), GOLDEN_FINANCE,
                         ids=[g[0] for g in GOLDEN_FINANCE])
def test_finance_locked(situation: str, context: dict[str, Any], how: dict[str, Any],
                        expected: tuple[Any, ...]) -> None:
    d = _decide("finance-locked", context, **how)
    assert _summary(d) == expected
    if d["status"] == "terminal" and d["terminal"]["action"] == "static_response":
        assert "statement" in d["terminal"]["response"]


def test_finance_never_reaches_the_broader_model() -> None:
    """Whatever the health, safe mode and time, the ledger agent gets a validated model or its terminal."""
    models = ("ledger-core", "ledger-lite", "ledger-next", "general-xl")
    seen: Counter[str] = Counter()
    for states in itertools.product((None, "unhealthy", "degraded", "stale"), repeat=len(models)):
        down = tuple(m for m, s in zip(models, states, strict=True) if s == "unhealthy")
        degraded = tuple(m for m, s in zip(models, states, strict=True) if s in ("degraded", "stale"))
        for context, safe, now in itertools.product((LEDGER, STATEMENT), (False, True),
                                                    (NOW, ts("2028-04-01"), ts("2028-07-01"))):
            d = _decide("finance-locked", context, down, degraded=degraded, safe=safe, now=now)
            assert d["model"] != "general-xl" and "general-xl" not in d["backups"]
            seen[d["model"] or d["terminal"]["action"]] += 1
    assert set(seen) == {"ledger-core", "ledger-lite", "ledger-next", "read_only", "static_response"}
    with pytest.raises(RoutingError) as caught:
        _decide("finance-locked", {**LEDGER, "capabilities": ["code_execution"]})
    assert caught.value.code == "capability_not_allowed"
    assert _decide("finance-locked", {"agent": "research-agent"})["model"] == "general-xl"


SUPPORT_A = {"agent": "support-agent", "tenant": "acme"}  # sticky on the chat-large arm
SUPPORT_B = {"agent": "support-agent", "tenant": "hooli"}  # sticky on the chat-large-next arm
CODE = {"task_type": "code", "tenant": "acme"}
GLOBEX = {"tenant": "globex", "data_class": "confidential", "region": "eu-west-1"}
GOLDEN_MULTI = [
    ("support: all healthy", SUPPORT_A, {},
     ("support-agent", "primary", "chat-large", "chat-large", ("chat-large-next", "chat-small"), None, ())),
    ("support: other arm", SUPPORT_B, {},
     ("support-agent", "primary", "chat-large-next", "chat-large-next", ("chat-large", "chat-small"), None, ())),
    ("support: arm down, the other arm serves", SUPPORT_A, {"down": ("chat-large",)},
     ("support-agent", "primary", "chat-large-next", "chat-large", ("chat-small",), None,
      (("chat-large", "unhealthy"),))),
    ("support: both arms down", SUPPORT_A, {"down": ("chat-large", "chat-large-next")},
     ("support-agent", "fallback", "chat-small", "chat-large", (), None,
      (("chat-large", "unhealthy"), ("chat-large-next", "unhealthy")))),
    ("support: everything down", SUPPORT_A, {"down": ("chat-large", "chat-large-next", "chat-small")},
     ("support-agent", "terminal", None, "chat-large", (), "static_response",
      (("chat-large", "unhealthy"), ("chat-large-next", "unhealthy"), ("chat-small", "unhealthy")))),
    ("support: safe mode (chat-large-next is not trusted)", SUPPORT_B, {"safe": True},
     ("support-agent", "primary", "chat-large", "chat-large-next", ("chat-small",), None,
      (("chat-large-next", "safe_mode"),))),
    ("support: arm's approval expired", SUPPORT_B, {"now": ts("2028-07-01")},
     ("support-agent", "primary", "chat-large", "chat-large-next", ("chat-small",), None,
      (("chat-large-next", "approval_expired"),))),
    ("support faq", {"agent": "support-agent", "task_type": "faq"}, {},
     ("support-agent-faq", "primary", "chat-small", None, (), None, ())),
    ("code: all healthy", CODE, {}, ("coding", "primary", "code-pro", None, ("code-lite",), None, ())),
    ("code: primary degraded", CODE, {"degraded": ("code-pro",)},
     ("coding", "fallback", "code-lite", None, (), None, (("code-pro", "degraded"),))),
    ("code: primary and fallback down", CODE, {"down": ("code-pro", "code-lite")},
     ("coding", "terminal", None, None, (), "human_queue", (("code-pro", "unhealthy"), ("code-lite", "unhealthy")))),
    ("code: safe mode, primary down (code-lite is not trusted)", CODE, {"safe": True, "down": ("code-pro",)},
     ("coding", "terminal", None, None, (), "human_queue", (("code-pro", "unhealthy"), ("code-lite", "safe_mode")))),
    ("globex: all healthy", GLOBEX, {}, ("globex", "primary", "eu-private", None, ("eu-private-small",), None, ())),
    ("globex: code tasks stay in the EU", {**GLOBEX, "task_type": "code"}, {},
     ("globex", "primary", "eu-private", None, ("eu-private-small",), None, ())),
    ("globex: primary down", GLOBEX, {"down": ("eu-private",)},
     ("globex", "fallback", "eu-private-small", None, (), None, (("eu-private", "unhealthy"),))),
    ("globex: restricted data", {**GLOBEX, "data_class": "restricted"}, {},
     ("globex", "terminal", None, None, (), "human_queue",
      (("eu-private", "clearance_too_low"), ("eu-private-small", "clearance_too_low")))),
    ("globex: approvals expired", GLOBEX, {"now": ts("2028-10-01")},
     ("globex", "terminal", None, None, (), "human_queue",
      (("eu-private", "approval_expired"), ("eu-private-small", "approval_expired")))),
    ("summaries", {"tags": ["summarise"]}, {}, ("summaries", "primary", "chat-small", None, (), None, ())),
    ("summaries: over budget", {"tags": ["summarise"], "estimated_tokens": {"input": 100_000, "output": 1000}}, {},
     ("summaries", "terminal", None, None, (), "suspend", (("chat-small", "over_budget"),))),
]


@pytest.mark.parametrize(("situation", "context", "how", "expected"), GOLDEN_MULTI, ids=[g[0] for g in GOLDEN_MULTI])
def test_multi_tenant(situation: str, context: dict[str, Any], how: dict[str, Any], expected: tuple[Any, ...]) -> None:
    assert _summary(_decide("multi-tenant", context, **how)) == expected


def test_multi_tenant_arm_weights_and_canary() -> None:
    arms = Counter(_decide("multi-tenant", {"agent": "support-agent", "tenant": f"t-{i}"})["arm"]
                   for i in range(2000))
    assert 0.75 < arms["chat-large"] / 2000 < 0.85
    ramp = CanaryRamp(from_model="code-pro", to_model="code-lite", started_at=NOW)
    served = Counter(_decide("multi-tenant", CODE, degraded=("code-pro",), canary=ramp, trace_id=f"t{i}")["model"]
                     for i in range(1000))
    assert 0.05 < served["code-lite"] / 1000 < 0.15 and served["code-pro"] + served["code-lite"] == 1000
    later = CanaryRamp(from_model="code-pro", to_model="code-lite", started_at=NOW - 300)
    assert _decide("multi-tenant", CODE, degraded=("code-pro",), canary=later)["model"] == "code-lite"


@pytest.mark.parametrize("name", NAMES)
def test_golden_decisions_are_deterministic(name: str) -> None:
    table = _table(name)
    for agent in {p.agent for p in table.bundle.policies.values()}:
        ctx = RouteContext.from_dict({"agent": agent, "tenant": "acme"}, trace_id="same")
        first = decide(ctx, table, StaticHealth(), SafeMode(), NOW).to_dict()
        fresh = _loaded(name)
        again = compile_bundle(load_bundle(EXAMPLES / f"{name}.yaml").bundle, content_hash=fresh.content_hash,
                               version=1)
        assert decide(ctx, again, StaticHealth(), SafeMode(), NOW).to_dict() == first


# --------------------------------------------------------------------------------- broken copies, via the CLI


def _raw(name: str) -> dict[str, Any]:
    raw = copy.deepcopy(_loaded(name).raw)
    for approval in raw["approvals"]:
        approval["expires"] = "2099-12-31"  # date-independent: only the breaches below are findings
    return raw


def _validate(tmp_path: Path, raw: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "bundle.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path), "--json"])
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize("name", NAMES)
def test_cli_accepts_each_example(tmp_path: Path, name: str) -> None:
    code, out = _validate(tmp_path, _raw(name))
    assert (code, out["ok"], out["findings"]) == (0, True, [])


def _break_clinical(raw: dict[str, Any]) -> None:
    raw["models"]["triage-v2"]["capabilities"].append("tool_use")  # broader than the primary and the profile
    raw["policies"]["triage-agent-intake"]["fallbacks"] = ["triage-v9"]  # not in the catalogue


def _break_finance(raw: dict[str, Any]) -> None:
    raw["policies"]["ledger-agent"]["fallbacks"].append({"model": "general-xl"})  # the broad research model
    raw["policies"]["ledger-agent"]["notify"].append("pager")  # no such notifier


def _break_multi(raw: dict[str, Any]) -> None:
    raw["policies"]["coding"]["fallbacks"].append({"model": "chat-large"})  # unapproved, broader, lacks a need
    raw["policies"]["globex-2"] = {"match": {"tenants": ["globex"]}, "profile": "eu-confidential",
                                   "primary": "eu-privat"}  # ambiguous with globex, and a typo


BROKEN = [
    ("clinical-triage", _break_clinical, {
        ("capability_exceeds_primary", "policies.triage-agent.fallbacks[0].model"),
        ("capability_exceeds_profile", "policies.triage-agent.fallbacks[0].model"),
        ("capability_exceeds_profile", "policies.triage-agent-intake.primary"),
        ("unknown_model", "policies.triage-agent-intake.fallbacks[0].model"),
    }),
    ("finance-locked", _break_finance, {
        ("unapproved_model", "policies.ledger-agent.fallbacks[1].model"),
        ("capability_exceeds_profile", "policies.ledger-agent.fallbacks[1].model"),
        ("capability_exceeds_primary", "policies.ledger-agent.fallbacks[1].model"),
        ("clearance_too_low", "policies.ledger-agent.fallbacks[1].model"),
        ("region_not_allowed", "policies.ledger-agent.fallbacks[1].model"),
        ("unknown_reference", "policies.ledger-agent.notify[1]"),
    }),
    ("multi-tenant", _break_multi, {
        ("unapproved_model", "policies.coding.fallbacks[1].model"),
        ("missing_required_capability", "policies.coding.fallbacks[1].model"),
        ("capability_exceeds_profile", "policies.coding.fallbacks[1].model"),
        ("capability_exceeds_primary", "policies.coding.fallbacks[1].model"),
        ("unknown_model", "policies.globex-2.primary"),
        ("ambiguous_match", "policies.globex-2.match"),
    }),
]


@pytest.mark.parametrize(("name", "breaks", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_cli_refuses_a_broken_copy_with_every_finding(tmp_path: Path, name: str, breaks: Any,
                                                      expected: set[tuple[str, str]]) -> None:
    raw = _raw(name)
    breaks(raw)
    code, out = _validate(tmp_path, raw)
    assert code == 1 and out["ok"] is False
    assert {(f["code"], f["path"]) for f in out["findings"]} == expected
    assert len(out["findings"]) == len(expected)
    assert all(isinstance(f.get("line"), int) for f in out["findings"])  # YAML lines are reported


def test_cli_reports_a_schema_error_with_its_line(tmp_path: Path) -> None:
    raw = _raw("clinical-triage")
    raw["policies"]["triage-agent"]["fallbacks"][0]["after"] = "a minute"
    raw["models"]["triage-v3"]["colour"] = "blue"
    code, out = _validate(tmp_path, raw)
    assert code == 1
    assert {(f["code"], f["path"]) for f in out["findings"]} == {
        ("schema", "policies.triage-agent.fallbacks[0].after"),
        ("schema", "models.triage-v3.colour"),
    }
    text = (tmp_path / "bundle.yaml").read_text().splitlines()
    for f in out["findings"]:
        assert f["path"].rsplit(".", 1)[-1] in text[f["line"] - 1]
