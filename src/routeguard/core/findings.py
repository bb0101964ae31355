"""Findings: one breach of a rule, with its code and key path."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BundleError", "Finding"]


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    path: str
    message: str
    line: int | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "path": self.path, "message": self.message}
        if self.line is not None:
            out["line"] = self.line
        return out

    def __str__(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        prefix = f"{where}: " if where else ""
        return f"{prefix}{self.path}: {self.code}: {self.message}"


class BundleError(ValueError):
    """A bundle that cannot be used; ``findings`` lists every problem found."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        head = "; ".join(str(f) for f in findings[:5])
        more = f" (+{len(findings) - 5} more)" if len(findings) > 5 else ""
        super().__init__(f"{len(findings)} problem(s) in bundle: {head}{more}")
