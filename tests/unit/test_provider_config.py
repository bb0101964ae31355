"""Endpoint configuration of every provider type: parsing, refusals naming the key, the JSON Schema, and the
provider each endpoint builds (with its URL and headers)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from routeguard.config.schema import bundle_schema
from routeguard.core.errors import ErrorClass, ProviderError
from routeguard.core.findings import BundleError
from routeguard.core.model import Endpoint
from routeguard.core.parse import parse_bundle
from routeguard.execution.providers.anthropic import AnthropicProvider
from routeguard.execution.providers.azure import AzureOpenAIProvider
from routeguard.execution.providers.build import build_provider
from routeguard.execution.providers.openai_http import OpenAIHTTPProvider
from routeguard.execution.registry import ProviderRegistry

BASE: dict[str, Any] = {
    "models": {"m": {"provider": "p", "endpoint": {"type": "openai", "base_url": "http://h/v1"},
                     "capabilities": ["text"], "clearance": "public"}},
    "profiles": {"p": {"data_class": "public"}},
    "policies": {"a": {"profile": "p", "primary": "m"}},
}


def with_endpoint(endpoint: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw["models"]["m"]["endpoint"] = endpoint
    return raw


def findings(endpoint: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(BundleError) as info:
        parse_bundle(with_endpoint(endpoint))
    return [(f.path, f.message) for f in info.value.findings]


def test_every_type_parses() -> None:
    azure = parse_bundle(with_endpoint({"type": "azure", "base_url": "https://r.openai.azure.com",
                                        "deployment": "gpt-4o", "api_version": "2024-10-21",
                                        "api_key_env": "AZ"})).models["m"].endpoint
    assert (azure.type, azure.deployment, azure.api_version, azure.api_key_env) == ("azure", "gpt-4o",
                                                                                     "2024-10-21", "AZ")
    claude = parse_bundle(with_endpoint({"type": "anthropic", "model": "claude-sonnet-4-5", "max_tokens": 1024,
                                         "anthropic_version": "2023-06-01"})).models["m"].endpoint
    assert (claude.max_tokens, claude.anthropic_version, claude.base_url) == (1024, "2023-06-01", None)
    lite = parse_bundle(with_endpoint({"type": "litellm", "model": "bedrock/anthropic.claude-v2",
                                       "params": {"aws_region_name": "eu-central-1", "drop_params": True}}))
    assert lite.models["m"].endpoint.params == (("aws_region_name", "eu-central-1"), ("drop_params", True))


@pytest.mark.parametrize(("endpoint", "path", "words"), [
    ({"type": "azure", "base_url": "https://r"}, "models.m.endpoint.deployment", "required for an azure"),
    ({"type": "azure", "deployment": "d"}, "models.m.endpoint.base_url", "required for an azure"),
    ({"type": "litellm"}, "models.m.endpoint.model", "required for a litellm"),
    ({"type": "openai", "base_url": "http://h", "params": {"x": 1}}, "models.m.endpoint.params", "litellm"),
    ({"type": "litellm", "model": "x", "params": {"x": [1]}}, "models.m.endpoint.params.x", "string, number"),
    ({"type": "anthropic", "max_tokens": 0}, "models.m.endpoint.max_tokens", ""),
    ({"type": "bedrock"}, "models.m.endpoint.type", ""),
    ({"type": "azure", "base_url": "https://r", "deployment": "d", "region": "x"}, "models.m.endpoint.region",
     "unknown key"),
])
def test_refusals_name_the_key(endpoint: dict[str, Any], path: str, words: str) -> None:
    found = findings(endpoint)
    assert any(p == path and words in message for p, message in found), found


def test_schema_lists_the_types_and_keys() -> None:
    endpoint = bundle_schema()["properties"]["models"]["additionalProperties"]["properties"]["endpoint"]
    assert set(endpoint["properties"]["type"]["enum"]) >= {"openai", "azure", "anthropic", "litellm"}
    assert {"deployment", "api_version", "max_tokens", "anthropic_version", "params"} <= set(endpoint["properties"])


def test_each_type_builds_its_provider() -> None:
    openai = build_provider("a", Endpoint("openai", "http://h/v1", "up"), client=object())
    assert isinstance(openai, OpenAIHTTPProvider) and openai.url == "http://h/v1/chat/completions"
    azure = build_provider("b", Endpoint("azure", "https://r.openai.azure.com/", deployment="gpt 4o",
                                         api_version="2024-06-01"), client=object())
    assert isinstance(azure, AzureOpenAIProvider)
    assert azure.url == "https://r.openai.azure.com/openai/deployments/gpt%204o/chat/completions?api-version=2024-06-01"
    assert azure.endpoint_url("embeddings").endswith("/gpt%204o/embeddings?api-version=2024-06-01")
    claude = build_provider("c", Endpoint("anthropic", model="claude-x"), client=object())
    assert isinstance(claude, AnthropicProvider) and claude.url == "https://api.anthropic.com/v1/messages"
    with pytest.raises(ProviderError) as info:
        build_provider("d", Endpoint("callable"), client=object())
    assert info.value.error_class is ErrorClass.CONNECTION and "no provider registered" in str(info.value)


def test_key_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K", "secret")
    azure = AzureOpenAIProvider("b", "https://r", "d", api_key_env="K", client=object())
    assert azure.headers("application/json")["api-key"] == "secret"
    assert "authorization" not in azure.headers("application/json")
    claude = AnthropicProvider("c", "claude-x", api_key_env="K", version="2024-01-01", client=object())
    headers = claude.headers("text/event-stream")
    assert (headers["x-api-key"], headers["anthropic-version"], headers["accept"]) == ("secret", "2024-01-01",
                                                                                        "text/event-stream")


async def test_registry_builds_once_per_endpoint_and_shares_one_transport() -> None:
    bundle = parse_bundle({
        **BASE,
        "models": {
            "a": {**BASE["models"]["m"], "endpoint": {"type": "anthropic", "model": "x"}},
            "z": {**BASE["models"]["m"], "endpoint": {"type": "azure", "base_url": "https://r", "deployment": "d"}},
        },
        "policies": {"p1": {"profile": "p", "primary": "a"}},
    })
    registry = ProviderRegistry()
    first, again = registry.get(bundle.models["a"]), registry.get(bundle.models["a"])
    azure = registry.get(bundle.models["z"])
    assert first is again
    assert isinstance(first, AnthropicProvider) and isinstance(azure, AzureOpenAIProvider)
    assert first._client is azure._client
    await registry.aclose()


def test_the_providers_example_compiles_with_every_type() -> None:
    from pathlib import Path

    from routeguard import Router

    router = Router.from_file(Path(__file__).resolve().parents[2] / "examples" / "providers.yaml")
    decision = router.decide({"agent": "assistant"})
    assert decision.model == "claude"
    models = router.table_for(None)[1].bundle.models
    assert {m.endpoint.type for m in models.values()} == {"openai", "anthropic", "azure", "litellm"}
    assert [d.name for d in models["gpt4o-eu"].deployments] == ["frankfurt"]
