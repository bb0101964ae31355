"""Invariant 8 as a property: a learned primary only ever chooses between its two arms, and the per-prompt score
never widens what a request may reach (data class, region, safe mode, approvals, health)."""

from __future__ import annotations

from dataclasses import replace

from bundles import DATA_CLASSES, NOW, approve, health, model, table
from hypothesis import given, settings
from hypothesis import strategies as st

from routeguard.core.context import RouteContext, SafeMode
from routeguard.core.decision import DecisionStatus
from routeguard.core.engine import decide

STATES = ("healthy", "degraded", "unhealthy", "stale")
REGIONS = ("eu", "us")


@st.composite
def scenario(draw: st.DrawFn) -> tuple[dict, RouteContext, SafeMode, dict]:
    arms = {}
    for name in ("strong", "weak"):
        arms[name] = model(
            "text",
            clearance=draw(st.sampled_from(DATA_CLASSES)),
            regions=draw(st.sampled_from([["eu"], ["us"], ["eu", "us"]])),
            trusted=draw(st.booleans()),
        )
    approvals = [approve(n, expires=draw(st.sampled_from(["2099-12-31", "2020-01-01"]))) for n in arms]
    raw = {
        "models": arms,
        "profiles": {"p": {"requires": ["text"], "data_class": "public"}},
        "approvals": approvals,
        "policies": {"agent": {"profile": "p", "primary": {"learned": {
            "strong": "strong", "weak": "weak", "artifact": "a.json", "sha256": "0" * 64,
            "threshold": draw(st.floats(0.0, 1.0)),
        }}}},
    }
    body: dict = {"agent": "agent", "prompt": "x"}
    if draw(st.booleans()):
        body["data_class"] = draw(st.sampled_from(DATA_CLASSES))
    if draw(st.booleans()):
        body["region"] = draw(st.sampled_from(REGIONS))
    score = draw(st.one_of(st.none(), st.floats(0.0, 1.0)))
    ctx = replace(RouteContext.from_dict(body, trace_id="t"), score=score)
    safe = SafeMode(global_on=draw(st.booleans()))
    states = {n: draw(st.sampled_from(STATES)) for n in arms}
    return raw, ctx, safe, states


def _allowed(raw: dict, name: str, ctx: RouteContext, safe: SafeMode) -> bool:
    m = raw["models"][name]
    approved = any(a["model"] == name and a["expires"] > "2026" for a in raw["approvals"])
    rank = DATA_CLASSES.index
    need = rank(ctx.data_class) if ctx.data_class else 0
    return (
        approved
        and rank(m["clearance"]) >= need
        and (ctx.region is None or ctx.region in m["regions"])
        and (m["trusted"] or not safe.global_on)
    )


@settings(max_examples=400, deadline=None)
@given(scenario())
def test_a_learned_primary_stays_within_its_two_governed_arms(case: tuple) -> None:
    raw, ctx, safe, states = case
    tbl = table(raw)
    d = decide(ctx, tbl, health(states), safe, NOW)
    if d.status is DecisionStatus.TERMINAL:
        assert d.model is None
    else:
        assert d.model in ("strong", "weak")
        assert _allowed(raw, d.model, ctx, safe)
    # the score never widens: whatever it is, the model chosen is one some score-free request could reach
    reachable = {decide(replace(ctx, score=s), tbl, health(states), safe, NOW).model for s in (None, 0.0, 1.0)}
    assert d.model in reachable
    if ctx.score is None or ctx.score < tbl.bundle.policies["agent"].learned.threshold:  # type: ignore[union-attr]
        assert d.model != "weak" or not _allowed(raw, "strong", ctx, safe) or states["strong"] != "healthy"
