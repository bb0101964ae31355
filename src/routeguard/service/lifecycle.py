"""Policy lifecycle and safe mode, as the API does them: checked, stored, then in effect before answering."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routeguard.config.artifacts import artifact_findings
from routeguard.config.load import LoadedBundle, load_bundle
from routeguard.core.checks import check_bundle
from routeguard.core.durations import parse_duration
from routeguard.core.findings import BundleError, Finding
from routeguard.notify.redact import redact_bundle
from routeguard.service.errors import ApiError, invalid_bundle
from routeguard.service.state import ServiceState
from routeguard.store.errors import InvalidScope, NotApproved
from routeguard.store.models import PolicyVersion, Scope, VersionStatus
from routeguard.store.rollout import Rollout
from routeguard.telemetry.logs import log_policy

__all__ = [
    "approve",
    "load_config",
    "publish",
    "rollback",
    "safe_mode_status",
    "set_safe_mode",
    "upload",
    "version_view",
]


def load_config(config: Mapping[str, Any] | str) -> LoadedBundle:
    """A bundle from an object or YAML/JSON text (never a file path); raises BundleError."""
    if isinstance(config, str):
        # load_bundle reads a one-line string as a path: make sure text is always parsed as text
        text = config if "\n" in config or config.lstrip().startswith("{") else config + "\n"
        return load_bundle(text)
    return load_bundle(dict(config))


def _findings(state: ServiceState, loaded: LoadedBundle) -> list[Finding]:
    findings = check_bundle(loaded.bundle, state.settings.clock(), state.egress)
    findings += artifact_findings(loaded.bundle, state.settings.artifact_root)
    return loaded.locate(findings)


@dataclass(frozen=True, slots=True)
class UploadExtras:
    """An upload's `scope` (publish's default) and `approver` (the only principal who may approve it)."""

    scope: Mapping[str, Any] | None = None
    approver: str | None = None

    def checked_scope(self) -> Scope | None:
        if self.scope is None:
            return None
        try:
            return Scope.from_dict(self.scope).checked()
        except InvalidScope as exc:
            raise ApiError(422, "invalid_request", f"scope: {exc}") from exc


def upload(
    state: ServiceState,
    config: object,
    label: str | None,
    dry_run: bool,
    author: str,
    extras: UploadExtras = UploadExtras(),
) -> tuple[int, dict[str, Any]]:
    if not isinstance(config, Mapping | str):
        raise ApiError(422, "invalid_request", "config: expected an object, or YAML/JSON text")
    intended = extras.checked_scope()
    if extras.approver is not None and extras.approver == author:
        raise ApiError(422, "invalid_request", "approver: the author cannot be the approver (four eyes)")
    try:
        loaded = load_config(config)
    except BundleError as exc:
        raise invalid_bundle(exc.findings, "the bundle cannot be parsed") from exc
    findings = _findings(state, loaded)
    if findings:
        raise invalid_bundle(findings)
    if dry_run:
        return 200, {
            "version": None,
            "status": "valid",
            "hash": loaded.content_hash,
            "findings": [],
            "dry_run": True,
            "label": label,
        }
    pv = state.store.policies.create_version(
        loaded.raw, loaded.content_hash, label, author, intended_scope=intended, required_approver=extras.approver
    )
    log_policy("uploaded", version=pv.version, hash=pv.content_hash, by=author, label=label)
    return 201, {**version_view(pv, None), "findings": [], "dry_run": False}


def version_view(pv: PolicyVersion, rollout: Rollout | None, *, with_content: bool = False) -> dict[str, Any]:
    out = pv.to_dict(with_content=with_content)
    if isinstance(out.get("config"), dict):  # webhook/Slack URL paths and header values are secrets
        out["config"] = redact_bundle(out["config"])
    live = sorted(pv.live, key=lambda p: p.id)
    out["scope"] = live[-1].scope.to_dict() if live else None
    out["publications"] = [p.to_dict() for p in live]
    if rollout is not None:
        out["stable"] = rollout.stable_version() == pv.version
    return out


def approve(state: ServiceState, version: int, by: str, comment: str | None) -> dict[str, Any]:
    pv = state.store.policies.approve(version, by, comment)
    log_policy("approved", version=version, by=by)
    return version_view(pv, state.live.rollout)


def _check_stored(state: ServiceState, pv: PolicyVersion, by: str, action: str) -> LoadedBundle:
    """Re-check a stored version at publish time (an approval may have expired since upload)."""
    loaded: LoadedBundle | None = None
    try:
        loaded = load_bundle(dict(pv.content or {}))
        findings = _findings(state, loaded)
    except BundleError as exc:
        findings = exc.findings
    if findings or loaded is None:
        reason = f"{action} refused: version {pv.version} no longer passes the checks"
        state.store.policies.record_failed_publish(
            pv.version, by, reason, findings=[f.to_dict() for f in findings]
        )
        raise invalid_bundle(findings, f"{reason} ({len(findings)} finding(s)); serving is unchanged")
    return loaded


def publish(state: ServiceState, version: int, scope: Mapping[str, Any] | None, by: str) -> dict[str, Any]:
    """Publish and time it (`agent_routing_policy_publish_latency_seconds`, or a failure counted)."""
    began = time.perf_counter()
    try:
        out = _publish(state, version, scope, by)
    except Exception:
        state.metrics.observe_publish(time.perf_counter() - began, False)
        raise
    state.metrics.observe_publish(time.perf_counter() - began, True)
    log_policy("published", version=version, scope=out["scope"], by=by, hash=out["hash"])
    return out


def _publish(state: ServiceState, version: int, scope: Mapping[str, Any] | None, by: str) -> dict[str, Any]:
    with state.lock:
        pv = state.store.policies.get_version(version)
        try:  # no scope given: the upload's intended scope, else everyone
            target = Scope.from_dict(scope).checked() if scope is not None else (pv.intended_scope or Scope.all())
        except InvalidScope as exc:
            raise ApiError(422, "invalid_request", f"scope: {exc}") from exc
        if pv.status is VersionStatus.DRAFT:
            state.store.policies.record_failed_publish(version, by, "publish refused: not approved")
            raise NotApproved(version)
        state.cache.compile(_check_stored(state, pv, by, "publish"), pv.content_hash, version)
        notifiers = _policy_notifiers(state, pv)
        pub = state.store.policies.publish(version, target, by, notifiers=notifiers)
        live = state.apply()
    return {
        "version": version,
        "hash": pv.content_hash,
        "status": "published",
        "scope": target.to_dict(),
        "publication": pub.to_dict(),
        "stable_version": live.rollout.stable_version(),
    }


def rollback(state: ServiceState, version: int | None, tenant: str | None, by: str) -> dict[str, Any]:
    if (version is None) == (tenant is None):
        raise ApiError(422, "invalid_request", "give exactly one of `version` and `tenant`")
    with state.lock:
        if version is not None:
            pv = state.store.policies.get_version(version)
            if pv.status is not VersionStatus.DRAFT:
                state.cache.compile(_check_stored(state, pv, by, "rollback"), pv.content_hash, version)
            pubs = state.store.policies.rollback_to_version(
                version, by, notifiers=_policy_notifiers(state, pv)
            )
        else:
            assert tenant is not None
            stable = state.live.rollout.resolve(None)
            stable_pv = state.store.policies.get_version(stable.version) if stable is not None else None
            notifiers = _policy_notifiers(state, stable_pv) if stable_pv is not None else ()
            pubs = state.store.policies.rollback_tenant(tenant, by, notifiers=notifiers)
        live = state.apply()
    log_policy("rolled_back", version=version, tenant=tenant, by=by)
    out: dict[str, Any] = {
        "publications": [p.to_dict() for p in pubs],
        "stable_version": live.rollout.stable_version(),
    }
    if version is not None:
        out["version"] = version
    else:
        out["tenant"] = tenant
        out["now_serving"] = live.rollout.version_for(tenant)
    return out


def _policy_notifiers(state: ServiceState, pv: PolicyVersion) -> tuple[str, ...]:
    """Publications and rollbacks go to every notifier of the version that goes live (CONTRACT §5: a Planner
    learns of them). Only its own: a notifier of a version that stops serving would have no sender."""
    del state
    try:
        return tuple(load_bundle(dict(pv.content or {})).bundle.notifiers)
    except BundleError:
        return ()


def set_safe_mode(
    state: ServiceState, enabled: bool, tenant: str | None, reason: str, by: str, expected: str | None = None
) -> dict[str, Any]:
    if expected is not None:
        try:
            parse_duration(expected)
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"expected_duration: {exc}") from exc
    with state.lock:
        entry, seq = state.store.safe_mode.set(
            enabled, tenant, reason, by, notifiers=state.notifier_names(), expected_duration=expected
        )
        state.router.set_safe_mode(enabled, tenant=tenant, reason=reason, by=by)
    state.safe_mode_changed()  # the gauge, and the outbox rows just written go out now
    return {**entry.to_dict(), "audit_seq": seq, "state": safe_mode_status(state)}


def safe_mode_status(state: ServiceState) -> dict[str, Any]:
    safe = state.router.safe_mode
    details = state.store.safe_mode.state().details
    return {
        "enabled": safe.global_on,
        "tenants": sorted(safe.tenants),
        "global": details[None].to_dict() if None in details else None,
        "entries": [
            e.to_dict() for t, e in sorted(details.items(), key=lambda kv: kv[0] or "") if t is not None
        ],
    }
