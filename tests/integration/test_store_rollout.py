"""The pure rollout rules (no database): stable version, staged tenants, sticky percent, later wins."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime

from routeguard.store.models import Publication, Scope
from routeguard.store.rollout import Rollout, shadows, tenant_bucket

AT = datetime(2026, 1, 1, tzinfo=UTC)
TENANTS = [f"tenant-{i}" for i in range(2000)]


def pub(
    pid: int, version: int, scope: Scope, excluded: frozenset[str] = frozenset(), active: bool = True
) -> Publication:
    return Publication(pid, version, scope, "bob", AT, excluded=excluded, active=active)


def test_bucket_is_sha256_of_the_tenant_mod_100() -> None:
    expected = int.from_bytes(hashlib.sha256(b"acme").digest()[:8], "big") % 100
    assert tenant_bucket("acme") == expected
    buckets = [tenant_bucket(t) for t in TENANTS]
    assert min(buckets) == 0 and max(buckets) == 99
    assert 150 < sum(b < 10 for b in buckets) < 250  # about 10 %


def test_nothing_published() -> None:
    r = Rollout([])
    assert (r.version_for(None), r.version_for("acme"), r.live_scopes()) == (None, None, [])


def test_stable_is_latest_all_and_no_tenant_gets_it() -> None:
    r = Rollout(
        [
            pub(1, 1, Scope.all()),
            pub(2, 2, Scope.all()),
            pub(3, 3, Scope.for_tenants(["acme"])),
            pub(4, 4, Scope.for_percent(100)),
        ]
    )
    assert r.stable_version() == 2 and r.version_for(None) == 2
    assert r.version_for("acme") == 4 and r.version_for("x") == 4
    assert r.live_versions() == [1, 2, 3, 4]  # given as active; the store ends shadowed ones itself


def test_staged_tenants_override_stable() -> None:
    r = Rollout([pub(1, 1, Scope.all()), pub(2, 2, Scope.for_tenants(["acme", "globex"]))])
    assert [r.version_for(t) for t in ("acme", "globex", "initech")] == [2, 2, 1]
    assert r.resolve("acme") is not None and r.resolve("acme").scope.describe() == "tenants:acme,globex"  # type: ignore[union-attr]


def test_percent_is_sticky_across_many_calls_and_snapshots() -> None:
    pubs = [pub(1, 1, Scope.all()), pub(2, 2, Scope.for_percent(25))]
    first = {t: Rollout(pubs).version_for(t) for t in TENANTS}
    for _ in range(20):
        r = Rollout(list(reversed(pubs)))  # input order does not matter
        assert {t: r.version_for(t) for t in TENANTS} == first
    assert {t for t, v in first.items() if v == 2} == {t for t in TENANTS if tenant_bucket(t) < 25}


def test_later_publication_wins() -> None:
    inside = next(t for t in TENANTS if tenant_bucket(t) < 50)
    older_tenant_newer_percent = Rollout(
        [pub(1, 1, Scope.all()), pub(2, 2, Scope.for_tenants([inside])), pub(3, 3, Scope.for_percent(50))]
    )
    assert older_tenant_newer_percent.version_for(inside) == 3
    older_percent_newer_tenant = Rollout(
        [pub(1, 1, Scope.all()), pub(2, 3, Scope.for_percent(50)), pub(3, 2, Scope.for_tenants([inside]))]
    )
    assert older_percent_newer_tenant.version_for(inside) == 2


def test_excluded_tenants_and_inactive_publications_do_not_match() -> None:
    inside = next(t for t in TENANTS if tenant_bucket(t) < 50)
    r = Rollout(
        [
            pub(1, 1, Scope.all()),
            pub(2, 2, Scope.for_percent(50), excluded=frozenset({inside})),
            pub(3, 3, Scope.for_tenants(["acme"]), active=False),
        ]
    )
    assert (r.version_for(inside), r.version_for("acme")) == (1, 2 if tenant_bucket("acme") < 50 else 1)
    assert r.live_scopes() == [(1, "all"), (2, "percent:50")]


def test_shadowing() -> None:
    older_tenants = pub(1, 1, Scope.for_tenants(["a", "b"]), excluded=frozenset({"b"}))
    assert shadows(Scope.all(), older_tenants)
    assert shadows(Scope.for_tenants(["a"]), older_tenants)
    assert not shadows(Scope.for_tenants(["c"]), older_tenants)
    assert shadows(Scope.for_percent(20), pub(2, 1, Scope.for_percent(10)))
    assert not shadows(Scope.for_percent(5), pub(2, 1, Scope.for_percent(10)))
    assert not shadows(Scope.for_percent(100), older_tenants)
    assert not shadows(Scope.for_tenants(["a"]), pub(3, 1, Scope.all()))


def test_rollout_module_is_pure() -> None:
    code = "import sys, routeguard.store.rollout; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
