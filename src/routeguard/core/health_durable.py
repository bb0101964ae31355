"""Durable health as plain data (CONTRACT §1 "Health survives restarts"): the tracker's external signals and the
breakers that are not plainly healthy, to and from JSON-ready dicts (epoch seconds). Pure: the store is the caller's.

On the way back a probing pair becomes unhealthy with its cooldown (it starts a new probing period, with a new
budget) and a degraded pair owes its evidence again (silence is not evidence).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from routeguard.core.breaker import Breaker
from routeguard.core.health_machine import ExternalSignal, SignalStatus
from routeguard.core.health_view import HealthState

__all__ = ["dump_health", "load_breakers", "load_signals"]

Signals = Mapping[str, Mapping[str, ExternalSignal]]  # model -> source -> signal
Breakers = Mapping[str, Mapping[str, Breaker]]  # model -> policy -> breaker


def dump_health(signals: Signals, breakers: Breakers) -> dict[str, object]:
    """``{"signals": [...], "breakers": [...]}``: every signal, and every pair not plainly healthy."""
    return {
        "signals": [
            {"model": m, "source": s.source, "status": s.status.value, "at": s.at, "ttl_s": s.ttl_s}
            for m, by_source in signals.items() for s in by_source.values()
        ],
        "breakers": [
            {"model": m, "policy": p, "state": b.state.value, "since": b.since, "detail": b.detail,
             "ejections": b.ejections, "cooldown_until": b.cooldown_until, "signal_ejected": b.signal_ejected,
             "trouble_since": b.trouble_since}
            for m, by_policy in breakers.items() for p, b in by_policy.items()
            if b.state is not HealthState.HEALTHY or b.ejections
        ],
    }


def load_signals(data: Mapping[str, object]) -> list[tuple[str, ExternalSignal]]:
    """``(model, signal)`` for each stored signal."""
    out: list[tuple[str, ExternalSignal]] = []
    for item in _items(data.get("signals")):
        ttl = item.get("ttl_s")
        signal = ExternalSignal(
            SignalStatus(str(item["status"])), _float(item["at"]), _float(ttl) if ttl is not None else None,
            str(item["source"]),
        )
        out.append((str(item["model"]), signal))
    return out


def load_breakers(data: Mapping[str, object], now: float) -> list[tuple[str, str, Breaker]]:
    """``(model, policy, breaker)`` for each stored pair, as a restart must take it back."""
    out: list[tuple[str, str, Breaker]] = []
    for item in _items(data.get("breakers")):
        state = HealthState(str(item["state"]))
        if state is HealthState.PROBING:
            state = HealthState.UNHEALTHY
        trouble = item.get("trouble_since")
        breaker = Breaker(
            state=state, since=_float(item["since"]), detail=str(item.get("detail", "")),
            ejections=int(_float(item.get("ejections", 0))),
            cooldown_until=_float(item.get("cooldown_until", -math.inf)),
            signal_ejected=bool(item.get("signal_ejected", False)), decay_anchor=now,
            trouble_since=_float(trouble) if trouble is not None else None,
            unproven=state is HealthState.DEGRADED,
        )
        out.append((str(item["model"]), str(item["policy"]), breaker))
    return out


def _float(value: object) -> float:
    if isinstance(value, int | float | str):
        return float(value)
    raise ValueError(f"expected a number, got {value!r}")


def _items(value: object) -> Iterable[Mapping[str, object]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
