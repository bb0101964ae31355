"""Real notification receivers on loopback for tests: an HTTP webhook receiver and an SMTP server.

    hook = WebhookReceiver().start()          # http://127.0.0.1:<port>/hook
    hook.status = 503                         # answer 503 until changed
    hook.received                             # [Received(path, headers, body)]
    smtp = SmtpReceiver().start()             # aiosmtpd Controller; smtp.messages: [EmailMessage]
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from aiosmtpd.controller import Controller

__all__ = ["Received", "SmtpReceiver", "WebhookReceiver", "eventually", "free_port"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def eventually(predicate: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition") -> None:
    """Poll `predicate` until true; fail after a generous `timeout_s` (never a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s}s")
        await asyncio.sleep(0.02)


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class WebhookReceiver:
    def __init__(self, port: int = 0, status: int = 200) -> None:
        self.port = port
        self.status = status
        self.gate: threading.Event | None = None  # when set: every request waits until the gate opens
        self.waiting = 0  # requests held at the gate now
        self.received: list[Received] = []
        self.refused = 0  # requests answered with a non-2xx status
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                gate = receiver.gate
                if gate is not None:
                    with receiver._lock:
                        receiver.waiting += 1
                    gate.wait(60)
                    with receiver._lock:
                        receiver.waiting -= 1
                status = receiver.status
                with receiver._lock:
                    if 200 <= status < 300:
                        receiver.received.append(
                            Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                     json.loads(raw))
                        )
                    else:
                        receiver.refused += 1
                body = b"ok" if status < 300 else b"receiver unavailable"
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.body for r in self.received]


class _Handler:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        self.messages.append(cast(EmailMessage, parsed))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


class SmtpReceiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._handler = _Handler()
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self._handler.messages

    @property
    def envelopes(self) -> list[tuple[str, list[str]]]:
        return self._handler.envelopes

    def start(self) -> SmtpReceiver:
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
