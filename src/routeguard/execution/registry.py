"""Providers by model name: built from the bundle's endpoints, or registered by the caller.

HTTP providers (openai, azure, anthropic) share one pooled transport (`transport.make_transport`: the lean
client, or httpx with ``ROUTEGUARD_HTTP_CLIENT=httpx``); a litellm provider brings its own clients.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from routeguard.core.model import Endpoint, Model
from routeguard.execution.deployments import DeploymentHealth, DeploymentSet, Member
from routeguard.execution.providers.base import Provider
from routeguard.execution.providers.build import HTTP_TYPES, build_provider

__all__ = ["ProviderRegistry"]


class ProviderRegistry:
    """One provider per model; HTTP endpoints share one pooled transport."""

    def __init__(self, providers: Mapping[str, Provider] | None = None,
                 clock: Callable[[], float] = time.monotonic, health: DeploymentHealth | None = None) -> None:
        self._explicit: dict[str, Provider] = dict(providers or {})
        self._built: dict[tuple[str, Endpoint], Provider] = {}
        self._sets: dict[Model, DeploymentSet] = {}
        self._clock = clock
        self._health = health  # per-deployment health (the Router's tracker); None: each set keeps its own
        self._client: object | None = None
        self._lock = threading.Lock()

    def register(self, model: str, provider: Provider) -> None:
        """Serve ``model`` with ``provider`` (in-process callables, fakes, custom transports)."""
        self._explicit[model] = provider

    def get(self, model: Model, region: str | None = None, policy: str | None = None,
            prefer: str | None = None) -> Provider:
        """The model's provider; for a model with deployments, its set limited to ``region`` (residency),
        judged with ``policy``'s thresholds and trying the decision's deployment ``prefer`` first."""
        found = self._explicit.get(model.name)
        if found is not None:
            return found
        if model.deployments:
            return self._deployment_set(model).in_region(region, policy, prefer)
        return self._endpoint(model.name, model.endpoint)

    def _endpoint(self, name: str, endpoint: Endpoint) -> Provider:
        key = (name, endpoint)
        provider = self._built.get(key)
        if provider is not None:
            return provider
        with self._lock:
            provider = self._built.get(key)
            if provider is None:
                if self._client is None and endpoint.type in HTTP_TYPES:
                    from routeguard.execution.providers.transport import make_transport

                    self._client = make_transport()
                provider = build_provider(name, endpoint, self._client)
                self._built[key] = provider
            return provider

    def _deployment_set(self, model: Model) -> DeploymentSet:
        found = self._sets.get(model)
        if found is None:
            members = [Member("main", self._endpoint(model.name, model.endpoint), model.regions, 1)]
            members += [Member(d.name, self._endpoint(model.name, d.endpoint), d.regions or model.regions, d.weight)
                        for d in model.deployments]
            found = self._sets.setdefault(model, DeploymentSet(model.name, members, self._clock,
                                                                   health=self._health))
        return found

    async def aclose(self) -> None:
        for provider in list(self._explicit.values()) + list(self._built.values()):
            await provider.aclose()
        client = self._client
        if client is not None:
            await client.aclose()  # type: ignore[attr-defined]
            self._client = None
