"""The review loop on synthetic data with known answers.

Models: ``small`` (cheap, cleared for internal data), ``large`` (expensive, confidential), ``leaky``
(cheapest, cleared only for public data) and ``offshore`` (cheap, runs outside the allowed region). Classes:
``faq`` over-served, ``summaries`` needs ``large`` (only the forbidden models match it cheaply), ``math``
under-served on ``small``, ``rare`` too small to conclude anything.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from routeguard.config.load import load_bundle
from routeguard.core.checks import check_bundle
from routeguard.core.resolve import PolicyIndex, RequestKey
from routeguard.review.run import run_review
from routeguard.review.settings import ReviewSettings

NOW = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
FAST = {"resamples": 200}

# class -> (tasks, {model: P(correct)}); outcomes are correlated through one latent difficulty per task
CLASSES: dict[str, tuple[int, dict[str, float]]] = {
    "faq": (400, {"small": 0.95, "large": 0.96, "leaky": 0.96, "offshore": 0.96}),
    "summaries": (400, {"small": 0.60, "large": 0.90, "leaky": 0.90, "offshore": 0.90}),
    "math": (300, {"small": 0.50, "large": 0.90}),
    "rare": (8, {"small": 0.90, "large": 0.90}),
}


def _model(clearance: str, region: str, price: float) -> dict[str, Any]:
    return {
        "provider": "acme",
        "endpoint": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"},
        "capabilities": ["text"],
        "clearance": clearance,
        "regions": [region],
        "cost": {"input_per_1m": price, "output_per_1m": price * 3},
    }


def bundle(
    large_expires: str = "2030-01-01", extra_policies: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "data_classes": ["public", "internal", "confidential", "restricted"],
        "models": {
            "small": _model("internal", "eu-west-1", 0.5),
            "large": _model("confidential", "eu-west-1", 10.0),
            "leaky": _model("public", "eu-west-1", 0.1),
            "offshore": _model("confidential", "us-east-1", 0.2),
        },
        "profiles": {"support": {"requires": ["text"], "data_class": "internal", "regions": ["eu-west-1"]}},
        "approvals": [
            {
                "model": m,
                "profile": "support",
                "by": "board",
                "evidence": f"EV-{m}",
                "expires": large_expires if m == "large" else "2030-01-01",
            }
            for m in ("small", "large", "leaky", "offshore")
        ],
        "policies": {
            "support-bot": {
                "profile": "support",
                "match": {"task_types": ["faq", "summaries", "rare"]},
                "primary": "large",
                "fallbacks": [{"model": "small"}],
            },
            "math-bot": {"profile": "support", "match": {"task_types": ["math"]}, "primary": "small"},
            **(extra_policies or {}),
        },
    }


def evals_rows(
    classes: Mapping[str, tuple[int, dict[str, float]]],
    seed: int = 1,
    data_class: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    rows = []
    for klass, (n, probs) in classes.items():
        for i in range(n):
            u = rng.random()
            for model, p in probs.items():
                row = {
                    "task_id": f"{klass}-{i}",
                    "task_class": klass,
                    "model": model,
                    "quality": int(u < p),
                    "input_tokens": 400,
                    "output_tokens": 100,
                    "latency_ms": 300 + 50 * i % 7,
                }
                if data_class and klass in data_class:
                    row["data_class"] = data_class[klass]
                rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    fields = sorted({k for r in rows for k in r})
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return path


def case(
    tmp_path: Path,
    raw: dict[str, Any] | None = None,
    rows: list[dict[str, Any]] | None = None,
) -> tuple[Path, Path]:
    cfg = tmp_path / "bundle.yaml"
    cfg.write_text(yaml.safe_dump(raw or bundle(), sort_keys=False))
    return cfg, write_csv(tmp_path / "evals.csv", rows or evals_rows(CLASSES))


def by_class(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["task_class"]: c for c in report["classes"]}


@pytest.fixture(scope="module")
def base_review(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("review")
    cfg, evals = case(tmp)
    return run_review(
        cfg, evals, tmp / "out", settings=ReviewSettings(tolerance=0.05, **FAST), now=NOW, charts=True
    )


def test_over_served_class_moves_to_the_cheaper_approved_model(base_review: Any) -> None:
    faq = by_class(base_review.report)["faq"]
    assert faq["status"] == "move_cheaper"
    assert (faq["current_model"], faq["proposed_model"]) == ("large", "small")
    assert faq["privacy_residency"]["clearance_ok"] and faq["privacy_residency"]["residency_ok"]


def test_under_served_class_gets_the_cheapest_model_that_restores_it(base_review: Any) -> None:
    math = by_class(base_review.report)["math"]
    assert math["status"] == "upgrade"
    assert (math["current_model"], math["proposed_model"]) == ("small", "large")
    assert math["replay"][-1]["verdict"] == "pass"


def test_models_crossing_privacy_or_residency_are_never_chosen(base_review: Any) -> None:
    classes = by_class(base_review.report)
    assert all(c["proposed_model"] not in ("leaky", "offshore") for c in classes.values())
    summaries = classes["summaries"]
    assert summaries["status"] == "keep"
    excluded = {e["model"]: e["reasons"] for e in summaries["privacy_residency"]["excluded"]}
    assert "clearance_too_low" in excluded["leaky"]
    assert "region_not_allowed" in excluded["offshore"]


def test_too_small_class_is_left_alone(base_review: Any) -> None:
    rare = by_class(base_review.report)["rare"]
    assert rare["status"] == "insufficient_data"
    assert rare["proposed_model"] is None


def test_proposal_is_a_valid_bundle_routing_each_class(base_review: Any) -> None:
    loaded = load_bundle(base_review.proposal_path)
    assert check_bundle(loaded.bundle, NOW) == []
    index = PolicyIndex(loaded.bundle.policies)
    expect = {"faq": "small", "summaries": "large", "math": "large", "rare": "large"}
    for klass, model in expect.items():
        best = index.best(RequestKey(task_type=klass))
        assert len(best) == 1 and best[0].primary_models == (model,), klass
    # with the agent id of the original policy the same classes resolve the same way
    assert index.resolve(RequestKey(agent="support-bot", task_type="faq")).primary_models == ("small",)  # type: ignore[union-attr]
    assert loaded.raw["policies"]["math-bot"]["primary"] == "large"  # the whole policy moved: primary changed
    assert "faq" not in loaded.raw["policies"]["support-bot"]["match"]["task_types"]


def test_outputs_and_decision_log(base_review: Any) -> None:
    out = base_review.report_dir
    for name in ("report.md", "report.html", "report.json", "proposal.yaml", "frontier.png", "classes-1.png"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["summary"]["verification"] == "pass"
    assert "data:image/png;base64," in (out / "report.html").read_text()
    entry = json.loads((out / "decision-log.jsonl").read_text().splitlines()[-1])
    assert entry["status"] == "proposed"
    assert {c["task_class"] for c in entry["changes"]} == {"faq", "math"}
    faq = by_class(report)["faq"]
    assert faq["quality"]["split"] == "held-out replay"
    assert faq["quality"]["current"]["method"] == "wilson"
    assert faq["latency_delta_ms"] is not None and faq["cost_delta_per_task_usd"]["value"] < 0


def test_rerun_is_deterministic(tmp_path: Path, base_review: Any) -> None:
    cfg, evals = case(tmp_path)
    again = run_review(
        cfg, evals, tmp_path / "out", settings=ReviewSettings(tolerance=0.05, **FAST), now=NOW, charts=False
    )
    assert again.report["classes"] == base_review.report["classes"]
    assert (tmp_path / "out" / "proposal.yaml").read_text() == base_review.proposal_path.read_text()


def test_privacy_tier_and_approval_escalations(tmp_path: Path) -> None:
    classes = {**CLASSES, "legal": (300, {"small": 0.5, "large": 0.55, "leaky": 0.95})}
    raw = bundle(
        extra_policies={
            "legal-bot": {"profile": "support", "match": {"task_types": ["legal"]}, "primary": "small"}
        }
    )
    rows = evals_rows(classes, data_class={"faq": "confidential"})
    cfg, evals = case(tmp_path, raw, rows)
    result = run_review(cfg, evals, tmp_path / "out", settings=ReviewSettings(**FAST), now=NOW, charts=False)
    classes_out = by_class(result.report)
    assert classes_out["faq"]["status"] == "escalated"
    assert classes_out["faq"]["escalation"] == "privacy_tier"
    assert classes_out["legal"]["status"] == "escalated"
    assert classes_out["legal"]["escalation"] == "privacy_tier"
    assert "leaky" in classes_out["legal"]["reasons"][-1]
    assert {e["task_class"] for e in result.report["escalations"]} == {"faq", "legal"}
    assert all(c["proposed_model"] is None for c in (classes_out["faq"], classes_out["legal"]))


def test_deprecation_and_unreachable_target_escalate(tmp_path: Path) -> None:
    soon = datetime.fromtimestamp(NOW + 10 * 86400, UTC).date().isoformat()
    cfg, evals = case(tmp_path, bundle(large_expires=soon))
    result = run_review(cfg, evals, tmp_path / "out", settings=ReviewSettings(**FAST), now=NOW, charts=False)
    c = by_class(result.report)
    assert c["faq"]["escalation"] == "deprecation" and c["faq"]["proposed_model"] is None
    assert c["math"]["proposed_model"] is None  # large is being deprecated: not a candidate for the upgrade

    sub = tmp_path / "target"
    sub.mkdir()
    cfg2, evals2 = case(sub)
    target = run_review(
        cfg2, evals2, sub / "out", settings=ReviewSettings(quality_target=0.97, **FAST), now=NOW, charts=False
    )
    summaries = by_class(target.report)["summaries"]
    assert summaries["escalation"] == "quality_vs_cost_trade"


def _telemetry(path: Path, recent_switch: str) -> Path:
    rows = []
    for klass, model in (("faq", "large"), ("summaries", "large"), ("math", "small"), ("rare", "large")):
        for day in range(30, 0, -1):
            served = model
            if klass == recent_switch:
                served = "small" if day > 2 else "large"  # it changed two days ago
            ts = datetime.fromtimestamp(NOW - day * 86400, UTC).isoformat().replace("+00:00", "Z")
            rows.append(
                {
                    "ts": ts,
                    "task_class": klass,
                    "model": served,
                    "success": "true",
                    "latency_ms": 420,
                    "cost_usd": 0.001,
                }
            )
    return write_csv(path, rows)


def test_recently_changed_class_needs_much_stronger_evidence(tmp_path: Path) -> None:
    # faq on small loses 4 % of its quality: fine normally, not enough evidence right after a change
    classes = {**CLASSES, "faq": (400, {"small": 0.92, "large": 0.96})}
    cfg, evals = case(tmp_path, rows=evals_rows(classes))
    calm = run_review(cfg, evals, tmp_path / "calm", settings=ReviewSettings(**FAST), now=NOW, charts=False)
    assert by_class(calm.report)["faq"]["proposed_model"] == "small"
    tele = _telemetry(tmp_path / "telemetry.csv", recent_switch="faq")
    log = tmp_path / "decisions.jsonl"
    log.write_text(
        json.dumps(
            {
                "ts": datetime.fromtimestamp(NOW - 86400, UTC).isoformat(),
                "status": "published",
                "changes": [{"task_class": "math", "from_model": "large", "to_model": "small"}],
            }
        )
        + "\n"
    )
    result = run_review(
        cfg,
        evals,
        tmp_path / "out",
        tele,
        settings=ReviewSettings(**FAST),
        now=NOW,
        decision_log=log,
        charts=False,
    )
    c = by_class(result.report)
    assert c["faq"]["recent_change"]["source"] == "telemetry"
    assert c["faq"]["proposed_model"] is None
    assert any("changed recently" in r for r in c["faq"]["reasons"])
    assert c["math"]["recent_change"]["source"] == "decision-log"
    assert c["math"]["proposed_model"] == "large"  # 0.50 -> 0.90 is overwhelming evidence
    assert result.report["production"]["volume"]["faq"] == 30


def test_submit_posts_a_draft(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, dict[str, Any], str]] = []

    def fake(url: str, config: dict[str, Any], label: str) -> dict[str, Any]:
        calls.append((url, config, label))
        return {
            "url": url + "/v1/policies",
            "status": "draft",
            "version": 4,
            "hash": "sha256:x",
            "findings": [],
        }

    monkeypatch.setattr("routeguard.review.run.submit_draft", fake)
    cfg, evals = case(tmp_path)
    result = run_review(
        cfg,
        evals,
        tmp_path / "out",
        settings=ReviewSettings(**FAST),
        now=NOW,
        charts=False,
        submit_url="http://127.0.0.1:8080",
    )
    assert result.submitted is not None and result.submitted["version"] == 4
    assert len(calls) == 1 and calls[0][2].startswith("review-")
    assert calls[0][1]["policies"]["math-bot"]["primary"] == "large"


def test_unlabeled_tasks_are_clustered_then_reviewed(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(5)
    billing = ["refund invoice payment", "invoice payment charged twice", "billing refund invoice"]
    coding = ["python function exception", "python import error function", "debug python stack exception"]
    rows = []
    for i in range(240):
        topic = billing if i % 2 else coding
        u = rng.random()
        p_small = 0.95 if topic is billing else 0.4
        for model, p in (("small", p_small), ("large", 0.96)):
            rows.append(
                {
                    "task_id": f"t{i}",
                    "task_class": "",
                    "prompt": f"{topic[i % 3]} case {i}",
                    "model": model,
                    "quality": int(u < p),
                    "cost_usd": 0.0001 if model == "small" else 0.002,
                }
            )
    raw = bundle()
    raw["policies"] = {"bot": {"profile": "support", "primary": "large", "fallbacks": ["small"]}}
    cfg, evals = case(tmp_path, raw, rows)
    result = run_review(
        cfg, evals, tmp_path / "out", agent="bot", settings=ReviewSettings(**FAST), now=NOW, charts=False
    )
    clusters = result.report["inputs"]["clusters"]
    assert len(clusters) >= 2 and all(c["name"].startswith("auto-") for c in clusters)
    moved = [c for c in result.report["classes"] if c["proposed_model"] == "small"]
    coding_words = {"python", "function", "exception", "import", "error", "debug", "stack"}
    assert moved and not any(set(c["task_class"].split("-")) & coding_words for c in moved)
    loaded = load_bundle(result.proposal_path)
    assert check_bundle(loaded.bundle, NOW) == []
    policy = PolicyIndex(loaded.bundle.policies).resolve(
        RequestKey(agent="bot", task_type=moved[0]["task_class"])
    )
    assert policy is not None and policy.primary_models == ("small",)
