"""One model served by several endpoints (CONTRACT §1 ``deployments``): a provider over providers.

A model with ``deployments`` is reached through a :class:`DeploymentSet`: its ``endpoint`` (deployment
``main``) and each listed deployment, every one with its own provider and its own health. Per call:

* the eligible deployments are those running in the request's ``region`` (residency is a requirement: a
  deployment elsewhere never sees the request; one without ``regions`` runs where the model runs), with a
  weight above 0 and a health that admits the call (not unhealthy; probing only within its probe budget);
* the decision's deployment (``prefer``) is tried first when eligible, else one is picked at random in
  proportion to ``weight``; a retryable failure before any output (§4 classes in :data:`RETRYABLE`) moves the
  call to another eligible deployment of the same model, within the same attempt's deadline, before the
  executor ever counts a model failure or considers a fallback; a non-retryable error, or output already
  delivered, ends the call at once;
* the model fails only when no deployment could serve: the last error is raised to the executor.

Health is the real breaker (:mod:`routeguard.core.breaker`), reached through the :class:`DeploymentHealth`
port: in the service and the library it is the Router's tracker, keyed ``model#deployment`` and judged with
the calling policy's thresholds (``Router.deployment_usable`` …); standalone, a :class:`LocalHealth` holds a
tracker of its own. An attempt the set moved on from is recorded by the set (``final=False``); the attempt
that ends the call is recorded by whoever reports the call's outcome (the executor's ``Outcome`` names the
deployment, published in :data:`SERVED_DEPLOYMENT`), so each attempt counts once. Time comes from the
injected clock (the router's), so the simulator can drive it.
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from routeguard.core.deployment import deployment_key, usable
from routeguard.core.errors import RETRYABLE, ErrorClass, ProviderError
from routeguard.core.health import HealthTracker
from routeguard.core.health_view import HealthState
from routeguard.core.model import HealthConfig
from routeguard.execution.apis import CHAT, EMBEDDINGS, RESPONSES, Api
from routeguard.execution.providers.base import Provider

__all__ = ["LAST_DEPLOYMENT", "SERVED_DEPLOYMENT", "DeploymentHealth", "DeploymentSet", "LocalHealth", "Member",
           "deployment_key"]

#: the deployment that served (or, raised to the executor, last failed) the current call; None: none named
SERVED_DEPLOYMENT: ContextVar[str | None] = ContextVar("routeguard_served_deployment", default=None)
#: the deployment the current call went to last, whatever came of it (names the deployment a fallback left)
LAST_DEPLOYMENT: ContextVar[str | None] = ContextVar("routeguard_last_deployment", default=None)


class DeploymentHealth(Protocol):
    """Per-deployment health as the set needs it; ``policy`` is the calling policy (None: no policy)."""

    def deployment_usable(self, policy: str | None, model: str, deployment: str) -> bool:
        """May a call go there now (read-only: not unhealthy, and a probe permit free when probing)?"""
        ...

    def deployment_take(self, policy: str | None, model: str, deployment: str) -> bool:
        """The call goes there: take a probe permit when probing (False: none left)."""
        ...

    def deployment_record(self, policy: str | None, model: str, deployment: str, *, ok: bool,
                          error: str | None, latency_s: float, final: bool) -> None:
        """One attempt's result; ``final``: the attempt that ended the call (its outcome is reported too)."""
        ...


class LocalHealth:
    """A :class:`DeploymentHealth` over a tracker of its own (a set used outside a Router)."""

    _POLICY = "deployments"

    def __init__(self, clock: Callable[[], float], config: HealthConfig | None = None) -> None:
        self._clock = clock
        self._config = config or HealthConfig()
        self.tracker = HealthTracker({self._POLICY: self._config})

    def deployment_usable(self, policy: str | None, model: str, deployment: str) -> bool:
        health = self.tracker.model_health(self._POLICY, self._config, deployment_key(model, deployment),
                                           self._clock())
        return usable(health.state, health.probe_admitted)

    def deployment_take(self, policy: str | None, model: str, deployment: str) -> bool:
        key = deployment_key(model, deployment)
        if self.tracker.peek_state(self._POLICY, key) is not HealthState.PROBING:
            return True
        return self.tracker.begin_probe(self._POLICY, key, self._clock())

    def deployment_record(self, policy: str | None, model: str, deployment: str, *, ok: bool,
                          error: str | None, latency_s: float, final: bool) -> None:
        key, now = deployment_key(model, deployment), self._clock()
        self.tracker.record(key, ok=ok, now=now, error_class=error, latency_s=latency_s)
        self.tracker.model_health(self._POLICY, self._config, key, now)


@dataclass(slots=True)
class Member:
    name: str
    provider: Provider
    regions: frozenset[str] | None
    weight: int

    def in_region(self, region: str | None) -> bool:
        return (region is None or self.regions is None or region in self.regions) and self.weight > 0


class DeploymentSet:
    """The provider of one model with several deployments (see the module docstring)."""

    def __init__(self, name: str, members: Sequence[Member], clock: Callable[[], float], *,
                 health: DeploymentHealth | None = None, rng: random.Random | None = None) -> None:
        self.name = name
        self.members = list(members)
        self._clock = clock
        self.health: DeploymentHealth = health if health is not None else LocalHealth(clock)
        self._rng = rng or random.Random()
        self.region: str | None = None
        self.policy: str | None = None
        self.prefer: str | None = None

    def __repr__(self) -> str:
        return f"DeploymentSet({self.name!r}, {[m.name for m in self.members]})"

    def in_region(self, region: str | None, policy: str | None = None, prefer: str | None = None
                  ) -> DeploymentSet:
        """A view of this set for one call: residency ``region``, the calling ``policy`` (whose thresholds
        judge the deployments) and the decision's deployment to try first. Shares members and health."""
        if region is None and policy is None and prefer is None:
            return self
        view = copy.copy(self)  # shallow: the same members, the same health
        view.region, view.policy, view.prefer = region, policy, prefer
        return view

    async def aclose(self) -> None:
        for member in self.members:
            await member.provider.aclose()

    # -- choosing and judging ---------------------------------------------------------------------------

    def _pick(self, tried: set[str]) -> Member | None:
        while True:
            pool = [m for m in self.members if m.name not in tried and m.in_region(self.region)
                    and self.health.deployment_usable(self.policy, self.name, m.name)]
            if not pool:
                return None
            chosen = next((m for m in pool if m.name == self.prefer), None) if not tried else None
            if chosen is None:
                chosen = self._rng.choices(pool, weights=[m.weight for m in pool])[0]
            if self.health.deployment_take(self.policy, self.name, chosen.name):
                LAST_DEPLOYMENT.set(chosen.name)
                return chosen
            tried.add(chosen.name)  # its last probe permit went to another call meanwhile

    def _none_left(self, last: ProviderError | None) -> ProviderError:
        SERVED_DEPLOYMENT.set(None)  # every failure before was recorded already
        if last is not None:
            return last
        where = f" in region {self.region}" if self.region else ""
        return ProviderError.of(ErrorClass.CONNECTION, f"no deployment of {self.name} can serve{where} now",
                                model=self.name)

    def _record(self, member: Member, began: float, err: ProviderError | None, final: bool) -> None:
        SERVED_DEPLOYMENT.set(member.name if final else None)
        self.health.deployment_record(
            self.policy, self.name, member.name, ok=err is None, final=final,
            error=err.error_class.value if err is not None else None, latency_s=max(0.0, self._clock() - began))

    # -- calls ------------------------------------------------------------------------------------------

    async def _call(self, call: Callable[[Provider, float], Awaitable[dict[str, Any]]],
                    timeout_s: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        tried: set[str] = set()
        last: ProviderError | None = None
        while loop.time() < deadline and (member := self._pick(tried)) is not None:
            tried.add(member.name)
            began = self._clock()
            try:
                result = await call(member.provider, max(0.0, deadline - loop.time()))
            except ProviderError as err:
                err.model = self.name
                last = err
                moves_on = err.error_class in RETRYABLE
                self._record(member, began, err, final=not moves_on)
                if moves_on:
                    continue
                raise
            self._record(member, began, None, final=True)
            return result
        raise self._none_left(last)

    async def _stream(self, api: Api, request: dict[str, Any], timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        assert api.open is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        tried: set[str] = set()
        last: ProviderError | None = None
        while loop.time() < deadline and (member := self._pick(tried)) is not None:
            tried.add(member.name)
            began = self._clock()
            held: list[dict[str, Any]] = []
            delivered = False
            try:
                async for item in api.open(member.provider, request, max(0.0, deadline - loop.time())):
                    if not delivered and not api.has_output(item):
                        held.append(item)  # preambles are held: moving to another deployment stays safe
                        continue
                    if not delivered:
                        delivered = True
                        SERVED_DEPLOYMENT.set(member.name)
                        for early in held:
                            yield early
                    yield item
            except ProviderError as err:
                err.model = self.name
                last = err
                moves_on = not delivered and err.error_class in RETRYABLE
                self._record(member, began, err, final=not moves_on)
                if moves_on:
                    continue
                raise
            self._record(member, began, None, final=True)
            for early in held if not delivered else ():
                yield early
            return
        raise self._none_left(last)

    async def complete(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        return await self._call(lambda p, t: CHAT.call(p, request, t), timeout_s)

    def stream(self, request: dict[str, Any], *, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        return self._stream(CHAT, request, timeout_s)

    async def embed(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        return await self._call(lambda p, t: EMBEDDINGS.call(p, request, t), timeout_s)

    async def respond(self, request: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        return await self._call(lambda p, t: RESPONSES.call(p, request, t), timeout_s)

    def respond_stream(self, request: dict[str, Any], *, timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        return self._stream(RESPONSES, request, timeout_s)
