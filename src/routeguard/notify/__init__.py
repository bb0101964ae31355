"""Notifications: senders (webhook, Slack, e-mail) and the dispatcher that drains the durable outbox.

Imported only by the service; `import routeguard` does not load it."""

from routeguard.notify.base import Notifier, NotifierConfigError, NotifyError, build_notifier, build_notifiers
from routeguard.notify.dispatcher import Dispatcher, DispatchOptions

__all__ = [
    "DispatchOptions",
    "Dispatcher",
    "Notifier",
    "NotifierConfigError",
    "NotifyError",
    "build_notifier",
    "build_notifiers",
]
