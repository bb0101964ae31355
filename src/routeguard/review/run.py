"""The review loop end to end: read what happened, propose, verify by replay, write the proposal and report.

It never changes production routing: the output is a bundle file, a report, a decision-log line and (with
``submit_url``) a *draft* policy version for a human to approve.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from routeguard.config.load import load_bundle
from routeguard.review.analyze import build_matrix, describe, split_tasks, telemetry_summary
from routeguard.review.bundle_out import Change, ProposalBundle, build_proposal, bundle_hash, dump_yaml
from routeguard.review.candidates import build_contexts
from routeguard.review.cluster import assign_clusters
from routeguard.review.frontier import frontier
from routeguard.review.history import recent_changes
from routeguard.review.load import LoadedTable, Record, load_records
from routeguard.review.propose import Plan, Status, propose
from routeguard.review.report import ReportInputs, build_report, write_outputs
from routeguard.review.settings import ReviewSettings
from routeguard.review.smallest import smallest_change
from routeguard.review.submit import SubmitError, submit_draft
from routeguard.review.verify import OverallReplay, Verification, replay_totals, verify

__all__ = ["STEPS", "ReviewResult", "run_review"]

STEPS = ("load", "analyse", "propose", "verify", "bundle", "report")
Progress = Callable[[str], None]


@dataclass(slots=True)
class ReviewResult:
    report_dir: Path
    proposal_path: Path | None  # None when no bundle passing every check could be written
    report: dict[str, Any]  # the content of report.json
    changes: list[Change]
    heldout_first_pass: OverallReplay  # the proposal as learnt, replayed on the held-out split (untouched)
    heldout_final: OverallReplay  # after the replay-and-adjust passes
    verification_passed: bool
    submitted: dict[str, Any] | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def quality_kept(self) -> float:
        return self.heldout_final.kept.value

    @property
    def cost_saving(self) -> float:
        return self.heldout_final.saving.value


def _label(now: float, digest: str) -> str:
    return "review-" + datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + digest[7:15]


def _volumes(records: list[Record], telemetry: LoadedTable | None) -> dict[str, float]:
    if telemetry is not None:
        return {k: float(v) for k, v in Counter(r.task_class or "" for r in telemetry.records).items()}
    tasks = {(r.task_id, r.task_class or "") for r in records}
    return {k: float(v) for k, v in Counter(c for _, c in tasks).items()}


def _data_classes(
    matrix_classes: tuple[str, ...],
    observed: tuple[str | None, ...],
    telemetry: LoadedTable | None,
    rank: dict[str, int],
) -> list[str | None]:
    out = list(observed)
    if telemetry is not None:
        pos = {c: i for i, c in enumerate(matrix_classes)}
        for r in telemetry.records:
            i = pos.get(r.task_class or "")
            if i is not None and r.data_class and rank.get(r.data_class, -1) > rank.get(out[i] or "", -1):
                out[i] = r.data_class
    return out


def run_review(
    config_path: str | Path,
    evals_path: str | Path,
    report_dir: str | Path,
    telemetry_path: str | Path | None = None,
    tolerance: float = 0.05,
    seed: int = 0,
    *,
    settings: ReviewSettings | None = None,
    agent: str | None = None,
    submit_url: str | None = None,
    decision_log: str | Path | None = None,
    now: float | None = None,
    charts: bool = True,
    progress: Progress | None = None,
) -> ReviewResult:
    """Review ``evals_path`` (and ``telemetry_path``) against the bundle at ``config_path``.

    Writes proposal.yaml, report.{json,md,html}, charts and a decision-log line to ``report_dir``.

    ``settings`` overrides ``tolerance`` and ``seed`` when given. Raises ``BundleError`` for an unreadable
    bundle and ``ReviewInputError`` for unusable inputs (every problem listed).
    """
    s = settings or ReviewSettings(tolerance=tolerance, seed=seed)
    now = time.time() if now is None else now
    step = progress or (lambda _name: None)
    out_dir = Path(report_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(decision_log) if decision_log is not None else out_dir / "decision-log.jsonl"

    step("load")
    loaded = load_bundle(Path(config_path))
    bundle, raw = loaded.bundle, loaded.raw
    known = frozenset(bundle.data_classes)
    evals = load_records(evals_path, "evals", known_data_classes=known, max_bad_share=s.max_bad_share)
    telemetry = None
    if telemetry_path is not None:
        telemetry = load_records(
            telemetry_path, "telemetry", known_data_classes=known, max_bad_share=s.max_bad_share
        )
    records, clusters, cluster_issues = assign_clusters(evals.records, seed=s.seed, label=evals.path)
    evals.issues.extend(cluster_issues)

    step("analyse")
    rng = np.random.default_rng(s.seed)
    rank = {c: i for i, c in enumerate(bundle.data_classes)}
    matrix = build_matrix(records, {n: m.cost for n, m in bundle.models.items()}, rank)
    recent, log_issues = recent_changes(
        telemetry.records if telemetry else [], log_path, now, s.flap_window_s
    )
    evaluated: dict[str, set[str]] = {}
    for r in records:
        evaluated.setdefault(r.task_class or "", set()).add(r.model)
    contexts = build_contexts(
        bundle,
        matrix.classes,
        {k: sorted(v) for k, v in evaluated.items()},
        _data_classes(matrix.classes, matrix.data_class, telemetry, rank),
        _volumes(records, telemetry),
        recent,
        agent=agent,
        now=now,
        expiry_window_s=s.expiry_window_s,
    )
    learn, held = split_tasks(matrix, s.holdout, s.seed)
    analysis = describe(matrix, None, rng, s.resamples)
    learn_stats = describe(matrix, learn, rng, s.resamples)
    production = telemetry_summary(telemetry.records, rng, s.resamples) if telemetry else None

    step("propose")
    plan = propose(matrix, learn, contexts, s)

    step("verify")
    verification = verify(plan, matrix, held, s)
    moves, withdrawn = smallest_change(plan, matrix, held, s)
    if withdrawn:
        verification = replace(verification, final=replay_totals(plan, matrix, held, s))

    step("bundle")
    label = _label(now, loaded.content_hash)
    proposal = _proposal(plan, raw, bundle, agent, now, label)
    if proposal.dropped:
        verification = _after_drops(plan, proposal, matrix, held, s, verification)
    front = frontier(plan, matrix, held)

    step("report")
    inputs = ReportInputs(
        label=label,
        now=now,
        settings=s,
        config_path=str(config_path),
        input_hash=loaded.content_hash,
        evals=evals,
        telemetry=telemetry,
        log_issues=log_issues,
        clusters=clusters,
        analysis=analysis,
        learn_stats=learn_stats,
        production=production,
        matrix=matrix,
        held=held,
        agent=agent,
    )
    report = build_report(inputs, plan, verification, proposal, front)
    report["savings_frontier"] = {
        "min_saving_share": s.min_saving_share,
        "withdrawn": withdrawn,
        "steps": [st.to_dict() for st in moves],
    }
    proposal_path = out_dir / "proposal.yaml" if proposal.valid else None
    if proposal_path is not None:
        header = (
            f"# Proposed by routeguard review ({label}); NOT published. See report.md.\n"
            f"# Input bundle {loaded.content_hash}\n"
        )
        proposal_path.write_text(dump_yaml(proposal.raw, header), encoding="utf-8")
    report["proposal"]["path"] = str(proposal_path) if proposal_path else None
    submitted = None
    if submit_url and proposal_path is not None:
        try:
            submitted = submit_draft(submit_url, proposal.raw, label)
        except SubmitError as exc:
            submitted = {"url": submit_url, "label": label, "error": str(exc), "http_status": exc.status}
    report["submitted"] = submitted
    files = write_outputs(out_dir, report, front, learn_stats, plan, charts=charts)
    _append_log(log_path, report, proposal, now, label, submitted)
    return ReviewResult(
        report_dir=out_dir,
        proposal_path=proposal_path,
        report=report,
        changes=proposal.applied,
        heldout_first_pass=verification.first_pass,
        heldout_final=verification.final,
        verification_passed=verification.passed,
        submitted=submitted,
        files=[*files, *([proposal_path] if proposal_path else []), log_path],
    )


def _proposal(
    plan: Plan, raw: dict[str, Any], bundle: Any, agent: str | None, now: float, label: str
) -> ProposalBundle:
    changes = [
        Change(p.ctx.task_class, p.ctx.policy or "", p.ctx.current or "", p.proposed or "", p.status.value)
        for p in plan.classes
        if p.changed
    ]
    routes = {
        p.ctx.task_class: p.routed_to or "" for p in plan.classes if p.ctx.policy and not p.ctx.blockers
    }
    proposal = build_proposal(raw, bundle, changes, routes=routes, agent=agent, now=now, label=label)
    dropped = {c.task_class: why for c, why in proposal.dropped}
    for p in plan.classes:
        if p.ctx.task_class in dropped:
            p.reasons.append(
                f"not proposed: the change fails governance checks ({dropped[p.ctx.task_class]})"
            )
            p.status, p.proposed = Status.KEEP, None
    return proposal


def _after_drops(
    plan: Plan,
    proposal: ProposalBundle,
    matrix: Any,
    held: Any,
    s: ReviewSettings,
    verification: Verification,
) -> Verification:
    """Re-figure the held-out totals for what is actually proposed after governance drops."""
    from routeguard.review.verify import replay_totals

    return replace(verification, final=replay_totals(plan, matrix, held, s))


def _append_log(
    path: Path,
    report: dict[str, Any],
    proposal: ProposalBundle,
    now: float,
    label: str,
    submitted: dict[str, Any] | None,
) -> None:
    import json

    entry = {
        "ts": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
        "kind": "review.proposal",
        "status": "proposed",
        "label": label,
        "input_hash": report["inputs"]["bundle_hash"],
        "proposal_hash": bundle_hash(proposal.raw) if proposal.valid else None,
        "tolerance": report["settings"]["tolerance"],
        "changes": [
            {
                "task_class": c.task_class,
                "policy": c.policy,
                "from_model": c.from_model,
                "to_model": c.to_model,
                "reason": c.reason,
            }
            for c in proposal.applied
        ],
        "escalations": [{"task_class": e["task_class"], "kind": e["kind"]} for e in report["escalations"]],
        "failed_verification": [
            c["task_class"] for c in report["classes"] if c["status"] == "failed_verification"
        ],
        "heldout": {
            k: report["summary"]["heldout_final"][k]["value"] for k in ("quality_kept", "cost_saving")
        },
        "submitted": submitted,
    }
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, sort_keys=False) + "\n")
