"""Secrets bound to hosts and egress rules (issue 13, D2), as pure checks and at connect time."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from bundles import NOW, base

from routeguard.config.secrets import SecretsFileError, egress_rules
from routeguard.core.checks import check_bundle
from routeguard.core.egress import EgressRules, check_egress
from routeguard.core.model import Notifier
from routeguard.core.parse import parse_bundle
from routeguard.notify import build_notifier
from routeguard.notify._http import check_egress_at_connect
from routeguard.notify.base import NotifyError
from routeguard.notify.redact import redact_bundle, redact_url, scrub


def _with(models: dict[str, Any] | None = None, notifiers: dict[str, Any] | None = None) -> Any:
    raw = base()
    for name, endpoint in (models or {}).items():
        raw["models"][name]["endpoint"] = endpoint
    if notifiers:
        raw["notifiers"] = notifiers
    return parse_bundle(raw)


def _codes(bundle: Any, rules: EgressRules) -> list[tuple[str, str]]:
    return sorted((f.code, f.path) for f in check_egress(bundle, rules))


OPEN = EgressRules()
CLOSED = EgressRules(secrets=None, open_secrets=False)
BOUND = EgressRules(secrets={"ACME_KEY": frozenset({"api.acme.test"}), "HOOK": frozenset({"hooks.test"})})


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://metadata.google.internal/computeMetadata/v1",
        "http://[fe80::1]:8080/v1",
        "http://[fd00:ec2::254]/",
        "file:///etc/passwd",
        "gopher://example.test/",
    ],
)
def test_metadata_link_local_and_non_http_urls_are_refused(url: str) -> None:
    bundle = _with({"primary": {"type": "openai", "base_url": url}},
                   {"n": {"type": "webhook", "url": url}})
    assert _codes(bundle, OPEN) == [
        ("egress_not_allowed", "models.primary.endpoint.base_url"),
        ("egress_not_allowed", "notifiers.n.url"),
    ]
    # and through check_bundle, the rules every publish applies
    assert {f.code for f in check_bundle(bundle, NOW)} >= {"egress_not_allowed"}


def test_allow_egress_lets_a_named_host_or_network_through() -> None:
    bundle = _with({"primary": {"type": "openai", "base_url": "http://169.254.169.254/v1"}},
                   {"n": {"type": "webhook", "url": "http://metadata.google.internal/hook"}})
    rules = EgressRules(allow=frozenset({"169.254.0.0/16", "metadata.google.internal"}))
    assert _codes(bundle, rules) == []


def test_secrets_need_a_binding_to_the_host_they_are_sent_to() -> None:
    bundle = _with(
        {"primary": {"type": "openai", "base_url": "https://api.acme.test/v1", "api_key_env": "ACME_KEY"},
         "backup": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "ACME_KEY"}},
        {"n": {"type": "webhook", "url": "https://hooks.test/${HOOK}",
               "headers": {"authorization": "Bearer ${OPENAI_API_KEY}"}}},
    )
    assert _codes(bundle, OPEN) == []  # loopback without a secrets file: any binding
    assert _codes(bundle, BOUND) == [
        ("secret_not_allowed", "models.backup.endpoint.api_key_env"),
        ("secret_not_allowed", "notifiers.n.headers.authorization"),
    ]
    assert len(_codes(bundle, CLOSED)) == 4  # no file, not loopback: no binding at all


def test_a_variable_may_not_stand_for_the_host() -> None:
    bundle = _with(notifiers={"n": {"type": "webhook", "url": "https://${HOST}/hook"}})
    assert _codes(bundle, OPEN) == [("secret_not_allowed", "notifiers.n.url")]


def test_the_secrets_file_and_allow_list_are_read_from_the_operator(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text("ACME_KEY: [API.acme.test, other.test]\nHOOK: hooks.test\n", encoding="utf-8")
    rules = egress_rules(path, ["169.254.1.1, metadata.google.internal", "fe80::/10"], loopback=False)
    assert rules.secrets == {"ACME_KEY": frozenset({"api.acme.test", "other.test"}), "HOOK": frozenset({"hooks.test"})}
    assert rules.allowed("169.254.1.1") and rules.allowed("fe80::9") and not rules.allowed("169.254.1.2")
    path.write_text("- not a mapping\n", encoding="utf-8")
    with pytest.raises(SecretsFileError):
        egress_rules(path, [], loopback=True)


def test_an_unbound_variable_is_never_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-should-never-leave")
    monkeypatch.setenv("HOOK", "T000/B000/xyz")
    config = Notifier("n", "webhook", url="https://hooks.test/${HOOK}",
                      headers={"authorization": "Bearer ${OPENAI_API_KEY}"})
    notifier: Any = build_notifier(config, rules=BOUND)
    assert notifier.url == "https://hooks.test/T000/B000/xyz"
    assert notifier.headers["authorization"] == "Bearer "
    assert "xyz" not in repr(notifier)


def test_connect_time_check_refuses_refused_hosts_and_schemes() -> None:
    async def check(url: str, rules: EgressRules = OPEN) -> None:
        await check_egress_at_connect(url, rules)

    for url in ("http://169.254.169.254/x", "http://[::ffff:169.254.169.254]/x", "ftp://127.0.0.1/x"):
        with pytest.raises(NotifyError, match="egress refused"):
            asyncio.run(check(url))
    asyncio.run(check("http://169.254.169.254/x", EgressRules(allow=frozenset({"169.254.169.254"}))))
    asyncio.run(check("http://localhost:9/x"))  # resolves to loopback: allowed


def test_redaction_of_urls_headers_and_text() -> None:
    assert redact_url("https://hooks.slack.com/services/T0/B0/secret?x=1") == "https://hooks.slack.com/***"
    assert redact_url("https://u:p@hooks.test:8443/${HOOK}") == "https://hooks.test:8443/${HOOK}"
    raw = {"notifiers": {"s": {"type": "slack", "url": "https://hooks.slack.com/services/T0/B0/secret",
                               "headers": {"x-key": "plain-secret", "x-ref": "${HOOK}"}}}}
    shown = redact_bundle(raw)
    assert "secret" not in str(shown) and shown["notifiers"]["s"]["headers"]["x-ref"] == "${HOOK}"
    assert raw["notifiers"]["s"]["url"].endswith("/secret")  # the stored bundle is untouched
    text = scrub("POST https://h/services/T0/B0/secret failed", ["/services/T0/B0/secret"])
    assert text == "POST https://h*** failed"


def test_validate_applies_the_same_rules_offline(tmp_path: Path) -> None:
    from support.service import bundle, run_cli, write_bundle

    raw = bundle()
    raw["notifiers"]["leak"] = {"type": "webhook", "url": "http://169.254.169.254/latest"}
    path = write_bundle(tmp_path / "b.yaml", raw)
    result = run_cli("validate", str(path), "--json")
    assert result.returncode == 1
    assert {f["code"] for f in json.loads(result.stdout)["findings"]} == {"egress_not_allowed"}
    assert run_cli("validate", str(path), "--allow-egress", "169.254.169.254").returncode == 0
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("ACME_KEY: [127.0.0.1]\n", encoding="utf-8")
    result = run_cli("validate", str(path), "--json", "--secrets", str(secrets), "--allow-egress", "169.254.0.0/16")
    assert result.returncode == 1
    codes = {(f["code"], f["path"]) for f in json.loads(result.stdout)["findings"]}
    assert codes == {("secret_not_allowed", "models.general-xl.endpoint.api_key_env")}, codes
