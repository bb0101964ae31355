"""Traffic: Poisson arrivals per traffic line, or a replayed JSONL trace of task contexts.

Every arrival becomes one call of ``submit(context, stream, line)``; the context is a typed
:class:`RouteContext` without a trace id (the simulator numbers requests). Arrival times come from a
``random.Random`` seeded per line, so a seed fixes the whole arrival sequence.

A replay file holds one route request (CONTRACT §3) per line plus its time: ``t`` (seconds since the
start of the run), or ``ts`` (RFC 3339 or epoch seconds; the first record is t = 0). ``stream: true``
makes the request a streamed one. Records are replayed in time order; those past the run's duration
are dropped.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from routeguard.core.context import RouteContext, RoutingError
from routeguard.sim.clock import Scheduler
from routeguard.sim.scenario import ScenarioError, TrafficLine

__all__ = ["Arrival", "PoissonTraffic", "ReplayTraffic", "Submit", "load_replay"]

Submit = Callable[[RouteContext, bool, int], None]


@dataclass(frozen=True, slots=True)
class Arrival:
    t_s: float
    context: RouteContext
    stream: bool


class PoissonTraffic:
    """Independent Poisson processes, one per line, each with its own seeded generator."""

    def __init__(self, lines: Sequence[TrafficLine], seed: int) -> None:
        self.lines = tuple(lines)
        self._seed = seed
        self.templates: list[RouteContext] = []
        for i, line in enumerate(self.lines):
            try:
                self.templates.append(RouteContext.from_dict(line.context()))
            except RoutingError as exc:
                raise ScenarioError(f"traffic[{i}]: {exc.message}") from exc

    def start(self, scheduler: Scheduler, duration_s: float, submit: Submit) -> None:
        for i, line in enumerate(self.lines):
            rng = random.Random(f"{self._seed}:traffic:{i}")
            end = min(duration_s, line.until_s) if line.until_s is not None else duration_s
            self._chain(scheduler, rng, line, self.templates[i], i, end, submit)

    @staticmethod
    def _chain(
        scheduler: Scheduler,
        rng: random.Random,
        line: TrafficLine,
        template: RouteContext,
        index: int,
        end: float,
        submit: Submit,
    ) -> None:
        rate, stream = line.rps, line.stream
        first = line.at_s + rng.expovariate(rate)
        # one long-lived context per prompt: the simulator caches a template's fields by identity
        variants = tuple(replace(template, prompt=p) for p in line.prompts) or (template,)
        sent = [0]

        def fire() -> None:
            submit(variants[sent[0] % len(variants)], stream, index)
            sent[0] += 1
            nxt = scheduler.t + rng.expovariate(rate)
            if nxt < end:
                scheduler.call_at(nxt, fire)

        if first < end:
            scheduler.call_at(first, fire)


def _time_of(record: dict[str, Any], where: str) -> float:
    if "t" in record:
        value = record.pop("t")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ScenarioError(f"{where}: t: expected seconds since the start, got {value!r}")
        return float(value)
    if "ts" in record:
        value = record.pop("ts")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
        except ValueError as exc:
            raise ScenarioError(f"{where}: ts: expected an RFC 3339 time, got {value!r}") from exc
    raise ScenarioError(f"{where}: each record needs a time, 't' (seconds) or 'ts' (RFC 3339)")


def load_replay(path: Path) -> list[Arrival]:
    """Every record of a JSONL trace as an :class:`Arrival`, in time order."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"traffic.replay: cannot read {path}: {exc.strerror}") from exc
    raw: list[tuple[float, int, RouteContext, bool, bool]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{n}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ScenarioError(f"{where}: invalid JSON: {exc.msg}") from exc
        if not isinstance(record, dict):
            raise ScenarioError(f"{where}: expected a JSON object")
        relative = "t" in record
        at = _time_of(record, where)
        record.pop("trace_id", None)
        try:
            ctx = RouteContext.from_dict(record)
        except RoutingError as exc:
            raise ScenarioError(f"{where}: {exc.message}") from exc
        raw.append((at, n, ctx, ctx.stream, relative))
    if not raw:
        return []
    absolute = [at for at, _n, _ctx, _stream, relative in raw if not relative]
    origin = min(absolute) if absolute else 0.0
    arrivals = [Arrival(at if relative else at - origin, ctx, stream) for at, _, ctx, stream, relative in raw]
    arrivals.sort(key=lambda a: a.t_s)
    return arrivals


class ReplayTraffic:
    """Arrivals read from a trace file (deterministic: no randomness involved)."""

    def __init__(self, path: Path) -> None:
        self.arrivals = load_replay(path)

    def start(self, scheduler: Scheduler, duration_s: float, submit: Submit) -> None:
        arrivals = [a for a in self.arrivals if a.t_s < duration_s]
        position = 0

        def fire() -> None:
            nonlocal position
            now = arrivals[position].t_s
            while position < len(arrivals) and arrivals[position].t_s <= now:
                a = arrivals[position]
                submit(a.context, a.stream, -1)
                position += 1
            if position < len(arrivals):
                scheduler.call_at(arrivals[position].t_s, fire)

        if arrivals:
            scheduler.call_at(arrivals[0].t_s, fire)
