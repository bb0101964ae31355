"""The proxy under a learned primary (CONTRACT §3 "Proxy", §7): it scores the request's messages itself and
routes per prompt, within governance, and every served call lands in the outcome ledger."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from routeguard.learned.artifact import ARTIFACT_FORMAT
from routeguard.learned.features import DEFAULT_DIMS, TOKEN_PATTERN, hashed_counts
from support.proxy import AGENT, UP, poll, proxy_bundle, proxy_service
from support.upstream import UpstreamServer


def _artifact(path: Path) -> str:
    """"easy" in a prompt pulls the score up (weak arm), "hard" down (strong arm)."""
    (easy,), (hard,) = hashed_counts("easy"), hashed_counts("hard")
    doc = {
        "format": ARTIFACT_FORMAT,
        "features": {"kind": "hashed-ngrams", "hash": "crc32", "dims": DEFAULT_DIMS, "ngrams": [1, 2],
                     "token_pattern": TOKEN_PATTERN},
        "idf_default": 1.0, "intercept": 0.0,
        "weights": {"index": [easy, hard], "idf": [1.0, 1.0], "coef": [6.0, -6.0]},
    }
    data = json.dumps(doc).encode()
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _bundle(tmp_path: Path, base_url: str) -> dict[str, Any]:
    raw = proxy_bundle(base_url)
    policy = raw["policies"][AGENT]
    policy.pop("fallbacks")
    policy["primary"] = {"learned": {"strong": "alpha", "weak": "beta", "artifact": "qa.json",
                                     "sha256": _artifact(tmp_path / "qa.json"), "threshold": 0.5}}
    raw["models"]["alpha"]["clearance"] = "restricted"
    raw["models"]["beta"]["clearance"] = "internal"
    return raw


def test_the_proxy_scores_each_prompt_and_routes_within_governance(tmp_path: Path, upstream: UpstreamServer) -> None:
    with proxy_service(tmp_path, upstream, raw=_bundle(tmp_path, upstream.base_url)) as px:
        served = {}
        for text in ("an easy question", "a hard question", "easy, but restricted"):
            extra = {"metadata": {"data_class": "restricted"}} if "restricted" in text else {}
            raw = px.client.chat.completions.with_raw_response.create(
                model=AGENT, messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": text}],
                **extra,
            )
            served[text] = raw.headers["x-routeguard-model"]
        assert served == {"an easy question": "beta", "a hard question": "alpha", "easy, but restricted": "alpha"}
        assert upstream.count(UP["beta"]) == 1 and upstream.count(UP["alpha"]) == 2
        with px.http() as http:
            decision = http.post("/v1/route", json={"agent": AGENT, "prompt": "easy"}).json()
            assert decision["model"] == "beta" and decision["score"] > 0.9
            assert http.post("/v1/route", json={"agent": AGENT}).json()["model"] == "alpha"  # no prompt: strong

            def ledger() -> list[dict[str, str]]:
                return list(csv.DictReader(io.StringIO(http.get("/v1/outcomes/export").text)))

            poll(lambda: len(ledger()) == 3, "three served calls in the ledger")
            rows = ledger()
            assert sorted(r["model"] for r in rows) == ["alpha", "alpha", "beta"]
            assert {r["policy"] for r in rows} == {AGENT} and all(r["ok"] == "True" for r in rows)
            assert {r["data_class"] for r in rows} == {"", "restricted"}


def test_an_upload_whose_artifact_does_not_match_is_refused(tmp_path: Path, upstream: UpstreamServer) -> None:
    raw = _bundle(tmp_path, upstream.base_url)
    with proxy_service(tmp_path, upstream, raw=raw) as px, px.http() as http:
        good = http.post("/v1/policies", json={"config": raw, "label": "same artifact"})
        assert good.status_code == 201, good.text
        raw["policies"][AGENT]["primary"]["learned"]["sha256"] = "ab" * 32
        bad = http.post("/v1/policies", json={"config": raw, "label": "tampered"})
        assert bad.status_code == 422
        findings = bad.json()["error"]["findings"]
        assert [(f["code"], f["path"]) for f in findings] == [
            ("artifact_mismatch", f"policies.{AGENT}.primary.learned.artifact")]
