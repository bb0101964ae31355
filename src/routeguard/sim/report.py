"""The simulation report: CONTRACT §7 figures and the timelines behind them.

Definitions (every count is of requests that arrived during the run; each ends as exactly one of
succeeded, failed or terminal, so ``succeeded + failed + sum(terminal) == requests``):

- ``requests``: requests that arrived in ``[0, duration)``; the run continues until each has ended.
- ``served_by``: model -> requests whose answer came from that model (succeeded requests).
- ``succeeded``: requests answered by a model.
- ``failed``: requests whose caller saw an error: a provider error no fallback absorbed, a failure
  after partial output (``PartialOutputError``), or a refused request. Terminal actions are not here.
- ``terminal``: action -> requests that got the policy's terminal action.
- ``fallback_requests``: requests that needed a fallback: their first decision chose a fallback, or a
  model failed them and they moved on. ``fallback_success_rate``: the share of those that succeeded
  (1.0 when none needed one).
- ``hit_rate``: the share of all requests answered by the model their first decision chose (§3).
- ``unapproved_served``: requests whose output (an answer, or partial stream output) came from a model
  without a current approval for the policy's profile at that virtual time — judged by the
  simulator from the bundle's approvals, not taken from the engine.
- ``routing_changes``: every change of the model serving a policy (stable scope), ``t_s`` seconds
  after the start; ``to_model`` null means the terminal action serves.
- ``faults``: per fault and policy that the faulted model was serving when the fault began:
  ``detect_s`` (fault start -> the model's first health transition out of healthy, any policy),
  ``failover_s`` (fault start -> the policy's route left the model), ``recover_s`` (fault end ->
  the route back on the model; 0 when it was already back).
- ``time_to_detect_s``, ``time_to_failover_s``, ``time_to_recover_s``: the largest of those (null
  when none happened). ``routes_not_recovered``: routes that left a model whose fault ended and were
  not back on it by the end of the run; while any is, ``time_to_recover_s`` is null (not recovered).
- ``flaps``: returns that did not hold: changes that move a policy's route back down its chain (to a
  later fallback, or the terminal action) less than ``flap_window`` (default 60 s) after the change
  that moved it up to that model (a recovery is not a flap; being ejected again right after one is).
- ``notifications``: messages notifiers would receive: each routing change and each terminal action
  times the policy's notifiers, each safe-mode change times every notifier.
- ``requests_to_dead_model``: provider calls (tries, retries and probes) made to a model while an
  outage fault held it down (``dead_model_calls``: the same per model).
- ``safe_mode``: ``breach_at_s``: the first time the fallback failure rate over the bundle's
  ``safe_mode.auto`` window (with its minimum samples) went past its threshold, recomputed from the
  requests; ``engaged_at_s``: the first time safe mode went on; ``engaged_for_breach_s``: when global
  safe mode went on for that breach (before it and still on, or the first time after it).
- ``decision_latency_us``: p50/p99 of ``Router.decide`` on the real clock (the one figure a re-run
  with the same seed may change).
- ``verdicts``: ``fallback_success_rate`` and ``hit_rate`` pass at or above their thresholds (0.95,
  0.90); ``safe_mode_within_1m`` passes when no breach happened, the bundle has no ``safe_mode.auto``,
  or safe mode was on within 60 s of the breach; ``decision_p99_under_200ms`` when p99 < 200 ms.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from routeguard.core.events import RouteChanged
from routeguard.sim.scenario import Fault
from routeguard.sim.simulator import SimRun

__all__ = ["build_report", "route_timeline"]


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _pct(values: list[int], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))])


def route_timeline(run: SimRun) -> dict[str, list[dict[str, Any]]]:
    """Per policy, the serving model's segments ``{from_s, to_s, model}`` (model null: terminal)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name, policy in run.bundle.policies.items():
        segments: list[dict[str, Any]] = [
            {"from_s": 0.0, "to_s": run.duration_s, "model": policy.primary[0].model}
        ]
        for change in (c for c in run.route_changes if c.policy == name):
            t = round(change.at - run.epoch, 3)
            if t <= segments[-1]["from_s"]:
                segments[-1]["model"] = change.to_model
                continue
            segments[-1]["to_s"] = t
            segments.append({"from_s": t, "to_s": run.duration_s, "model": change.to_model})
        out[name] = segments
    return out


def _serving_at(segments: list[dict[str, Any]], t: float) -> str | None:
    model = segments[0]["model"]
    for seg in segments:
        if seg["from_s"] <= t:
            model = seg["model"]
    return model  # type: ignore[no-any-return]


def _faults(run: SimRun, timeline: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for fault in run.scenario.faults:
        detect = _detect(run, fault)
        for policy, segments in timeline.items():
            if _serving_at(segments, fault.at_s) != fault.model:
                continue
            changes = [c for c in run.route_changes if c.policy == policy]
            left = next(
                (
                    c.at - run.epoch
                    for c in changes
                    if c.from_model == fault.model and c.at - run.epoch >= fault.at_s
                ),
                None,
            )
            recover = None
            if left is not None and fault.until_s is not None:
                back = next(
                    (
                        c.at - run.epoch
                        for c in changes
                        if c.to_model == fault.model and c.at - run.epoch >= fault.until_s
                    ),
                    None,
                )
                if back is not None:
                    recover = back - fault.until_s
                elif _serving_at(segments, fault.until_s) == fault.model:
                    recover = 0.0
            rows.append(
                {
                    "model": fault.model,
                    "kind": fault.kind.value,
                    "at_s": fault.at_s,
                    "until_s": fault.until_s,
                    "policy": policy,
                    "detect_s": _r(detect),
                    "failover_s": _r(left - fault.at_s if left is not None else None),
                    "recover_s": _r(recover),
                }
            )
    return rows


def _detect(run: SimRun, fault: Fault) -> float | None:
    for h in run.health_changes:
        t = h.at - run.epoch
        if h.model == fault.model and t >= fault.at_s and h.from_state == "healthy":
            return t - fault.at_s
    return None


def _flaps(run: SimRun) -> int:
    """Changes that move a route back down its chain (to a later candidate, or the terminal action) less
    than ``flap_window`` after it had moved up to that model: a return that did not hold."""
    window = run.scenario.thresholds.flap_window_s
    flaps = 0
    last: dict[str, RouteChanged] = {}
    for c in run.route_changes:
        prev = last.get(c.policy)
        last[c.policy] = c
        if (
            prev is None
            or prev.to_model != c.from_model
            or prev.from_model != c.to_model
            or c.at - prev.at >= window
        ):
            continue
        policy = run.bundle.policies.get(c.policy)
        if policy is None:
            continue
        chain = [*policy.primary_models, *(f.model for f in policy.fallbacks)]

        def rank(model: str | None, chain: list[str] = chain) -> int:
            return chain.index(model) if model in chain else len(chain)

        if rank(c.to_model) > rank(c.from_model):
            flaps += 1
    return flaps


def _safe_mode(run: SimRun) -> dict[str, Any]:
    auto = run.bundle.safe_mode_auto
    breach: float | None = None
    if auto is not None:
        window: deque[tuple[float, bool]] = deque()
        failed = 0
        for at, bad in sorted(run.tally.fallback_results, key=lambda r: r[0]):
            window.append((at, bad))
            failed += bad
            while window and window[0][0] < at - auto.window_s:
                failed -= window.popleft()[1]
            if len(window) >= auto.min_samples and failed / len(window) > auto.fallback_failure_rate:
                breach = at
                break
    engaged = next((c.at - run.epoch for c in run.safe_mode_changes if c.enabled), None)
    on_for_breach: float | None = (
        None  # when global safe mode was on at the breach, or first went on after it
    )
    if breach is not None:
        for c in run.safe_mode_changes:
            if c.tenant is not None:
                continue
            t = c.at - run.epoch
            if t <= breach:  # keep the start of the stretch that is still on at the breach
                on_for_breach = (t if on_for_breach is None else on_for_breach) if c.enabled else None
            elif c.enabled and on_for_breach is None:
                on_for_breach = t
                break
    return {
        "auto_configured": auto is not None,
        "breach_at_s": _r(breach),
        "engaged_at_s": _r(engaged),
        "engaged_for_breach_s": _r(on_for_breach),
        "changes": [
            {
                "t_s": _r(c.at - run.epoch),
                "enabled": c.enabled,
                "tenant": c.tenant,
                "automatic": c.automatic,
                "reason": c.reason,
            }
            for c in run.safe_mode_changes
        ],
    }


def _served_timeline(run: SimRun) -> dict[str, list[dict[str, Any]]]:
    tally = run.tally
    out: dict[str, list[dict[str, Any]]] = {}
    for (policy, index), counts in sorted(tally.buckets.items()):
        out.setdefault(policy, []).append(
            {"t_s": index * tally.bucket_s, "outcomes": dict(sorted(counts.items()))}
        )
    return out


def _largest(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row[key] is not None]
    return max(values) if values else None


def build_report(run: SimRun) -> dict[str, Any]:
    """The report as plain JSON data; identical for the same seed apart from ``decision_latency_us``."""
    tally, th = run.tally, run.scenario.thresholds
    timeline = route_timeline(run)
    faults = _faults(run, timeline)
    unrecovered = sum(
        1
        for f in faults
        if f["until_s"] is not None and f["failover_s"] is not None and f["recover_s"] is None
    )
    safe = _safe_mode(run)
    fallback_rate = tally.fallback_succeeded / tally.fallback_requests if tally.fallback_requests else 1.0
    hit_rate = tally.hits / tally.requests if tally.requests else 1.0
    p50, p99 = _pct(run.decision_latency_ns, 0.50) / 1000, _pct(run.decision_latency_ns, 0.99) / 1000
    breach = safe["breach_at_s"]
    on = safe["engaged_for_breach_s"]
    safe_ok = breach is None or (on is not None and on <= breach + th.safe_mode_within_s)
    minutes = math.ceil(run.duration_s / 60)
    checker = run.checker
    violations = checker.violations if checker is not None else []

    def verdict(ok: bool) -> str:
        return "pass" if ok else "fail"

    return {
        "scenario": run.scenario.name,
        "seed": run.scenario.seed,
        "duration_s": run.duration_s,
        "bundle_hash": run.bundle_hash,
        "requests": tally.requests,
        "served_by": dict(sorted(tally.served_by.items())),
        "succeeded": tally.succeeded,
        "failed": tally.failed,
        "terminal": dict(sorted(tally.terminal.items())),
        "fallback_requests": tally.fallback_requests,
        "fallback_success_rate": round(fallback_rate, 6),
        "hit_rate": round(hit_rate, 6),
        "unapproved_served": tally.unapproved_served,
        "routing_changes": [
            {
                "t_s": _r(c.at - run.epoch),
                "policy": c.policy,
                "from_model": c.from_model,
                "to_model": c.to_model,
                "reason": c.reason,
            }
            for c in run.route_changes
        ],
        "time_to_detect_s": _largest(faults, "detect_s"),
        "time_to_failover_s": _largest(faults, "failover_s"),
        "time_to_recover_s": None if unrecovered else _largest(faults, "recover_s"),
        "probes": list(run.probes),
        "routes_not_recovered": unrecovered,
        "flaps": _flaps(run),
        "notifications": sum(run.notifications.values()),
        "notifications_by_event": dict(sorted(run.notifications.items())),
        "decision_latency_us": {"p50": round(p50, 1), "p99": round(p99, 1)},
        "verdicts": {
            "fallback_success_rate": verdict(fallback_rate >= th.fallback_success_rate),
            "hit_rate": verdict(hit_rate >= th.hit_rate),
            "safe_mode_within_1m": verdict(safe_ok),
            "decision_p99_under_200ms": verdict(p99 < th.decision_p99_ms * 1000),
        },
        "errors": dict(sorted(tally.errors.items())),
        "partial_outputs": tally.partial_outputs,
        "human_queue": run.human_queue,
        "requests_to_dead_model": sum(c.calls_while_down for c in run.counters.values()),
        "dead_model_calls": {
            m: c.calls_while_down for m, c in sorted(run.counters.items()) if c.calls_while_down
        },
        "model_calls": {
            m: {"calls": c.calls, "failures": c.failures} for m, c in sorted(run.counters.items()) if c.calls
        },
        "faults": faults,
        "safe_mode": safe,
        "health_transitions": len(run.health_changes),
        "fallback_events": run.fallback_events,
        "canary_steps": run.canary_steps,
        "invariants": {
            "decisions_checked": checker.checked if checker is not None else 0,
            "violations": len(violations),
            "examples": [
                {
                    "invariant": v.invariant,
                    "t_s": _r(v.at - run.epoch),
                    "policy": v.policy,
                    "model": v.model,
                    "detail": v.detail,
                }
                for v in violations[:10]
            ],
        },
        "unapproved_examples": tally.unapproved,
        "route_timeline": timeline,
        "served_timeline": _served_timeline(run),
        "per_minute": [
            dict(
                zip(
                    ("minute", "succeeded", "via_fallback", "terminal", "failed"),
                    (m, *tally.minutes.get(m, [0, 0, 0, 0])),
                    strict=True,
                )
            )
            for m in range(minutes)
        ],
        "thresholds": {
            "fallback_success_rate": th.fallback_success_rate,
            "hit_rate": th.hit_rate,
            "decision_p99_ms": th.decision_p99_ms,
            "safe_mode_within_s": th.safe_mode_within_s,
            "flap_window_s": th.flap_window_s,
        },
    }
