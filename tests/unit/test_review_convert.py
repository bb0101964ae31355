"""The replay converter and the example bundle it can write."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from routeguard.config.load import load_bundle
from routeguard.core.checks import check_bundle
from routeguard.review.convert import convert_replay, replay_bundle_yaml
from routeguard.review.load import ReviewInputError, load_records

WIDE = (
    "id,dataset,task_class,prompt,mixtral_8x7b_correct,gpt_4_1106_correct,contaminated\n"
    "a1,mmlu,anatomy,{p400},1,1,0\n"
    "a2,gsm8k,grade_school_math,{p40},0,1,0\n"
    "a3,mmlu,anatomy,leaked,1,1,1\n"
    "a4,mmlu,anatomy,short,2,1,0\n"
)


def _wide(tmp_path: Path) -> Path:
    src = tmp_path / "wide.csv.gz"
    src.write_bytes(gzip.compress(WIDE.format(p400="x" * 400, p40="y" * 40).encode()))
    return src


def test_convert_estimates_tokens_and_cost_and_drops_contaminated(tmp_path: Path) -> None:
    result = convert_replay(_wide(tmp_path), tmp_path / "long.csv")
    assert (result.tasks, result.rows_written, result.contaminated_dropped) == (2, 4, 1)
    assert [(i.line, i.column) for i in result.issues] == [(5, "mixtral_8x7b_correct")]
    rows = {(r["task_id"], r["model"]): r for r in csv.DictReader((tmp_path / "long.csv").open())}
    gpt = rows[("a1", "gpt-4-1106")]
    assert (gpt["input_tokens"], gpt["output_tokens"]) == ("100", "5")
    assert float(gpt["cost_usd"]) == pytest.approx((100 * 10 + 5 * 30) / 1e6)
    assert rows[("a2", "mixtral-8x7b")]["output_tokens"] == "150"
    meta = json.loads((tmp_path / "long.csv.meta.json").read_text())
    assert any("characters / 4" in a for a in meta["assumptions"])
    assert len(load_records(tmp_path / "long.csv", "evals").records) == 4


def test_jsonl_output_and_missing_columns(tmp_path: Path) -> None:
    convert_replay(_wide(tmp_path), tmp_path / "long.jsonl.gz", include_prompt=True)
    first = json.loads(gzip.decompress((tmp_path / "long.jsonl.gz").read_bytes()).splitlines()[0])
    assert first["prompt"].startswith("xxx") and first["quality"] in (0, 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("id,prompt\n1,x\n")
    with pytest.raises(ReviewInputError, match="not a replay file"):
        convert_replay(bad, tmp_path / "o.csv")


def test_example_bundle_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(replay_bundle_yaml(["anatomy", "grade_school_math"]))
    loaded = load_bundle(path)
    assert check_bundle(loaded.bundle, 1.8e9) == []
    assert loaded.bundle.policies["qa-router"].primary_models == ("gpt-4-1106",)
