"""Benchmark: routing reviews on the real replay data (7,747 MMLU + GSM8K tasks, Mixtral vs GPT-4).

Converts the data and writes the example bundle (GPT-4-1106 primary for every class). For each seed, the
tasks of every class are split in two halves: the review sees only half A (which it splits again into its
own learn and replay parts) and the proposed bundle is judged on half B, which the review never saw: each
B task is routed through the proposed bundle (CONTRACT §1 resolution) and scored with the model it gets.
Prints, per seed and as min / median across seeds, the quality kept (share of all-GPT-4) and the cost saved
on B, per dataset, beside the published RouteLLM reference points, and the wall time of each review
(target: at most 30 s).

    .venv/bin/python bench/review.py [--data FILE] [--tolerance 0.04] [--seeds 0 1 2 3 4] [--per-class-limit X]
        [--out DIR] [--json]
"""

from __future__ import annotations

import sys
from pathlib import Path

# a sibling script (bench/http.py) would shadow the standard library's http package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import csv  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from typing import Any  # noqa: E402

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from routeguard.config.load import load_bundle  # noqa: E402
from routeguard.core.resolve import PolicyIndex, RequestKey  # noqa: E402
from routeguard.review.analyze import build_matrix, split_tasks  # noqa: E402
from routeguard.review.convert import convert_replay, replay_bundle_yaml  # noqa: E402
from routeguard.review.load import load_records  # noqa: E402
from routeguard.review.run import run_review  # noqa: E402
from routeguard.review.settings import ReviewSettings  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1] / "data" / "replay-mmlu-gsm8k.csv.gz"
STRONG = "gpt-4-1106"
DATASETS = ("mmlu", "gsm8k", "overall")
PUBLISHED = {  # RouteLLM paper and repo: a learned per-prompt router at 95 % of GPT-4's quality
    "mmlu": (0.95, 0.45),
    "gsm8k": (0.95, 0.35),
}
Rows = dict[str, dict[str, tuple[float, float]]]  # task -> model -> (quality, cost)


def read_rows(evals: Path) -> tuple[list[str], list[dict[str, str]]]:
    with gzip.open(evals, "rt", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or ()), list(reader)


def split_halves(evals: Path, seed: int) -> tuple[set[str], set[str]]:
    """(A, B) task ids: half of every class each, seeded (the same stratified split the review uses)."""
    matrix = build_matrix(load_records(evals, "evals").records, {}, {})
    a, b = split_tasks(matrix, 0.5, seed)
    return {matrix.task_ids[i] for i in a}, {matrix.task_ids[i] for i in b}


def write_half(evals: Path, fields: list[str], rows: list[dict[str, str]], ids: set[str], dst: Path) -> Path:
    with gzip.open(dst, "wt", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(r for r in rows if r["task_id"] in ids)
    meta = Path(str(evals) + ".meta.json")
    if meta.is_file():  # the conversion's stated assumptions travel with the data
        shutil.copy(meta, Path(str(dst) + ".meta.json"))
    return dst


def judge(rows: list[dict[str, str]], ids: set[str], proposal: Path) -> dict[str, tuple[float, float, int]]:
    """{dataset: (quality kept vs all-GPT-4, cost saving, tasks)} on the tasks ``ids``, as proposed."""
    index = PolicyIndex(load_bundle(proposal).bundle.policies)
    by_task: Rows = defaultdict(dict)
    meta: dict[str, tuple[str, str]] = {}
    for row in rows:
        if row["task_id"] in ids:
            by_task[row["task_id"]][row["model"]] = (float(row["quality"]), float(row["cost_usd"]))
            meta[row["task_id"]] = (row["task_class"], row["dataset"])
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0, 0.0])
    for task, models in by_task.items():
        klass, dataset = meta[task]
        policy = index.resolve(RequestKey(task_type=klass))
        got = models[policy.primary_models[0]] if policy else models[STRONG]
        for key in (dataset, "overall"):
            acc = sums[key]
            acc[0] += got[0]
            acc[1] += models[STRONG][0]
            acc[2] += got[1]
            acc[3] += models[STRONG][1]
            acc[4] += 1
    return {k: (v[0] / v[1], 1 - v[2] / v[3], int(v[4])) for k, v in sums.items()}


def run_one(
    out: Path, fields: list[str], rows: list[dict[str, str]], tol: float, seed: int, args: argparse.Namespace
) -> dict[str, Any]:
    evals = out / "evals.csv.gz"
    half_a, half_b = split_halves(evals, seed)
    seen = write_half(evals, fields, rows, half_a, out / f"evals-a-seed{seed}.csv.gz")
    settings = ReviewSettings(
        tolerance=tol, seed=seed, resamples=args.resamples, per_class_limit=args.per_class_limit
    )
    started = time.perf_counter()
    review = run_review(out / "bundle.yaml", seen, out / f"tol-{tol:g}-seed{seed}", settings=settings)
    wall_s = time.perf_counter() - started
    assert review.proposal_path is not None
    unseen = judge(rows, half_b, review.proposal_path)
    first = review.heldout_first_pass
    return {
        "tolerance": tol,
        "seed": seed,
        "wall_s": round(wall_s, 2),
        "changes": len(review.changes),
        "review_tasks": len(half_a),
        "as_learnt_on_review_replay": {"quality_kept": first.kept.value, "cost_saving": first.saving.value},
        "unseen_half": {
            k: {"quality_kept": v[0], "cost_saving": v[1], "tasks": v[2]} for k, v in unseen.items()
        },
        "report": str(review.report_dir / "report.html"),
    }


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """{dataset: {figure: {min, median}}} across the runs of one tolerance."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for ds in DATASETS:
        figs = [r["unseen_half"][ds] for r in runs if ds in r["unseen_half"]]
        out[ds] = {
            k: {"min": min(f[k] for f in figs), "median": statistics.median(f[k] for f in figs)}
            for k in ("quality_kept", "cost_saving")
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--tolerance", type=float, nargs="+", default=[0.04])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--per-class-limit", type=float, default=None, help="default: 3 × tolerance")
    parser.add_argument("--out", type=Path, default=None, help="keep the reports here (default: a temp dir)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(f"replay data not found: {args.data}", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="routeguard-review-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    converted = convert_replay(args.data, out / "evals.csv.gz")
    (out / "bundle.yaml").write_text(replay_bundle_yaml(converted.classes), encoding="utf-8")
    fields, rows = read_rows(out / "evals.csv.gz")
    results = {
        tol: [run_one(out, fields, rows, tol, seed, args) for seed in args.seeds]
        for tol in args.tolerance
    }
    summary = {tol: summarise(runs) for tol, runs in results.items()}
    if args.json:
        doc = {
            "tasks": converted.tasks,
            "runs": [r for runs in results.values() for r in runs],
            "summary": {f"{tol:g}": s for tol, s in summary.items()},
            "published": PUBLISHED,
        }
        print(json.dumps(doc, indent=2))
        return 0
    _print(results, summary, converted.tasks)
    return 0


def _print(results: dict[float, list[dict[str, Any]]], summary: dict[float, Any], tasks: int) -> None:
    console = Console(width=max(Console().width, 120))
    table = Table(title=f"Routing review on {tasks:,} real tasks — judged on the half each review never saw")
    for col in (
        "approach",
        "mmlu kept / saved",
        "gsm8k kept / saved",
        "overall kept / saved",
        "moves",
        "wall",
    ):
        table.add_column(col, justify="left" if col == "approach" else "right")

    def pair(f: dict[str, Any] | None) -> str:
        return f"{f['quality_kept']:.1%} / {f['cost_saving']:.1%}" if f else ""

    for tol, runs in results.items():
        for r in runs:
            learnt = r["as_learnt_on_review_replay"]
            table.add_row(
                f"routeguard tol {tol:g}, seed {r['seed']} (as learnt {pair(learnt)})",
                *(pair(r["unseen_half"].get(ds)) for ds in DATASETS),
                str(r["changes"]),
                f"{r['wall_s']:.1f} s",
            )
        s = summary[tol]
        for stat in ("min", "median"):
            table.add_row(
                f"  {stat} across seeds",
                *(f"{s[ds]['quality_kept'][stat]:.1%} / {s[ds]['cost_saving'][stat]:.1%}" for ds in DATASETS),
                "",
                f"{max(r['wall_s'] for r in runs):.1f} s max" if stat == "min" else "",
                end_section=stat == "median",
            )
    table.add_row(
        "RouteLLM per-prompt router (published)",
        *(f"{q:.0%} / {sv:.0%}" for q, sv in (PUBLISHED["mmlu"], PUBLISHED["gsm8k"])),
        "",
        "",
        "",
    )
    console.print(table)
    console.print(
        "Kept / saved: quality as a share of all-GPT-4 and cost saved, on the unseen half (~3,870 tasks). "
        "'As learnt': the review's own untouched replay of its first proposal. Per-class routing moves whole "
        "task classes and no class may lose more than the per-class limit (3 × tolerance); a per-prompt "
        "router decides each prompt, so it can save more at the same quality. Tokens are estimated "
        "(chars/4; 5 output tokens MMLU, 150 GSM8K)."
    )


if __name__ == "__main__":
    if "--learned" in sys.argv[1:]:  # per-prompt routing: bench/review_learned.py
        import importlib.util

        spec = importlib.util.spec_from_file_location("review_learned", Path(__file__).with_name("review_learned.py"))
        assert spec is not None and spec.loader is not None
        learned = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(learned)
        sys.exit(learned.main())
    sys.exit(main())
