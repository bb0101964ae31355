"""Two services on one SQLite file (no NOTIFY there): the generation poll alone keeps them in step, and
`GET /v1/cluster` lists both with the versions they serve."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.fleet import poll_until
from support.service import ROUTE, bundle, free_port, run_service, write_bundle
from support.services import redis_url_or_skip


def test_two_services_on_one_sqlite_file_follow_each_other(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    config = write_bundle(tmp_path / "v1.yaml", bundle())
    with (
        run_service(url, config=config) as one,
        run_service(url) as two,
        one.client(principal="alice") as alice,
        one.client(principal="bob") as bob,
        two.client(principal="carol") as carol,
    ):
        assert carol.post("/v1/route", json=ROUTE).json()["policy_version"] == 1
        version = alice.post("/v1/policies", json={"config": bundle(primary="triage-v2")}).json()["version"]
        assert bob.post(f"/v1/policies/{version}/approve", json={}).status_code == 200
        assert bob.post(f"/v1/policies/{version}/publish", json={}).status_code == 200
        started = time.monotonic()
        poll_until(
            lambda: carol.post("/v1/route", json=ROUTE).json()["policy_version"] == version,
            started + 1.5,
            "the second service serving the publication",
        )
        assert carol.get("/v1/policies").json()["stable_version"] == version
        assert carol.post("/v1/safe-mode", json={"enabled": True, "tenant": "acme", "reason": "x"}).status_code == 200
        started = time.monotonic()
        poll_until(
            lambda: bob.get("/v1/safe-mode").json()["tenants"] == ["acme"],
            started + 1.5,
            "the first service in safe mode for acme",
        )
        status = bob.get("/v1/safe-mode").json()
        assert status["entries"][0]["tenant"] == "acme" and status["entries"][0]["enabled"] is True
        body = bob.get("/v1/cluster").json()
        assert body["redis"] is None and body["policy_versions"] == {"all": version}
        assert len(body["replicas"]) == 2 and [r["self"] for r in body["replicas"]].count(True) == 1
        poll_until(lambda: carol.get("/v1/cluster").json()["agreed"], time.monotonic() + 1.5, "agreement")
        ready = carol.get("/readyz").json()
        assert ready["fleet"]["changes"] == "poll" and ready["fleet"]["replica"] == two.state.replica_id
        assert "/v1/cluster" in carol.get("/openapi.json").json()["paths"]


def test_a_read_never_describes_another_state_than_the_one_served(tmp_path: Path) -> None:
    """With the background sync made slow (60 s), a read on the second service still agrees with what that
    service serves: the read brings it up to the store's generation first."""
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    config = write_bundle(tmp_path / "v1.yaml", bundle())
    with (
        run_service(url, config=config) as one,
        run_service(url) as two,
        one.client(principal="alice") as alice,
        one.client(principal="bob") as bob,
        two.client(principal="carol") as carol,
    ):
        two.state.fleet.poll_s = 60.0
        time.sleep(0.7)  # the loop's current wait (0.5 s) ends; the next one lasts 60 s
        version = alice.post("/v1/policies", json={"config": bundle(primary="triage-v2")}).json()["version"]
        assert bob.post(f"/v1/policies/{version}/approve", json={}).status_code == 200
        assert bob.post(f"/v1/policies/{version}/publish", json={}).status_code == 200
        listed = carol.get("/v1/policies").json()
        assert listed["stable_version"] == version
        assert carol.post("/v1/route", json=ROUTE).json()["policy_version"] == version
        assert bob.post("/v1/safe-mode", json={"enabled": True, "reason": "drill"}).status_code == 200
        status = carol.get("/v1/safe-mode").json()
        assert status["enabled"] is True and status["global"]["enabled"] is True
        assert carol.post("/v1/route", json=ROUTE).json()["safe_mode"] is True


@pytest.mark.services
def test_the_cluster_view_shows_each_replicas_redis_link(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    config = write_bundle(tmp_path / "v1.yaml", bundle())
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    with (
        run_service(url, config=config, redis_url=redis_url_or_skip()) as up,
        run_service(url, redis_url=nowhere) as down,
        up.client() as http,
    ):

        def links() -> dict[str, str | None]:
            return {r["id"]: r["redis"] for r in http.get("/v1/cluster").json()["replicas"]}

        want = {up.state.replica_id: "up", down.state.replica_id: "down: ConnectionError"}
        poll_until(lambda: links() == want, time.monotonic() + 5, "both links in /v1/cluster")
        link = http.get("/v1/cluster").json()["redis"]
        assert link["status"] == "up" and link["url"].startswith("redis://127.0.0.1")
