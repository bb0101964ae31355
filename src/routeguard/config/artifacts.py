"""Learned-primary artifacts on disk (CONTRACT §1, §7): where they are, and whether they are what the bundle says.

The core only checks the shape of ``primary.learned``; reading files is the shell's job, so this check lives
here. A relative ``artifact`` path is resolved against the bundle file's directory (or, for a bundle that came
through the API, the service's artifact root: ``--config``'s directory, else the working directory).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from routeguard.core.context import RouteContext
from routeguard.core.engine import resolve_policy
from routeguard.core.findings import Finding
from routeguard.core.model import Bundle
from routeguard.core.table import RoutingTable
from routeguard.learned.artifact import ArtifactError, load_scorer

__all__ = ["artifact_findings", "resolve_artifact", "score_context"]


def resolve_artifact(ref: str, root: str | Path | None) -> Path:
    path = Path(ref)
    if path.is_absolute():
        return path
    return (Path(root) if root is not None else Path.cwd()) / path


def artifact_findings(bundle: Bundle, root: str | Path | None) -> list[Finding]:
    """``artifact_mismatch`` for every learned primary whose artifact is missing, altered or malformed."""
    out: list[Finding] = []
    for name, policy in bundle.policies.items():
        learned = policy.learned
        if learned is None or not learned.artifact or not learned.sha256:
            continue
        try:
            load_scorer(resolve_artifact(learned.artifact, root), learned.sha256)
        except ArtifactError as exc:
            out.append(Finding("artifact_mismatch", f"policies.{name}.primary.learned.artifact", exc.message))
    return out


def score_context(ctx: RouteContext, table: RoutingTable, root: str | Path | None) -> RouteContext:
    """``ctx`` with the score of its prompt under its policy's learned primary (one-off use: loads the artifact).

    Unchanged when there is no prompt, the policy has no learned primary or its artifact fails its check.
    """
    if ctx.prompt is None or ctx.score is not None:
        return ctx
    try:
        learned = resolve_policy(ctx, table).policy.learned
    except ValueError:
        return ctx
    if learned is None:
        return ctx
    try:
        scorer = load_scorer(resolve_artifact(learned.artifact, root), learned.sha256)
    except ArtifactError:
        return ctx
    tokens_in, tokens_out = ctx.input_tokens or None, ctx.output_tokens or None
    return replace(ctx, score=scorer.score(ctx.prompt, ctx.task_type, tokens_in, tokens_out))
