"""Typed errors of the store; the service maps them to HTTP statuses (404, 409, 403, 422)."""

from __future__ import annotations

__all__ = [
    "FourEyesViolation",
    "InvalidScope",
    "NotApproved",
    "NotTheApprover",
    "StateConflict",
    "StoreError",
    "UnknownEntry",
    "UnknownVersion",
]


class StoreError(Exception):
    """Base class of every error the store raises on purpose."""


class UnknownVersion(StoreError, LookupError):
    """No policy version with this number (404 `unknown_version`)."""

    def __init__(self, version: int) -> None:
        super().__init__(f"unknown policy version {version}")
        self.version = version


class NotApproved(StoreError):
    """Only approved versions can be published (409)."""

    def __init__(self, version: int) -> None:
        super().__init__(f"policy version {version} is not approved")
        self.version = version


class FourEyesViolation(StoreError):
    """The approver is the author of the version (403)."""

    def __init__(self, version: int, principal: str) -> None:
        super().__init__(f"{principal!r} authored version {version} and cannot approve it")
        self.version = version
        self.principal = principal


class StateConflict(StoreError):
    """The change does not fit the current state (409)."""


class InvalidScope(StoreError, ValueError):
    """A publication scope that is not `all`, a non-empty tenant list, or a percent in 1..100 (422)."""


class UnknownEntry(StoreError, LookupError):
    """No outbox message or human-queue entry with this id (404)."""


class NotTheApprover(FourEyesViolation):
    """The upload named the principal who must approve it, and this is someone else (403)."""

    def __init__(self, version: int, principal: str, required: str) -> None:
        StoreError.__init__(self, f"version {version} names {required!r} as its approver; {principal!r} is not")
        self.version = version
        self.principal = principal
        self.required = required
