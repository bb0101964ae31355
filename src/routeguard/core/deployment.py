"""Deployments of a model (CONTRACT §1 ``deployments``): names, residency and the weighted choice, pure.

A model's ``endpoint`` is its deployment ``main``; each listed :class:`~routeguard.core.model.Deployment` is
another. A deployment's health is kept by the tracker under :func:`deployment_key` (``model#deployment``), so it
has the same breaker, windows, probes and durability as a model; the model itself is judged only on outcomes
of calls that no deployment could serve. :func:`choose` is the weighted pick over the deployments that may
take a request (``u`` is a uniform draw in [0, 1): the caller owns the randomness, so this stays pure).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from routeguard.core.health_view import HealthState
from routeguard.core.model import Model

__all__ = ["MAIN", "SEPARATOR", "Spot", "choose", "deployment_key", "split_key", "spots", "usable"]

MAIN = "main"
SEPARATOR = "#"


@dataclass(frozen=True, slots=True)
class Spot:
    """One deployment as routing sees it: where it runs and its share of the spread."""

    name: str
    regions: frozenset[str] | None
    weight: int

    def serves(self, region: str | None) -> bool:
        return self.weight > 0 and (region is None or self.regions is None or region in self.regions)


def deployment_key(model: str, deployment: str) -> str:
    """The name a deployment's health is kept under."""
    return f"{model}{SEPARATOR}{deployment}"


def split_key(key: str) -> tuple[str, str | None]:
    """``model#deployment`` -> (model, deployment); a plain model name -> (name, None)."""
    model, sep, deployment = key.partition(SEPARATOR)
    return (model, deployment) if sep else (key, None)


def spots(model: Model) -> tuple[Spot, ...]:
    """Every deployment of ``model`` (``main`` first); empty for a model without ``deployments``."""
    if not model.deployments:
        return ()
    return (Spot(MAIN, model.regions, 1),
            *(Spot(d.name, d.regions or model.regions, d.weight) for d in model.deployments))


def usable(state: HealthState, probe_admitted: bool) -> bool:
    """A deployment in ``state`` takes calls: never while unhealthy, while probing only with a free permit."""
    if state is HealthState.UNHEALTHY:
        return False
    return probe_admitted if state is HealthState.PROBING else True


def choose(candidates: Sequence[Spot], region: str | None, admits: Callable[[str], bool], u: float) -> str | None:
    """The deployment for one request: among those serving ``region`` that ``admits``, by weight; None: none."""
    pool = [s for s in candidates if s.serves(region) and admits(s.name)]
    total = sum(s.weight for s in pool)
    if total <= 0:
        return None
    mark = u * total
    for spot in pool:
        mark -= spot.weight
        if mark < 0:
            return spot.name
    return pool[-1].name
