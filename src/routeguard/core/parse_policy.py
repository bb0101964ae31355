"""Parsing one policy of the bundle (CONTRACT §1 `policies`): chain, triggers, terminal, retry, health, canary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routeguard.core import defaults as D
from routeguard.core.fields import FieldReader
from routeguard.core.model import (
    Arm,
    Canary,
    Fallback,
    HealthConfig,
    Learned,
    Match,
    Policy,
    RetryConfig,
    Terminal,
    TerminalAction,
)

__all__ = ["parse_policy"]

_POLICY = frozenset(
    {
        "profile",
        "match",
        "primary",
        "fallbacks",
        "terminal",
        "timeout",
        "retry",
        "health",
        "budget",
        "canary",
        "overrides",
        "notify",
        "description",
    }
)
_MATCH = frozenset({"agent", "task_types", "tenants", "tags", "business_lines"})
_FALLBACK = frozenset({"model", "on", "after"})
_TERMINAL = frozenset({"action", "queue", "response", "message"})
_RETRY = frozenset({"attempts", "backoff", "backoff_max", "on"})
_HEALTH = frozenset(
    {
        "window",
        "min_samples",
        "error_rate",
        "degraded_error_rate",
        "p95_latency",
        "timeout_rate",
        "cooldown",
        "cooldown_max",
        "probes",
        "min_dwell",
        "stale_after",
        "consecutive_failures",
        "max_probes_in_flight",
        "probes_in_flight",
        "quality",
    }
)
_QUALITY = frozenset({"min", "min_samples"})
_ACTIONS = frozenset(a.value for a in TerminalAction)


def parse_policy(r: FieldReader, path: str, name: str, value: object) -> Policy:
    p = r.mapping(path, value, _POLICY)
    budget = None
    if p.get("budget") is not None:
        b = r.mapping(f"{path}.budget", p["budget"], frozenset({"max_usd_per_request"}))
        budget = r.number(b, f"{path}.budget", "max_usd_per_request", None)
    learned = _learned(r, path, p.get("primary"))
    return Policy(
        name=name,
        profile=str(r.string(p, path, "profile", "", required=True)),
        primary=(Arm(learned.strong, 50), Arm(learned.weak, 50)) if learned is not None else _primary(r, path, p),
        fallbacks=_fallbacks(r, path, p.get("fallbacks", [])),
        match=_match(r, f"{path}.match", p.get("match")),
        terminal=_terminal(r, f"{path}.terminal", p.get("terminal")),
        timeout_s=r.duration(p, path, "timeout", D.TIMEOUT_S),
        retry=_retry(r, f"{path}.retry", p.get("retry")),
        health=_health(r, f"{path}.health", p.get("health"), r.duration(p, path, "timeout", D.TIMEOUT_S)),
        budget_usd=budget,
        canary=_canary(r, f"{path}.canary", p.get("canary")),
        overrides=tuple(r.string_list(f"{path}.overrides", p["overrides"]) or ()) if p.get("overrides") else (),
        notify=tuple(r.string_list(f"{path}.notify", p["notify"]) or ()) if p.get("notify") else (),
        learned=learned,
    )


_LEARNED = frozenset({"strong", "weak", "artifact", "sha256", "threshold"})
_HEX = frozenset("0123456789abcdef")


def _learned(r: FieldReader, path: str, value: object) -> Learned | None:
    """``primary: {learned: {strong, weak, artifact, sha256, threshold}}`` (CONTRACT §7), else None."""
    if not isinstance(value, Mapping):
        return None
    where = f"{path}.primary"
    outer = r.mapping(where, value, frozenset({"learned"}))
    if "learned" not in outer:
        r.error(f"{where}.learned", "'learned' is required when primary is a mapping")
        return None
    where = f"{where}.learned"
    spec = r.mapping(where, outer["learned"], _LEARNED)
    strong = str(r.string(spec, where, "strong", "", required=True))
    weak = str(r.string(spec, where, "weak", "", required=True))
    digest = str(r.string(spec, where, "sha256", "", required=True)).lower().removeprefix("sha256:")
    if digest and (len(digest) != 64 or not set(digest) <= _HEX):
        r.error(f"{where}.sha256", "expected 64 hex digits (the artifact's SHA-256)")
    threshold = r.number(spec, where, "threshold", None, minimum=0.0, maximum=1.0)
    if threshold is None and spec.get("threshold") is None:
        r.error(f"{where}.threshold", "'threshold' is required (a number between 0 and 1)")
    if strong and strong == weak:
        r.error(f"{where}.weak", "weak and strong must be two different models")
    return Learned(
        strong=strong,
        weak=weak,
        artifact=str(r.string(spec, where, "artifact", "", required=True)),
        sha256=digest,
        threshold=float(threshold) if threshold is not None else 1.0,
    )


def _primary(r: FieldReader, path: str, p: Mapping[str, Any]) -> tuple[Arm, ...]:
    value = r.required(p, path, "primary")
    if isinstance(value, str) and value:
        return (Arm(value, 100),)
    if isinstance(value, list) and value:
        arms = []
        for i, item in enumerate(value):
            where = f"{path}.primary[{i}]"
            a = r.mapping(where, item, frozenset({"model", "weight"}))
            arms.append(
                Arm(
                    model=str(r.string(a, where, "model", "", required=True)),
                    weight=int(r.number(a, where, "weight", 100, minimum=0, integer=True)),
                )
            )
        if arms and sum(a.weight for a in arms) <= 0:
            r.error(f"{path}.primary", "arm weights must add up to more than 0")
        return tuple(arms)
    if (value is not None and not isinstance(value, str | list)) or value in ("", []):
        r.error(f"{path}.primary", "expected a model name or a list of {model, weight} arms")
    return ()


def _fallbacks(r: FieldReader, path: str, value: object) -> tuple[Fallback, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        r.error(f"{path}.fallbacks", "expected a list of fallbacks")
        return ()
    out = []
    for i, item in enumerate(value):
        where = f"{path}.fallbacks[{i}]"
        if isinstance(item, str):
            item = {"model": item}
        f = r.mapping(where, item, _FALLBACK)
        on = D.FALLBACK_ON
        if f.get("on") is not None:
            listed = r.string_list(f"{where}.on", f["on"]) or []
            for j, trig in enumerate(listed):
                if trig not in D.TRIGGERS:
                    r.error(f"{where}.on[{j}]", f"unknown trigger {trig!r} (allowed: {', '.join(sorted(D.TRIGGERS))})")
            on = frozenset(listed)
        out.append(
            Fallback(
                model=str(r.string(f, where, "model", "", required=True)),
                on=on,
                after_s=r.duration(f, where, "after", 0.0),
            )
        )
    return tuple(out)


def _match(r: FieldReader, path: str, value: object) -> Match:
    if value is None:
        return Match()
    m = r.mapping(path, value, _MATCH)
    return Match(
        agent=r.string(m, path, "agent", None),
        task_types=r.strings(m, path, "task_types"),
        tenants=r.strings(m, path, "tenants"),
        tags=r.strings(m, path, "tags"),
        business_lines=r.strings(m, path, "business_lines"),
    )


def _terminal(r: FieldReader, path: str, value: object) -> Terminal:
    if value is None:
        return Terminal()
    if isinstance(value, str):
        value = {"action": value}
    t = r.mapping(path, value, _TERMINAL)
    action = TerminalAction(r.choice(t, path, "action", _ACTIONS, "suspend"))
    queue = r.string(t, path, "queue", None)
    if action is TerminalAction.HUMAN_QUEUE and queue is None:
        queue = "default"
    response = r.string(t, path, "response", None)
    if action is TerminalAction.STATIC_RESPONSE and response is None:
        r.error(f"{path}.response", "static_response needs the response text")
    return Terminal(action=action, queue=queue, response=response, message=r.string(t, path, "message", None))


def _retry(r: FieldReader, path: str, value: object) -> RetryConfig:
    if value is None:
        return RetryConfig()
    t = r.mapping(path, value, _RETRY)
    on = D.RETRYABLE_CLASSES
    if t.get("on") is not None:
        listed = r.string_list(f"{path}.on", t["on"]) or []
        for j, cls in enumerate(listed):
            if cls not in D.ERROR_CLASSES:
                r.error(f"{path}.on[{j}]", f"unknown error class {cls!r} (allowed: {', '.join(D.ERROR_CLASSES)})")
        on = frozenset(listed)
    return RetryConfig(
        attempts=r.integer(t, path, "attempts", D.RETRY_ATTEMPTS, minimum=1),
        backoff_s=r.duration(t, path, "backoff", D.RETRY_BACKOFF_S),
        backoff_max_s=r.duration(t, path, "backoff_max", D.RETRY_BACKOFF_MAX_S),
        on=on,
    )


def _health(r: FieldReader, path: str, value: object, timeout_s: float) -> HealthConfig:
    if value is None:
        return HealthConfig(probe_timeout_s=timeout_s if timeout_s > 0 else D.TIMEOUT_S)
    h = r.mapping(path, value, _HEALTH)
    in_flight_key = "probes_in_flight" if "probes_in_flight" in h else "max_probes_in_flight"
    quality_min, quality_samples = _quality(r, f"{path}.quality", h.get("quality"))
    window_s = float(r.duration(h, path, "window", D.HEALTH_WINDOW_S))
    error_rate = float(r.number(h, path, "error_rate", D.HEALTH_ERROR_RATE, minimum=0.0, maximum=1.0))
    degraded = float(
        r.number(h, path, "degraded_error_rate", D.HEALTH_DEGRADED_ERROR_RATE, minimum=0.0, maximum=1.0)
    )
    cooldown_s = float(r.duration(h, path, "cooldown", D.HEALTH_COOLDOWN_S))
    # without an explicit cooldown_max, a cooldown longer than the default cap raises the cap with it
    cooldown_max_s = float(r.duration(h, path, "cooldown_max", max(D.HEALTH_COOLDOWN_MAX_S, cooldown_s)))
    if degraded > error_rate:
        r.error(f"{path}.degraded_error_rate", "must not exceed error_rate")
        degraded = error_rate
    if window_s <= 0:
        r.error(f"{path}.window", "must be longer than 0s")
        window_s = D.HEALTH_WINDOW_S
    if cooldown_max_s < cooldown_s:
        r.error(f"{path}.cooldown_max", "must not be shorter than cooldown")
        cooldown_max_s = cooldown_s
    try:
        return HealthConfig(
            window_s=window_s,
            min_samples=r.integer(h, path, "min_samples", D.HEALTH_MIN_SAMPLES, minimum=1),
            error_rate=error_rate,
            degraded_error_rate=degraded,
            timeout_rate=r.number(h, path, "timeout_rate", D.HEALTH_TIMEOUT_RATE, minimum=0.0, maximum=1.0),
            p95_latency_s=r.duration(h, path, "p95_latency", None),
            cooldown_s=cooldown_s,
            cooldown_max_s=cooldown_max_s,
            probes=r.integer(h, path, "probes", D.HEALTH_PROBES, minimum=1),
            min_dwell_s=r.duration(h, path, "min_dwell", D.HEALTH_MIN_DWELL_S),
            stale_after_s=r.duration(h, path, "stale_after", D.HEALTH_STALE_AFTER_S),
            consecutive_failures=r.integer(h, path, "consecutive_failures", D.HEALTH_CONSECUTIVE_FAILURES, minimum=1),
            max_probes_in_flight=r.integer(h, path, in_flight_key, D.HEALTH_MAX_PROBES_IN_FLIGHT, minimum=1),
            quality_min=quality_min,
            quality_min_samples=quality_samples,
            probe_timeout_s=timeout_s if timeout_s > 0 else D.TIMEOUT_S,
        )
    except ValueError as exc:
        r.error(path, str(exc))
        return HealthConfig()


def _quality(r: FieldReader, path: str, value: object) -> tuple[float | None, int]:
    if value is None:
        return None, D.HEALTH_QUALITY_MIN_SAMPLES
    q = r.mapping(path, value, _QUALITY)
    minimum = r.number(q, path, "min", None, minimum=0.0, maximum=1.0)
    if minimum is None:
        r.error(f"{path}.min", "health.quality needs a min between 0 and 1")
    return minimum, r.integer(q, path, "min_samples", D.HEALTH_QUALITY_MIN_SAMPLES, minimum=1)


def _canary(r: FieldReader, path: str, value: object) -> Canary | None:
    if value is None:
        return None
    c = r.mapping(path, value, frozenset({"percent", "step"}))
    percent = r.number(c, path, "percent", None, minimum=0.01, maximum=100.0)
    if percent is None:
        r.error(f"{path}.percent", "a canary needs a percent between 0 and 100")
        return None
    return Canary(percent=percent, step_s=r.duration(c, path, "step", D.CANARY_STEP_S))
