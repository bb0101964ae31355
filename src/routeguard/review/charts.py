"""PNG charts (matplotlib, Agg backend): quality against cost per class, and the overall frontier."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from routeguard.review.analyze import ClassModelStats
from routeguard.review.frontier import Frontier

__all__ = ["class_charts", "frontier_chart"]

PER_PAGE = 36
COLUMNS = 6
PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def frontier_chart(
    front: Frontier, path: Path, title: str = "Held-out split: overall quality vs cost"
) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=110)
    if front.oracle:
        ax.plot(
            [p.cost_per_task_usd * 1000 for p in front.oracle],
            [p.quality for p in front.oracle],
            "-",
            color="#999999",
            lw=1.2,
            label="per-class oracle",
        )
    for p in front.single_model:
        ax.scatter(p.cost_per_task_usd * 1000, p.quality, marker="s", s=46, color="#4c72b0", zorder=3)
        ax.annotate(
            p.label,
            (p.cost_per_task_usd * 1000, p.quality),
            textcoords="offset points",
            xytext=(6, -10),
            fontsize=8,
        )
    b, q = front.baseline, front.proposal
    ax.scatter(
        b.cost_per_task_usd * 1000,
        b.quality,
        marker="o",
        s=80,
        facecolors="none",
        edgecolors="black",
        lw=1.5,
        zorder=4,
        label="baseline",
    )
    ax.scatter(
        q.cost_per_task_usd * 1000, q.quality, marker="*", s=160, color="#dd8452", zorder=5, label="proposal"
    )
    ax.set_xlabel("cost per 1,000 tasks (USD)")
    ax.set_ylabel("mean quality (traffic-weighted)")
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def class_charts(
    out_dir: Path,
    stats: Sequence[ClassModelStats],
    current: Mapping[str, str | None],
    proposed: Mapping[str, str | None],
) -> list[Path]:
    """Small multiples, one panel per class: every evaluated model at (cost, quality ± 95 % interval).

    Ticks are fixed and titles are plain text so that 60 panels render in a second or two.
    """
    plt = _pyplot()
    by_class: dict[str, list[ClassModelStats]] = {}
    for st in stats:
        by_class.setdefault(st.task_class, []).append(st)
    names = sorted(by_class)
    models = sorted({st.model for st in stats})
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}
    costs = [st.cost_per_task_usd * 1000 for st in stats if not math.isnan(st.cost_per_task_usd)]
    x_max = max(costs, default=1.0) * 1.08 or 1.0
    x_ticks = [0.0, round(x_max / 2, 2), round(x_max * 0.95, 2)]
    paths: list[Path] = []
    for page in range(math.ceil(len(names) / PER_PAGE)):
        chunk = names[page * PER_PAGE : (page + 1) * PER_PAGE]
        rows = math.ceil(len(chunk) / COLUMNS)
        height = 1.7 * rows + 0.8
        fig, axes = plt.subplots(
            rows, COLUMNS, figsize=(2.3 * COLUMNS, height), dpi=72, squeeze=False, sharex=True, sharey=True
        )
        fig.subplots_adjust(
            left=0.04, right=0.99, bottom=0.5 / height, top=1 - 0.6 / height, hspace=0.28, wspace=0.06
        )
        first = axes[0, 0]  # the axes are shared: limits and ticks set once apply to every panel
        first.set_xlim(-0.02 * x_max, x_max)
        first.set_ylim(-0.02, 1.08)
        first.set_xticks(x_ticks)
        first.set_yticks([0.0, 0.5, 1.0])
        for ax in axes.flat:
            ax.tick_params(labelsize=6, length=2)
        for ax in axes.flat[len(chunk) :]:
            ax.set_visible(False)
        for ax, klass in zip(axes.flat, chunk, strict=False):
            for st in by_class[klass]:
                x = st.cost_per_task_usd * 1000
                y, lo, hi = st.quality.value, st.quality.low, st.quality.high
                is_cur, is_new = st.model == current.get(klass), st.model == proposed.get(klass)
                ax.errorbar(
                    [x],
                    [y],
                    yerr=[[max(y - lo, 0.0)], [max(hi - y, 0.0)]],
                    fmt="*" if is_new else "o",
                    color=colors[st.model],
                    ms=10 if is_new else 5,
                    capsize=2,
                    lw=1,
                    mec="black" if is_cur else colors[st.model],
                    mew=1.4 if is_cur else 0.5,
                )
            ax.text(0.02, 0.97, klass[:30], transform=ax.transAxes, fontsize=6.5, va="top")
        handles = [plt.Line2D([], [], marker="o", ls="", color=colors[m], label=m) for m in models]
        fig.legend(handles=handles, loc="lower center", ncol=min(len(models), 6), fontsize=7, frameon=False)
        fig.suptitle(
            "Per class (learn split): quality ±95% vs cost per 1,000 tasks (USD); black edge = current "
            "model, star = proposed",
            fontsize=9,
        )
        path = out_dir / f"classes-{page + 1}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths
