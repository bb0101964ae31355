"""The ``--learned`` review end to end: read, train per policy, write the proposal and its artifacts, check it,
replay the held-back tasks through it with the real Router, report. It never publishes (see ``learned_run``)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from routeguard.config.artifacts import artifact_findings
from routeguard.config.load import load_bundle
from routeguard.core.checks import check_bundle
from routeguard.core.findings import BundleError, Finding
from routeguard.review.bundle_out import bundle_hash, dump_yaml
from routeguard.review.learned_bundle import apply_learned
from routeguard.review.learned_calibrate import Outcomes, bootstrap_weights, replay_figures
from routeguard.review.learned_data import gather_tasks, policy_data
from routeguard.review.learned_run import PolicyResult, train_policy
from routeguard.review.load import ReviewInputError, load_records
from routeguard.review.settings import ReviewSettings

__all__ = ["LEARNED_STEPS", "LearnedReviewResult", "run_learned_review"]

LEARNED_STEPS = ("load", "train", "bundle", "replay", "report")


@dataclass(slots=True)
class LearnedReviewResult:
    report_dir: Path
    proposal_path: Path | None
    report: dict[str, Any]
    policies: list[PolicyResult]
    findings: list[Finding] = field(default_factory=list)
    submitted: dict[str, Any] | None = None
    wall_s: float = 0.0


def run_learned_review(
    config_path: str | Path,
    evals_path: str | Path,
    report_dir: str | Path,
    *,
    settings: ReviewSettings | None = None,
    agent: str | None = None,
    submit_url: str | None = None,
    principal: str | None = None,
    now: float | None = None,
    charts: bool = True,
    progress: Callable[[str], None] | None = None,
) -> LearnedReviewResult:
    """Raises BundleError for an unusable bundle, ReviewInputError for evaluations without prompts."""
    began = time.perf_counter()
    s = settings or ReviewSettings()
    now = time.time() if now is None else now
    step = progress or (lambda _name: None)
    out_dir = Path(report_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    step("load")
    loaded = load_bundle(Path(config_path))
    rank = {c: i for i, c in enumerate(loaded.bundle.data_classes)}
    evals = load_records(evals_path, "evals", known_data_classes=frozenset(rank), max_bad_share=s.max_bad_share)
    if not any(r.text for r in evals.records):
        raise ReviewInputError(f"{evals_path}: --learned needs the evaluations' prompt column (the task text)")
    tasks = gather_tasks(evals.records, rank)
    datas, notes = policy_data(loaded.bundle, tasks, agent, now)
    label = "review-" + datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + loaded.content_hash[7:15]

    step("train")
    results = [train_policy(d, loaded, s, out_dir / "artifacts", label) for d in datas]
    changes = [r.change for r in results if r.change is not None]

    step("bundle")
    raw = apply_learned(loaded.raw, loaded.bundle, changes, label)
    proposal_path = out_dir / "proposal.yaml"
    header = f"# Proposed by routeguard review --learned ({label}); NOT published. See report.md.\n"
    proposal_path.write_text(dump_yaml(raw, header + f"# Input bundle {loaded.content_hash}\n"), encoding="utf-8")
    findings = _check(proposal_path, now)
    if findings:
        proposal_path.unlink()

    step("replay")
    replay = _replay(results, proposal_path, agent, s) if not findings else None

    step("report")
    from routeguard.review.learned_report import build_learned_report, write_learned_report

    report = build_learned_report(
        label=label, now=now, settings=s, config_path=str(config_path), input_hash=loaded.content_hash,
        evals=evals.to_dict(), results=results, notes=notes, replay=replay,
        proposal={"path": None if findings else str(proposal_path), "hash": None if findings else bundle_hash(raw),
                  "findings": [f.to_dict() for f in findings]},
    )
    submitted = None
    if submit_url and not findings:
        from routeguard.review.submit import SubmitError, submit_draft

        try:
            submitted = submit_draft(submit_url, raw, label, principal=principal)
        except SubmitError as exc:
            submitted = {"url": submit_url, "label": label, "error": str(exc), "http_status": exc.status}
    report["submitted"] = submitted
    report["wall_s"] = round(time.perf_counter() - began, 2)
    write_learned_report(out_dir, report, results, charts=charts)
    return LearnedReviewResult(out_dir, None if findings else proposal_path, report, results, findings, submitted,
                               time.perf_counter() - began)


def _check(path: Path, now: float) -> list[Finding]:
    try:
        loaded = load_bundle(path)
    except BundleError as exc:
        return list(exc.findings)
    return loaded.locate(check_bundle(loaded.bundle, now) + artifact_findings(loaded.bundle, path.parent))


def _replay(results: list[PolicyResult], proposal: Path, agent: str | None, s: ReviewSettings) -> dict[str, Any]:
    """Route every held-back task through the proposal with the real Router and judge the model it gets."""
    from routeguard.runtime import Router

    router = Router.from_file(proposal)
    qs: list[float] = []
    qp: list[float] = []
    cs: list[float] = []
    cp: list[float] = []
    per_class: dict[str, list[tuple[float, float, float, float, bool]]] = defaultdict(list)
    served: dict[str, int] = defaultdict(int)
    decide_ns: list[int] = []
    for res in results:
        data = res.data
        for t in res.heldback:
            tin, tout = data.tokens(t)
            ctx: dict[str, Any] = {"task_type": t.task_class, "estimated_tokens": {"input": int(tin),
                                                                                   "output": int(tout)}}
            if agent:
                ctx["agent"] = agent
            if t.text:
                ctx["prompt"] = t.text
            if t.data_class:
                ctx["data_class"] = t.data_class
            began = time.perf_counter_ns()
            decision = router.decide(ctx)
            decide_ns.append(time.perf_counter_ns() - began)
            model = decision.model if decision.model in t.arms else data.strong
            served[model or "none"] += 1
            base, got = t.arms[data.strong], t.arms[model or data.strong]
            row = (base.quality, got.quality, base.cost_usd or 0.0, got.cost_usd or 0.0, model != data.strong)
            per_class[t.task_class].append(row)
            qs.append(row[0])
            qp.append(row[1])
            cs.append(row[2])
            cp.append(row[3])
    out = Outcomes(np.array(qs), np.array(qp), np.array(cs), np.array(cp))
    weights = bootstrap_weights(len(out), s.resamples, np.random.default_rng(s.seed + 1))
    kept, saving = replay_figures(out, np.ones(len(out), dtype=bool), weights)
    classes = []
    for klass, rows in sorted(per_class.items()):
        arr = np.array(rows, dtype=np.float64)
        base_q, base_c = arr[:, 0].sum(), arr[:, 2].sum()
        classes.append({
            "task_class": klass, "n": len(rows), "weak_share": round(float(arr[:, 4].mean()), 4),
            "quality_strong": round(float(arr[:, 0].mean()), 4), "quality_proposed": round(float(arr[:, 1].mean()), 4),
            "quality_kept": round(float(arr[:, 1].sum() / base_q), 4) if base_q > 0 else None,
            "cost_saving": round(float(1 - arr[:, 3].sum() / base_c), 4) if base_c > 0 else None,
        })
    ns = sorted(decide_ns) or [0]
    return {
        "n": len(out), "quality_kept": kept.to_dict(), "cost_saving": saving.to_dict(), "served_by": dict(served),
        "classes": classes,
        "decision_us": {"p50": round(ns[len(ns) // 2] / 1000, 1), "p99": round(ns[int(len(ns) * 0.99)] / 1000, 1)},
    }
