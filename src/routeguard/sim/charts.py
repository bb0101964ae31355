"""PNG charts of a simulation report (matplotlib, Agg backend: no display needed).

* ``served_by.png``: per policy, what answered each time bucket (models stacked, terminal and failed on top),
  with the faults shaded and the routing changes marked;
* ``outcomes.png``: per minute, requests answered by the first choice, through a fallback, terminal, failed;
* ``routes.png``: per policy, the serving model over time as logged by the route state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_charts"]

_FIXED = {"failed": "#d62728", "terminal": "#7f7f7f"}
_PALETTE = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22"]


def _colour(label: str, models: list[str]) -> str:
    if label == "failed":
        return _FIXED["failed"]
    if label.startswith("terminal"):
        return _FIXED["terminal"]
    return _PALETTE[models.index(label) % len(_PALETTE)] if label in models else "#000000"


def _mark_faults(ax: Any, report: dict[str, Any]) -> None:
    seen: set[tuple[str, float]] = set()
    for fault in report.get("faults", []):
        key = (fault["model"], fault["at_s"])
        if key in seen:
            continue
        seen.add(key)
        end = fault["until_s"] if fault["until_s"] is not None else report["duration_s"]
        ax.axvspan(fault["at_s"] / 60, end / 60, color="#d62728", alpha=0.07)


def _served_by(plt: Any, report: dict[str, Any], models: list[str], path: Path) -> None:
    timeline: dict[str, list[dict[str, Any]]] = report["served_timeline"]
    policies = sorted(timeline) or ["-"]
    fig, axes = plt.subplots(
        len(policies), 1, figsize=(10, 2.4 * len(policies) + 0.6), squeeze=False, sharex=True
    )
    for ax, policy in zip(axes[:, 0], policies, strict=True):
        rows = timeline.get(policy, [])
        labels = sorted(
            {k for row in rows for k in row["outcomes"]},
            key=lambda k: (k.startswith("terminal") or k == "failed", k),
        )
        xs = [row["t_s"] / 60 for row in rows]
        stacks = [[row["outcomes"].get(label, 0) for row in rows] for label in labels]
        if xs:
            ax.stackplot(
                xs, stacks, labels=labels, colors=[_colour(lb, models) for lb in labels], step="post"
            )
        _mark_faults(ax, report)
        for change in report["routing_changes"]:
            if change["policy"] == policy:
                ax.axvline(change["t_s"] / 60, color="black", linewidth=0.8, linestyle="--")
        ax.set_title(f"{policy}: requests per bucket by what answered", fontsize=9)
        ax.set_ylabel("requests")
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _outcomes(plt: Any, report: dict[str, Any], path: Path) -> None:
    rows = report["per_minute"]
    xs = [row["minute"] for row in rows]
    first = [row["succeeded"] - row["via_fallback"] for row in rows]
    fallback = [row["via_fallback"] for row in rows]
    terminal = [row["terminal"] for row in rows]
    failed = [row["failed"] for row in rows]
    fig, ax = plt.subplots(figsize=(10, 3.4))
    bottom = [0] * len(xs)
    for values, label, colour in (
        (first, "succeeded (primary)", "#1f77b4"),
        (fallback, "succeeded via fallback", "#2ca02c"),
        (terminal, "terminal action", "#7f7f7f"),
        (failed, "failed", "#d62728"),
    ):
        ax.bar(xs, values, bottom=bottom, label=label, color=colour, width=0.85, align="edge")
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    _mark_faults(ax, report)
    ax.set_xlabel("minute")
    ax.set_ylabel("requests")
    ax.set_title("outcomes per minute")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _routes(plt: Any, report: dict[str, Any], models: list[str], path: Path) -> None:
    timeline: dict[str, list[dict[str, Any]]] = report["route_timeline"]
    policies = sorted(timeline)
    fig, ax = plt.subplots(figsize=(10, 0.8 * len(policies) + 1.2))
    for y, policy in enumerate(policies):
        for seg in timeline[policy]:
            label = seg["model"] or "terminal"
            ax.broken_barh(
                [(seg["from_s"] / 60, (seg["to_s"] - seg["from_s"]) / 60)],
                (y - 0.35, 0.7),
                color=_colour(label, models),
            )
            if seg["to_s"] - seg["from_s"] > report["duration_s"] / 12:
                ax.text(
                    (seg["from_s"] + seg["to_s"]) / 120,
                    y,
                    label,
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white",
                )
    ax.set_yticks(range(len(policies)), policies)
    ax.set_xlabel("minutes")
    ax.set_title("serving model per policy (route state)")
    _mark_faults(ax, report)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_charts(report: dict[str, Any], folder: Path) -> list[Path]:
    """Write the PNGs into ``folder``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    models = sorted(
        {
            k
            for rows in report["served_timeline"].values()
            for row in rows
            for k in row["outcomes"]
            if k != "failed" and not k.startswith("terminal")
        }
        | {seg["model"] for segs in report["route_timeline"].values() for seg in segs if seg["model"]}
    )
    paths = [folder / "served_by.png", folder / "outcomes.png", folder / "routes.png"]
    _served_by(plt, report, models, paths[0])
    _outcomes(plt, report, paths[1])
    _routes(plt, report, models, paths[2])
    return paths
