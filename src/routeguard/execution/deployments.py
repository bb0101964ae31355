"""One model served by several endpoints (CONTRACT §1 ``deployments``): a provider over providers.

A model with ``deployments`` is reached through a :class:`DeploymentSet`: its ``endpoint`` (deployment
``main``) and each listed deployment, every one with its own provider and its own breaker. Per call:

* the eligible deployments are those running in the request's ``region`` (residency is a requirement: a
  deployment elsewhere never sees the request; one without ``regions`` runs where the model runs), with a
  weight above 0 and a closed breaker (or one whose cooldown is over: that call is its probe);
* one is picked at random in proportion to ``weight``; a retryable failure before any output (§4 classes in
  :data:`RETRYABLE`) moves the call to another eligible deployment of the same model, within the same
  attempt's deadline, before the executor ever counts a model failure or considers a fallback; a
  non-retryable error, or output already delivered, ends the call at once;
* the model fails only when no deployment could serve: the last error is raised to the executor.

The breaker is per deployment and deliberately simple (health proper is per model, in the core): after
``failures_to_eject`` retryable failures in a row a deployment is left out for ``cooldown_s`` (doubling on each
re-ejection up to ``cooldown_max_s``); the first call after the cooldown is its probe, and one success closes
it. Time comes from the injected clock (the router's), so the simulator can drive it. The deployment that
served a call is published in :data:`SERVED_DEPLOYMENT` for the executor (headers, ``Served``).
"""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from routeguard.core.errors import RETRYABLE, ErrorClass, ProviderError
from routeguard.execution.apis import CHAT, EMBEDDINGS, RESPONSES, Api
from routeguard.execution.providers.base import Provider

__all__ = ["SERVED_DEPLOYMENT", "DeploymentSet", "Member"]

#: the name of the deployment that served the current call (None: a model without deployments)
SERVED_DEPLOYMENT: ContextVar[str | None] = ContextVar("routeguard_served_deployment", default=None)


@dataclass(slots=True)
class Member:
    name: str
    provider: Provider
    regions: frozenset[str] | None
    weight: int
    failures: int = 0  # retryable failures in a row
    ejections: int = 0
    out_until: float = float("-inf")

    def eligible(self, region: str | None, now: float) -> bool:
        in_region = region is None or self.regions is None or region in self.regions
        return in_region and self.weight > 0 and now >= self.out_until


class DeploymentSet:
    """The provider of one model with several deployments (see the module docstring)."""

    def __init__(self, name: str, members: Sequence[Member], clock: Callable[[], float], *,
                 failures_to_eject: int = 3, cooldown_s: float = 30.0, cooldown_max_s: float = 300.0,
                 rng: random.Random | None = None) -> None:
        self.name = name
        self.members = list(members)
        self._clock = clock
        self._eject_after = failures_to_eject
        self._cooldown_s, self._cooldown_max_s = cooldown_s, cooldown_max_s
        self._rng = rng or random.Random()
        self.region: str | None = None

    def __repr__(self) -> str:
        return f"DeploymentSet({self.name!r}, {[m.name for m in self.members]})"

    def in_region(self, region: str | None) -> DeploymentSet:
        """A view of this set for requests that must stay in ``region`` (shares the breakers)."""
        if region is None:
            return self
        view = copy.copy(self)  # shallow: the same members, so the same breakers
        view.region = region
        return view

    async def aclose(self) -> None:
        for member in self.members:
            await member.provider.aclose()

    # -- choosing and judging ---------------------------------------------------------------------------

    def _pick(self, tried: set[str]) -> Member | None:
        now = self._clock()
        pool = [m for m in self.members if m.name not in tried and m.eligible(self.region, now)]
        if not pool:
            return None
        return self._rng.choices(pool, weights=[m.weight for m in pool])[0]

    def _none_left(self, last: ProviderError | None) -> ProviderError:
        if last is not None:
            return last
        where = f" in region {self.region}" if self.region else ""
        return ProviderError.of(ErrorClass.CONNECTION, f"no deployment of {self.name} can serve{where} now",
                                model=self.name)

    def _succeeded(self, member: Member) -> None:
        member.failures = 0
        if member.ejections and self._clock() >= member.out_until:
            member.ejections = 0  # a probe that succeeded closes the breaker

    def _failed(self, member: Member, err: ProviderError) -> bool:
        """Record a failure; True when another deployment may take the call."""
        if err.error_class not in RETRYABLE:
            return False
        member.failures += 1
        if member.failures >= self._eject_after or member.ejections:
            cooldown = min(self._cooldown_max_s, self._cooldown_s * 2 ** member.ejections)
            member.ejections += 1
            member.failures = 0
            member.out_until = self._clock() + cooldown
        return True

    # -- calls ------------------------------------------------------------------------------------------

    async def _call(self, call: Callable[[Provider, float], Awaitable[dict[str, Any]]],
                    timeout_s: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        tried: set[str] = set()
        last: ProviderError | None = None
        while (member := self._pick(tried)) is not None and loop.time() < deadline:
            tried.add(member.name)
            try:
                result = await call(member.provider, max(0.0, deadline - loop.time()))
            except ProviderError as err:
                err.model = self.name
                last = err
                if self._failed(member, err):
                    continue
                raise
            self._succeeded(member)
            SERVED_DEPLOYMENT.set(member.name)
            return result
        raise self._none_left(last)

    async def _stream(self, api: Api, request: dict[str, Any], timeout_s: float) -> AsyncIterator[dict[str, Any]]:
        assert api.open is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        tried: set[str] = set()
        last: ProviderError | None = None
        while (member := self._pick(tried)) is not None and loop.time() < deadline:
            tried.add(member.name)
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
                if not delivered and self._failed(member, err):
                    continue
                raise
            self._succeeded(member)
            SERVED_DEPLOYMENT.set(member.name)
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
