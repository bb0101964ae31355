"""Providers by model name: built from the bundle's endpoints, or registered by the caller."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from routeguard.core.errors import ProviderError
from routeguard.core.model import Model
from routeguard.execution.providers.base import Provider

__all__ = ["ProviderRegistry"]


class ProviderRegistry:
    """One provider per model; OpenAI-compatible endpoints share one pooled HTTP client."""

    def __init__(self, providers: Mapping[str, Provider] | None = None) -> None:
        self._explicit: dict[str, Provider] = dict(providers or {})
        self._built: dict[tuple[str, str | None, str | None, str | None], Provider] = {}
        self._client: object | None = None
        self._lock = threading.Lock()

    def register(self, model: str, provider: Provider) -> None:
        """Serve ``model`` with ``provider`` (in-process callables, fakes, custom transports)."""
        self._explicit[model] = provider

    def get(self, model: Model) -> Provider:
        found = self._explicit.get(model.name)
        if found is not None:
            return found
        ep = model.endpoint
        if ep.type != "openai" or not ep.base_url:
            raise ProviderError.of(
                "connection", f"no provider registered for model {model.name} (endpoint type {ep.type})",
                model=model.name,
            )
        key = (model.name, ep.base_url, ep.model, ep.api_key_env)
        with self._lock:
            provider = self._built.get(key)
            if provider is None:
                from routeguard.execution.providers.openai_http import OpenAIHTTPProvider, make_upstream_client

                if self._client is None:
                    self._client = make_upstream_client()
                provider = OpenAIHTTPProvider(
                    model.name, ep.base_url, ep.model or model.name, ep.api_key_env, client=self._client
                )
                self._built[key] = provider
            return provider

    async def aclose(self) -> None:
        for provider in list(self._explicit.values()) + list(self._built.values()):
            await provider.aclose()
        client = self._client
        if client is not None:
            await client.aclose()  # type: ignore[attr-defined]
            self._client = None
