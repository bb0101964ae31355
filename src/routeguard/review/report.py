"""report.json (the record), report.md and report.html (for the human who approves), and the charts."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from routeguard.review.analyze import ClassModelStats, EvalMatrix
from routeguard.review.bundle_out import ProposalBundle, bundle_hash
from routeguard.review.cluster import ClusterInfo
from routeguard.review.frontier import Frontier
from routeguard.review.load import LoadedTable, RowIssue
from routeguard.review.propose import ClassPlan, Plan, Status
from routeguard.review.settings import ReviewSettings
from routeguard.review.stats import IntArray
from routeguard.review.verify import Verification

__all__ = ["ReportInputs", "build_report", "write_outputs"]

METHOD = (
    "Evaluations are split per class into a learn half and a held-out half (seeded). Proposals are learnt "
    "on the learn half only; verification replays them on the held-out half. The first-pass held-out figure "
    "is untouched; after the adjust pass the moves rest on learn + replay evidence, so the final held-out "
    "figure is no longer independent of the decision.",
    "Candidates for a class are the models approved for its policy's profile whose clearance covers the "
    "class's data class and whose regions lie inside the profile's: privacy and residency are never traded.",
    "Quality per class × model: mean with a 95 % interval (Wilson for 0/1, bootstrap for scores).",
    "Moves to cheaper models are chosen greedily by savings per quality lost, each class's difference shrunk "
    "toward the pooled difference of the classes sharing its model pair (empirical Bayes, DerSimonian–Laird) "
    "so that small lucky classes are tried last; a move is kept only while the lower 95 % bound of overall "
    "quality kept (paired, stratified bootstrap over tasks) stays ≥ 1 − tolerance and the class loses no "
    "more than the per-class limit (point estimate).",
    "Under-served classes move to the cheapest approved model that restores quality, when significantly "
    "better (exact McNemar for 0/1, paired z-test for scores).",
    "Replay: per class McNemar and paired bootstrap (quality, cost, latency); at most two replay-and-adjust "
    "passes per class. A move that loses significantly more than the per-class limit on replay fails and "
    "its model is ruled out; then the cheaper moves are chosen again on learn + replay evidence combined and "
    "what changed is replayed; failures are reverted and listed.",
    "Tolerance is a share of baseline quality (0.05 keeps ≥ 95 %). Bad input rows are skipped and listed; "
    "the review stops when more than the max bad share of rows are bad.",
)


@dataclass(frozen=True, slots=True)
class ReportInputs:
    label: str
    now: float
    settings: ReviewSettings
    config_path: str
    input_hash: str
    evals: LoadedTable
    telemetry: LoadedTable | None
    log_issues: list[RowIssue]
    clusters: list[ClusterInfo]
    analysis: list[ClassModelStats]
    learn_stats: list[ClassModelStats]
    production: tuple[dict[str, int], list[ClassModelStats]] | None
    matrix: EvalMatrix
    held: IntArray
    agent: str | None


def _f(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


def _assumptions(evals_path: str, matrix: EvalMatrix) -> list[str]:
    out: list[str] = []
    meta = Path(evals_path + ".meta.json")
    if meta.is_file():
        try:
            out += [str(a) for a in json.loads(meta.read_text(encoding="utf-8")).get("assumptions", [])]
        except (ValueError, OSError):
            out.append(f"could not read {meta}")
    out += [f"cost of {m}: {src}" for m, src in sorted(matrix.cost_source.items())]
    return out


def _verdict(p: ClassPlan, v: Verification) -> str:
    replays = v.replays.get(p.ctx.task_class, [])
    noisy = bool(replays) and replays[-1].beyond_limit
    checked = "replay loss above the per-class limit, not significant" if noisy else "verified on replay"
    return {
        Status.MOVE_CHEAPER: f"move to {p.proposed} (over-served; {checked})",
        Status.UPGRADE: f"move to {p.proposed} (under-served: restores quality; {checked})",
        Status.KEEP: "keep" + (" (over-served, held back by the overall gate)" if p.over_served else ""),
        Status.INSUFFICIENT_DATA: "keep: too little data",
        Status.ESCALATED: f"escalate ({p.escalation.value if p.escalation else '?'}): no proposal",
        Status.UNROUTED: "not routed by this bundle",
        Status.FAILED_VERIFICATION: "keep: the proposal failed verification",
    }[p.status]


def _class_entry(
    p: ClassPlan, inputs: ReportInputs, v: Verification, policy_of: dict[str, str], total_volume: float
) -> dict[str, Any]:
    klass, m = p.ctx.task_class, inputs.matrix
    learn = {st.model: st for st in inputs.learn_stats if st.task_class == klass}
    replays = v.replays.get(klass, [])
    last = replays[-1] if replays else None
    routed = p.routed_to
    quality: dict[str, Any]
    if last is not None:
        quality = {
            "split": "held-out replay",
            "current": last.quality.baseline.to_dict(),
            "proposed": last.quality.proposal.to_dict(),
            "model": last.model,
        }
    else:
        cur = learn.get(p.ctx.current or "")
        quality = {"split": "learn", "current": cur.quality.to_dict() if cur else None, "proposed": None}
    check = p.ctx.check(routed) if routed else None
    learn_paired = p.learn_paired if p.learn_paired is not None else p.paired
    held_n = int(m.class_tasks(p.ctx.index, inputs.held).size)
    return {
        "task_class": klass,
        "policy": p.ctx.policy,
        "proposed_policy": policy_of.get(klass) if p.changed else None,
        "profile": p.ctx.profile,
        "current_model": p.ctx.current,
        "proposed_model": p.proposed if p.changed else None,
        "status": p.status.value,
        "verdict": _verdict(p, v),
        "escalation": p.escalation.value if p.escalation else None,
        "over_served": p.over_served,
        "reasons": p.reasons,
        "n": {
            "learn": p.n_learn,
            "heldout": held_n,
            "replayed": last.n if last else 0,
            "decision": p.n_evidence or p.n_learn,
        },
        "evidence": p.evidence,
        "decision": {
            name: {"paired_vs_current": pr.to_dict(), "shrunk_difference": _f(p.shrunk.get(name), 6)}
            for name, pr in sorted(p.paired.items())
        },
        "traffic_share": _f(p.ctx.volume / total_volume, 6),
        "quality": quality,
        "cost_delta_per_task_usd": last.cost.difference.to_dict() if last else None,
        "latency_delta_ms": last.latency.difference.to_dict() if last and last.latency else None,
        "learn": {
            name: {
                "n": st.n,
                "quality": st.quality.to_dict(),
                "cost_per_task_usd": _f(st.cost_per_task_usd, 9),
                "latency_p50_ms": _f(st.latency_p50_ms, 1),
                "latency_p95_ms": _f(st.latency_p95_ms, 1),
                "paired_vs_current": learn_paired[name].to_dict() if name in learn_paired else None,
            }
            for name, st in sorted(learn.items())
        },
        "replay": [r.to_dict() for r in replays],
        "privacy_residency": {
            "data_class": p.ctx.data_class,
            "model": routed,
            "clearance_ok": check is not None and "clearance_too_low" not in check.reasons,
            "residency_ok": check is not None and "region_not_allowed" not in check.reasons,
            "excluded": [c.to_dict() for c in p.ctx.candidates if not c.eligible],
        },
        "recent_change": p.ctx.recent.to_dict() if p.ctx.recent else None,
    }


def build_report(
    inputs: ReportInputs, plan: Plan, v: Verification, proposal: ProposalBundle, front: Frontier
) -> dict[str, Any]:
    s = inputs.settings
    total_volume = sum(p.ctx.volume for p in plan.classes) or 1.0
    classes = [_class_entry(p, inputs, v, proposal.policy_of, total_volume) for p in plan.classes]

    def names(*statuses: Status) -> list[str]:
        return [p.ctx.task_class for p in plan.classes if p.status in statuses]

    escalations = [
        {
            "task_class": p.ctx.task_class,
            "kind": p.escalation.value if p.escalation else "",
            "reason": p.reasons[-1],
        }
        for p in plan.classes
        if p.status is Status.ESCALATED
    ]
    return {
        "label": inputs.label,
        "generated_at": datetime.fromtimestamp(inputs.now, UTC).isoformat().replace("+00:00", "Z"),
        "settings": s.to_dict(),
        "method": list(METHOD),
        "inputs": {
            "bundle": inputs.config_path,
            "bundle_hash": inputs.input_hash,
            "agent": inputs.agent,
            "evals": inputs.evals.to_dict(),
            "telemetry": inputs.telemetry.to_dict() if inputs.telemetry else None,
            "decision_log_issues": [i.to_dict() for i in inputs.log_issues],
            "clusters": [c.to_dict() for c in inputs.clusters],
            "assumptions": _assumptions(inputs.evals.path, inputs.matrix),
        },
        "summary": {
            "classes": len(plan.classes),
            "changes": len(proposal.applied),
            "moved_cheaper": names(Status.MOVE_CHEAPER),
            "upgraded": names(Status.UPGRADE),
            "escalated": names(Status.ESCALATED),
            "failed_verification": names(Status.FAILED_VERIFICATION),
            "insufficient_data": names(Status.INSUFFICIENT_DATA),
            "unrouted": names(Status.UNROUTED),
            "learn": {
                "tasks": sum(p.n_learn for p in plan.classes),
                "quality_kept": _f(plan.learn_kept[0], 6),
                "quality_kept_lower_95": _f(plan.learn_kept[1], 6),
                "cost_saving": _f(plan.learn_saving, 6),
            },
            "adjusted": (
                {
                    "evidence": "learn + replay",
                    "quality_kept": _f(plan.adjusted[0][0], 6),
                    "quality_kept_lower_95": _f(plan.adjusted[0][1], 6),
                    "cost_saving": _f(plan.adjusted[1], 6),
                }
                if plan.adjusted
                else None
            ),
            "heldout_first_pass": v.first_pass.to_dict(),
            "heldout_final": v.final.to_dict(),
            "verification": "pass" if v.passed else "fail",
            "notes": v.notes,
        },
        "classes": classes,
        "escalations": escalations,
        "analysis": [st.to_dict() for st in inputs.analysis],
        "production": (
            {"volume": inputs.production[0], "by_class_model": [st.to_dict() for st in inputs.production[1]]}
            if inputs.production
            else None
        ),
        "frontier": front.to_dict(),
        "proposal": {
            "valid": proposal.valid,
            "hash": bundle_hash(proposal.raw) if proposal.valid else None,
            "findings": [f.to_dict() for f in proposal.findings],
            "applied": [
                {
                    "task_class": c.task_class,
                    "from_model": c.from_model,
                    "to_model": c.to_model,
                    "policy": proposal.policy_of.get(c.task_class),
                }
                for c in proposal.applied
            ],
            "dropped": [{"task_class": c.task_class, "why": why} for c, why in proposal.dropped],
        },
        "charts": [],
    }


def write_outputs(
    out_dir: Path,
    report: dict[str, Any],
    front: Frontier,
    learn_stats: list[ClassModelStats],
    plan: Plan,
    *,
    charts: bool,
) -> list[Path]:
    """Charts (optional), report.json, report.md, report.html; returns the files written."""
    from routeguard.review.document import render_html, render_markdown
    from routeguard.review.report_text import document

    files: list[Path] = []
    if charts:
        from routeguard.review.charts import class_charts, frontier_chart

        files.append(frontier_chart(front, out_dir / "frontier.png"))
        current = {p.ctx.task_class: p.ctx.current for p in plan.classes}
        proposed = {p.ctx.task_class: p.proposed if p.changed else None for p in plan.classes}
        files += class_charts(out_dir, learn_stats, current, proposed)
        report["charts"] = [f.name for f in files]
    doc = document(report, files)
    targets = {
        "report.json": json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n",
        "report.md": render_markdown(doc),
        "report.html": render_html(doc, f"routeguard review {report['label']}"),
    }
    for name, text in targets.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        files.append(path)
    return files
