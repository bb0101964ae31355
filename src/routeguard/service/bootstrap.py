"""What serves on start (CONTRACT §6).

- A store with no published version: `--config` is checked and published as version 1 (audited as
  `policy.bootstrap`); a bundle with findings stops the start (exit 1, every finding). Without
  `--config`, legacy single-model mode if `ROUTEGUARD_MODEL` is set, else nothing serves until a
  version is published through the API.
- A store with a published version: a `--config` that differs from the stable version is reported and
  the store's version keeps serving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from routeguard.config.artifacts import artifact_findings
from routeguard.config.legacy import legacy_bundle, legacy_configured
from routeguard.config.load import LoadedBundle, load_bundle
from routeguard.core.checks import check_bundle
from routeguard.core.egress import EgressRules
from routeguard.core.findings import BundleError, Finding
from routeguard.core.table import RoutingTable, compile_bundle
from routeguard.store.db import Store
from routeguard.store.errors import StateConflict

__all__ = ["BOOTSTRAP_ACTOR", "BootReport", "StartupError", "bootstrap"]

BOOTSTRAP_ACTOR = "routeguard:config"


class StartupError(Exception):
    """The service must not start; the CLI prints the message (and findings) and exits `exit_code`."""

    def __init__(self, exit_code: int, message: str, findings: list[Finding] | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message
        self.findings = findings or []


@dataclass(slots=True)
class BootReport:
    notes: list[str] = field(default_factory=list)  # what the operator should read at start
    bootstrapped: int | None = None  # the version published from --config, if any
    legacy_table: RoutingTable | None = None


def _load(path: Path) -> LoadedBundle:
    if not path.is_file():
        raise BundleError([Finding("schema", "", f"no such file: {path}", source=str(path))])
    return load_bundle(path)


def bootstrap(
    store: Store, config: Path | None, now: float, *, legacy_env: bool = True, egress: EgressRules | None = None
) -> BootReport:
    report = BootReport()
    published = store.policies.has_published()
    if not published:
        if config is not None:
            try:
                loaded = _load(config)
            except BundleError as exc:
                raise StartupError(1, f"{config}: the bundle cannot be loaded", exc.findings) from exc
            findings = loaded.locate(
                check_bundle(loaded.bundle, now, egress) + artifact_findings(loaded.bundle, config.parent)
            )
            if findings:
                raise StartupError(
                    1, f"{config}: {len(findings)} finding(s); nothing was published", findings
                )
            try:
                pv = store.policies.bootstrap(
                    loaded.raw, loaded.content_hash, f"bootstrap from {config.name}", BOOTSTRAP_ACTOR
                )
            except StateConflict:  # another replica of the fleet bootstrapped the store first
                return _published(store, config, report)
            report.bootstrapped = pv.version
            report.notes.append(
                f"bootstrap: {config} published to all as version {pv.version} ({pv.content_hash})"
            )
        elif legacy_env and legacy_configured():
            raw = legacy_bundle()
            loaded = load_bundle(raw)
            report.legacy_table = compile_bundle(loaded.bundle, content_hash=loaded.content_hash)
            report.notes.append(
                "legacy single-model mode (ROUTEGUARD_MODEL): policy `default`, nothing stored"
            )
        else:
            report.notes.append(
                "no published policy version: upload, approve and publish one (routeguard policy upload FILE)"
            )
        return report
    return _published(store, config, report)


def _published(store: Store, config: Path | None, report: BootReport) -> BootReport:
    stable = store.policies.rollout().stable_version()
    if config is None:
        return report
    try:
        loaded = _load(config)
    except BundleError as exc:
        report.notes.append(
            f"{config} cannot be loaded ({len(exc.findings)} finding(s)); "
            f"the store's version {stable} keeps serving"
        )
        return report
    current = store.policies.get_version(stable).content_hash if stable is not None else None
    if current != loaded.content_hash:
        report.notes.append(
            f"{config} ({loaded.content_hash[:19]}…) differs from the published version {stable} "
            f"({(current or 'none')[:19]}…): the store's version keeps serving; "
            "upload, approve and publish the file to change it"
        )
    return report
