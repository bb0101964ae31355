"""The `Notifier` port, the summary text shared by the human-readable channels, and the factory that turns a
bundle's `notifiers:` entries into senders.

A notifier's `send(payload)` delivers one outbox payload (CONTRACT §5: `{event, policy, from_model, to_model,
reason, expected_duration, ts, audit_seq, ...}`) and returns only once the receiver accepted it; any failure
raises (`NotifyError` for a refusal, or the transport's own exception). Delivery is at least once: a receiver
that must not act twice deduplicates on `audit_seq` (one audit record, one message per notifier).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from routeguard.core.egress import EgressRules
    from routeguard.core.model import Notifier as NotifierConfig

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Notifier",
    "NotifierConfigError",
    "NotifyError",
    "build_notifier",
    "build_notifiers",
    "expand_env",
    "summarize",
]

DEFAULT_TIMEOUT_S = 5.0
log = logging.getLogger("routeguard.notify")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class NotifyError(Exception):
    """The receiver answered but refused the message (e.g. HTTP 500, SMTP 550)."""


class NotifierConfigError(ValueError):
    """A notifier entry lacks what its type needs (a webhook without `url`, an email without `to`)."""


@runtime_checkable
class Notifier(Protocol):
    name: str

    async def send(self, payload: Mapping[str, Any]) -> None:
        """Deliver one payload; raise on any failure (the dispatcher retries)."""
        ...


def expand_env(
    value: str, env: Mapping[str, str] | None = None, allowed: Callable[[str], bool] | None = None
) -> str:
    """`${NAME}` → the environment variable (unset: empty), so secrets stay out of the bundle. ``allowed``
    (NAME → bool): a variable it refuses is never read (left empty), whatever the bundle says."""
    source = os.environ if env is None else env

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if allowed is not None and not allowed(name):
            log.error("${%s} is not bound to this notifier's host: left empty", name)
            return ""
        return source.get(name, "")

    return _ENV_REF.sub(value_of, value)


_TITLES = {
    "route.changed": "Routing change",
    "agent.routing.change": "Routing change",
    "terminal": "Terminal action",
    "agent.routing.terminal": "Terminal action",
    "safe_mode": "Safe mode",
    "agent.routing.safe_mode": "Safe mode",
    "agent.routing.policy": "Policy",
}


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def summarize(payload: Mapping[str, Any]) -> tuple[str, list[str]]:
    """A one-line title and detail lines for people (Slack, e-mail); the JSON payload stays the record."""
    event = str(payload.get("event") or "notification")
    policy = payload.get("policy")
    title = _TITLES.get(event, event)
    if title == "Routing change":
        to_model = payload.get("to_model") or f"terminal ({_text(payload.get('terminal_action'))})"
        head = f"{title}: {_text(policy)} {_text(payload.get('from_model'))} → {to_model}"
    elif title == "Terminal action":
        phase = {"start": " started", "end": " ended"}.get(str(payload.get("phase")), "")
        head = f"{title}{phase}: {_text(policy)} → {_text(payload.get('action'))}"
    elif title == "Safe mode":
        state = "ON" if payload.get("enabled") else "OFF"
        where = f"tenant {payload['tenant']}" if payload.get("tenant") else "global"
        head = f"{title} {state} ({where})"
    elif title == "Policy":
        version, action = _text(payload.get("version")), _text(payload.get("action"))
        head = f"Policy version {version} {action} ({_text(payload.get('scope'))})"
    else:
        head = f"{title}: {_text(policy)}" if policy else title
    lines = [f"reason: {_text(payload.get('reason'))}"]
    if payload.get("expected_duration") is not None:
        basis = payload.get("expected_duration_basis")
        lines.append(f"expected duration: {payload['expected_duration']}" + (f" ({basis})" if basis else ""))
    if payload.get("phase") == "end":
        lines.append(f"requests answered: {_text(payload.get('requests'))}, lasted {_text(payload.get('duration'))}")
    for key in ("scope", "queue", "policy_version"):
        if payload.get(key) is not None:
            lines.append(f"{key.replace('_', ' ')}: {payload[key]}")
    lines.append(f"at: {_text(payload.get('ts'))} (audit #{_text(payload.get('audit_seq'))})")
    return head, lines


def build_notifier(
    config: NotifierConfig, *, timeout_s: float = DEFAULT_TIMEOUT_S, rules: EgressRules | None = None
) -> Notifier:
    """One sender for a bundle notifier entry; raises `NotifierConfigError` when the entry is incomplete.
    ``rules``: `${VAR}` is expanded only for a variable bound to the notifier's host, and the resolved
    address is checked at connect time (see `routeguard.core.egress`)."""
    from routeguard.core.egress import EgressRules, url_host

    rules = rules if rules is not None else EgressRules()
    host = url_host(config.url) if config.url else config.host
    bound = (lambda name: rules.secret_allowed(name, host)) if rules is not None else None
    headers = {k: expand_env(v, allowed=bound) for k, v in config.headers.items()}
    if config.type in ("webhook", "slack"):
        if not config.url:
            raise NotifierConfigError(f"notifier {config.name!r} ({config.type}) needs a url")
        url = expand_env(config.url, allowed=bound)
        if config.type == "webhook":
            from routeguard.notify.webhook import WebhookNotifier

            return WebhookNotifier(config.name, url, headers=headers, timeout_s=timeout_s, rules=rules)
        from routeguard.notify.slack import SlackNotifier

        return SlackNotifier(config.name, url, headers=headers, timeout_s=timeout_s, rules=rules)
    if config.type == "email":
        from routeguard.notify.email import EmailNotifier

        return EmailNotifier.from_config(config, timeout_s=timeout_s, rules=rules)
    if config.type == "log":
        from routeguard.notify.local import LogNotifier

        return LogNotifier(config.name)
    if config.type == "file":
        if not config.path:
            raise NotifierConfigError(f"notifier {config.name!r} (file) needs a path")
        from routeguard.notify.local import FileNotifier

        return FileNotifier(config.name, config.path)
    raise NotifierConfigError(f"notifier {config.name!r}: unknown type {config.type!r}")


def build_notifiers(
    configs: Mapping[str, NotifierConfig],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    strict: bool = True,
    rules: EgressRules | None = None,
) -> dict[str, Notifier]:
    """Every notifier of a bundle (`bundle.notifiers`), by name. `strict=False` logs and leaves out an
    incomplete entry (its messages then wait with an "unknown notifier" error) instead of raising."""
    out: dict[str, Notifier] = {}
    for name, cfg in configs.items():
        try:
            out[name] = build_notifier(cfg, timeout_s=timeout_s, rules=rules)
        except NotifierConfigError:
            if strict:
                raise
            log.exception("notifier %r left out", name)
    return out
