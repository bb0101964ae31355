"""Anti-flapping: which task classes changed model recently, from telemetry ``ts`` and the decision log.

A class counts as recently changed when, within the window before ``now``:
- its telemetry shows the serving model switching (records ordered by ``ts``), or
- the decision log holds an entry with ``status`` approved, published or applied that changed it.
Entries that are only ``proposed`` do not count: a proposal nobody approved changed nothing, and
re-running a review must not block itself.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from routeguard.review.load import Record, RowIssue, parse_ts

__all__ = ["APPLIED_STATUSES", "RecentChange", "recent_changes"]

APPLIED_STATUSES = frozenset({"approved", "published", "applied"})


@dataclass(frozen=True, slots=True)
class RecentChange:
    task_class: str
    ts: float
    source: str  # "telemetry" | "decision-log"
    detail: str

    def to_dict(self) -> dict[str, object]:
        return {"task_class": self.task_class, "ts": self.ts, "source": self.source, "detail": self.detail}


def _from_telemetry(records: Sequence[Record]) -> dict[str, RecentChange]:
    by_class: dict[str, list[Record]] = defaultdict(list)
    for rec in records:
        if rec.ts is not None and rec.task_class:
            by_class[rec.task_class].append(rec)
    out: dict[str, RecentChange] = {}
    for klass, recs in by_class.items():
        recs.sort(key=lambda r: (r.ts or 0.0, r.line))
        for prev, cur in pairwise(recs):
            if cur.model != prev.model:
                out[klass] = RecentChange(
                    klass, cur.ts or 0.0, "telemetry", f"served by {prev.model}, then {cur.model}"
                )
    return out


def _from_log(path: Path, issues: list[RowIssue]) -> dict[str, RecentChange]:
    out: dict[str, RecentChange] = {}
    if not path.is_file():
        return out
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError("not a JSON object")
            if entry.get("status") not in APPLIED_STATUSES and entry.get("kind") != "route.changed":
                continue
            ts = parse_ts(entry["ts"])
            changes = entry.get("changes") or [entry]
            for change in changes:
                klass = change.get("task_class")
                if isinstance(klass, str) and klass and (klass not in out or out[klass].ts < ts):
                    moved = f"{change.get('from_model', '?')} -> {change.get('to_model', '?')}"
                    detail = f"{moved} ({entry.get('status')})"
                    out[klass] = RecentChange(klass, ts, "decision-log", detail)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            issues.append(RowIssue(str(path), number, "*", f"unreadable decision-log entry: {exc}"))
    return out


def recent_changes(
    telemetry: Sequence[Record], decision_log: Path | None, now: float, window_s: float
) -> tuple[dict[str, RecentChange], list[RowIssue]]:
    """Classes changed within ``window_s`` before ``now``, with any unreadable log lines."""
    issues: list[RowIssue] = []
    found = _from_telemetry(telemetry)
    if decision_log is not None:
        for klass, change in _from_log(decision_log, issues).items():
            if klass not in found or found[klass].ts < change.ts:
                found[klass] = change
    recent = {k: v for k, v in found.items() if now - window_s <= v.ts <= now + 1.0}
    return recent, issues
