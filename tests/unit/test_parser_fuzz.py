"""Fuzz of the bundle loader and the route/outcome parsers (issue 13): whatever the input, they answer or
refuse with their own error type, and every refusal names its field. No other exception ever escapes.

Examples per property: `ROUTEGUARD_PARSER_EXAMPLES` (default 150; `make fuzz` raises it).
"""

from __future__ import annotations

import copy
import os
from typing import Any

import yaml
from bundles import base
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routeguard.config.load import load_bundle, parse_text
from routeguard.core.context import RouteContext, RoutingError
from routeguard.core.findings import BundleError
from routeguard.core.outcome import Outcome
from routeguard.service.errors import ApiError
from routeguard.service.strict_json import loads_strict

EXAMPLES = int(os.environ.get("ROUTEGUARD_PARSER_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
VALUES = st.recursive(LEAVES, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids,
                                                                                          max_size=4), max_leaves=20)
YAML_CHARS = st.text(alphabet=[*"ab:-[]{}&*!|>'\"\n #,.?019\\ue%@`\t", "\ud800", "é"], max_size=200)


def _paths(raw: Any, prefix: str = "") -> list[str]:
    out = []
    if isinstance(raw, dict):
        for key, value in raw.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.append(path)
            out.extend(_paths(value, path))
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            path = f"{prefix}[{i}]"
            out.append(path)
            out.extend(_paths(value, path))
    return out


BASE = base()
BASE_PATHS = _paths(BASE)


def _set(raw: Any, path: str, value: Any) -> None:
    """Replace the value at a key path like `models.primary.capabilities[0]`."""
    parts = path.replace("[", ".[").split(".")
    node = raw
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    last = parts[-1]
    if last.startswith("["):
        node[int(last[1:-1])] = value
    else:
        node[last] = value


@FUZZ
@given(YAML_CHARS)
def test_any_text_loads_or_is_refused_with_findings(text: str) -> None:
    try:
        parse_text(text)
    except BundleError as exc:
        assert exc.findings and all(f.code and f.message for f in exc.findings)


@FUZZ
@given(VALUES)
def test_any_yaml_document_loads_or_is_refused(value: Any) -> None:
    text = yaml.safe_dump({"models": value, "policies": value}, allow_unicode=True)
    try:
        load_bundle(text)
    except BundleError as exc:
        assert exc.findings and all(f.code and f.message for f in exc.findings)


@FUZZ
@given(st.sampled_from(BASE_PATHS), VALUES)
def test_a_wrong_value_anywhere_is_refused_naming_a_field(path: str, value: Any) -> None:
    raw = copy.deepcopy(BASE)
    _set(raw, path, value)
    try:
        load_bundle(raw)
    except BundleError as exc:
        assert exc.findings
        for finding in exc.findings:
            assert finding.code and finding.message
            assert finding.path or finding.code == "schema", finding


ROUTE_KEYS = ["trace_id", "agent", "tenant", "task_type", "data_class", "region", "language", "modalities",
              "capabilities", "tags", "estimated_tokens", "sla_ms", "budget_usd", "metadata", "stream"]
OUTCOME_KEYS = ["trace_id", "model", "ok", "error", "latency_ms", "partial_output", "tokens", "quality"]


def _names_a_field(message: str, keys: list[str]) -> bool:
    return any(message.startswith(k) for k in keys) or message.startswith(("unknown field", "the route request",
                                                                            "an outcome"))


@FUZZ
@given(st.dictionaries(st.sampled_from(ROUTE_KEYS) | st.text(max_size=5), VALUES, max_size=6))
def test_any_route_request_parses_or_names_its_field(data: dict[str, Any]) -> None:
    try:
        RouteContext.from_dict(data)
    except RoutingError as exc:
        assert exc.status in (400, 403, 404, 422) and _names_a_field(exc.message, ROUTE_KEYS), exc.message


@FUZZ
@given(st.dictionaries(st.sampled_from(OUTCOME_KEYS) | st.text(max_size=5), VALUES, max_size=6))
def test_any_outcome_parses_or_names_its_field(data: dict[str, Any]) -> None:
    try:
        outcome = Outcome.from_dict(data)
    except RoutingError as exc:
        assert _names_a_field(exc.message, OUTCOME_KEYS), exc.message
    else:
        assert outcome.latency_ms is None or 0 <= outcome.latency_ms < float("inf")


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_request_body_is_json_or_a_4xx(body: bytes) -> None:
    try:
        loads_strict(body)
    except ApiError as exc:
        assert exc.status in (400, 422) and exc.message
