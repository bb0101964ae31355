"""E-mail over SMTP (aiosmtplib): a subject line and a plain-text body (the summary, then the JSON payload).

Server: `host`/`port` of the notifier (default port 25; 465 means implicit TLS), or a `url` of the form
`smtp://[user:pass@]host[:port]` / `smtps://…`; STARTTLS is used when the server offers it. `${NAME}` in the
url is read from the environment. The Message-ID is derived from the audit seq, so a re-sent message
(delivery is at least once) is recognisable as the same one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import aiosmtplib

from routeguard.notify.base import DEFAULT_TIMEOUT_S, NotifierConfigError, NotifyError, expand_env, summarize

if TYPE_CHECKING:
    from routeguard.core.egress import EgressRules
    from routeguard.core.model import Notifier as NotifierConfig

__all__ = ["DEFAULT_SENDER", "EmailNotifier", "email_message"]

DEFAULT_SENDER = "routeguard@localhost"


def email_message(payload: Mapping[str, Any], sender: str, to: Sequence[str], name: str) -> EmailMessage:
    head, lines = summarize(payload)
    msg = EmailMessage()
    msg["Subject"] = f"[routeguard] {head}"
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = format_datetime(datetime.now(UTC))
    seq = payload.get("audit_seq")
    stable_id = f"<routeguard.{seq}.{name}@routeguard>"
    msg["Message-ID"] = stable_id if seq is not None else make_msgid("routeguard")
    body = "\n".join([head, "", *lines, "", "Payload:", json.dumps(dict(payload), indent=2, sort_keys=True)])
    msg.set_content(body + "\n")
    return msg


class EmailNotifier:
    def __init__(
        self,
        name: str,
        host: str,
        to: Sequence[str],
        *,
        port: int = 25,
        sender: str = DEFAULT_SENDER,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not to:
            raise NotifierConfigError(f"notifier {name!r} (email) needs at least one `to` address")
        self.name = name
        self.host = host
        self.port = port
        self.to = tuple(to)
        self.sender = sender
        self.username = username
        self.password = password
        self.use_tls = port == 465 if use_tls is None else use_tls
        self.timeout_s = timeout_s

    @classmethod
    def from_config(
        cls, config: NotifierConfig, *, timeout_s: float = DEFAULT_TIMEOUT_S, rules: EgressRules | None = None
    ) -> EmailNotifier:
        host, port = config.host, config.port
        username = password = None
        use_tls: bool | None = None
        if config.url:
            bound_host = urlsplit(config.url).hostname
            bound = (lambda name: rules.secret_allowed(name, bound_host)) if rules is not None else None
            parts = urlsplit(expand_env(config.url, allowed=bound))
            if parts.scheme not in ("smtp", "smtps"):
                raise NotifierConfigError(f"notifier {config.name!r}: email url must be smtp:// or smtps://")
            host = host or parts.hostname
            port = port or parts.port
            username = unquote(parts.username) if parts.username else None
            password = unquote(parts.password) if parts.password else None
            use_tls = parts.scheme == "smtps" or None
        if not host:
            raise NotifierConfigError(f"notifier {config.name!r} (email) needs a host (or an smtp:// url)")
        return cls(
            config.name, host, config.to, port=port or (465 if use_tls else 25),
            sender=config.sender or DEFAULT_SENDER, username=username, password=password,
            use_tls=use_tls, timeout_s=timeout_s,
        )

    async def send(self, payload: Mapping[str, Any]) -> None:
        message = email_message(payload, self.sender, self.to, self.name)
        errors, _reply = await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            timeout=self.timeout_s,
        )
        if errors:  # some recipients refused: not delivered to all, so not delivered
            refused = ", ".join(f"{rcpt} ({resp.code} {resp.message})" for rcpt, resp in errors.items())
            raise NotifyError(f"SMTP {self.host}:{self.port} refused {refused}")

    def __repr__(self) -> str:
        return f"EmailNotifier({self.name!r}, {self.host}:{self.port})"
