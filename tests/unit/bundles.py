"""Bundle builders and hypothesis strategies shared by the core unit tests.

Builders return plain data (what a YAML file would hold) so every test goes through ``parse_bundle``
exactly like a real bundle. ``base()`` is the smallest clean bundle: one policy ``agent`` on profile
``p`` with primary ``primary`` and fallback ``backup``; tests copy it and break one thing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from hypothesis import strategies as st

from routeguard.core.checks import check_bundle
from routeguard.core.context import RouteContext, SafeMode
from routeguard.core.decision import Decision
from routeguard.core.engine import CanaryRamp, decide
from routeguard.core.findings import BundleError, Finding
from routeguard.core.health_view import HealthState, ModelHealth, StaticHealth
from routeguard.core.parse import parse_bundle
from routeguard.core.table import RoutingTable, compile_bundle, content_hash

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp()
FAR = "2099-12-31"
DATA_CLASSES = ("public", "internal", "confidential", "restricted")

Raw = dict[str, Any]


def ts(text: str) -> float:
    """Epoch seconds of an ISO timestamp (UTC when no zone is given)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def model(*caps: str, clearance: str = "restricted", regions: list[str] | None = None, trusted: bool = True,
          **extra: Any) -> Raw:
    out: Raw = {
        "provider": "test",
        "endpoint": {"type": "fake"},
        "capabilities": list(caps or ("text",)),
        "clearance": clearance,
        "regions": regions if regions is not None else ["eu"],
        "trusted": trusted,
    }
    out.update(extra)
    return out


def approve(name: str, profile: str = "p", expires: str | None = FAR) -> Raw:
    out: Raw = {"model": name, "profile": profile, "by": "governance", "evidence": f"EV-{name}"}
    if expires is not None:
        out["expires"] = expires
    return out


def arms(**weights: int) -> list[Raw]:
    """Weighted A/B arms: ``arms(primary=90, next=10)``."""
    return [{"model": name, "weight": weight} for name, weight in weights.items()]


def base() -> Raw:
    """A fresh copy of the smallest clean bundle."""
    return copy.deepcopy(_BASE)


_BASE: Raw = {
    "models": {
        "primary": model("text", "structured_output", cost={"input_per_1m": 1.0, "output_per_1m": 2.0}),
        "backup": model("text", cost={"input_per_1m": 0.5, "output_per_1m": 1.0}),
    },
    "profiles": {
        "p": {"requires": ["text"], "capabilities": ["text", "structured_output"],
              "data_class": "confidential", "regions": ["eu"]},
    },
    "approvals": [approve("primary"), approve("backup")],
    "policies": {"agent": {"profile": "p", "primary": "primary", "fallbacks": ["backup"]}},
}


def findings(raw: Raw, now: float = NOW) -> list[Finding]:
    """Every finding for ``raw``: schema findings from parsing, else the governance checks."""
    try:
        bundle = parse_bundle(raw)
    except BundleError as exc:
        return exc.findings
    return check_bundle(bundle, now)


def pairs(found: list[Finding]) -> set[tuple[str, str]]:
    return {(f.code, f.path) for f in found}


def table(raw: Raw, version: int | None = 1) -> RoutingTable:
    return compile_bundle(parse_bundle(raw), content_hash=content_hash(raw), version=version)


def health(states: Mapping[str, HealthState | ModelHealth | str] | None = None) -> StaticHealth:
    return StaticHealth({m: HealthState(s) if isinstance(s, str) else s for m, s in (states or {}).items()})


def route(
    raw: Raw | RoutingTable,
    states: Mapping[str, HealthState | ModelHealth | str] | None = None,
    *,
    safe: bool | SafeMode = False,
    now: float = NOW,
    canary: CanaryRamp | None = None,
    failures: Mapping[str, str] | None = None,
    trace_id: str = "trace-1",
    **ctx: Any,
) -> Decision:
    """Decide for a request under ``raw``; ``agent`` defaults to ``"agent"`` (``agent=None`` sends none)."""
    tbl = raw if isinstance(raw, RoutingTable) else table(raw)
    body = {k: v for k, v in {"agent": "agent", **ctx}.items() if v is not None}  # agent=None: no agent
    context = RouteContext.from_dict(body, trace_id=trace_id)
    if failures:
        context = replace(context, failures=dict(failures))
    mode = safe if isinstance(safe, SafeMode) else SafeMode(global_on=safe)
    return decide(context, tbl, health(states), mode, now, canary)


def reasons(decision: Decision) -> list[tuple[str, str]]:
    return [(r.model, r.reason) for r in decision.rejected]


# ----------------------------------------------------------------------------------------------------
# Hypothesis strategies: random bundles (valid and invalid), health pictures and request contexts.
#
# Each record (a model, a profile, a policy, a fallback, a request, a health state) is ONE integer draw,
# decoded in mixed radix; option 0 of every field is the simplest, so shrinking still simplifies. A draw
# costs tens of microseconds in hypothesis, so one draw per field would make the 2,000-example run slow.
# ----------------------------------------------------------------------------------------------------

CAPS = ("text", "structured_output", "tool_use", "code_execution", "vision")
MODALITIES = ("text", "image", "audio")
REGIONS = ("eu", "us", "ap")
LANGUAGES = ("en", "de", "fr")
TENANTS = ("acme", "globex", "initech")
ERROR_CLASSES = ("timeout", "rate_limit", "server_error", "auth", "content_filter")
TRIGGERS = ("unavailable", "degraded", "retryable", "timeout", "auth")
ACTIONS = ("suspend", "human_queue", "read_only", "static_response")
GHOST = "ghost"  # a model name no catalogue holds

START = ts("2025-01-01")
END = ts("2029-01-01")
FIRST_EXPIRY = date(2025, 3, 1)
EXPIRY_DAYS = (date(2028, 10, 1) - FIRST_EXPIRY).days


def masks(items: tuple[str, ...], min_size: int = 0) -> tuple[list[str], ...]:
    """Every sub-list of ``items`` with at least ``min_size`` members, smallest first."""
    subsets = ([x for i, x in enumerate(items) if mask >> i & 1] for mask in range(2 ** len(items)))
    return tuple(sorted((s for s in subsets if len(s) >= min_size), key=len))


def often(options: Sequence[Any], share: float, absent: Any = None) -> tuple[Any, ...]:
    """``options`` present with about ``share`` probability, else ``absent`` (which shrinks first)."""
    n_absent = round(len(options) * (1 - share) / share)
    return (absent,) * n_absent + tuple(options)


_SCRAMBLE = 2**61 - 1  # a prime: coprime with every record size


def record(*fields: tuple[str, Sequence[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """One integer draw decoded into ``{field: option}``."""
    total = 1
    for _, options in fields:
        total *= len(options)

    def decode(code: int) -> dict[str, Any]:
        # hypothesis favours small integers; a bijective scramble (0 stays 0, the simplest record) spreads
        # them evenly over every field instead of leaving the high-order fields at their first option
        code = code * _SCRAMBLE % total
        out = {}
        for name, options in fields:
            code, i = divmod(code, len(options))
            out[name] = options[i]
        return out

    return st.integers(0, total - 1).map(decode)


_BOOL = (False, True)
_MODEL = record(
    ("capabilities", masks(CAPS)), ("modalities", masks(MODALITIES, 1)), ("clearance", DATA_CLASSES),
    ("trusted", _BOOL), ("cost_in", (0.0, 0.5, 3.0, 30.0)), ("cost_out", (0.0, 1.5, 15.0, 60.0)),
    ("regions", often(masks(REGIONS, 1), 0.5)), ("languages", often(masks(LANGUAGES, 1), 0.5)),
    ("context_window", often((1000, 8000, 128000), 0.5)), ("rpm", often((1, 50, 600), 0.25)),
)
_PROFILE = record(
    ("requires", masks(CAPS[:2])), ("data_class", DATA_CLASSES), ("capabilities", often(masks(CAPS), 0.75)),
    ("regions", often(masks(REGIONS, 1), 0.5)),
)
_APPROVAL = record(("kind", ("dated", "dated", "dated", "dated", "open", "none")),
                   ("day", range(EXPIRY_DAYS)))
_FALLBACK = record(("index", range(12)), ("on", often(masks(TRIGGERS, 1), 0.5)),
                   ("after", often(("30s", "2m", "10m"), 0.25)))
_POLICY = record(
    ("ghosts", often((True,), 0.1, False)), ("bad_profile", often((True,), 0.05, False)),
    ("profile", range(2)),
    ("ab", often((True,), 0.25, False)), ("primary", range(12)), ("arms", range(1, 2**7)),
    ("fallbacks", range(4)), ("action", ACTIONS), ("budget", often((0.0001, 0.01, 1.0), 0.5)),
    ("canary", often((10, 25, 50), 0.25)), ("overrides", often(range(1, 16), 0.25, 0)),
)
_WEIGHTS = st.tuples(st.integers(1, 100), st.integers(0, 100), st.integers(0, 100))
_TIDY = record(("tidy", range(3)), ("skip", range(2**24)), ("open", range(2**24)))


def _draw_model(draw: st.DrawFn) -> Raw:
    r = draw(_MODEL)
    out: Raw = {
        "provider": "p",
        "endpoint": {"type": "fake"},
        "capabilities": r["capabilities"],
        "modalities": r["modalities"],
        "clearance": r["clearance"],
        "trusted": r["trusted"],
        "cost": {"input_per_1m": r["cost_in"], "output_per_1m": r["cost_out"]},
    }
    for key in ("regions", "languages", "context_window"):
        if r[key] is not None:
            out[key] = r[key]
    if r["rpm"] is not None:
        out["limits"] = {"rpm": r["rpm"]}
    return out


def _draw_profile(draw: st.DrawFn) -> Raw:
    r = draw(_PROFILE)
    return {k: v for k, v in r.items() if v is not None}


def _draw_policy(draw: st.DrawFn, models: tuple[str, ...], profiles: tuple[str, ...], others: tuple[str, ...]
                 ) -> Raw:
    r = draw(_POLICY)
    names = (*models, GHOST) if r["ghosts"] else models
    out: Raw = {"profile": "no-such-profile" if r["bad_profile"] else profiles[r["profile"] % len(profiles)]}
    if r["ab"]:
        chosen = [n for i, n in enumerate(names) if r["arms"] >> i & 1][:3]
        chosen += [n for n in names if n not in chosen][: max(0, 2 - len(chosen))]
        weights = draw(_WEIGHTS)
        out["primary"] = [{"model": m, "weight": w} for m, w in zip(chosen, weights, strict=False)]
    else:
        out["primary"] = names[r["primary"] % len(names)]
    fallbacks = []
    for _ in range(r["fallbacks"]):
        f = draw(_FALLBACK)
        fb: Raw = {"model": names[f["index"] % len(names)]}
        if f["on"] is not None:
            fb["on"] = f["on"]
        if f["after"] is not None:
            fb["after"] = f["after"]
        fallbacks.append(fb)
    out["fallbacks"] = fallbacks
    terminal: Raw = {"action": r["action"]}
    if r["action"] == "human_queue":
        terminal["queue"] = "humans"
    if r["action"] == "static_response":
        terminal["response"] = "Service unavailable."
    out["terminal"] = terminal
    if r["budget"] is not None:
        out["budget"] = {"max_usd_per_request": r["budget"]}
    if r["canary"] is not None:
        out["canary"] = {"percent": r["canary"], "step": "30s"}
    if others and r["overrides"]:
        targets = (*others, "no-such-policy")
        out["overrides"] = [t for i, t in enumerate(targets) if r["overrides"] >> i & 1][:2]
    return out


@st.composite
def bundles(draw: st.DrawFn) -> Raw:
    """A random bundle that parses; governance breaches of every kind are frequent, clean ones occur too."""
    sizes = draw(record(("models", range(2, 7)), ("profiles", range(1, 3)), ("policies", range(1, 4))))
    model_names = tuple(f"m{i}" for i in range(sizes["models"]))
    profile_names = tuple(f"p{i}" for i in range(sizes["profiles"]))
    policy_names = tuple(f"a{i}" for i in range(sizes["policies"]))
    approvals = []
    for m in (*model_names, GHOST):
        for p in profile_names:
            a = draw(_APPROVAL)
            if a["kind"] == "none" or (m == GHOST and a["kind"] != "open"):
                continue  # unapproved
            expires = (FIRST_EXPIRY + timedelta(days=a["day"])).isoformat() if a["kind"] == "dated" else None
            approvals.append(approve(m, p, expires))
    raw = {
        "models": {m: _draw_model(draw) for m in model_names},
        "profiles": {p: _draw_profile(draw) for p in profile_names},
        "approvals": approvals,
        "policies": {
            a: _draw_policy(draw, model_names, profile_names, tuple(o for o in policy_names if o != a))
            for a in policy_names
        },
    }
    tidy = draw(_TIDY)
    if tidy["tidy"] < 2:
        _tidy(raw, tidy["skip"], tidy["open"])
    return raw


def _tidy(raw: Raw, skip: int, open_ended: int) -> None:
    """Repair most (not all) breaches, so that near-valid bundles, where fallbacks really serve, are common.

    ``skip`` and ``open_ended`` hold two bits per chain entry: an entry whose ``skip`` bits are both set
    stays as drawn; an approval added for the others expires in mid-2027 when both its ``open_ended``
    bits are clear, else never.
    """
    models = raw["models"]
    if "no-such-profile" in {p["profile"] for p in raw["policies"].values()} and skip & 1:
        for policy in raw["policies"].values():
            policy["profile"] = next(iter(raw["profiles"]))
    entry = 0
    for policy in raw["policies"].values():
        profile = raw["profiles"].get(policy["profile"])
        if profile is None:
            continue
        if "capabilities" in profile:
            profile["capabilities"] = sorted(set(profile["capabilities"]) | set(profile["requires"]))
        arms = policy_arms(policy)
        chain = [*arms, *(f["model"] for f in policy["fallbacks"])]
        for i, name in enumerate(chain):
            entry = (entry + 1) % 12
            bits = 2 * entry
            m = models.get(name)
            if m is None or (skip >> bits & 3) == 3:
                continue
            caps = set(m["capabilities"]) | set(profile["requires"])
            if "capabilities" in profile:
                caps &= set(profile["capabilities"])
            if i >= len(arms):
                for arm in arms:
                    caps &= set(models[arm]["capabilities"]) if arm in models else caps
            m["capabilities"] = sorted(caps)
            if DATA_CLASSES.index(m["clearance"]) < DATA_CLASSES.index(profile["data_class"]):
                m["clearance"] = profile["data_class"]
            if "regions" in profile:
                m["regions"] = list(profile["regions"])
            expires = None if open_ended >> bits & 3 else "2027-06-30"
            raw["approvals"].append(approve(name, policy["profile"], expires))


def policy_arms(policy: Raw) -> list[str]:
    """The model names of a plain policy's primary arms."""
    primary = policy["primary"]
    return [primary] if isinstance(primary, str) else [a["model"] for a in primary]


_STATES = tuple(HealthState)
_HEALTH = record(
    ("present", _BOOL), ("state", (HealthState.HEALTHY, *_STATES)),
    ("since", (float("inf"), 0.0, 10.0, 45.0, 90.0, 700.0)), ("p95", (None, None, 0.05, 0.8, 6.0)),
    ("admitted", _BOOL), ("rpm", (0, 0, 40, 1000)), ("tokens", (0, 10_000)),
)


def _model_health(h: dict[str, Any], now: float) -> ModelHealth:
    return ModelHealth(
        h["state"],
        since=now - h["since"],  # inf: since forever
        detail=f"{h['state'].value} (test)",
        p95_latency_s=h["p95"],
        probe_admitted=h["admitted"],
        requests_last_min=h["rpm"],
        tokens_last_min=h["tokens"],
    )


@cache
def _pair_mask(n: int) -> st.SearchStrategy[int]:
    """Which models also get a health state of their own under one policy (0, most often: none)."""
    return record(("mask", often(range(1, 2**n), 0.5, 0))).map(lambda r: int(r["mask"]))


def _draw_health(draw: st.DrawFn, raw: Raw, now: float) -> StaticHealth:
    names = (*raw["models"], GHOST)
    by_model = {}
    for m in names:
        h = draw(_HEALTH)
        if h["present"]:
            by_model[m] = _model_health(h, now)
    by_pair = {}
    for policy in raw["policies"]:
        pairs_mask = draw(_pair_mask(len(names)))
        for m in [n for i, n in enumerate(names) if pairs_mask >> i & 1][:2]:
            by_pair[(policy, m)] = _model_health(draw(_HEALTH), now)
    return StaticHealth(by_model, by_pair)


_CONTEXT = record(
    ("nobody", often((True,), 0.05, False)), ("agent", range(3)), ("tenant", often(TENANTS, 0.5)),
    ("data_class", often(DATA_CLASSES, 0.5)), ("secret", often((True,), 0.05, False)),
    ("region", often(REGIONS, 0.2)), ("language", often(LANGUAGES, 0.2)),
    ("modalities", often(masks(MODALITIES, 1), 0.2)), ("capabilities", often(masks(CAPS, 1), 0.2)),
    ("tokens_in", often((0, 500, 500, 6000, 6000, 200_000), 0.5)), ("tokens_out", (0, 300, 4000)),
    ("sla_ms", often((100, 2000, 30000), 0.2)), ("budget_usd", often((0.00001, 0.01, 5.0), 0.2)),
    ("override", often(range(4), 1 / 6)), ("failed", often(range(1, 2**6), 0.2, 0)),
    ("errors", range(len(ERROR_CLASSES) ** 2)), ("mode", ("none", "one", "one", "all")), ("which", range(8)),
)
_CONSTRAINTS = (
    "region", "language", "modalities", "capabilities", "sla_ms", "budget_usd", "data_class", "failed"
)
_SITUATION = record(
    ("safe_global", often((True,), 0.1, False)), ("safe_tenants", often(masks(TENANTS, 1), 0.25, [])),
    ("canary", often((True,), 0.25, False)), ("ramp_from", range(6)), ("ramp_to", range(6)),
    ("ramp_age", (0.0, 40.0, 100.0, 1000.0)), ("trace", range(10_000)),
)
_NOW = st.floats(START, END, allow_nan=False)


def _draw_context(draw: st.DrawFn, raw: Raw) -> tuple[Raw, dict[str, str]]:
    r = draw(_CONTEXT)
    if r["mode"] != "all":  # most requests carry none or one of the constraints, so that models get chosen
        kept = _CONSTRAINTS[r["which"]] if r["mode"] == "one" else None
        r.update({k: (0 if k == "failed" else None) for k in _CONSTRAINTS if k != kept})
    agents = tuple(raw["policies"])
    ctx: Raw = {"agent": "nobody" if r["nobody"] else agents[r["agent"] % len(agents)]}
    for key in ("tenant", "region", "language", "modalities", "capabilities", "sla_ms", "budget_usd"):
        if r[key] is not None:
            ctx[key] = r[key]
    if r["data_class"] is not None:
        ctx["data_class"] = "secret" if r["secret"] else r["data_class"]
    if r["tokens_in"] is not None:
        ctx["estimated_tokens"] = {"input": r["tokens_in"], "output": r["tokens_out"]}
    if r["override"] is not None:
        targets = (*agents, "no-such-policy")
        ctx["metadata"] = {"policy": targets[r["override"] % len(targets)]}
    names = tuple(raw["models"])
    failed = [n for i, n in enumerate(names) if r["failed"] >> i & 1][:2]
    errors = divmod(r["errors"], len(ERROR_CLASSES))
    return ctx, {m: ERROR_CLASSES[e] for m, e in zip(failed, errors, strict=False)}


Situation = tuple[Raw, dict[str, str], StaticHealth, SafeMode, float, "CanaryRamp | None", str]


@st.composite
def situations(draw: st.DrawFn, raw: Raw) -> Situation:
    """One request against ``raw``: context (plain data), failed attempts (model -> error class), health,
    safe mode, now, canary ramp, trace id."""
    now = draw(_NOW)
    ctx, failures = _draw_context(draw, raw)
    r = draw(_SITUATION)
    safe = SafeMode(global_on=r["safe_global"], tenants=frozenset(r["safe_tenants"]))
    canary = None
    if r["canary"]:
        names = tuple(raw["models"])
        canary = CanaryRamp(names[r["ramp_from"] % len(names)], names[r["ramp_to"] % len(names)],
                            now - r["ramp_age"])
    return ctx, failures, _draw_health(draw, raw, now), safe, now, canary, f"trace-{r['trace']}"
