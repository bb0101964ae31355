"""The outcome ledger (CONTRACT §7) through a running service: outcomes reported over HTTP land in the store
(batched, off the request path), come back from GET /v1/outcomes/export in the review's long form (CSV and
JSONL), and ``routeguard review --server`` reviews them."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from routeguard.review.convert import replay_bundle
from routeguard.store.ledger import EXPORT_COLUMNS, LedgerEntry
from support.service import Service, run_cli, run_service

CLASSES = ("easy_facts", "hard_proofs")
STRONG, WEAK = "gpt-4-1106", "mixtral-8x7b"


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Path]]:
    tmp = tmp_path_factory.mktemp("ledger")
    config = tmp / "bundle.yaml"
    config.write_text(yaml.safe_dump(replay_bundle(CLASSES)))
    with run_service(f"sqlite:///{tmp / 'rg.db'}", config=config) as service:
        yield service, config


def _traffic(http: httpx.Client, n: int = 60) -> list[dict[str, Any]]:
    """Route n tasks per class and report both models' results for each (the weak one is the strong one's
    equal on easy_facts and much worse on hard_proofs)."""
    rng = random.Random(7)
    sent = []
    for klass in CLASSES:
        for _ in range(n):
            d = http.post("/v1/route", json={"task_type": klass, "tenant": "acme", "data_class": "internal"}).json()
            strong_ok = rng.random() < 0.9
            weak_ok = strong_ok if klass == "easy_facts" else rng.random() < 0.3
            batch = [
                {"trace_id": d["trace_id"], "model": STRONG, "ok": True, "latency_ms": 900,
                 "tokens": {"input": 400, "output": 100}, "quality": float(strong_ok)},
                {"trace_id": d["trace_id"], "model": WEAK, "ok": True, "latency_ms": 300,
                 "tokens": {"input": 400, "output": 100}, "quality": float(weak_ok)},
            ]
            assert http.post("/v1/outcomes", json=batch).status_code == 202
            sent.append({"trace_id": d["trace_id"], "policy": d["policy"], "version": d["policy_version"],
                         "task_class": klass})
    return sent


def test_export_round_trips_into_a_review(svc: tuple[Service, Path], tmp_path: Path) -> None:
    service, config = svc
    with httpx.Client(base_url=service.url, timeout=30) as http:
        sent = _traffic(http)
        resp = http.get("/v1/outcomes/export", params={"format": "csv"})
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(resp.text)))
        assert tuple(rows[0]) == EXPORT_COLUMNS
        by_trace = {(r["trace_id"], r["model"]): r for r in rows}
        for s in sent:
            row = by_trace[(s["trace_id"], STRONG)]
            assert (row["task_class"], row["policy"], row["version"], row["tenant"], row["data_class"]) == (
                s["task_class"], s["policy"], str(s["version"]), "acme", "internal")
            assert float(row["cost_usd"]) == pytest.approx((400 * 10.0 + 100 * 30.0) / 1e6)
            assert row["ok"] == "True" and row["task_id"] == s["trace_id"] and row["latency_ms"] == "900.0"
        lines = http.get("/v1/outcomes/export", params={"format": "jsonl"}).text.splitlines()
        assert len(lines) == len(rows) == 2 * len(sent)
        assert set(json.loads(lines[0])) == set(EXPORT_COLUMNS)
        later = (datetime.now(UTC) + timedelta(days=3650)).isoformat()
        assert http.get("/v1/outcomes/export", params={"since": later}).text.count("\n") == 1  # header only
        assert http.get("/v1/outcomes/export", params={"format": "xml"}).status_code == 422
    out = tmp_path / "review"
    done = run_cli("review", "--config", str(config), "--server", service.url, "--since", "2000-01-01T00:00:00Z",
                   "--report", str(out), "--json", "--no-charts", "--resamples", "200")
    assert done.returncode in (0, 1), done.stderr
    report = json.loads((out / "report.json").read_text())
    assert (out / "ledger-export.csv").is_file()
    classes = {c["task_class"]: c for c in report["classes"]}
    assert set(classes) == set(CLASSES)
    assert classes["hard_proofs"]["proposed_model"] in (None, STRONG)  # never moved to the much worse model
    assert classes["easy_facts"]["current_model"] == STRONG
    assert classes["easy_facts"]["n"]["learn"] + classes["easy_facts"]["n"]["heldout"] == 60  # every exported task


def test_retention_purges_old_rows(svc: tuple[Service, Path]) -> None:
    service, _ = svc
    ledger = service.state.store.ledger
    old = datetime(2001, 1, 1, tzinfo=UTC)
    ledger.append([LedgerEntry(ts=old, model=STRONG, ok=True, task_class="easy_facts")])
    before = ledger.count()
    assert service.state.ledger.purge() >= 1
    assert ledger.count() == before - 1


def test_a_review_the_service_runs_itself_proposes_a_draft_and_never_publishes(
    svc: tuple[Service, Path], tmp_path: Path
) -> None:
    service, _ = svc
    state = service.state
    state.reviews.directory = tmp_path / "reviews"
    with httpx.Client(base_url=service.url, timeout=60) as http:
        if state.store.ledger.count() < 100:
            _traffic(http)
        serving = http.get("/v1/policies").json()
        before = state.serving_version()
        made = http.post("/v1/reviews")
        assert made.status_code == 201, made.text
        summary = made.json()
        assert summary["status"] == "draft" and summary["reason"] == "requested"
        version = http.get(f"/v1/policies/{summary['version']}").json()
        assert (version["status"], version["author"]) == ("draft", "routeguard:review")
        assert state.serving_version() == before  # a review never publishes
        assert len(http.get("/v1/policies").json()["versions"]) == len(serving["versions"]) + 1
        listed = http.get("/v1/reviews").json()["reviews"]
        assert listed[0]["id"] == summary["id"]
        one = http.get(f"/v1/reviews/{summary['id']}").json()
        assert one["report"]["classes"] and one["version"] == summary["version"]
        page = http.get(f"/v1/reviews/{summary['id']}/report.html")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert http.get(f"/v1/reviews/{summary['id']}/..%2Fsecret").status_code == 404
        assert http.get("/v1/reviews/nope").status_code == 404
        audit = http.get("/v1/audit", params={"kind": "review.proposed"}).json()["records"]
        assert audit and audit[-1]["payload"]["event"] == "agent.routing.review"
        assert audit[-1]["payload"]["version"] == summary["version"]


def test_a_new_approval_or_price_makes_a_review_due(svc: tuple[Service, Path]) -> None:
    scheduler = svc[0].state.reviews
    current = scheduler._fingerprint()
    assert current is not None and scheduler.every_s is None  # no schedule: only changes make it due
    scheduler._seen = {**current, "approvals": current["approvals"][1:]}
    assert scheduler.due() == "new approval"
    prices = {k: {"input_per_1m": 1.0, "output_per_1m": 1.0} for k in current["prices"]}
    scheduler._seen = {**current, "prices": prices}
    assert scheduler.due() == "price change"
    scheduler._seen = current
    assert scheduler.due() is None
    from routeguard.core.events import HealthChanged

    scheduler.every_s, scheduler._next_due = 3600.0, float("inf")
    try:
        scheduler.observe(HealthChanged("qa-router", WEAK, "healthy", "degraded", "error_rate 0.15 > 0.10", 0.0))
        assert scheduler.due() is None  # degraded, but not for quality
        scheduler.observe(HealthChanged("qa-router", WEAK, "healthy", "degraded", "quality 0.61 < 0.80 (n=25)", 0.0))
        assert (scheduler.due() or "").startswith("quality drop: mixtral-8x7b")
    finally:
        scheduler.every_s, scheduler._next_due, scheduler._pending = None, None, None


def test_a_submitted_draft_records_its_author_not_anonymous(
    svc: tuple[Service, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from routeguard.review.submit import submit_draft

    service, config = svc
    raw = yaml.safe_load(config.read_text())
    raw["policies"]["qa-router"]["description"] = "a draft from a review"
    named = submit_draft(service.url, raw, "review-test", principal="carol")
    monkeypatch.setenv("ROUTEGUARD_PRINCIPAL", "dave")
    raw["policies"]["qa-router"]["description"] = "another draft"
    default = submit_draft(service.url, raw, "review-test-2")
    with httpx.Client(base_url=service.url) as http:
        assert http.get(f"/v1/policies/{named['version']}").json()["author"] == "carol"
        assert http.get(f"/v1/policies/{default['version']}").json()["author"] == "dave"


def test_serve_review_every_runs_reviews_on_its_own(tmp_path: Path) -> None:
    import time

    from support.service import serve_process

    config = tmp_path / "bundle.yaml"
    config.write_text(yaml.safe_dump(replay_bundle(CLASSES)))
    args = ("--config", str(config), "--db", f"sqlite:///{tmp_path / 'rg.db'}", "--review-every", "1s",
            "--reviews-dir", str(tmp_path / "reviews"), "--retain", "7d")
    with serve_process(*args, cwd=tmp_path) as proc, httpx.Client(base_url=proc.url, timeout=30) as http:
        deadline = time.monotonic() + 30
        reviews: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not reviews:
            reviews = http.get("/v1/reviews").json()["reviews"]
            time.sleep(0.3)
        assert reviews and reviews[0]["reason"] == "schedule"
        assert reviews[0]["status"] == "no_data"  # nothing in the ledger yet: nothing proposed, still reported
        audit = http.get("/v1/audit", params={"kind": "review.proposed"}).json()["records"]
        assert audit and audit[0]["payload"]["event"] == "agent.routing.review"
        assert http.get("/v1/policies").json()["versions"][-1]["version"] == 1  # nothing published or drafted
    assert (tmp_path / "reviews" / reviews[0]["id"] / "summary.json").is_file()


@pytest.mark.services
def test_the_ledger_on_postgresql() -> None:
    from routeguard.store.db import open_store
    from support.services import postgres_schema

    with postgres_schema() as url:
        store = open_store(url)
        try:
            old, new = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
            batch = [LedgerEntry(ts=old, model=STRONG, ok=True, task_class="easy_facts", input_tokens=3),
                     *(LedgerEntry(ts=new, model=WEAK, ok=False, error="timeout") for _ in range(2500))]
            assert store.ledger.append(batch) == 2501
            rows = list(store.ledger.rows(None, batch=1000))  # three pages, oldest first
            assert len(rows) == 2501 and rows[0]["ts"] == "2026-01-01T00:00:00Z"
            assert rows[0]["task_class"] == "easy_facts"
            assert [r["task_id"] for r in store.ledger.rows(new)][:1] == [f"ledger-{rows[1]['_id']}"]
            assert store.ledger.purge(datetime(2026, 3, 1, tzinfo=UTC)) == 1 and store.ledger.count() == 2500
        finally:
            store.close()
