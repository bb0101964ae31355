"""The human-readable report (Markdown and HTML share it), built from the report.json content."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from routeguard.review.document import Doc

__all__ = ["document"]

MAX_ISSUES_SHOWN = 50


def _pct(x: object) -> str:
    return "n/a" if not isinstance(x, int | float) else f"{100 * x:.1f}%"


def _num(x: object, nd: int = 3) -> str:
    return "n/a" if not isinstance(x, int | float) else f"{x:.{nd}f}"


def _iv(iv: Mapping[str, Any] | None, pct: bool = False, nd: int = 3) -> str:
    if not iv or iv.get("value") is None:
        return "n/a"
    f = _pct if pct else (lambda x: _num(x, nd))
    if iv.get("low") is None:
        return f(iv["value"])
    return f"{f(iv['value'])} [{f(iv['low'])}, {f(iv['high'])}]"


def _usd_1k(iv: Mapping[str, Any] | None) -> str:
    if not iv or iv.get("value") is None:
        return "n/a"
    lo, hi = iv.get("low"), iv.get("high")
    core = f"{iv['value'] * 1000:+.4f}"
    return core if lo is None or hi is None else f"{core} [{lo * 1000:+.4f}, {hi * 1000:+.4f}]"


def _cost_pair(r: Mapping[str, Any]) -> str:
    base, prop = r["baseline_cost_per_task_usd"] * 1000, r["proposal_cost_per_task_usd"] * 1000
    return f"{_num(base, 4)} → {_num(prop, 4)}"


def _summary(doc: Doc, r: Mapping[str, Any]) -> None:
    s, st = r["summary"], r["settings"]
    first, final, learn = s["heldout_first_pass"], s["heldout_final"], s["learn"]
    doc.p(
        f"**{s['changes']} routing change(s) proposed** for {s['classes']} task classes at tolerance "
        f"{_pct(st['tolerance'])} (keep ≥ {_pct(1 - st['tolerance'])} of baseline quality overall; "
        f"per-class limit {_pct(st['per_class_limit'])}). "
        f"Verification on the held-out split: **{s['verification']}**."
    )
    doc.table(
        ["figure", "learn split", "held-out, as learnt", "held-out, final (adjusted on it)"],
        [
            ["tasks", str(learn["tasks"]), str(first["tasks"]), str(final["tasks"])],
            [
                "quality kept (share of baseline) [95% CI]",
                f"{_pct(learn['quality_kept'])} (lower bound {_pct(learn['quality_kept_lower_95'])})",
                _iv(first["quality_kept"], pct=True),
                _iv(final["quality_kept"], pct=True),
            ],
            [
                "cost saving [95% CI]",
                _pct(learn["cost_saving"]),
                _iv(first["cost_saving"], pct=True),
                _iv(final["cost_saving"], pct=True),
            ],
            [
                "mean quality: baseline → proposal",
                "",
                f"{_num(first['baseline_quality'])} → {_num(first['proposal_quality'])}",
                f"{_num(final['baseline_quality'])} → {_num(final['proposal_quality'])}",
            ],
            [
                "cost per 1,000 tasks (USD): baseline → proposal",
                "",
                _cost_pair(first),
                _cost_pair(final),
            ],
            [
                "latency delta per task (ms)",
                "",
                _iv(first["latency_delta_ms"], nd=1),
                _iv(final["latency_delta_ms"], nd=1),
            ],
        ],
    )
    doc.ul([str(n) for n in s["notes"]])


def _changes(doc: Doc, r: Mapping[str, Any]) -> None:
    rows = []
    for c in r["classes"]:
        if not c["proposed_model"]:
            continue
        q = c["quality"]
        rep = c["replay"][-1] if c["replay"] else {}
        p_value = (rep.get("quality") or {}).get("mcnemar_p")
        rows.append(
            [
                f"`{c['task_class']}`",
                f"`{c['proposed_policy'] or c['policy']}`",
                f"{c['current_model']} → {c['proposed_model']}",
                f"{c['n']['learn']} / {c['n']['replayed']}",
                _iv(q.get("current")),
                _iv(q.get("proposed")),
                _num(p_value, 3),
                _usd_1k(c["cost_delta_per_task_usd"]),
                c["verdict"],
            ]
        )
    doc.h(2, "Proposed changes")
    if rows:
        doc.table(
            [
                "class",
                "policy",
                "model",
                "n learn / replay",
                "quality now (replay) [95% CI]",
                "quality proposed [95% CI]",
                "McNemar p",
                "Δ cost per 1,000 tasks (USD) [95% CI]",
                "verdict",
            ],
            rows,
        )
    else:
        doc.p("No change proposed.")


def _human(doc: Doc, r: Mapping[str, Any]) -> None:
    doc.h(2, "Needs a human (escalated: nothing proposed)")
    esc = r["escalations"]
    doc.ul([f"`{e['task_class']}` — **{e['kind']}**: {e['reason']}" for e in esc]) if esc else doc.p("None.")
    failed = [c for c in r["classes"] if c["status"] == "failed_verification"]
    doc.h(2, "Failed verification (reverted)")
    doc.ul([f"`{c['task_class']}`: {c['reasons'][-1]}" for c in failed]) if failed else doc.p("None.")


def _all_classes(doc: Doc, r: Mapping[str, Any]) -> None:
    doc.h(2, "Every class")
    rows = []
    for c in r["classes"]:
        q, pr = c["quality"], c["privacy_residency"]
        pr_text = ("ok" if pr["clearance_ok"] and pr["residency_ok"] else "BLOCKED") + (
            "; excluded " + ", ".join(f"{e['model']} ({', '.join(e['reasons'])})" for e in pr["excluded"])
            if pr["excluded"]
            else ""
        )
        rows.append(
            [
                f"`{c['task_class']}`",
                f"{c['n']['learn']}/{c['n']['heldout']}",
                _pct(c["traffic_share"]),
                str(c["current_model"]),
                _iv(q.get("current")),
                str(c["proposed_model"] or "—"),
                _iv(q.get("proposed")),
                _usd_1k(c["cost_delta_per_task_usd"]),
                _iv(c["latency_delta_ms"], nd=1),
                pr_text,
                c["verdict"],
                "; ".join(c["reasons"][-2:]),
            ]
        )
    doc.table(
        [
            "class",
            "n learn/held",
            "traffic",
            "current",
            "quality now [95% CI]",
            "proposed",
            "quality proposed [95% CI]",
            "Δ cost /1k tasks",
            "Δ latency ms",
            "privacy & residency",
            "verdict",
            "why",
        ],
        rows,
    )


def _inputs(doc: Doc, r: Mapping[str, Any]) -> None:
    doc.h(2, "Inputs and assumptions")
    inp = r["inputs"]
    tables = [t for t in (inp["evals"], inp["telemetry"]) if t]
    doc.table(
        ["file", "kind", "rows read", "used", "skipped"],
        [
            [f"`{t['path']}`", t["kind"], str(t["rows_read"]), str(t["rows_used"]), str(t["rows_skipped"])]
            for t in tables
        ],
    )
    doc.p(
        f"Bundle `{inp['bundle']}` ({inp['bundle_hash']}); "
        f"agent: {inp['agent'] or '(none: matched by task type)'}."
    )
    doc.ul([str(a) for a in inp["assumptions"]])
    issues = [i for t in tables for i in t["issues"]] + list(inp["decision_log_issues"])
    if issues:
        doc.p(f"**{len(issues)} row problem(s); those rows were skipped** (all are listed in report.json):")
        doc.table(
            ["file", "line", "column", "problem"],
            [
                [f"`{i['file']}`", str(i["line"]), str(i["column"]), str(i["problem"])]
                for i in issues[:MAX_ISSUES_SHOWN]
            ],
        )
    if inp["clusters"]:
        doc.p(
            "Tasks without a class were clustered (TF-IDF + k-means); to route a cluster the agent must send "
            "its name as `task_type`:"
        )
        doc.ul(
            [
                f"`{c['name']}`: {c['tasks']} tasks, top terms {', '.join(c['top_terms'])}"
                for c in inp["clusters"]
            ]
        )


def _proposal(doc: Doc, r: Mapping[str, Any]) -> None:
    doc.h(2, "Proposed bundle")
    p = r["proposal"]
    if p["valid"]:
        doc.p(
            f"`proposal.yaml` ({p['hash']}) passes every governance check and routes each class through "
            "the §1 policy resolution. It is **not published**: upload it as a draft (`--submit URL`), "
            "then approve and publish through the usual four-eyes flow."
        )
    else:
        doc.p("**No proposal written: the bundle does not pass the governance checks.**")
        doc.ul([f"`{f['path']}` {f['code']}: {f['message']}" for f in p["findings"]])
    doc.ul([f"`{d['task_class']}` not proposed: {d['why']}" for d in p["dropped"]])
    if r.get("submitted"):
        sub = r["submitted"]
        doc.p(f"Submitted as draft version {sub.get('version')} to `{sub.get('url')}`.")


def _savings_frontier(doc: Doc, r: Mapping[str, Any]) -> None:
    """The smallest safe change: the moves added largest saving first, so an owner can pick a point."""
    front = r.get("savings_frontier")
    if not front or len(front["steps"]) <= 1:
        return
    doc.h(2, "Savings frontier (smallest safe change)")
    doc.p(
        f"Moves added largest saving first (held-out point estimates). The proposal keeps the fewest moves that "
        f"reach {front['min_saving_share']:.0%} of the full saving within the tolerance"
        + (f"; left out: {', '.join(front['withdrawn'])}." if front["withdrawn"] else ".")
    )
    doc.table(
        ["moves", "adds", "quality kept", "cost saving"],
        [[str(st["moves"]), st["added"] or "(baseline)", f"{st['quality_kept']:.1%}", f"{st['cost_saving']:.1%}"]
         for st in front["steps"]],
    )


def document(r: Mapping[str, Any], files: list[Path]) -> Doc:
    doc = Doc()
    doc.h(1, f"Routing review {r['label']}")
    doc.p("This review never changes production routing. It proposes; a human approves.")
    _summary(doc, r)
    _changes(doc, r)
    _savings_frontier(doc, r)
    _human(doc, r)
    pngs = [f for f in files if f.suffix == ".png"]
    if pngs:
        doc.h(2, "Charts")
        for f in pngs:
            alt = (
                "overall quality vs cost (held-out): baseline, proposal, single-model routings, "
                "per-class oracle"
                if f.name == "frontier.png"
                else f"per-class quality vs cost ({f.stem})"
            )
            doc.img(f, alt)
    _all_classes(doc, r)
    _proposal(doc, r)
    _inputs(doc, r)
    doc.h(2, "Method")
    doc.ul([str(m) for m in r["method"]])
    st = r["settings"]
    doc.p("Settings: " + ", ".join(f"{k}={v}" for k, v in st.items()))
    return doc
