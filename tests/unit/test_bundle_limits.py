"""The bundle loader refuses before expanding (issue 13, D1): size, expanded nodes, depth, self-aliases, UTF-8."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from routeguard.config.limits import MAX_BUNDLE_BYTES, MAX_DEPTH, MAX_NODES
from routeguard.config.load import load_bundle, parse_text
from routeguard.core.findings import BundleError
from support.attacks import deep_json, deep_yaml, lol_bomb, self_alias
from support.service import run_cli


def _refused(text: str) -> str:
    with pytest.raises(BundleError) as info:
        parse_text(text)
    (finding,) = info.value.findings
    assert finding.code == "schema"
    return finding.message


def test_the_lol_bomb_is_refused_unexpanded() -> None:
    assert len(lol_bomb()) < 1000
    assert "would expand past 100000" in _refused(lol_bomb())


def test_a_wide_alias_of_a_long_string_is_refused_as_text() -> None:
    text = "a: &a " + "x" * 200_000 + "\nb: [" + ", ".join(["*a"] * 100) + "]\n"
    assert "characters of text" in _refused(text)


def test_a_self_referencing_alias_is_a_finding_not_a_recursion_error() -> None:
    assert "self-referencing alias" in _refused(self_alias())


def test_nesting_past_the_limit_is_refused_in_yaml_json_and_data() -> None:
    assert "deeper than 64" in _refused(deep_yaml(MAX_DEPTH + 1))
    assert "nested too deeply" in _refused('{"models": ' + deep_json() + "}")
    deep: dict[str, object] = {}
    node = deep
    for _ in range(MAX_DEPTH + 2):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    with pytest.raises(BundleError, match="nests deeper"):
        load_bundle({"models": deep})


def test_nesting_through_an_alias_counts_the_aliased_height() -> None:
    anchored = "a: &a " + "[" * 40 + "]" * 40 + "\n"
    assert "through *a" in _refused(anchored + "b: " + "[" * 30 + "*a" + "]" * 30 + "\n")


def test_within_limits_aliases_load_as_before() -> None:
    data, _ = parse_text("a: &x [1, 2]\nb: *x\nc: " + deep_yaml(MAX_DEPTH - 2)[8:])
    assert data["a"] == data["b"] == [1, 2]


def test_node_count_of_plain_data_is_bounded() -> None:
    with pytest.raises(BundleError, match=f"more than {MAX_NODES} nodes"):
        load_bundle({"models": {"m": {"tags": list(range(MAX_NODES + 1))}}})


def test_size_limit_and_lone_surrogates_and_non_finite_numbers() -> None:
    assert "larger than" in _refused("a: " + "x" * MAX_BUNDLE_BYTES + "\n")
    assert "lone surrogate" in _refused("models: \ud800\n")
    assert "NaN" in _refused('{"models": NaN}')
    assert "1e999" in _refused('{"models": 1e999}')
    assert "inf" in _refused("models: .inf\n")


def test_validate_refuses_the_bomb_with_exit_1_and_the_schema_code(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(lol_bomb(), encoding="utf-8")
    result = run_cli("validate", str(path), "--json")
    assert result.returncode == 1, result.stderr
    out = json.loads(result.stdout)
    codes = {f["code"] for f in out["findings"]}
    assert codes == {"schema"}, out
    self_path = tmp_path / "self.yaml"
    self_path.write_text(self_alias(), encoding="utf-8")
    result = run_cli("validate", str(self_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
