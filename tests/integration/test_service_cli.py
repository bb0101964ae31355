"""The operator command line against a live service, and `serve` start-up refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from routeguard.cli import app
from support.service import Service, bundle, run_service, write_bundle


def rg(*args: str, principal: str | None = None, token: str | None = None) -> Result:
    env = {"ROUTEGUARD_PRINCIPAL": principal or "", "ROUTEGUARD_TOKEN": token or ""}
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("cli")
    config = write_bundle(tmp / "v1.yaml", bundle())
    with run_service(f"sqlite:///{tmp / 'store.db'}", config=config) as service:
        yield service


def test_policy_commands_end_to_end(svc: Service, tmp_path: Path) -> None:
    server = ("--server", svc.url)
    v2_file = write_bundle(tmp_path / "v2.yaml", bundle(primary="triage-v2"))
    dry = rg("policy", "upload", str(v2_file), "--dry-run", *server, principal="alice")
    assert dry.exit_code == 0, dry.output
    up = rg("policy", "upload", str(v2_file), "--label", "v2", "--json", *server, principal="alice")
    assert up.exit_code == 0, up.output
    version = json.loads(up.stdout)["version"]
    own = rg("policy", "approve", str(version), *server, principal="alice")
    assert own.exit_code == 1 and "four_eyes" in own.output
    early = rg("policy", "publish", str(version), *server, principal="bob")
    assert early.exit_code == 1 and "not_approved" in early.output
    assert rg("policy", "approve", str(version), "--comment", "ok", *server, principal="bob").exit_code == 0
    both = rg("policy", "publish", str(version), "--all", "--percent", "5", *server, principal="bob")
    assert both.exit_code == 1
    pub = rg("policy", "publish", str(version), "--tenants", "acme,beta", "--json", *server, principal="bob")
    assert pub.exit_code == 0, pub.output
    assert json.loads(pub.stdout)["scope"] == {"tenants": ["acme", "beta"]}
    listed = json.loads(rg("policy", "list", "--json", *server).stdout)
    assert [v["status"] for v in listed["versions"]][:2] == ["published", "published"]
    assert rg("policy", "list", *server).exit_code == 0
    shown = rg("policy", "show", str(version), *server)
    assert shown.exit_code == 0 and "triage-v2" in shown.stdout
    diff = json.loads(rg("policy", "diff", "1", str(version), "--json", *server).stdout)
    assert diff["same"] is False and "+    primary: triage-v2" in diff["diff"]
    back = rg("policy", "rollback", "--tenant", "acme", "--json", *server, principal="ops")
    assert back.exit_code == 0 and json.loads(back.stdout)["now_serving"] == 1
    neither = rg("policy", "rollback", *server)
    assert neither.exit_code == 1
    missing = rg("policy", "show", "999", "--json", *server)
    assert missing.exit_code == 1 and json.loads(missing.stdout)["error"]["code"] == "unknown_version"


def test_safe_mode_commands(svc: Service) -> None:
    server = ("--server", svc.url)
    on = rg("safe-mode", "on", "--tenant", "acme", "--reason", "drill", *server, principal="ops")
    assert on.exit_code == 0, on.output
    status = json.loads(rg("safe-mode", "status", "--tenant", "acme", "--json", *server).stdout)
    assert status["tenants"] == ["acme"] and status["active_for_tenant"] is True
    assert rg("safe-mode", "off", "--tenant", "acme", *server).exit_code == 0
    assert json.loads(rg("safe-mode", "status", "--json", *server).stdout)["tenants"] == []


def test_unreachable_server_is_a_clear_error() -> None:
    result = rg("policy", "list", "--server", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "cannot reach" in result.output


def test_serve_refuses_a_bundle_with_findings(tmp_path: Path) -> None:
    raw = bundle(primary="general-xl")  # unapproved, too broad, too low a clearance, wrong region
    config = write_bundle(tmp_path / "bad.yaml", raw)
    result = rg("serve", "--config", str(config), "--db", f"sqlite:///{tmp_path / 's.db'}")
    assert result.exit_code == 1
    for code in ("unapproved_model", "clearance_too_low", "region_not_allowed", "capability_exceeds_profile"):
        assert code in result.output, result.output


def test_serve_refuses_public_address_without_tokens_and_bad_auth_files(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    public = rg("serve", "--host", "0.0.0.0", "--db", db)
    assert public.exit_code == 2 and "without tokens" in public.output
    auth = tmp_path / "auth.yaml"
    auth.write_text("- {name: a, token: x, roles: [viewer]}\n")
    bad = rg("serve", "--auth", str(auth), "--db", db)
    assert bad.exit_code == 2 and "at least 8" in bad.output


def test_store_commands(tmp_path: Path) -> None:
    missing = rg("audit", "verify", "--db", f"sqlite:///{tmp_path / 'nope.db'}")
    assert missing.exit_code == 2 and "no store" in missing.output
    db = f"sqlite:///{tmp_path / 'fresh.db'}"
    up = rg("db", "upgrade", "--db", db)
    assert up.exit_code == 0, up.output
    assert rg("db", "upgrade", "--db", db).exit_code == 0  # idempotent
    ok = rg("audit", "verify", "--db", db, "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout) == {
        "ok": True,
        "records": 0,
        "first_broken": None,
        "reason": None,
    }


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["audit"],
        ["audit", "verify"],
        ["audit", "export"],
        ["db"],
        ["db", "upgrade"],
        ["policy"],
        ["policy", "upload"],
        ["policy", "list"],
        ["policy", "show"],
        ["policy", "diff"],
        ["policy", "approve"],
        ["policy", "publish"],
        ["policy", "rollback"],
        ["safe-mode"],
        ["safe-mode", "on"],
        ["safe-mode", "off"],
        ["safe-mode", "status"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output
