"""Policy lifecycle against real SQLite and PostgreSQL: versions, four eyes, publish, rollback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from routeguard.store import (
    FourEyesViolation,
    InvalidScope,
    NotApproved,
    Scope,
    StateConflict,
    UnknownVersion,
    VersionStatus,
)
from routeguard.store.db import Store
from routeguard.store.rollout import tenant_bucket
from support.stores import BACKENDS, T0, open_test_store

H = "sha256:" + "ab" * 32


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with open_test_store(request.param, tmp_path) as s:
        yield s


def approved(store: Store, label: str, content: dict[str, object] | None = None) -> int:
    v = store.policies.create_version(content or {"label": label}, H, label, "alice").version
    store.policies.approve(v, "bob")
    return v


def kinds(store: Store) -> list[str]:
    return [r.kind for r in store.audit.query(limit=1000)[0]]


def test_create_get_list_keeps_content_opaque(store: Store) -> None:
    content = {"models": {"m": {"cost": {"input_per_1m": 0.5}}}, "unicode": "zürich", "expires": "2027-06-30"}
    v = store.policies.create_version(content, H, "first", "alice")
    assert (v.version, v.status, v.author, v.label, v.content_hash) == (
        1,
        VersionStatus.DRAFT,
        "alice",
        "first",
        H,
    )
    assert store.policies.get_version(1).content == content
    assert v.created_at > T0
    listed = store.policies.list_versions()
    assert [x.version for x in listed] == [1] and listed[0].content is None
    assert store.policies.list_versions(with_content=True)[0].content == content
    assert store.policies.create_version({}, H, None, "alice").version == 2
    with pytest.raises(UnknownVersion):
        store.policies.get_version(99)
    assert kinds(store) == ["policy.created", "policy.created"]


def test_four_eyes_and_duplicate_approval(store: Store) -> None:
    v = store.policies.create_version({}, H, "x", "alice").version
    with pytest.raises(FourEyesViolation):
        store.policies.approve(v, "alice")
    assert store.policies.get_version(v).status is VersionStatus.DRAFT
    out = store.policies.approve(v, "bob", "looks right")
    assert out.status is VersionStatus.APPROVED
    assert [(a.approver, a.comment) for a in out.approvals] == [("bob", "looks right")]
    with pytest.raises(StateConflict):
        store.policies.approve(v, "bob")
    assert len(store.policies.approve(v, "carol").approvals) == 2
    with pytest.raises(UnknownVersion):
        store.policies.approve(42, "bob")
    assert kinds(store) == ["policy.created", "policy.approved", "policy.approved"]


def test_publish_only_approved_versions(store: Store) -> None:
    v = store.policies.create_version({}, H, "x", "alice").version
    with pytest.raises(NotApproved):
        store.policies.publish(v, Scope.all(), "bob")
    assert store.policies.live_publications() == []
    with pytest.raises(UnknownVersion):
        store.policies.publish(7, Scope.all(), "bob")
    store.policies.approve(v, "bob")
    pub = store.policies.publish(v, {"all": True}, "bob")
    assert (pub.version, pub.scope, pub.active, pub.published_by) == (v, Scope.all(), True, "bob")
    assert store.policies.get_version(v).status is VersionStatus.PUBLISHED
    assert store.policies.rollout().stable_version() == v
    assert kinds(store)[-1] == "policy.published"


@pytest.mark.parametrize(
    "scope", [{"tenants": []}, {"percent": 0}, {"percent": 101}, {"all": True, "percent": 5}, {}]
)
def test_invalid_scopes_are_refused(store: Store, scope: dict[str, object]) -> None:
    v = approved(store, "x")
    with pytest.raises(InvalidScope):
        store.policies.publish(v, scope, "bob")


def test_publish_all_supersedes_and_staged_tenants_override(store: Store) -> None:
    v1, v2, v3 = approved(store, "v1"), approved(store, "v2"), approved(store, "v3")
    store.policies.publish(v1, Scope.all(), "bob")
    store.policies.publish(v2, Scope.for_tenants(["acme", "globex"]), "bob")
    r = store.policies.rollout()
    assert (r.version_for(None), r.version_for("acme"), r.version_for("globex"), r.version_for("x")) == (
        v1,
        v2,
        v2,
        v1,
    )
    assert r.live_scopes() == [(v1, "all"), (v2, "tenants:acme,globex")]
    assert store.policies.get_version(v2).status is VersionStatus.PUBLISHED
    store.policies.publish(v3, Scope.all(), "bob")
    r = store.policies.rollout()
    assert r.live_scopes() == [(v3, "all")] and r.version_for("acme") == v3
    statuses = {v.version: v.status for v in store.policies.list_versions()}
    assert statuses == {
        v1: VersionStatus.SUPERSEDED,
        v2: VersionStatus.SUPERSEDED,
        v3: VersionStatus.PUBLISHED,
    }
    ended = [p for p in store.policies.publications() if not p.active]
    assert {p.version for p in ended} == {v1, v2} and all(p.ended_by == "bob" and p.ended_at for p in ended)


def test_percent_rollout_is_sticky_and_ramps(store: Store) -> None:
    v1, v2 = approved(store, "v1"), approved(store, "v2")
    store.policies.publish(v1, Scope.all(), "bob")
    store.policies.publish(v2, Scope.for_percent(10), "bob")
    tenants = [f"tenant-{i}" for i in range(500)]
    first = {t: store.policies.rollout().version_for(t) for t in tenants}
    assert {t for t, v in first.items() if v == v2} == {t for t in tenants if tenant_bucket(t) < 10}
    assert 20 < sum(v == v2 for v in first.values()) < 80
    for _ in range(5):  # fresh snapshots from the database: nobody flips
        r = store.policies.rollout()
        assert {t: r.version_for(t) for t in tenants} == first
    assert store.policies.rollout().version_for(None) == v1
    store.policies.publish(v2, Scope.for_percent(50), "bob")  # ramp: the 10 % publication ends
    r = store.policies.rollout()
    assert r.live_scopes() == [(v1, "all"), (v2, "percent:50")]
    assert all(r.version_for(t) == v2 for t, v in first.items() if v == v2)  # ramping only adds tenants


def test_later_publication_wins_where_scopes_overlap(store: Store) -> None:
    v1, v2, v3 = approved(store, "v1"), approved(store, "v2"), approved(store, "v3")
    inside = next(t for t in (f"t{i}" for i in range(1000)) if tenant_bucket(t) < 20)
    store.policies.publish(v1, Scope.all(), "bob")
    store.policies.publish(v2, Scope.for_tenants([inside, "other"]), "bob")
    store.policies.publish(v3, Scope.for_percent(20), "bob")
    r = store.policies.rollout()
    assert r.version_for(inside) == v3 and r.version_for("other") == (
        v3 if tenant_bucket("other") < 20 else v2
    )


def test_rollback_to_version_from_all(store: Store) -> None:
    v1, v2 = approved(store, "v1"), approved(store, "v2")
    store.policies.publish(v1, Scope.all(), "bob")
    store.policies.publish(v2, Scope.all(), "bob")
    created = store.policies.rollback_to_version(v1, "oscar")
    assert [(p.version, p.scope) for p in created] == [(v1, Scope.all())]
    assert store.policies.rollout().live_scopes() == [(v1, "all")]
    statuses = {v.version: v.status for v in store.policies.list_versions()}
    assert statuses == {v1: VersionStatus.PUBLISHED, v2: VersionStatus.SUPERSEDED}
    record = store.audit.query(kind="policy.rolled_back")[0][0]
    assert record.actor == "oscar" and record.payload["replaced"][0]["version"] == v2
    with pytest.raises(StateConflict):  # nothing later is live any more
        store.policies.rollback_to_version(v1, "oscar")


def test_rollback_to_version_from_staged_scopes(store: Store) -> None:
    v1, v2, v3 = approved(store, "v1"), approved(store, "v2"), approved(store, "v3")
    store.policies.publish(v1, Scope.all(), "bob")
    store.policies.publish(v2, Scope.for_tenants(["acme"]), "bob")
    store.policies.publish(v3, Scope.for_tenants(["acme", "globex"]), "bob")
    store.policies.rollback_to_version(v2, "oscar")  # v2 again where v3 serves: acme and globex
    r = store.policies.rollout()
    assert (r.version_for("acme"), r.version_for("globex"), r.version_for("x")) == (v2, v2, v1)
    assert store.policies.get_version(v3).status is VersionStatus.SUPERSEDED


def test_rollback_to_version_refusals(store: Store) -> None:
    v1, v2 = approved(store, "v1"), approved(store, "v2")
    draft = store.policies.create_version({}, H, "d", "alice").version
    store.policies.publish(v2, Scope.all(), "bob")
    with pytest.raises(StateConflict):  # v1 was never published
        store.policies.rollback_to_version(v1, "oscar")
    with pytest.raises(NotApproved):
        store.policies.rollback_to_version(draft, "oscar")
    with pytest.raises(UnknownVersion):
        store.policies.rollback_to_version(99, "oscar")


def test_rollback_tenant_returns_it_to_stable(store: Store) -> None:
    v1, v2, v3 = approved(store, "v1"), approved(store, "v2"), approved(store, "v3")
    store.policies.publish(v1, Scope.all(), "bob")
    store.policies.publish(v2, Scope.for_tenants(["acme", "globex"]), "bob")
    inside = next(t for t in (f"t{i}" for i in range(1000)) if tenant_bucket(t) < 30)
    store.policies.publish(v3, Scope.for_percent(30), "bob")
    changed = store.policies.rollback_tenant("acme", "oscar")
    r = store.policies.rollout()
    assert r.version_for("acme") == v1 and r.version_for("globex") in (v2, v3)
    assert [p.version for p in changed] == ([v2, v3] if tenant_bucket("acme") < 30 else [v2])
    store.policies.rollback_tenant(inside, "oscar")  # out of the percent publication too
    assert store.policies.rollout().version_for(inside) == v1
    store.policies.rollback_tenant("globex", "oscar")
    live = store.policies.rollout().live_scopes()
    assert (v2, "tenants:acme,globex") not in live  # every tenant taken out: it ended
    assert store.policies.get_version(v2).status is VersionStatus.SUPERSEDED
    with pytest.raises(StateConflict):
        store.policies.rollback_tenant("acme", "oscar")
    record = store.audit.query(kind="policy.tenant_rolled_back")[0][0]
    assert record.payload["tenant"] == "acme" and record.payload["now_serving"] == v1


def test_failed_publish_changes_nothing_but_the_audit(store: Store) -> None:
    v1, v2 = approved(store, "v1"), approved(store, "v2")
    store.policies.publish(v1, Scope.all(), "bob")
    before_live, before_versions = store.policies.live_publications(), store.policies.list_versions()
    findings = [{"code": "approval_expired", "path": "approvals[0]", "message": "expired"}]
    record = store.policies.record_failed_publish(v2, "bob", "invalid_bundle", findings=findings)
    assert record.kind == "policy.publish_failed" and record.payload["findings"] == findings
    assert store.policies.live_publications() == before_live
    assert store.policies.list_versions() == before_versions
    assert store.audit.verify().ok


def test_failed_transaction_writes_neither_change_nor_audit(store: Store) -> None:
    v = approved(store, "v1")
    seq_before = store.audit.head()[0]
    with pytest.raises(InvalidScope):
        store.policies.publish(v, {"percent": 500}, "bob")
    with pytest.raises(NotApproved):
        store.policies.publish(store.policies.create_version({}, H, "d", "alice").version, Scope.all(), "bob")
    assert store.audit.head()[0] == seq_before + 1  # only the create_version record
    assert store.policies.live_publications() == []


def test_bootstrap_publishes_once(store: Store) -> None:
    v = store.policies.bootstrap({"models": {}}, H, "from --config", "cli")
    assert (v.version, v.status, v.approvals[0].approver) == (
        1,
        VersionStatus.PUBLISHED,
        "routeguard:bootstrap",
    )
    assert store.policies.rollout().stable_version() == 1 and store.policies.has_published()
    with pytest.raises(StateConflict):
        store.policies.bootstrap({}, H, "again", "cli")
    assert kinds(store) == ["policy.bootstrap"]


def test_publish_with_notifiers_queues_outbox_in_same_transaction(store: Store) -> None:
    v = approved(store, "v1")
    store.policies.publish(v, Scope.all(), "bob", notifiers=["governance", "slack"])
    seq = store.audit.head()[0]
    messages = store.outbox.due()
    assert sorted(m.notifier for m in messages) == ["governance", "slack"]
    assert all(m.audit_seq == seq and m.payload["event"] == "agent.routing.policy" for m in messages)
    assert all(m.payload["action"] == "published" and m.payload["kind"] == "policy.published" for m in messages)
