"""Convert the wide replay file (one row per task, a correctness column per model) to the long form of §7.

Assumptions, stated in every report that uses the output: tokens are estimated as characters / 4 of the
prompt; the answer is about 5 tokens for MMLU and 150 for GSM8K; cost uses the period prices below.
Contaminated rows are dropped.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from routeguard.review.load import ReviewInputError, RowIssue, open_text

__all__ = [
    "REPLAY_ASSUMPTIONS",
    "REPLAY_MODELS",
    "ConvertResult",
    "ReplayModel",
    "convert_replay",
    "replay_bundle",
    "replay_bundle_yaml",
]


@dataclass(frozen=True, slots=True)
class ReplayModel:
    name: str  # model name in the long form and the bundle
    column: str  # correctness column in the wide file
    input_per_1m: float
    output_per_1m: float


REPLAY_MODELS: tuple[ReplayModel, ...] = (
    ReplayModel("mixtral-8x7b", "mixtral_8x7b_correct", 0.60, 0.60),
    ReplayModel("gpt-4-1106", "gpt_4_1106_correct", 10.00, 30.00),
)
CHARS_PER_TOKEN = 4.0
OUTPUT_TOKENS = {"mmlu": 5, "gsm8k": 150}
REPLAY_ASSUMPTIONS = (
    "Token counts are estimated, not measured: input = prompt characters / 4; output = 5 tokens for MMLU "
    "and 150 for GSM8K.",
    "Cost per task uses the period prices (USD per million tokens, input / output): "
    "Mixtral-8x7B 0.60 / 0.60, GPT-4-1106 10.00 / 30.00.",
    "Rows marked contaminated are left out.",
)
_FIELDS = (
    "task_id",
    "task_class",
    "model",
    "quality",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "dataset",
)


@dataclass(slots=True)
class ConvertResult:
    source: str
    destination: str
    tasks: int = 0
    rows_written: int = 0
    contaminated_dropped: int = 0
    shared_prompts: int = 0  # prompts listed under two classes: kept once per class, id suffixed "@class"
    classes: list[str] = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)
    assumptions: tuple[str, ...] = REPLAY_ASSUMPTIONS

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "destination": self.destination,
            "tasks": self.tasks,
            "rows_written": self.rows_written,
            "contaminated_dropped": self.contaminated_dropped,
            "shared_prompts": self.shared_prompts,
            "classes": len(self.classes),
            "skipped_rows": [i.to_dict() for i in self.issues],
            "assumptions": list(self.assumptions),
        }


def _correct(value: str | None) -> float | None:
    text = (value or "").strip()
    return float(text) if text in ("0", "1") else None


def convert_replay(
    src_csv_gz: str | Path,
    dst: str | Path,
    *,
    models: Sequence[ReplayModel] = REPLAY_MODELS,
    include_prompt: bool = False,
) -> ConvertResult:
    """Write ``dst`` (CSV, or JSONL when it ends in .jsonl[.gz]; gzipped when it ends in .gz).

    Bad rows (missing id or class, correctness not 0/1) are skipped and listed in the result.
    """
    src, out = Path(src_csv_gz), Path(dst)
    result = ConvertResult(source=str(src), destination=str(out))
    if not src.is_file():
        raise ReviewInputError(f"{src}: no such file")
    rows: list[dict[str, object]] = []
    classes: set[str] = set()
    seen: dict[str, int] = {}
    with open_text(src) as stream:
        reader = csv.DictReader(stream)
        need = {"id", "dataset", "task_class", "prompt", "contaminated", *(m.column for m in models)}
        missing = sorted(need - set(reader.fieldnames or ()))
        if missing:
            raise ReviewInputError(
                f"{src} is not a replay file",
                [RowIssue(str(src), 1, c, "required column missing") for c in missing],
            )
        for row in reader:
            line = reader.line_num
            if (row.get("contaminated") or "0").strip() == "1":
                result.contaminated_dropped += 1
                continue
            problems = [(c, "missing value") for c in ("id", "task_class") if not (row.get(c) or "").strip()]
            scores = {m.name: _correct(row.get(m.column)) for m in models}
            problems += [
                (m.column, f"expected 0 or 1, got {row.get(m.column)!r}")
                for m in models
                if scores[m.name] is None
            ]
            if problems:
                result.issues.extend(RowIssue(str(src), line, c, p) for c, p in problems)
                continue
            task_id = row["id"].strip()
            if task_id in seen:  # the same prompt in two MMLU subjects: one task per subject
                task_id = f"{task_id}@{row['task_class']}"
                if task_id in seen:
                    result.issues.append(RowIssue(str(src), line, "id", f"duplicate of line {seen[task_id]}"))
                    continue
                result.shared_prompts += 1
            seen[task_id] = line
            dataset = row["dataset"].strip().lower()
            tokens_in = max(1, round(len(row["prompt"]) / CHARS_PER_TOKEN))
            tokens_out = OUTPUT_TOKENS.get(dataset, 150)
            classes.add(row["task_class"])
            result.tasks += 1
            for m in models:
                cost = (tokens_in * m.input_per_1m + tokens_out * m.output_per_1m) / 1_000_000
                item: dict[str, object] = {
                    "task_id": task_id,
                    "task_class": row["task_class"],
                    "model": m.name,
                    "quality": int(scores[m.name] or 0),
                    "cost_usd": round(cost, 9),
                    "input_tokens": tokens_in,
                    "output_tokens": tokens_out,
                    "dataset": dataset,
                }
                if include_prompt:
                    item["prompt"] = row["prompt"]
                rows.append(item)
    result.classes = sorted(classes)
    result.rows_written = len(rows)
    if result.shared_prompts:
        note = (
            f"{result.shared_prompts} prompts appear under two subjects; each is kept once per subject "
            "(task id suffixed @subject)."
        )
        result.assumptions = (*REPLAY_ASSUMPTIONS, note)
    _write(out, rows, include_prompt)
    meta = Path(str(out) + ".meta.json")  # read by the review report: the assumptions travel with the data
    meta.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return result


def _write(out: Path, rows: list[dict[str, object]], include_prompt: bool) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    if ".jsonl" in out.suffixes:
        for row in rows:
            buffer.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        writer = csv.DictWriter(buffer, fieldnames=[*_FIELDS, *(["prompt"] if include_prompt else [])])
        writer.writeheader()
        writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8")
    if out.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    out.write_bytes(data)


def replay_bundle(classes: Sequence[str], *, approvals_expire: str = "2030-12-31") -> dict[str, object]:
    """An example bundle for the replay data: both models approved, the strong one primary for every class."""
    cheap, strong = REPLAY_MODELS[0], REPLAY_MODELS[1]

    def model(m: ReplayModel, provider: str) -> dict[str, object]:
        return {
            "provider": provider,
            "endpoint": {
                "type": "openai",
                "base_url": "https://api.example.com/v1",
                "model": m.name,
                "api_key_env": re.sub(r"\W", "_", provider.upper()) + "_KEY",
            },
            "capabilities": ["text"],
            "clearance": "internal",
            "regions": ["us-east-1"],
            "cost": {"input_per_1m": m.input_per_1m, "output_per_1m": m.output_per_1m},
        }

    return {
        "data_classes": ["public", "internal", "confidential", "restricted"],
        "models": {cheap.name: model(cheap, "together"), strong.name: model(strong, "openai")},
        "profiles": {
            "benchmark-qa": {
                "requires": ["text"],
                "capabilities": ["text"],
                "data_class": "internal",
                "regions": ["us-east-1"],
            }
        },
        "approvals": [
            {
                "model": m.name,
                "profile": "benchmark-qa",
                "by": "eval-board",
                "evidence": f"REPLAY-{m.name}",
                "expires": approvals_expire,
            }
            for m in (strong, cheap)
        ],
        "policies": {
            "qa-router": {
                "profile": "benchmark-qa",
                "match": {"task_types": list(classes)},
                "primary": strong.name,
                "fallbacks": [{"model": cheap.name}],
            }
        },
    }


def replay_bundle_yaml(classes: Sequence[str]) -> str:
    """:func:`replay_bundle` as YAML text with a header comment."""
    head = (
        "# Example bundle for the replay data (routeguard review convert … --bundle-out).\n"
        "# Both models are approved for one profile; GPT-4-1106 serves every task class.\n"
    )
    body = yaml.safe_dump(replay_bundle(classes), sort_keys=False, width=110, default_flow_style=None)
    return head + body
