"""Parsing (CONTRACT §1): ``schema`` findings with key paths and YAML lines, all at once; defaults."""

from __future__ import annotations

import json
import textwrap

import pytest
from bundles import arms, base, findings, pairs

from routeguard.config.load import load_bundle
from routeguard.core import defaults as D
from routeguard.core.durations import parse_duration
from routeguard.core.findings import BundleError
from routeguard.core.model import TerminalAction
from routeguard.core.parse import parse_bundle

YAML = textwrap.dedent(
    """\
    models:
      primary:
        provider: test
        capabilities: [text]
        clearance: restricted
        colour: blue
    profiles:
      p: {requires: [text], data_class: internal}
    approvals:
      - {model: primary, profile: p, expires: 2099-12-31}
    policies:
      agent:
        profile: p
        primary: primary
        timeout: soon
        fallbacks:
          - {model: primary, on: [unavailable], after: 1x}
    """
)
CLEAN_YAML = YAML.replace("    colour: blue\n", "").replace("soon", "5s").replace("1x", "30s")


def _schema_errors(source: object) -> list[tuple[str, str, int | None]]:
    with pytest.raises(BundleError) as caught:
        if isinstance(source, str):
            load_bundle(source)
        else:
            parse_bundle(source)
    assert {f.code for f in caught.value.findings} == {"schema"}
    return [(f.path, f.message, f.line) for f in caught.value.findings]


def test_unknown_key_bad_durations_all_reported_with_paths_and_lines() -> None:
    errors = _schema_errors(YAML)
    by_path = {path: (message, line) for path, message, line in errors}
    assert set(by_path) == {
        "models.primary.colour", "policies.agent.timeout", "policies.agent.fallbacks[0].after"
    }
    assert by_path["models.primary.colour"][1] == 6
    assert "unknown key 'colour'" in by_path["models.primary.colour"][0]
    assert by_path["policies.agent.timeout"][1] == 15
    assert "soon" in by_path["policies.agent.timeout"][0]
    assert by_path["policies.agent.fallbacks[0].after"][1] == 17


def test_unknown_top_level_key() -> None:
    raw = base()
    raw["polices"] = {}
    ((path, message, _),) = _schema_errors(raw)
    assert path == "polices" and "unknown key 'polices'" in message


@pytest.mark.parametrize(
    ("where", "value", "path"),
    [
        (("models", "primary", "capabilities"), 5, "models.primary.capabilities"),
        (("models", "primary", "trusted"), "yes", "models.primary.trusted"),
        (("models", "primary", "context_window"), "big", "models.primary.context_window"),
        (("models", "primary", "context_window"), 10.5, "models.primary.context_window"),
        (("models", "primary", "cost"), [1, 2], "models.primary.cost"),
        (("models", "primary", "clearance"), "top-secret", "models.primary.clearance"),
        (("profiles", "p", "data_class"), 3, "profiles.p.data_class"),
        (("policies", "agent", "primary"), 7, "policies.agent.primary"),
        (("policies", "agent", "fallbacks"), "backup", "policies.agent.fallbacks"),
        (("policies", "agent", "terminal"), {"action": "explode"}, "policies.agent.terminal.action"),
        (("policies", "agent", "retry"), {"attempts": 0}, "policies.agent.retry.attempts"),
        (("policies", "agent", "health"), {"error_rate": 1.5}, "policies.agent.health.error_rate"),
        (("policies", "agent", "health"), {"window": "-5s"}, "policies.agent.health.window"),
        (("policies", "agent", "canary"), {"percent": 0}, "policies.agent.canary.percent"),
        (("policies", "agent", "timeout"), True, "policies.agent.timeout"),
        (("policies", "agent", "match"), {"agents": ["x"]}, "policies.agent.match.agents"),
    ],
)
def test_wrong_types_name_their_path(where: tuple[str, ...], value: object, path: str) -> None:
    raw = base()
    node = raw
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    assert path in {p for p, _, _ in _schema_errors(raw)}


def test_unknown_trigger_and_error_class() -> None:
    raw = base()
    raw["policies"]["agent"]["fallbacks"] = [{"model": "backup", "on": ["unavailable", "meteor"]}]
    raw["policies"]["agent"]["retry"] = {"on": ["timeout", "gremlins"]}
    assert {p for p, _, _ in _schema_errors(raw)} == {
        "policies.agent.fallbacks[0].on[1]",
        "policies.agent.retry.on[1]",
    }


def test_bad_approval_date_and_missing_required_keys() -> None:
    raw = base()
    raw["approvals"][0]["expires"] = "next year"
    del raw["models"]["backup"]["capabilities"]
    del raw["policies"]["agent"]["profile"]
    assert {p for p, _, _ in _schema_errors(raw)} == {
        "approvals[0].expires",
        "models.backup.capabilities",
        "policies.agent.profile",
    }


def test_static_response_needs_its_text() -> None:
    raw = base()
    raw["policies"]["agent"]["terminal"] = {"action": "static_response"}
    assert [p for p, _, _ in _schema_errors(raw)] == ["policies.agent.terminal.response"]


def test_schema_errors_stop_before_governance_checks() -> None:
    raw = base()
    raw["models"]["backup"]["clearance"] = "public"  # a governance breach
    raw["models"]["backup"]["speed"] = "fast"  # a schema breach
    assert pairs(findings(raw)) == {("schema", "models.backup.speed")}


def test_invalid_yaml_and_json_name_the_line() -> None:
    with pytest.raises(BundleError) as caught:
        load_bundle("models:\n  a: [text\npolicies: {}\n")
    assert caught.value.findings[0].code == "schema" and caught.value.findings[0].line is not None
    with pytest.raises(BundleError) as caught:
        load_bundle('{"models": {\n "a": }\n}')
    assert caught.value.findings[0].line == 2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("45", 45.0), (12, 12.0), ("1.5s", 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "5 minutes", "-1s", "", "1x", True, None, -3])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_defaults_of_the_contract() -> None:
    bundle = parse_bundle(base())
    policy = bundle.policies["agent"]
    assert bundle.data_classes == ("public", "internal", "confidential", "restricted")
    assert policy.timeout_s == 60.0
    assert policy.terminal.action is TerminalAction.SUSPEND
    assert policy.retry.attempts == 2 and policy.retry.backoff_s == 0.2 and policy.retry.backoff_max_s == 5.0
    assert policy.retry.on == D.RETRYABLE_CLASSES
    assert policy.fallbacks[0].on == frozenset({"unavailable", "retryable"})
    assert policy.fallbacks[0].after_s == 0.0
    assert policy.canary is None
    h = policy.health
    assert (h.window_s, h.min_samples, h.error_rate, h.degraded_error_rate, h.timeout_rate) == (
        60, 10, 0.5, 0.2, 0.5)
    assert (h.p95_latency_s, h.cooldown_s, h.cooldown_max_s, h.probes, h.min_dwell_s, h.stale_after_s) == (
        None, 30, 300, 3, 10, 300)
    m = bundle.models["backup"]
    assert m.modalities == frozenset({"text"}) and m.languages is None and m.limits is None
    assert m.context_window is None
    raw = base()
    raw["models"]["x"] = {"capabilities": [], "clearance": "public"}
    assert parse_bundle(raw).models["x"].trusted is False


def test_yaml_on_key_is_a_string_not_a_boolean() -> None:
    text = json.dumps(base())
    loaded = load_bundle(
        text.replace('"fallbacks": ["backup"]', '"fallbacks": [{"model": "backup", "on": ["degraded"]}]')
    )
    assert loaded.bundle.policies["agent"].fallbacks[0].on == frozenset({"degraded"})
    fb = load_bundle(CLEAN_YAML).bundle.policies["agent"].fallbacks[0]
    assert fb.on == frozenset({"unavailable"}) and fb.after_s == 30.0


def test_yaml_and_json_give_the_same_hash() -> None:
    from_yaml = load_bundle(CLEAN_YAML)
    from_json = load_bundle(json.dumps(from_yaml.raw))
    assert from_yaml.content_hash == from_json.content_hash and from_yaml.content_hash.startswith("sha256:")
    assert from_yaml.raw["approvals"][0]["expires"] == "2099-12-31"


def test_weighted_arms_and_terminal_forms() -> None:
    raw = base()
    raw["policies"]["agent"]["primary"] = arms(primary=90, backup=10)
    raw["policies"]["agent"]["terminal"] = "read_only"
    policy = parse_bundle(raw).policies["agent"]
    assert [(a.model, a.weight) for a in policy.primary] == [("primary", 90), ("backup", 10)]
    assert policy.terminal.action is TerminalAction.READ_ONLY
    raw["policies"]["agent"]["primary"] = [{"model": "primary", "weight": 0}]
    assert [p for p, _, _ in _schema_errors(raw)] == ["policies.agent.primary"]
