"""report.json / report.md / report.html (and a curve chart per policy) of a ``--learned`` review.

Everything a human approver needs is in the JSON and rendered twice: what each policy would do and why, the
quality/cost curve against the threshold (table and chart, intervals and n), the classes held on the strong
arm and the reason, the held-back replay of the whole proposal, and the artifacts with their hashes.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from routeguard.review.document import Doc, render_html, render_markdown
from routeguard.review.learned_run import PolicyResult
from routeguard.review.settings import ReviewSettings

__all__ = ["build_learned_report", "write_learned_report"]

ASSUMPTIONS = (
    "Quality kept = routed quality / quality of the current (strong) model on the same tasks; cost saving = 1 - "
    "routed cost / current cost. Intervals: 95 % paired bootstrap percentile over tasks.",
    "The threshold is chosen on out-of-fold scores (each scored by a model that never saw it); the held-back "
    "tasks (chosen by prompt hash) were used neither to train nor to choose the threshold.",
    "The score weighs the expected quality loss against the money the weak arm saves on the request (see the "
    "artifact's `cost` section): the requests with the lowest expected loss per dollar go weak first.",
)


def _policy_entry(r: PolicyResult) -> dict[str, Any]:
    d = r.data
    ch = r.change
    return {
        "policy": d.policy,
        "strong": d.strong,
        "weak": d.weak,
        "classes": d.classes,
        "held": [{"task_class": k, "why": v} for k, v in sorted(d.held.items())],
        "tasks": {"paired": len(d.tasks), "learn": len(r.learn), "heldback": len(r.heldback), "trained": r.train_n},
        "weak_as_good_share": round(r.positive_share, 4) if r.positive_share is not None else None,
        "curve": [p.to_dict() for p in r.curve],
        "chosen": r.chosen.to_dict() if r.chosen is not None else None,
        "proposed": None if ch is None else {
            "threshold": round(ch.threshold, 6), "artifact": ch.artifact, "sha256": ch.sha256,
            "strong_only_classes": list(ch.held),
        },
        "escalations": r.escalations,
        "notes": r.notes,
    }


def build_learned_report(
    *,
    label: str,
    now: float,
    settings: ReviewSettings,
    config_path: str,
    input_hash: str,
    evals: dict[str, Any],
    results: list[PolicyResult],
    notes: list[str],
    replay: dict[str, Any] | None,
    proposal: dict[str, Any],
) -> dict[str, Any]:
    return {
        "kind": "learned",
        "label": label,
        "generated": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        "settings": settings.to_dict(),
        "inputs": {"bundle": config_path, "bundle_hash": input_hash, "evals": evals},
        "policies": [_policy_entry(r) for r in results],
        "escalations": [e for r in results for e in r.escalations],
        "notes": notes,
        "heldout": replay,
        "proposal": proposal,
        "assumptions": list(ASSUMPTIONS),
    }


def _iv(x: dict[str, Any] | None) -> str:
    if not x:
        return "n/a"
    return f"{x['value']:.1%} [{x['low']:.1%}, {x['high']:.1%}]"


def _document(report: dict[str, Any], charts: dict[str, Path]) -> Doc:
    doc = Doc()
    doc.h(1, f"routeguard review --learned — {report['label']}")
    doc.p(f"Generated {report['generated']} from `{report['inputs']['bundle']}` ({report['inputs']['bundle_hash']}). "
          "Nothing is published: the proposal is a draft for a person to approve.")
    h = report["heldout"]
    if h:
        doc.h(2, "Held-back replay of the whole proposal")
        doc.table(["tasks", "quality kept", "cost saving", "served by", "decision p50 / p99"],
                  [[str(h["n"]), _iv(h["quality_kept"]), _iv(h["cost_saving"]),
                    ", ".join(f"{k}: {v}" for k, v in sorted(h["served_by"].items())),
                    f"{h['decision_us']['p50']} µs / {h['decision_us']['p99']} µs"]])
    prop = report["proposal"]
    doc.p(f"Proposal: `{prop['path']}` ({prop['hash']})" if prop["path"] else "No proposal could be written.")
    if prop["findings"]:
        doc.ul([f"{f['code']} at {f['path']}: {f['message']}" for f in prop["findings"]])
    for p in report["policies"]:
        doc.h(2, f"Policy {p['policy']}: {p['strong']} / {p['weak'] or '—'}")
        if p["proposed"]:
            pr = p["proposed"]
            doc.p(f"Learned primary at threshold **{pr['threshold']:.4f}**; artifact `{pr['artifact']}` "
                  f"sha256 `{pr['sha256']}`. Tasks: {p['tasks']['trained']} trained (out-of-fold for the curve), "
                  f"{p['tasks']['heldback']} held back.")
        doc.ul(p["notes"] + [e["detail"] for e in p["escalations"]])
        if p["held"]:
            doc.p("Classes that stay on the strong arm:")
            doc.table(["task class", "why"], [[x["task_class"], x["why"]] for x in p["held"]])
        if p["curve"]:
            chosen = p["chosen"]["threshold"] if p["chosen"] else None
            doc.p("Quality and cost against the threshold (the savings frontier: any row whose lower bound meets "
                  "the tolerance is a safe choice; a higher threshold moves fewer requests):")
            at = next((i for i, c in enumerate(p["curve"]) if c["threshold"] == chosen), -99)
            rows = [c for i, c in enumerate(p["curve"]) if i % 5 == 0 or abs(i - at) <= 2]  # every 5th, and the choice
            doc.table(["threshold", "to weak", "n", "quality kept [95 %]", "cost saving [95 %]", ""],
                      [[f"{c['threshold']:.4f}", f"{c['weak_share']:.1%}", str(c["n"]), _iv(c["quality_kept"]),
                        _iv(c["cost_saving"]), "chosen" if c["threshold"] == chosen else ""] for c in rows])
            if p["policy"] in charts:
                doc.img(charts[p["policy"]], f"{p['policy']}: quality kept and cost saving against the threshold")
    if h:
        doc.h(2, "Held-back replay per class")
        doc.table(["task class", "n", "to weak", "quality strong", "quality proposed", "kept", "saving"],
                  [[c["task_class"], str(c["n"]), f"{c['weak_share']:.0%}", f"{c['quality_strong']:.3f}",
                    f"{c['quality_proposed']:.3f}", _pct(c["quality_kept"]), _pct(c["cost_saving"])]
                   for c in h["classes"]])
    doc.h(2, "Assumptions")
    doc.ul(report["assumptions"] + report["notes"])
    return doc


def _pct(x: float | None) -> str:
    return f"{x:.1%}" if x is not None else "n/a"


def _chart(p: dict[str, Any], path: Path) -> Path:
    from routeguard.review.charts import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    t = [c["threshold"] for c in p["curve"]]
    for key, colour, name in (("quality_kept", "#4c72b0", "quality kept"), ("cost_saving", "#dd8452", "cost saving")):
        ax.plot(t, [c[key]["value"] for c in p["curve"]], "-", color=colour, label=name)
        ax.fill_between(t, [c[key]["low"] for c in p["curve"]], [c[key]["high"] for c in p["curve"]],
                        color=colour, alpha=0.2)
    if p["chosen"]:
        ax.axvline(p["chosen"]["threshold"], color="black", ls="--", lw=1, label="chosen threshold")
    ax.set_xlabel("threshold (weak when score >= threshold)")
    ax.set_ylabel("share of current")
    ax.set_title(f"{p['policy']}: {p['strong']} / {p['weak']} (95 % intervals, n={p['curve'][0]['n']})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_learned_report(out_dir: Path, report: dict[str, Any], results: list[PolicyResult], *, charts: bool) -> (
    list[Path]
):
    files: list[Path] = []
    drawn: dict[str, Path] = {}
    if charts:
        for p in report["policies"]:
            if p["curve"]:
                safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", p["policy"]).strip("-.") or "policy"
                drawn[p["policy"]] = _chart(p, out_dir / f"curve-{safe}.png")
        report["charts"] = [f.name for f in drawn.values()]
        files += drawn.values()
    doc = _document(report, drawn)
    for name, text in {
        "report.json": json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n",
        "report.md": render_markdown(doc),
        "report.html": render_html(doc, f"routeguard review --learned {report['label']}"),
    }.items():
        (out_dir / name).write_text(text, encoding="utf-8")
        files.append(out_dir / name)
    return files
