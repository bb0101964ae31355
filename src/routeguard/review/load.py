"""Read evaluation results and telemetry (CSV or JSONL, optionally gzipped) in the long form of CONTRACT §7.

Row policy (documented in the report): a bad row is skipped and listed with its file, line, column and
problem — never dropped silently. When more than ``max_bad_share`` of the rows are bad (default 5 %), or
a required column is missing, or nothing usable is left, loading fails with :class:`ReviewInputError`
listing every problem.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

__all__ = ["LoadedTable", "Record", "ReviewInputError", "RowIssue", "load_records", "open_text", "parse_ts"]

Kind = Literal["evals", "telemetry"]

_TEXT_COLUMNS = ("prompt", "text")
_BOOL_TRUE = frozenset({"1", "true", "yes", "y", "t", "ok"})
_BOOL_FALSE = frozenset({"0", "false", "no", "n", "f", "error", "failed"})


@dataclass(frozen=True, slots=True)
class RowIssue:
    """One bad row: where it is and what is wrong with it."""

    file: str
    line: int
    column: str
    problem: str

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "column": self.column, "problem": self.problem}

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.column}: {self.problem}"


class ReviewInputError(ValueError):
    """Input that cannot be reviewed; ``issues`` lists every problem found."""

    def __init__(self, message: str, issues: list[RowIssue] | None = None) -> None:
        self.message = message
        self.issues = issues or []
        shown = "; ".join(str(i) for i in self.issues[:5])
        more = f" (+{len(self.issues) - 5} more)" if len(self.issues) > 5 else ""
        super().__init__(f"{message}{': ' + shown if shown else ''}{more}")


@dataclass(frozen=True, slots=True)
class Record:
    """One task × model observation."""

    task_id: str
    task_class: str | None
    model: str
    quality: float
    cost_usd: float | None = None
    latency_ms: float | None = None
    input_tokens: float | None = None
    output_tokens: float | None = None
    data_class: str | None = None
    ts: float | None = None
    agent: str | None = None
    text: str | None = None
    line: int = 0


@dataclass(slots=True)
class LoadedTable:
    path: str
    kind: Kind
    records: list[Record] = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)
    rows_read: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "kind": self.kind,
            "rows_read": self.rows_read,
            "rows_used": len(self.records),
            "rows_skipped": len({i.line for i in self.issues}),
            "issues": [i.to_dict() for i in self.issues],
        }


def open_text(path: str | Path) -> io.TextIOBase:
    """A text stream for ``path``, decompressing ``.gz``."""
    p = Path(path)
    if p.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8", newline="")
    return io.TextIOWrapper(open(p, "rb"), encoding="utf-8", newline="")


def parse_ts(value: object) -> float:
    """Epoch seconds from a number or an RFC 3339 / ISO 8601 string; raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("expected a timestamp, got a boolean")
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone (use RFC 3339, e.g. 2026-01-31T12:00:00Z)")
    return stamp.timestamp()


def _rows(path: Path, label: str) -> Iterator[tuple[int, Mapping[str, object]]]:
    """(line number, row) pairs; a JSONL line that is not an object becomes an issue row."""
    is_jsonl = any(s in (".jsonl", ".ndjson", ".json") for s in path.suffixes)
    with open_text(path) as stream:
        if is_jsonl:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield number, {"__error__": f"not valid JSON: {exc.msg} at column {exc.colno}"}
                    continue
                if not isinstance(obj, dict):
                    yield number, {"__error__": f"expected a JSON object, got {type(obj).__name__}"}
                    continue
                yield number, obj
            return
        reader = csv.DictReader(stream)
        if reader.fieldnames is None:
            return
        for row in reader:
            if None in row:
                yield reader.line_num, {"__error__": f"more fields than the {len(reader.fieldnames)} headers"}
                continue
            yield reader.line_num, row


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    number = float(value) if isinstance(value, int | float) else float(str(value).strip())
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"expected a finite number, got {value!r}")
    return number


class _RowReader:
    """Field conversions for one row that record an issue instead of raising."""

    def __init__(self, label: str, line: int, row: Mapping[str, object], issues: list[RowIssue]) -> None:
        self.label, self.line, self.row, self.issues = label, line, row, issues
        self.bad = False

    def fail(self, column: str, problem: str) -> None:
        self.bad = True
        self.issues.append(RowIssue(self.label, self.line, column, problem))

    def text(self, *names: str, required: bool = False) -> str | None:
        for name in names:
            value = self.row.get(name)
            if not _blank(value):
                return str(value).strip()
        if required:
            self.fail(names[0], "missing value")
        return None

    def number(self, name: str, low: float = 0.0, high: float = math.inf) -> float | None:
        value = self.row.get(name)
        if _blank(value):
            return None
        try:
            number = _number(value)
        except (TypeError, ValueError):
            self.fail(name, f"expected a number, got {value!r}")
            return None
        if not low <= number <= high:
            bound = f"between {low:g} and {high:g}" if high != math.inf else f">= {low:g}"
            self.fail(name, f"{number:g} out of range (must be {bound})")
            return None
        return number

    def success(self) -> float | None:
        value = self.row.get("success", self.row.get("ok"))
        if _blank(value):
            return None
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        text = str(value).strip().lower()
        if text in _BOOL_TRUE:
            return 1.0
        if text in _BOOL_FALSE:
            return 0.0
        self.fail("success", f"expected true/false or 1/0, got {value!r}")
        return None


def _convert(r: _RowReader, kind: Kind, known_data_classes: frozenset[str] | None) -> Record | None:
    model = r.text("model", required=True)
    task_class = r.text("task_class", "task_type")
    text = r.text(*_TEXT_COLUMNS)
    task_id = r.text("task_id", "id", "trace_id", required=kind == "evals")
    if kind == "evals" and task_class is None and text is None:
        r.fail("task_class", "missing value (and no prompt/text to cluster the task by)")
    if kind == "telemetry" and task_class is None:
        r.fail("task_class", "missing value (task_class or task_type)")
    bad_before = r.bad
    quality = r.number("quality", 0.0, 1.0)
    success = r.success()
    if quality is None:
        quality = success
    if quality is None and r.bad == bad_before:
        r.fail("quality", "missing value" + (" (and no success flag)" if kind == "telemetry" else ""))
    data_class = r.text("data_class")
    if data_class is not None and known_data_classes is not None and data_class not in known_data_classes:
        r.fail(
            "data_class",
            f"unknown data class {data_class!r} (known: {', '.join(sorted(known_data_classes))})",
        )
    ts: float | None = None
    if not _blank(r.row.get("ts")):
        try:
            ts = parse_ts(r.row.get("ts"))
        except (TypeError, ValueError) as exc:
            r.fail("ts", str(exc))
    cost, latency = r.number("cost_usd"), r.number("latency_ms")
    tokens_in, tokens_out = r.number("input_tokens"), r.number("output_tokens")
    if r.bad or model is None or quality is None:
        return None
    return Record(
        task_id=task_id or f"{r.label}:{r.line}",
        task_class=task_class,
        model=model,
        quality=quality,
        data_class=data_class,
        ts=ts,
        agent=r.text("agent"),
        text=text,
        line=r.line,
        cost_usd=cost,
        latency_ms=latency,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
    )


def _check_header(path: Path, label: str, kind: Kind) -> None:
    """Fail early when a CSV lacks a required column (every row would be bad)."""
    if any(s in (".jsonl", ".ndjson", ".json") for s in path.suffixes):
        return
    with open_text(path) as stream:
        header = next(csv.reader(stream), None)
    if header is None:
        raise ReviewInputError(f"{label} is empty")
    cols = {h.strip() for h in header}
    need: list[tuple[str, ...]] = [("model",), ("quality", "success", "ok")]
    if kind == "evals":
        need += [("task_id", "id"), ("task_class", "task_type", *_TEXT_COLUMNS)]
    else:
        need += [("task_class", "task_type")]
    missing = [alts for alts in need if not cols & set(alts)]
    if missing:
        issues = [RowIssue(label, 1, alts[0], "required column missing from the header") for alts in missing]
        raise ReviewInputError(f"{label} lacks required columns", issues)


def load_records(
    path: str | Path,
    kind: Kind,
    *,
    known_data_classes: frozenset[str] | None = None,
    max_bad_share: float = 0.05,
) -> LoadedTable:
    """Load and validate ``path``; see the module docstring for the row policy."""
    p = Path(path)
    label = str(path)
    if not p.is_file():
        raise ReviewInputError(f"{label}: no such file")
    _check_header(p, label, kind)
    table = LoadedTable(path=label, kind=kind)
    seen: dict[tuple[str, str], int] = {}
    try:
        for line, row in _rows(p, label):
            table.rows_read += 1
            if "__error__" in row:
                table.issues.append(RowIssue(label, line, "*", str(row["__error__"])))
                continue
            record = _convert(_RowReader(label, line, row, table.issues), kind, known_data_classes)
            if record is None:
                continue
            if kind == "evals":
                key = (record.task_id, record.model)
                if key in seen:
                    table.issues.append(
                        RowIssue(
                            label, line, "task_id", f"duplicate of line {seen[key]} for model {record.model}"
                        )
                    )
                    continue
                seen[key] = line
            table.records.append(record)
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as exc:
        raise ReviewInputError(f"{label}: cannot read: {exc}", table.issues) from exc
    bad = len({i.line for i in table.issues})
    if not table.records:
        raise ReviewInputError(f"{label}: no usable rows ({bad} bad)", table.issues)
    if table.rows_read and bad / table.rows_read > max_bad_share:
        raise ReviewInputError(
            f"{label}: {bad} of {table.rows_read} rows are bad (more than {max_bad_share:.0%})", table.issues
        )
    return table
