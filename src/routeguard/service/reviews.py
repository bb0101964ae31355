"""Reviews that run themselves (CONTRACT §7): ``routeguard serve --review-every 7d``.

Every period — and soon after the stable bundle gains an approval or changes a model's price, or a model is
degraded for quality (a ``health.changed`` to ``degraded`` whose detail names quality) — the service
reviews what production did: the outcome ledger of the last ``lookback`` (and ``--review-evals`` when given)
against the bundle it serves. A proposal becomes a *draft* policy version (author ``routeguard:review``; it is
never approved or published here), its report is kept under the reviews directory and served by
``/v1/reviews``, and ``agent.routing.review`` is audited and sent to every notifier. The review itself runs in a
worker thread: the decision path never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from routeguard.core.events import HealthChanged
from routeguard.store.ledger import EXPORT_COLUMNS

if TYPE_CHECKING:
    from routeguard.service.state import ServiceState

__all__ = ["REVIEW_ACTOR", "ReviewScheduler", "bundle_fingerprint"]

log = logging.getLogger("routeguard.service")
REVIEW_ACTOR = "routeguard:review"
_CHECK_S = 60.0  # how often approvals and prices are compared with the last review's


def bundle_fingerprint(raw: dict[str, Any]) -> dict[str, Any]:
    """What triggers a review when it changes: the approved (model, profile) pairs and every model's price."""
    approvals = sorted(
        f"{a.get('model')}@{a.get('profile')}" for a in raw.get("approvals") or [] if isinstance(a, dict)
    )
    prices = {
        name: m.get("cost") for name, m in sorted((raw.get("models") or {}).items()) if isinstance(m, dict)
    }
    return {"approvals": approvals, "prices": prices}


class ReviewScheduler:
    def __init__(
        self,
        state: ServiceState,
        *,
        every_s: float | None,
        directory: Path,
        evals: Path | None = None,
        lookback_s: float = 30 * 86_400.0,
    ) -> None:
        self._state = state
        self.every_s = every_s
        self.directory = directory
        self.evals = evals
        self.lookback_s = lookback_s
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        self._seen: dict[str, Any] | None = None
        self._next_due: float | None = None
        self._pending: str | None = None  # a reason that arrived as an event (a quality drop)

    # ----------------------------------------------------------------- the loop
    def start(self) -> None:
        if self.every_s is not None and self._task is None:
            self._next_due = self._state.settings.clock() + self.every_s
            self._seen = self._fingerprint()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="routeguard-reviews")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def observe(self, event: object) -> None:
        """A Router sink: a model degraded for quality (issue 9's signal) makes a review due."""
        if (
            isinstance(event, HealthChanged)
            and event.to_state == "degraded"
            and "quality" in event.detail.lower()
        ):
            self._pending = f"quality drop: {event.model} under {event.policy} ({event.detail})"

    def due(self) -> str | None:
        """Why a review should run now, or None."""
        if self._pending is not None and self.every_s is not None:
            return self._pending
        now = self._state.settings.clock()
        seen, current = self._seen, self._fingerprint()
        if seen is not None and current is not None:
            if set(current["approvals"]) - set(seen["approvals"]):
                return "new approval"
            if current["prices"] != seen["prices"]:
                return "price change"
        if self._next_due is not None and now >= self._next_due:
            return "schedule"
        return None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(min(_CHECK_S, self.every_s or _CHECK_S))
            try:
                reason = self.due()
                if reason is not None:
                    await asyncio.to_thread(self.run_once, reason)
            except Exception:
                log.exception("scheduled review failed")

    def _fingerprint(self) -> dict[str, Any] | None:
        raw = self._stable_raw()
        return bundle_fingerprint(raw) if raw is not None else None

    def _stable_raw(self) -> dict[str, Any] | None:
        version = self._state.serving_version()
        if version is None:
            return None
        return self._state.store.policies.get_version(version).content

    # ----------------------------------------------------------------- one review
    def run_once(self, reason: str) -> dict[str, Any]:
        """Review now; returns the summary kept (and served) for it. Never publishes."""
        with self._lock:
            state = self._state
            now = state.settings.clock()
            raw = self._stable_raw()
            self._seen = bundle_fingerprint(raw) if raw is not None else None
            self._pending = None
            if self.every_s is not None:
                self._next_due = now + self.every_s
            stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
            review_id = f"{stamp}-{len(list(self.directory.glob(stamp + '*'))) + 1}" if self.directory.exists() \
                else f"{stamp}-1"
            out = self.directory / review_id
            out.mkdir(parents=True, exist_ok=True)
            summary: dict[str, Any] = {"id": review_id, "ts": stamp, "reason": reason, "status": "no_bundle",
                                       "version": None, "label": None}
            if raw is not None:
                summary.update(self._review(raw, out, now))
            (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
            self._notify(summary, now)
            return summary

    def _review(self, raw: dict[str, Any], out: Path, now: float) -> dict[str, Any]:
        from routeguard.review.load import ReviewInputError
        from routeguard.review.run import run_review

        config = out / "input-bundle.yaml"
        config.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        ledger = self._export_ledger(out / "ledger.csv", now)
        evals = self.evals or ledger
        if evals is None:
            return {"status": "no_data", "note": "the outcome ledger is empty and no --review-evals was given"}
        try:
            result = run_review(config, evals, out, ledger if evals != ledger else None, now=now, charts=False)
        except ReviewInputError as exc:
            return {"status": "no_data", "note": exc.message}
        report = result.report
        base = {"summary": report.get("summary"), "changes": len(result.changes)}
        if result.proposal_path is None or not result.changes:
            return {**base, "status": "no_change", "label": report.get("label")}
        from routeguard.service.lifecycle import upload

        proposal = yaml.safe_load(result.proposal_path.read_text(encoding="utf-8"))
        try:
            _status, body = upload(self._state, proposal, report.get("label"), False, REVIEW_ACTOR)
        except Exception as exc:  # a proposal the service refuses is reported, never half-stored
            return {**base, "status": "refused", "label": report.get("label"), "note": str(exc)}
        return {**base, "status": "draft", "version": body.get("version"), "label": report.get("label")}

    def _export_ledger(self, path: Path, now: float) -> Path | None:
        self._state.ledger.flush()
        since = datetime.fromtimestamp(now - self.lookback_s, UTC)
        rows = 0
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=EXPORT_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for row in self._state.store.ledger.rows(since):
                writer.writerow({k: "" if row[k] is None else row[k] for k in EXPORT_COLUMNS})
                rows += 1
        return path if rows else None

    def _notify(self, summary: dict[str, Any], now: float) -> None:
        payload = {
            "event": "agent.routing.review",
            "review": summary["id"],
            "reason": summary["reason"],
            "status": summary["status"],
            "version": summary.get("version"),
            "label": summary.get("label"),
            "changes": summary.get("changes", 0),
            "report": f"/v1/reviews/{summary['id']}",
        }
        self._state.store.events.record_event(
            "review.proposed", payload, notifiers=self._state.notifier_names(), actor=REVIEW_ACTOR,
            now=datetime.fromtimestamp(now, UTC),
        )
        self._state.dispatcher.kick()

    # ----------------------------------------------------------------- reading them back
    def list(self) -> list[dict[str, Any]]:
        if not self.directory.is_dir():
            return []
        out = []
        for path in sorted(self.directory.glob("*/summary.json"), reverse=True):
            with contextlib.suppress(OSError, ValueError):
                out.append(json.loads(path.read_text(encoding="utf-8")))
        return out

    def file(self, review_id: str, name: str) -> Path | None:
        """A report file of one review (only report.json/.md/.html and summary.json), or None."""
        if name not in ("report.json", "report.md", "report.html", "summary.json", "proposal.yaml"):
            return None
        if not review_id or "/" in review_id or "\\" in review_id or review_id.startswith("."):
            return None
        path = self.directory / review_id / name
        return path if path.is_file() else None
