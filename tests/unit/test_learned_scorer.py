"""The learned-primary scorer at the edge (CONTRACT §7): plain-data artifact, hash check, Router wiring."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from learned_support import artifact_document, learned_bundle, write_artifact

from routeguard import Router
from routeguard.learned import ArtifactError, hashed_counts, load_scorer
from routeguard.learned.artifact import scorer_from_document


def test_features_are_word_unigrams_and_bigrams() -> None:
    counts = hashed_counts("Easy easy question")
    assert sum(counts.values()) == 3 + 2  # three words, two bigrams
    assert hashed_counts("") == {}


def test_artifact_round_trip_scores_as_the_formula_says(tmp_path: Path) -> None:
    doc = artifact_document(easy=4.0, hard=-4.0, intercept=0.5)
    digest = write_artifact(tmp_path / "a.json", doc)
    scorer = load_scorer(tmp_path / "a.json", digest)
    assert scorer.sha256 == digest
    assert scorer.score("easy") == pytest.approx(1 / (1 + math.exp(-(0.5 + 4.0))))
    # "easy other": two unigrams and one bigram, each of idf 1 -> norm sqrt(3); only "easy" has a weight
    assert scorer.score("easy other") == pytest.approx(1 / (1 + math.exp(-(0.5 + 4.0 / math.sqrt(3)))))
    assert scorer.score("") == pytest.approx(1 / (1 + math.exp(-0.5)))
    assert scorer.score("hard") < 0.05 < 0.95 < scorer.score("easy")


def test_a_hash_mismatch_is_refused(tmp_path: Path) -> None:
    digest = write_artifact(tmp_path / "a.json")
    (tmp_path / "a.json").write_bytes((tmp_path / "a.json").read_bytes().replace(b"6.0", b"9.0"))
    with pytest.raises(ArtifactError) as err:
        load_scorer(tmp_path / "a.json", digest)
    assert err.value.code == "artifact_mismatch"
    with pytest.raises(ArtifactError):
        load_scorer(tmp_path / "missing.json", digest)


@pytest.mark.parametrize(
    "patch",
    [
        {"format": "pickle"},
        {"features": {"hash": "md5"}},
        {"weights": {"index": [1], "idf": [1.0], "coef": []}},
        {"intercept": "nan"},
    ],
)
def test_a_malformed_artifact_is_refused(patch: dict) -> None:
    doc = artifact_document()
    doc.update(patch)
    with pytest.raises(ArtifactError) as err:
        scorer_from_document(doc)
    assert err.value.code == "artifact_invalid"


def _router(tmp_path: Path, *, tamper: bool = False) -> Router:
    digest = write_artifact(tmp_path / "qa.json")
    if tamper:
        (tmp_path / "qa.json").write_text(json.dumps(artifact_document(easy=-6.0)))
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text(yaml.safe_dump(learned_bundle(sha256=digest)))
    return Router.from_file(bundle)


def test_the_router_scores_the_prompt_and_the_core_picks_the_arm(tmp_path: Path) -> None:
    router = _router(tmp_path)
    easy = router.decide({"agent": "agent", "prompt": "an easy one"})
    assert easy.model == "weak" and easy.score is not None and easy.score > 0.5
    hard = router.decide({"agent": "agent", "prompt": "a hard one"})
    assert hard.model == "strong" and hard.score is not None and hard.score < 0.5
    none = router.decide({"agent": "agent"})
    assert none.model == "strong" and none.score is None
    assert router.decide({"agent": "agent", "prompt": "easy", "data_class": "restricted"}).model == "strong"


def test_a_tampered_artifact_is_never_scored_every_request_goes_strong(tmp_path: Path) -> None:
    router = _router(tmp_path, tamper=True)
    d = router.decide({"agent": "agent", "prompt": "an easy one"})
    assert d.model == "strong" and d.score is None
    assert list(router.scorer_errors()) == ["all/agent"]


def test_the_simulator_carries_prompts_and_routes_per_prompt(tmp_path: Path) -> None:
    from routeguard.sim.report import build_report
    from routeguard.sim.scenario_parse import parse
    from routeguard.sim.simulator import Simulation

    digest = write_artifact(tmp_path / "qa.json")
    bundle = tmp_path / "bundle.yaml"
    bundle.write_text(yaml.safe_dump(learned_bundle(sha256=digest)))
    scenario = parse({"duration": "20s", "seed": 1, "start": "2026-06-01T00:00:00Z",
                      "traffic": [{"agent": "agent", "rps": 5, "prompts": ["an easy one", "a hard one"]}]})
    report = build_report(Simulation(bundle, scenario).run())
    served = report["served_by"]
    assert set(served) == {"weak", "strong"} and abs(served["weak"] - served["strong"]) <= 1
    assert report["unapproved_served"] == 0
