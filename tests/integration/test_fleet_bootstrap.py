"""Replicas started together with the same `--config` on an empty PostgreSQL store: one publishes it as
version 1, the others find it published and start serving it (no failed start, one bootstrap record)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from routeguard.service.bootstrap import BootReport, bootstrap
from routeguard.store.db import open_store
from support.fleet import postgres_database
from support.service import bundle, write_bundle

pytestmark = pytest.mark.services


def test_concurrent_bootstraps_publish_once(tmp_path: Path) -> None:
    config = write_bundle(tmp_path / "v1.yaml", bundle())
    with postgres_database("rg_boot") as url:
        open_store(url).close()  # migrated once; the race is on the publication
        stores = [open_store(url) for _ in range(3)]
        barrier = threading.Barrier(len(stores))
        reports: list[BootReport] = []
        errors: list[BaseException] = []

        def start(index: int) -> None:
            barrier.wait()
            try:
                reports.append(bootstrap(stores[index], config, 0.0, legacy_env=False))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        try:
            assert errors == []
            assert sorted(r.bootstrapped or 0 for r in reports) == [0, 0, 1]
            records, _ = stores[0].audit.query(kind="policy.bootstrap")
            assert len(records) == 1
            assert stores[0].policies.rollout().stable_version() == 1
            assert len(stores[0].policies.list_versions()) == 1
        finally:
            for store in stores:
                store.close()
