"""Show a simulation report: a Rich summary in the terminal, ``report.md`` and ``report.html`` with charts."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["compare_rows", "print_comparison", "print_summary", "to_html", "to_markdown", "write_report_dir"]


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "—"
    return str(value)


def key_figures(r: dict[str, Any]) -> list[tuple[str, str]]:
    """The headline figures, as (label, text) pairs, in the order every output shows them."""
    lat = r["decision_latency_us"]
    safe = r["safe_mode"]
    return [
        ("requests", _fmt(r["requests"])),
        ("succeeded", _fmt(r["succeeded"])),
        ("failed", _fmt(r["failed"]) + (f" ({_fmt(r['errors'])})" if r["errors"] else "")),
        ("terminal", _fmt(r["terminal"])),
        ("served by", _fmt(r["served_by"])),
        ("fallback success rate", f"{r['fallback_success_rate']:.2%} of {r['fallback_requests']}"),
        ("hit rate", f"{r['hit_rate']:.2%}"),
        ("unapproved served", _fmt(r["unapproved_served"])),
        (
            "time to detect / fail over / recover",
            " / ".join(
                _fmt(r[k]) + ("s" if r[k] is not None else "")
                for k in ("time_to_detect_s", "time_to_failover_s", "time_to_recover_s")
            ),
        ),
        ("requests to a dead model", _fmt(r["requests_to_dead_model"])),
        ("routing changes / flaps", f"{len(r['routing_changes'])} / {r['flaps']}"),
        ("notifications", _fmt(r["notifications"])),
        (
            "safe mode",
            "engaged at " + _fmt(safe["engaged_at_s"]) + "s" if safe["engaged_at_s"] is not None else "off",
        ),
        ("decision latency p50 / p99", f"{lat['p50']:.0f} µs / {lat['p99']:.0f} µs"),
        (
            "§2 invariants",
            f"{r['invariants']['violations']} violations in {r['invariants']['decisions_checked']} decisions",
        ),
    ]


def print_summary(r: dict[str, Any], console: Console, *, wall_s: float | None = None) -> None:
    title = f"scenario {escape(r['scenario'])} — {r['duration_s'] / 60:g} min, seed {r['seed']}"
    if wall_s:
        title += f" — {r['requests'] / wall_s:,.0f} simulated requests/s"
    figures = Table(title=title, show_header=False, title_justify="left")
    figures.add_column("figure", style="bold")
    figures.add_column("value")
    for label, text in key_figures(r):
        figures.add_row(label, escape(text))
    console.print(figures)
    verdicts = Table(title="verdicts", title_justify="left")
    verdicts.add_column("check")
    verdicts.add_column("result")
    for name, result in r["verdicts"].items():
        verdicts.add_row(name, "[green]pass[/]" if result == "pass" else "[red]fail[/]")
    console.print(verdicts)
    if r["routing_changes"]:
        changes = Table(title="routing changes", title_justify="left")
        for col in ("t", "policy", "from", "to", "reason"):
            changes.add_column(col, overflow="fold")
        for c in r["routing_changes"][:40]:
            changes.add_row(
                f"{c['t_s']:.1f}s",
                escape(c["policy"]),
                escape(c["from_model"] or "terminal"),
                escape(c["to_model"]) if c["to_model"] else "[red]terminal[/]",
                escape(c["reason"]),
            )
        if len(r["routing_changes"]) > 40:
            changes.add_row("…", f"{len(r['routing_changes']) - 40} more", "", "", "")
        console.print(changes)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(r: dict[str, Any], charts: list[str]) -> str:
    parts = [
        f"# Simulation: {r['scenario']}",
        "",
        f"Duration {r['duration_s'] / 60:g} min, seed {r['seed']}, bundle `{r['bundle_hash'][:19]}…`.",
        "",
        "## Figures",
        "",
        _md_table(["figure", "value"], [list(row) for row in key_figures(r)]),
        "",
        "## Verdicts",
        "",
        _md_table(["check", "result"], [[k, v] for k, v in r["verdicts"].items()]),
        "",
        "## Routing changes",
        "",
    ]
    if r["routing_changes"]:
        parts.append(
            _md_table(
                ["t (s)", "policy", "from", "to", "reason"],
                [
                    [
                        f"{c['t_s']:.1f}",
                        c["policy"],
                        c["from_model"] or "terminal",
                        c["to_model"] or "terminal",
                        c["reason"],
                    ]
                    for c in r["routing_changes"]
                ],
            )
        )
    else:
        parts.append("None: every policy stayed on its primary.")
    if r["faults"]:
        parts += [
            "",
            "## Faults",
            "",
            _md_table(
                [
                    "model",
                    "kind",
                    "at (s)",
                    "until (s)",
                    "policy",
                    "detect (s)",
                    "failover (s)",
                    "recover (s)",
                ],
                [
                    [
                        _fmt(f[k])
                        for k in (
                            "model",
                            "kind",
                            "at_s",
                            "until_s",
                            "policy",
                            "detect_s",
                            "failover_s",
                            "recover_s",
                        )
                    ]
                    for f in r["faults"]
                ],
            ),
        ]
    parts += [
        "",
        "## Per minute",
        "",
        _md_table(
            ["minute", "succeeded", "via fallback", "terminal", "failed"],
            [
                [str(m[k]) for k in ("minute", "succeeded", "via_fallback", "terminal", "failed")]
                for m in r["per_minute"]
            ],
        ),
    ]
    if charts:
        parts += ["", "## Charts", ""] + [f"![{name}]({name})" for name in charts]
    return "\n".join(parts) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}.pass{color:#1a7f37;font-weight:bold}.fail{color:#cf222e;font-weight:bold}img{max-width:100%}"""


def _html_table(header: list[str], rows: list[list[str]], classes: dict[str, str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="{(classes or {}).get(cell, "")}">{html.escape(cell)}</td>' for cell in row
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def to_html(r: dict[str, Any], charts: list[str]) -> str:
    verdict_class = {"pass": "pass", "fail": "fail"}
    sections = [
        f"<h1>Simulation: {html.escape(r['scenario'])}</h1>",
        f"<p>Duration {r['duration_s'] / 60:g} min, seed {r['seed']}, "
        f"bundle <code>{html.escape(r['bundle_hash'])}</code></p>",
        "<h2>Figures</h2>",
        _html_table(["figure", "value"], [list(row) for row in key_figures(r)]),
        "<h2>Verdicts</h2>",
        _html_table(["check", "result"], [[k, v] for k, v in r["verdicts"].items()], verdict_class),
        "<h2>Routing changes</h2>",
        _html_table(
            ["t (s)", "policy", "from", "to", "reason"],
            [
                [
                    f"{c['t_s']:.1f}",
                    c["policy"],
                    c["from_model"] or "terminal",
                    c["to_model"] or "terminal",
                    c["reason"],
                ]
                for c in r["routing_changes"]
            ],
        ),
    ]
    sections += [
        f'<h2>{html.escape(name)}</h2><img src="{html.escape(name)}" alt="{html.escape(name)}">'
        for name in charts
    ]
    sections.append(
        "<h2>Report (JSON)</h2><pre>"
        + html.escape(
            json.dumps({k: v for k, v in r.items() if k not in ("served_timeline", "per_minute")}, indent=1)
        )
        + "</pre>"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>routeguard simulation {html.escape(r['scenario'])}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


def write_report_dir(r: dict[str, Any], folder: Path) -> list[Path]:
    """``report.md``, ``report.html``, ``report.json`` and the PNG charts in ``folder``."""
    from routeguard.sim.charts import write_charts

    folder.mkdir(parents=True, exist_ok=True)
    charts = write_charts(r, folder)
    names = [p.name for p in charts]
    (folder / "report.md").write_text(to_markdown(r, names), encoding="utf-8")
    (folder / "report.html").write_text(to_html(r, names), encoding="utf-8")
    (folder / "report.json").write_text(json.dumps(r, indent=2) + "\n", encoding="utf-8")
    return [folder / "report.md", folder / "report.html", folder / "report.json", *charts]


_COMPARE = (
    "requests",
    "succeeded",
    "failed",
    "terminal",
    "served_by",
    "fallback_success_rate",
    "hit_rate",
    "unapproved_served",
    "time_to_failover_s",
    "time_to_recover_s",
    "flaps",
    "notifications",
)


def compare_rows(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(figure, old, new, differs) for the headline figures, then the verdicts."""
    rows = [(k, _fmt(old[k]), _fmt(new[k]), old[k] != new[k]) for k in _COMPARE]
    rows.append(
        (
            "routing changes",
            str(len(old["routing_changes"])),
            str(len(new["routing_changes"])),
            len(old["routing_changes"]) != len(new["routing_changes"]),
        )
    )
    rows += [
        (f"verdict {k}", old["verdicts"][k], new["verdicts"][k], old["verdicts"][k] != new["verdicts"][k])
        for k in old["verdicts"]
    ]
    return rows


def print_comparison(
    name: str,
    old: dict[str, Any],
    new: dict[str, Any],
    console: Console,
    labels: tuple[str, str] = ("old", "new"),
) -> None:
    table = Table(title=f"scenario {escape(name)}", title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column(escape(labels[0]), overflow="fold")
    table.add_column(escape(labels[1]), overflow="fold")
    for figure, a, b, differs in compare_rows(old, new):
        style = "yellow" if differs else ""
        table.add_row(figure, escape(a), f"[{style}]{escape(b)}[/]" if style else escape(b))
    console.print(table)
