"""Benchmark: ``routeguard review --learned`` on the real replay data (Mixtral-8x7B vs GPT-4-1106).

For each seed the tasks are split in two halves by a hash of their prompt. The review sees only half A (it holds
back a quarter of it for its own replay) and writes a proposal with a learned primary; the medical MMLU classes
are marked ``confidential`` and GPT-4 alone is cleared for that, so they stay on GPT-4. Half B, which the review
never saw, is then routed task by task through the proposal by the real Router (scoring, governance) and judged:
quality kept (share of all-GPT-4 quality) and cost saving overall, on MMLU and on GSM8K, with 95 % paired
bootstrap intervals; the decision latency with the learned primary (p50/p99, scoring included); and the review's
wall time. Tokens are estimated (characters / 4; 5 output tokens for MMLU, 150 for GSM8K).

    .venv/bin/python bench/review.py --learned [--data FILE] [--tolerance 0.05] [--seeds 0 1 2 3 4]
        [--per-class-limit X] [--class-limit CLASS=SHARE ...] [--json]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from routeguard import Router
from routeguard.review.convert import convert_replay, replay_bundle
from routeguard.review.learned_review import run_learned_review
from routeguard.review.settings import ReviewSettings

REPO_DATA = Path(__file__).resolve().parents[1] / "data" / "replay-mmlu-gsm8k.csv.gz"
STRONG, WEAK = "gpt-4-1106", "mixtral-8x7b"
MEDICAL = frozenset(
    {"anatomy", "clinical_knowledge", "college_medicine", "medical_genetics", "nutrition", "professional_medicine",
     "virology"}
)
DATASETS = ("mmlu", "gsm8k", "overall")
TARGETS = {"overall_quality": 0.95, "mmlu_saving": 0.45, "gsm8k_saving": 0.20}


def _rows(data: Path, out: Path) -> list[dict[str, str]]:
    convert_replay(data, out / "evals-all.csv.gz", include_prompt=True)
    with gzip.open(out / "evals-all.csv.gz", "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["data_class"] = "confidential" if r["task_class"] in MEDICAL else "internal"
    return rows


def _half(prompt: str, seed: int) -> int:
    return hashlib.sha256(f"{seed}:{prompt}".encode()).digest()[0] & 1


def _bundle(rows: list[dict[str, str]], out: Path) -> Path:
    raw = replay_bundle(sorted({r["task_class"] for r in rows}))
    raw["models"][STRONG]["clearance"] = "confidential"  # GPT-4 may see the medical classes; Mixtral may not
    path = out / "bundle.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def _judge(proposal: Path, tasks: dict[str, dict[str, Any]], resamples: int, seed: int) -> dict[str, Any]:
    router = Router.from_file(proposal)
    per: dict[str, list[tuple[float, float, float, float]]] = {d: [] for d in DATASETS}
    latency_ns: list[int] = []
    for t in tasks.values():
        ctx = {"task_type": t["class"], "prompt": t["prompt"], "data_class": t["data_class"],
               "estimated_tokens": {"input": t["tin"], "output": t["tout"]}}
        began = time.perf_counter_ns()
        model = router.decide(ctx).model or STRONG
        latency_ns.append(time.perf_counter_ns() - began)
        got = t[model]
        row = (t[STRONG][0], got[0], t[STRONG][1], got[1])
        per[t["dataset"]].append(row)
        per["overall"].append(row)
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for name, rows in per.items():
        a = np.array(rows)
        w = rng.multinomial(len(a), np.full(len(a), 1 / len(a)), size=resamples).astype(float)
        kept_b, save_b = (w @ a[:, 1]) / (w @ a[:, 0]), 1 - (w @ a[:, 3]) / (w @ a[:, 2])
        out[name] = {
            "tasks": len(a),
            "quality_kept": [float(a[:, 1].sum() / a[:, 0].sum()), *np.quantile(kept_b, [0.025, 0.975]).tolist()],
            "cost_saving": [float(1 - a[:, 3].sum() / a[:, 2].sum()), *np.quantile(save_b, [0.025, 0.975]).tolist()],
            "weak_share": float(np.mean(a[:, 3] < a[:, 2])),
        }
    ns = sorted(latency_ns)
    out["decision_us"] = {"p50": ns[len(ns) // 2] / 1000, "p99": ns[int(len(ns) * 0.99)] / 1000}
    out["tight_loop_us"] = _tight_loop(router, list(tasks.values())[:1000])
    return out


def _tight_loop(router: Router, tasks: list[dict[str, Any]], rounds: int = 3) -> dict[str, float]:
    """Decisions (scoring included) in a tight loop with the collector paused: p50/p99 in µs."""
    import gc

    ctxs = [{"task_type": t["class"], "prompt": t["prompt"], "data_class": t["data_class"],
             "estimated_tokens": {"input": t["tin"], "output": t["tout"]}} for t in tasks]
    for ctx in ctxs[:200]:
        router.decide(ctx)
    samples: list[int] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for ctx in ctxs:
                began = time.perf_counter_ns()
                router.decide(ctx)
                samples.append(time.perf_counter_ns() - began)
    finally:
        gc.enable()
    samples.sort()
    return {"p50": samples[len(samples) // 2] / 1000, "p99": samples[int(len(samples) * 0.99)] / 1000}


def run_seed(
    rows: list[dict[str, str]], out: Path, bundle: Path, seed: int, args: argparse.Namespace
) -> dict[str, Any]:
    half_a = [r for r in rows if _half(r["prompt"], seed) == 0]
    seen = out / f"evals-a-seed{seed}.csv"
    with seen.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(half_a)
    settings = ReviewSettings(
        tolerance=args.tolerance, seed=seed, resamples=args.resamples, per_class_limit=args.per_class_limit,
        class_limits=tuple((k, float(v)) for k, _, v in (c.partition("=") for c in args.class_limit)),
        **({"learned_c": args.learned_c} if args.learned_c is not None else {}),
        **({"learned_holdout": args.learned_holdout} if args.learned_holdout is not None else {}),
    )
    began = time.perf_counter()
    review = run_learned_review(bundle, seen, out / f"seed{seed}", settings=settings, charts=False)
    wall_s = time.perf_counter() - began
    assert review.proposal_path is not None, review.findings
    unseen: dict[str, dict[str, Any]] = {}
    for r in rows:
        if _half(r["prompt"], seed) == 1:
            t = unseen.setdefault(r["task_id"], {
                "class": r["task_class"], "prompt": r["prompt"], "data_class": r["data_class"],
                "dataset": r["dataset"], "tin": int(r["input_tokens"]), "tout": int(r["output_tokens"]),
            })
            t[r["model"]] = (float(r["quality"]), float(r["cost_usd"]))
    judged = _judge(review.proposal_path, unseen, args.resamples, seed)
    policy = review.report["policies"][0]
    return {
        "seed": seed, "wall_s": round(wall_s, 1), "threshold": (policy["proposed"] or {}).get("threshold"),
        "review_tasks": len({r["task_id"] for r in half_a}), "unseen": judged,
        "held_classes": len(policy["held"]), "report": str(review.report_dir / "report.md"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learned", action="store_true", help="(the mode flag of bench/review.py)")
    parser.add_argument("--data", type=Path, default=REPO_DATA)
    parser.add_argument("--tolerance", type=float, default=0.05)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--per-class-limit", type=float, default=None, help="default: 3 × tolerance")
    parser.add_argument("--class-limit", action="append", default=[], metavar="CLASS=SHARE",
                        help="a class's own per-class limit (repeatable), e.g. grade_school_math=0.05")
    parser.add_argument("--learned-c", type=float, default=None, help="inverse regularisation (default: review's)")
    parser.add_argument("--learned-holdout", type=float, default=None, help="review's held-back share (0.25)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"replay data not found: {args.data}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="routeguard-review-learned-"))
    out.mkdir(parents=True, exist_ok=True)
    rows = _rows(args.data, out)
    bundle = _bundle(rows, out)
    runs = [run_seed(rows, out, bundle, seed, args) for seed in args.seeds]
    summary = {
        ds: {k: statistics.median(r["unseen"][ds][k][0] for r in runs) for k in ("quality_kept", "cost_saving")}
        for ds in DATASETS
    }
    doc = {
        "tolerance": args.tolerance, "per_class_limit": args.per_class_limit, "class_limits": args.class_limit,
        "runs": runs, "median": summary,
        "targets": TARGETS, "verdict": verdict(runs),
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _print(doc)
    return 0


def verdict(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per target: the median over seeds, how many seeds meet it, and ``met`` (the median meets it)."""
    figures = {
        "overall_quality": [r["unseen"]["overall"]["quality_kept"][0] for r in runs],
        "mmlu_saving": [r["unseen"]["mmlu"]["cost_saving"][0] for r in runs],
        "gsm8k_saving": [r["unseen"]["gsm8k"]["cost_saving"][0] for r in runs],
    }
    return {
        k: {"target": TARGETS[k], "median": statistics.median(v), "min": min(v), "max": max(v),
            "seeds_meeting": sum(x >= TARGETS[k] for x in v), "seeds": len(v),
            "met": statistics.median(v) >= TARGETS[k]}
        for k, v in figures.items()
    }


def _print(doc: dict[str, Any]) -> None:
    console = Console(width=max(Console().width, 140))
    limit = doc["per_class_limit"] if doc["per_class_limit"] is not None else 3 * doc["tolerance"]
    table = Table(title=f"review --learned (tolerance {doc['tolerance']:g}, per-class limit {limit:g}) — judged on "
                  "the half each review never saw")
    for col in ("seed", "threshold", *(f"{d} kept / saved" for d in DATASETS), "decision p50 / p99", "review wall"):
        table.add_column(col, justify="right")

    def cell(f: dict[str, Any]) -> str:
        q, s = f["quality_kept"], f["cost_saving"]
        return f"{q[0]:.1%} [{q[1]:.1%}, {q[2]:.1%}] / {s[0]:.1%} [{s[1]:.1%}, {s[2]:.1%}]"

    for r in doc["runs"]:
        u = r["unseen"]
        table.add_row(str(r["seed"]), f"{r['threshold']:.4f}" if r["threshold"] is not None else "—",
                      *(cell(u[d]) for d in DATASETS),
                      f"{u['tight_loop_us']['p50']:.0f} µs / {u['tight_loop_us']['p99']:.0f} µs",
                      f"{r['wall_s']:.1f} s")
    m = doc["median"]
    table.add_row("median", "", *(f"{m[d]['quality_kept']:.1%} / {m[d]['cost_saving']:.1%}" for d in DATASETS), "", "")
    console.print(table)
    console.print(
        f"Targets: overall quality kept ≥ {TARGETS['overall_quality']:.0%}, saving ≥ {TARGETS['mmlu_saving']:.0%} on "
        f"MMLU and ≥ {TARGETS['gsm8k_saving']:.0%} on GSM8K (RouteLLM published 95 % / 45 % MMLU, 35 % GSM8K, without "
        "the medical classes held on GPT-4). Medical MMLU classes stay on GPT-4 (data class)."
    )
    for name, v in doc["verdict"].items():
        status = "met" if v["met"] else "NOT MET"
        console.print(f"{name}: median {v['median']:.1%} (range {v['min']:.1%}–{v['max']:.1%}) vs target "
                      f"≥ {v['target']:.0%}: {status} ({v['seeds_meeting']}/{v['seeds']} seeds meet it)")


if __name__ == "__main__":
    sys.exit(main())
