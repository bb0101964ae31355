"""What a health registry and a cost service may answer (CONTRACT §1 `sources`), and what is refused as garbage."""

from __future__ import annotations

from typing import Any

import pytest

from routeguard.config.load import load_bundle
from routeguard.core.findings import BundleError
from routeguard.service.sources import SourceError, parse_health, parse_quote

MODELS = ["a", "b"]


def test_a_provider_answer_applies_to_each_of_its_models_with_its_ttl_or_the_default() -> None:
    assert parse_health({"status": "down", "ttl": "5m"}, MODELS, 20.0) == {"a": ("down", 300.0), "b": ("down", 300.0)}
    assert parse_health({"status": "up", "score": 0.9}, MODELS, 20.0) == {"a": ("up", 20.0), "b": ("up", 20.0)}


def test_a_per_model_answer_names_only_the_models_it_knows() -> None:
    answer = {"models": {"a": {"status": "degraded", "ttl": 30}, "zzz": {"status": "down"}}}
    assert parse_health(answer, MODELS, 20.0) == {"a": ("degraded", 30.0)}


def test_a_ttl_is_capped_at_a_day() -> None:
    assert parse_health({"status": "down", "ttl": "30d"}, ["a"], 20.0) == {"a": ("down", 86_400.0)}


@pytest.mark.parametrize(
    "answer",
    [[], "up", {"status": "fine"}, {"status": "down", "ttl": "soon"}, {"models": {"a": {"state": "down"}}}, None],
)
def test_garbage_health_answers_are_invalid(answer: Any) -> None:
    with pytest.raises(SourceError) as err:
        parse_health(answer, MODELS, 20.0)
    assert err.value.result == "invalid"


def test_quotes() -> None:
    assert parse_quote({"input_per_1m": 1, "output_per_1m": 2.5}) == (1.0, 2.5)
    for bad in ({"input_per_1m": -1, "output_per_1m": 1}, {"input_per_1m": "1", "output_per_1m": 1},
                {"input_per_1m": float("nan"), "output_per_1m": 1}, {"input_per_1m": True, "output_per_1m": 1}, []):
        with pytest.raises(SourceError):
            parse_quote(bad)


BASE: dict[str, Any] = {
    "models": {"m": {"capabilities": ["text"], "clearance": "public"}},
    "profiles": {"p": {"data_class": "public"}},
    "approvals": [{"model": "m", "profile": "p"}],
    "policies": {"p": {"profile": "p", "primary": "m"}},
}


def test_source_urls_must_name_what_they_are_asked_for() -> None:
    with pytest.raises(BundleError) as err:
        load_bundle({**BASE, "sources": {"health": {"url": "http://x/health"}, "cost": {"url": "http://x/quote"}}})
    paths = {f.path for f in err.value.findings}
    assert {"sources.health.url", "sources.cost.url"} <= paths
    ok = load_bundle({**BASE, "sources": {"health": {"url": "http://x/{provider}", "interval": "5s"}}}).bundle
    assert ok.sources.health is not None and ok.sources.health.interval_s == 5.0 and ok.sources.cost is None
