"""A model's provider from its bundle endpoint (CONTRACT §3 "Providers"), over the shared transport.

``openai`` → :class:`OpenAIHTTPProvider`, ``azure`` → :class:`AzureOpenAIProvider`, ``anthropic`` →
:class:`AnthropicProvider`, ``litellm`` → :class:`LiteLLMProvider` (imports litellm). ``callable`` and
``fake`` endpoints have no wire: their providers are registered by the caller.
"""

from __future__ import annotations

from typing import Any

from routeguard.core.errors import ErrorClass, ProviderError
from routeguard.core.model import Endpoint
from routeguard.execution.providers.base import Provider

__all__ = ["HTTP_TYPES", "build_provider"]

HTTP_TYPES = frozenset({"openai", "azure", "anthropic"})


def build_provider(name: str, endpoint: Endpoint, client: Any) -> Provider:
    """The provider of model ``name``; ``client`` is the shared transport (HTTP types only)."""
    kind = endpoint.type
    if kind == "openai" and endpoint.base_url:
        from routeguard.execution.providers.openai_http import OpenAIHTTPProvider

        return OpenAIHTTPProvider(name, endpoint.base_url, endpoint.model or name, endpoint.api_key_env,
                                  client=client)
    if kind == "azure" and endpoint.base_url and endpoint.deployment:
        from routeguard.execution.providers.azure import AzureOpenAIProvider

        return AzureOpenAIProvider(name, endpoint.base_url, endpoint.deployment, api_version=endpoint.api_version,
                                   api_key_env=endpoint.api_key_env, model=endpoint.model, client=client)
    if kind == "anthropic":
        from routeguard.execution.providers.anthropic import AnthropicProvider

        return AnthropicProvider(name, endpoint.model or name, base_url=endpoint.base_url,
                                 api_key_env=endpoint.api_key_env, max_tokens=endpoint.max_tokens,
                                 version=endpoint.anthropic_version, client=client)
    if kind == "litellm" and endpoint.model:
        try:
            from routeguard.execution.providers.litellm_provider import LiteLLMProvider

            return LiteLLMProvider(name, endpoint.model, base_url=endpoint.base_url,
                                   api_key_env=endpoint.api_key_env, params=dict(endpoint.params))
        except ImportError as exc:
            raise ProviderError.of(ErrorClass.CONNECTION, f"model {name} needs litellm: pip install "
                                   "'routeguard[litellm]'", model=name) from exc
    raise ProviderError.of(ErrorClass.CONNECTION,
                           f"no provider registered for model {name} (endpoint type {kind})", model=name)
