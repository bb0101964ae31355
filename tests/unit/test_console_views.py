"""The console's pure helpers: secrets masked before rendering, the sparkline's arithmetic."""

from __future__ import annotations

import pytest

from routeguard.service.ui.actions import BUSINESS_LINES, ActionError, scope_from_form
from routeguard.service.ui.history import HealthHistory
from routeguard.service.ui.redact import MASK, redact, redact_url


def test_redact_masks_secrets_and_cuts_notifier_urls_to_their_host() -> None:
    bundle = {
        "models": {"m": {"endpoint": {"base_url": "http://10.0.0.1:8000/v1", "api_key_env": "ACME_KEY",
                                      "api_key": "sk-live-123"}}},
        "notifiers": {
            "hook": {"type": "webhook", "url": "https://example.org/hooks/abc?token=t0p", "headers": {"X-Key": "k"}},
            "chat": {"type": "slack", "url": "https://hooks.slack.com/services/T/B/secret"},
            "mail": {"type": "email", "host": "smtp.example.org", "password": "hunter2"},
        },
    }
    out = redact(bundle)
    assert out["models"]["m"]["endpoint"] == {"base_url": "http://10.0.0.1:8000/v1", "api_key_env": "ACME_KEY",
                                              "api_key": MASK}
    assert out["notifiers"]["hook"]["url"] == "https://example.org/" + MASK
    assert out["notifiers"]["hook"]["headers"] == {"X-Key": MASK}
    assert out["notifiers"]["chat"]["url"] == "https://hooks.slack.com/" + MASK
    assert out["notifiers"]["mail"]["password"] == MASK
    assert bundle["notifiers"]["chat"]["url"].endswith("secret")  # the input is not changed


def test_redact_url_keeps_only_scheme_host_and_port() -> None:
    assert redact_url("http://user:pass@127.0.0.1:9300/hook?x=1") == "http://127.0.0.1:9300/" + MASK
    assert redact_url("https://h.example") == "https://h.example"
    assert redact_url("not a url") == MASK


def test_sparkline_follows_the_error_rate_and_remembers_the_worst_state() -> None:
    history = HealthHistory(keep=5, min_gap_s=1.0)
    states = ["healthy", "healthy", "unhealthy", "probing", "healthy"]
    for i, (rate, state) in enumerate(zip([0.0, 0.2, 1.0, 0.5, 0.0], states, strict=True)):
        history.observe(float(i), {"m": {"figures": {"error_rate": rate}, "policies": {"p": {"state": state}}}})
        history.observe(i + 0.5, {"m": {"figures": {"error_rate": 0.9}, "policies": {}}})  # too soon: ignored
    spark = history.sparkline("m", width=100, height=24)
    ys = [float(p.split(",")[1]) for p in spark.points.split()]
    assert len(ys) == 5 and spark.last == 0.0 and spark.worst == "unhealthy"
    assert ys[2] == 2.0 and ys[0] == ys[4] == 22.0  # 100 % at the top, 0 % at the bottom (2 px padding)
    assert spark.ceiling == 1.0


def test_a_small_error_rate_is_drawn_on_a_smaller_scale() -> None:
    history = HealthHistory(keep=3, min_gap_s=0.0)
    for i, rate in enumerate([0.0, 0.04, 0.08]):
        history.observe(float(i), {"m": {"figures": {"error_rate": rate}, "policies": {}}})
    spark = history.sparkline("m", width=100, height=24)
    ys = [float(p.split(",")[1]) for p in spark.points.split()]
    assert spark.ceiling == 0.1 and "scale 0–10%" in spark.label
    assert ys[0] == 22.0 and abs(ys[2] - 6.0) < 0.01  # 8 % of a 10 % scale: 80 % of the height
    assert history.sparkline("unknown").samples == 0


def test_the_scope_picker_reads_every_scope_and_names_a_bad_field() -> None:
    assert scope_from_form({"scope": "all"}) == {"all": True}
    assert scope_from_form({"scope": "tenants", "tenants": " acme, beta ,"}) == {"tenants": ["acme", "beta"]}
    assert scope_from_form({"scope": "percent", "percent": "10"}) == {"percent": 10}
    for form, field in (
        ({"scope": "tenants", "tenants": " , "}, "tenants"),
        ({"scope": "percent", "percent": "0"}, "percent"),
        ({"scope": "percent", "percent": "1e3"}, "percent"),
        ({"scope": "everyone"}, "scope"),
    ):
        with pytest.raises(ActionError) as caught:
            scope_from_form(form)
        assert caught.value.status == 422 and caught.value.message.startswith(field + ":")
    if BUSINESS_LINES:
        lines = scope_from_form({"scope": "business_lines", "business_lines": "cardio"})
        assert lines == {"business_lines": ["cardio"]}
