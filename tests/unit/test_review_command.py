"""The Typer sub-app and the draft upload."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from routeguard.review.command import app
from routeguard.review.submit import SubmitError, submit_draft

WIDE = "id,dataset,task_class,prompt,mixtral_8x7b_correct,gpt_4_1106_correct,contaminated\n" + "".join(
    f"{c}{i},mmlu,{c},question {i} about {c},{int(i % 10 != 0)},1,0\n"
    for c in ("alpha", "beta")
    for i in range(60)
)


def _cli() -> typer.Typer:
    main = typer.Typer()
    main.add_typer(app, name="review")
    return main


def test_convert_then_review_through_the_cli(tmp_path: Path) -> None:
    src = tmp_path / "wide.csv.gz"
    src.write_bytes(gzip.compress(WIDE.encode()))
    runner = CliRunner()
    conv = runner.invoke(
        _cli(),
        [
            "review",
            "convert",
            str(src),
            str(tmp_path / "evals.csv"),
            "--bundle-out",
            str(tmp_path / "bundle.yaml"),
            "--json",
        ],
    )
    assert conv.exit_code == 0, conv.output
    assert json.loads(conv.output)["tasks"] == 120
    res = runner.invoke(
        _cli(),
        [
            "review",
            "--config",
            str(tmp_path / "bundle.yaml"),
            "--evals",
            str(tmp_path / "evals.csv"),
            "--report",
            str(tmp_path / "out"),
            "--resamples",
            "100",
            "--no-charts",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["proposal"]["valid"] is True
    assert (tmp_path / "out" / "proposal.yaml").is_file()
    assert any(
        "characters / 4" in a
        for a in json.loads((tmp_path / "out" / "report.json").read_text())["inputs"]["assumptions"]
    )


def test_cli_reports_missing_options_and_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(_cli(), ["review", "--evals", "x.csv"]).exit_code == 2
    (tmp_path / "b.yaml").write_text("models: {}\npolicies: {}\n")
    (tmp_path / "e.csv").write_text("task_id,model\n1,a\n")
    res = runner.invoke(
        _cli(),
        [
            "review",
            "--config",
            str(tmp_path / "b.yaml"),
            "--evals",
            str(tmp_path / "e.csv"),
            "--report",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 2


def test_submit_draft_posts_config_and_label_with_bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            201, json={"version": 9, "status": "draft", "hash": "sha256:ab", "findings": []}
        )

    monkeypatch.setenv("ROUTEGUARD_TOKEN", "secret-token")
    out = submit_draft(
        "http://rg.local/", {"policies": {}}, "review-x", transport=httpx.MockTransport(handler)
    )
    assert out["version"] == 9 and out["status"] == "draft"
    assert len(seen) == 1 and seen[0].method == "POST" and seen[0].url.path == "/v1/policies"
    assert seen[0].headers["authorization"] == "Bearer secret-token"
    assert json.loads(seen[0].content) == {"config": {"policies": {}}, "label": "review-x"}


def test_submit_draft_refusal_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            422, json={"error": {"code": "invalid_bundle", "message": "no", "findings": []}}
        )

    with pytest.raises(SubmitError, match="422") as exc:
        submit_draft("http://rg.local", {}, "l", token="t", transport=httpx.MockTransport(handler))
    assert exc.value.status == 422


def test_cli_names_a_malformed_class_limit(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text("models: {}\npolicies: {}\n")
    (tmp_path / "e.csv").write_text("task_id,model\n1,a\n")
    res = CliRunner().invoke(
        _cli(),
        ["review", "--config", str(tmp_path / "b.yaml"), "--evals", str(tmp_path / "e.csv"),
         "--report", str(tmp_path / "o"), "--class-limit", "grade_school_math"],
    )
    assert res.exit_code == 2
    assert "--class-limit" in res.output and "CLASS=SHARE" in res.output
