"""The routing review loop: read what happened, propose the smallest routing change that keeps quality within
tolerance, prove it by replay on held-out tasks, and hand it to a human. It never publishes anything.

Entry points: :func:`run_review` and :func:`convert_replay`; ``routeguard.review.command.app`` is the Typer
sub-app (``routeguard review …``). Attributes load lazily so importing the package stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from routeguard.review.convert import ConvertResult, convert_replay, replay_bundle_yaml
    from routeguard.review.load import ReviewInputError
    from routeguard.review.run import ReviewResult, run_review
    from routeguard.review.settings import ReviewSettings
    from routeguard.review.submit import SubmitError

__all__ = [
    "ConvertResult",
    "ReviewInputError",
    "ReviewResult",
    "ReviewSettings",
    "SubmitError",
    "convert_replay",
    "replay_bundle_yaml",
    "run_review",
]

_WHERE = {
    "ConvertResult": "convert",
    "convert_replay": "convert",
    "replay_bundle_yaml": "convert",
    "ReviewInputError": "load",
    "ReviewResult": "run",
    "run_review": "run",
    "ReviewSettings": "settings",
    "SubmitError": "submit",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"routeguard.review.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'routeguard.review' has no attribute {name!r}")
