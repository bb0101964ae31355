"""Providers by model name: built from the bundle's endpoints, or registered by the caller.

HTTP providers (openai, azure, anthropic) share one pooled transport (`transport.make_transport`: the lean
client, or httpx with ``ROUTEGUARD_HTTP_CLIENT=httpx``); a litellm provider brings its own clients.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from routeguard.core.model import Endpoint, Model
from routeguard.execution.providers.base import Provider
from routeguard.execution.providers.build import HTTP_TYPES, build_provider

__all__ = ["ProviderRegistry"]


class ProviderRegistry:
    """One provider per model; HTTP endpoints share one pooled transport."""

    def __init__(self, providers: Mapping[str, Provider] | None = None) -> None:
        self._explicit: dict[str, Provider] = dict(providers or {})
        self._built: dict[tuple[str, Endpoint], Provider] = {}
        self._client: object | None = None
        self._lock = threading.Lock()

    def register(self, model: str, provider: Provider) -> None:
        """Serve ``model`` with ``provider`` (in-process callables, fakes, custom transports)."""
        self._explicit[model] = provider

    def get(self, model: Model) -> Provider:
        found = self._explicit.get(model.name)
        if found is not None:
            return found
        key = (model.name, model.endpoint)
        provider = self._built.get(key)
        if provider is not None:
            return provider
        with self._lock:
            provider = self._built.get(key)
            if provider is None:
                if self._client is None and model.endpoint.type in HTTP_TYPES:
                    from routeguard.execution.providers.transport import make_transport

                    self._client = make_transport()
                provider = build_provider(model.name, model.endpoint, self._client)
                self._built[key] = provider
            return provider

    async def aclose(self) -> None:
        for provider in list(self._explicit.values()) + list(self._built.values()):
            await provider.aclose()
        client = self._client
        if client is not None:
            await client.aclose()  # type: ignore[attr-defined]
            self._client = None
