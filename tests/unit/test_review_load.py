"""Loaders name every bad row (file, line, column, problem) and never drop one silently."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from routeguard.review.history import recent_changes
from routeguard.review.load import ReviewInputError, load_records, parse_ts

HEADER = "task_id,task_class,model,quality,cost_usd,ts\n"


def _rows(n: int) -> str:
    return "".join(f"t{i},faq,small,1,0.001,2026-01-01T00:00:00Z\n" for i in range(n))


def test_bad_rows_are_listed_with_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "evals.csv"
    path.write_text(HEADER + _rows(60) + "t99,faq,small,1.5,0.001,\nt98,faq,,1,x,\nt0,faq,small,1,0.001,\n")
    table = load_records(path, "evals", max_bad_share=0.1)
    assert len(table.records) == 60 and table.rows_read == 63
    got = {(i.line, i.column) for i in table.issues}
    assert (62, "quality") in got and (63, "model") in got and (63, "cost_usd") in got
    assert (64, "task_id") in got  # duplicate task and model
    assert all(i.file == str(path) for i in table.issues)
    assert "out of range" in next(i.problem for i in table.issues if i.column == "quality")


def test_too_many_bad_rows_or_a_missing_column_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + _rows(5) + "t9,faq,small,nope,,\n")
    with pytest.raises(ReviewInputError) as exc:
        load_records(bad, "evals", max_bad_share=0.05)
    assert exc.value.issues and exc.value.issues[0].line == 7
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("task_id,model\nt1,small\n")
    with pytest.raises(ReviewInputError, match="lacks required columns"):
        load_records(nocol, "evals")


def test_jsonl_gz_telemetry_with_success_flags(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.jsonl.gz"
    lines = [
        {"task_type": "faq", "model": "small", "success": True, "latency_ms": 120, "ts": 1_700_000_000},
        {"task_type": "faq", "model": "small", "ok": "false", "data_class": "secret"},
        "not json",
    ]
    text = "\n".join(json.dumps(x) if isinstance(x, dict) else x for x in lines) + "\n"
    path.write_bytes(gzip.compress(text.encode()))
    table = load_records(path, "telemetry", known_data_classes=frozenset({"public"}), max_bad_share=0.9)
    assert [r.quality for r in table.records] == [1.0]
    assert {(i.line, i.column) for i in table.issues} == {(2, "data_class"), (3, "*")}


def test_timestamps_and_recent_changes(tmp_path: Path) -> None:
    assert parse_ts("2026-01-01T00:00:00Z") == parse_ts(1767225600)
    with pytest.raises(ValueError, match="time zone"):
        parse_ts("2026-01-01T00:00:00")
    log = tmp_path / "log.jsonl"
    log.write_text(
        "\n".join(
            [
                json.dumps(
                    {"ts": "2026-01-09T00:00:00Z", "status": "proposed", "changes": [{"task_class": "a"}]}
                ),
                json.dumps(
                    {"ts": "2026-01-09T00:00:00Z", "status": "published", "changes": [{"task_class": "b"}]}
                ),
                json.dumps(
                    {"ts": "2025-01-01T00:00:00Z", "status": "published", "changes": [{"task_class": "c"}]}
                ),
                "{broken",
            ]
        )
        + "\n"
    )
    recent, issues = recent_changes([], log, parse_ts("2026-01-10T00:00:00Z"), 7 * 86400)
    assert set(recent) == {"b"} and len(issues) == 1 and issues[0].line == 4
