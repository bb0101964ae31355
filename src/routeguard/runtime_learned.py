"""The Router's learned-primary scorers (CONTRACT §7): one per (scope, policy), loaded and hash-checked when the
live tables change, applied to a request's prompt before the core decides (the core only receives the score)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from routeguard.core.context import RouteContext
from routeguard.core.engine import resolve_policy
from routeguard.core.table import RoutingTable

if TYPE_CHECKING:
    from routeguard.learned.artifact import Scorer

__all__ = ["LearnedScorers"]


class LearnedScorers:
    def __init__(self, artifact_root: str | Path | None) -> None:
        self.artifact_root = artifact_root  # where relative artifacts live (None: the working directory)
        self.scopes: frozenset[str] = frozenset()  # scopes with a learned primary: nothing to do elsewhere
        self._scorers: dict[tuple[str, str], Scorer] = {}
        self.errors: dict[tuple[str, str], str] = {}

    def load(self, tables: Mapping[str, RoutingTable]) -> None:
        """(Re)load every learned primary's artifact; a policy whose artifact fails keeps all requests on strong."""
        learned = {
            (scope, name): cp.policy.learned
            for scope, table in tables.items()
            for name, cp in table.policies.items()
            if cp.policy.learned is not None
        }
        self.scopes = frozenset(scope for scope, _ in learned)
        if not learned:
            self._scorers, self.errors = {}, {}
            return
        from routeguard.config.artifacts import resolve_artifact
        from routeguard.learned.artifact import ArtifactError, load_scorer

        by_hash = {s.sha256: s for s in self._scorers.values()}
        scorers: dict[tuple[str, str], Scorer] = {}
        errors: dict[tuple[str, str], str] = {}
        for key, spec in learned.items():
            if spec is None:
                continue
            if spec.sha256 in by_hash:
                scorers[key] = by_hash[spec.sha256]
                continue
            try:
                scorers[key] = by_hash[spec.sha256] = load_scorer(
                    resolve_artifact(spec.artifact, self.artifact_root), spec.sha256
                )
            except ArtifactError as exc:
                errors[key] = exc.message
        self._scorers, self.errors = scorers, errors

    def score(self, ctx: RouteContext, scope: str, table: RoutingTable) -> RouteContext:
        """``ctx`` with its prompt's score under its policy's learned primary (unchanged when there is none)."""
        if scope not in self.scopes or ctx.prompt is None:
            return ctx
        try:
            policy = resolve_policy(ctx, table).name
        except ValueError:
            return ctx  # decide() reports the routing error
        scorer = self._scorers.get((scope, policy))
        if scorer is None:
            return ctx
        tokens_in, tokens_out = ctx.input_tokens or None, ctx.output_tokens or None
        return replace(ctx, score=scorer.score(ctx.prompt, ctx.task_type, tokens_in, tokens_out))
