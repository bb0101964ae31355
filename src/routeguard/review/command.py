"""``routeguard review`` as a Typer sub-app: ``app`` runs a review; ``convert`` reshapes the replay data.

Mount it with ``main_app.add_typer(app, name="review")``. Exit codes: 0 reviewed (whatever was proposed),
1 no bundle passing every check could be proposed, 2 unusable input, 3 the draft upload failed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from routeguard.consoles import make_console

__all__ = ["app"]

app = typer.Typer(
    help="Review routing against what actually happened; propose (never publish) cheaper or stronger routes.",
    add_completion=False,
)
_err = make_console(stderr=True)

Opt = typer.Option


def _fail(message: str, problems: list[str], code: int) -> None:
    _err.print(f"[bold red]error:[/] {message}")
    for line in problems[:50]:
        _err.print(f"  {line}")
    if len(problems) > 50:
        _err.print(f"  … and {len(problems) - 50} more")
    raise typer.Exit(code)


def _summary_table(result: Any) -> Table:
    s = result.report["summary"]
    first, final = s["heldout_first_pass"], s["heldout_final"]
    table = Table(title=f"routeguard review — {result.report['label']}")
    table.add_column("figure")
    table.add_column("held-out, as learnt", justify="right")
    table.add_column("held-out, final", justify="right")

    def iv(x: dict[str, Any]) -> str:
        return f"{x['value']:.1%} [{x['low']:.1%}, {x['high']:.1%}]" if x.get("low") is not None else "n/a"

    table.add_row("quality kept", iv(first["quality_kept"]), iv(final["quality_kept"]))
    table.add_row("cost saving", iv(first["cost_saving"]), iv(final["cost_saving"]))
    table.add_row("tasks replayed", str(first["tasks"]), str(final["tasks"]))
    return table


@app.callback(invoke_without_command=True)
def run(
    ctx: typer.Context,
    config: Annotated[Path | None, Opt("--config", "-c", help="The current bundle (YAML or JSON).")] = None,
    evals: Annotated[Path | None, Opt(help="Eval results, long form CSV/JSONL (.gz ok).")] = None,
    report: Annotated[Path | None, Opt(help="Directory for proposal.yaml and the reports.")] = None,
    telemetry: Annotated[Path | None, Opt(help="Production telemetry, long form CSV/JSONL.")] = None,
    tolerance: Annotated[float, Opt(help="Share of overall baseline quality that may be lost.")] = 0.05,
    seed: Annotated[int, Opt(help="Seed for the split and every bootstrap.")] = 0,
    submit: Annotated[
        str | None, Opt(help="Upload the proposal as a DRAFT to URL (token: ROUTEGUARD_TOKEN).")
    ] = None,
    agent: Annotated[
        str | None, Opt(help="Agent id of the reviewed traffic (default: match by task type).")
    ] = None,
    resamples: Annotated[int, Opt(help="Bootstrap resamples.")] = 1000,
    holdout: Annotated[float, Opt(help="Share of each class held back for replay.")] = 0.5,
    per_class_limit: Annotated[
        float | None, Opt(help="Max share one class may lose (default 3×tolerance).")
    ] = None,
    class_limit: Annotated[
        list[str] | None, Opt(help="CLASS=SHARE: that class's own per-class limit (repeatable).")
    ] = None,
    min_class_n: Annotated[int, Opt(help="Fewer learn tasks than this: no change for the class.")] = 10,
    quality_target: Annotated[float | None, Opt(help="Absolute per-class quality target.")] = None,
    sample_per_class: Annotated[int | None, Opt(help="Cap on replayed tasks per affected class.")] = None,
    decision_log: Annotated[
        Path | None, Opt(help="Decision log (default REPORT/decision-log.jsonl).")
    ] = None,
    charts: Annotated[bool, Opt("--charts/--no-charts", help="Draw PNG charts.")] = True,
    json_out: Annotated[bool, Opt("--json", help="Print report.json's summary as JSON.")] = False,
    learned: Annotated[
        bool, Opt("--learned", help="Propose learned per-prompt primaries (needs the evals' prompt column).")
    ] = False,
    principal: Annotated[
        str | None, Opt(help="Author of a --submit draft without a token (default ROUTEGUARD_PRINCIPAL or user).")
    ] = None,
    latency_bound: Annotated[
        float, Opt(help="A proposed model slower (median) by more than this share escalates instead.")
    ] = 0.2,
    server: Annotated[
        str | None, Opt(help="Read the outcome ledger of this service (GET /v1/outcomes/export) as telemetry.")
    ] = None,
    since: Annotated[str, Opt(help="With --server: how far back (RFC 3339 or a duration like 7d).")] = "30d",
) -> None:
    """Run a review: routeguard review --config BUNDLE --evals FILE --report DIR [--telemetry FILE]."""
    if ctx.invoked_subcommand is not None:
        return
    if server is not None and report is not None:
        from routeguard.review.ledger_fetch import LedgerFetchError, fetch_ledger

        try:
            telemetry = fetch_ledger(server, report, since)
        except LedgerFetchError as exc:
            _fail(str(exc), [], 2)
        evals = evals or telemetry  # production outcomes serve as the evaluations when none are given
    missing = [
        name for name, value in (("--config", config), ("--evals", evals), ("--report", report)) if not value
    ]
    if missing:
        _fail(
            "missing " + ", ".join(missing),
            ["usage: routeguard review --config BUNDLE --evals FILE --report DIR"],
            2,
        )
    assert config is not None and evals is not None and report is not None
    from routeguard.core.findings import BundleError
    from routeguard.review.load import ReviewInputError
    from routeguard.review.run import STEPS, run_review
    from routeguard.review.settings import ReviewSettings

    try:
        settings = ReviewSettings(
            tolerance=tolerance,
            seed=seed,
            resamples=resamples,
            holdout=holdout,
            per_class_limit=per_class_limit,
            class_limits=_class_limits(class_limit or []),
            min_class_n=min_class_n,
            quality_target=quality_target,
            sample_per_class=sample_per_class,
            latency_bound=latency_bound,
        )
    except ValueError as exc:
        _fail(str(exc), [], 2)
    if learned:
        _run_learned(config, evals, report, settings, agent, submit, principal, charts, json_out)
        return
    columns = (SpinnerColumn(), TextColumn("{task.description:<10}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_err, transient=True, disable=json_out) as progress:
        task = progress.add_task("review", total=len(STEPS))

        def step(name: str) -> None:
            progress.update(task, description=name, completed=STEPS.index(name))

        try:
            result = run_review(
                config,
                evals,
                report,
                telemetry,
                settings=settings,
                agent=agent,
                submit_url=submit,
                decision_log=decision_log,
                charts=charts,
                progress=step,
            )
        except BundleError as exc:
            _fail(f"{config}: bundle cannot be used", [str(f) for f in exc.findings], 2)
        except ReviewInputError as exc:
            _fail(exc.message, [str(i) for i in exc.issues], 2)
        progress.update(task, completed=len(STEPS))
    if json_out:
        typer.echo(
            json.dumps(
                {
                    "summary": result.report["summary"],
                    "proposal": result.report["proposal"],
                    "submitted": result.submitted,
                    "report_dir": str(result.report_dir),
                },
                default=str,
            )
        )
    else:
        console = make_console()
        console.print(_summary_table(result))
        s = result.report["summary"]
        console.print(
            f"{s['changes']} change(s); escalated: {len(s['escalated'])}; "
            f"failed verification: {len(s['failed_verification'])}; verification: {s['verification']}"
        )
        console.print(
            f"report: {result.report_dir / 'report.md'}  proposal: {result.proposal_path or 'none'}"
        )
    if result.proposal_path is None:
        raise typer.Exit(1)
    if result.submitted and result.submitted.get("error"):
        _err.print(f"[bold red]submit failed:[/] {result.submitted['error']}")
        raise typer.Exit(3)


def _run_learned(
    config: Path,
    evals: Path,
    report: Path,
    settings: Any,
    agent: str | None,
    submit: str | None,
    principal: str | None,
    charts: bool,
    json_out: bool,
) -> None:
    from routeguard.core.findings import BundleError
    from routeguard.review.learned_review import run_learned_review
    from routeguard.review.load import ReviewInputError

    try:
        with _err.status("training and calibrating learned primaries…", spinner="dots") if not json_out else _null():
            result = run_learned_review(config, evals, report, settings=settings, agent=agent, submit_url=submit,
                                        principal=principal, charts=charts)
    except BundleError as exc:
        _fail(f"{config}: bundle cannot be used", [str(f) for f in exc.findings], 2)
    except ReviewInputError as exc:
        _fail(exc.message, [str(i) for i in exc.issues], 2)
    doc = result.report
    if json_out:
        keys = ("label", "heldout", "proposal", "escalations", "submitted", "wall_s")
        summary = {k: doc.get(k) for k in keys}
        summary["policies"] = [
            {k: p[k] for k in ("policy", "strong", "weak", "proposed", "held", "notes")} for p in doc["policies"]
        ]
        typer.echo(json.dumps(summary, default=str))
    else:
        console = make_console()
        table = Table(title=f"routeguard review --learned — {doc['label']}")
        for col in ("policy", "strong / weak", "threshold", "held on strong", "notes"):
            table.add_column(col)
        for p in doc["policies"]:
            pr = p["proposed"]
            table.add_row(p["policy"], f"{p['strong']} / {p['weak'] or '—'}",
                          f"{pr['threshold']:.4f}" if pr else "no change", str(len(p["held"])),
                          "; ".join(p["notes"] + [e["detail"] for e in p["escalations"]]))
        console.print(table)
        h = doc["heldout"]
        if h:
            iv = "{value:.1%} [{low:.1%}, {high:.1%}]"
            console.print(f"held-back replay ({h['n']} tasks): quality kept {iv.format(**h['quality_kept'])}, "
                          f"cost saving {iv.format(**h['cost_saving'])}")
        console.print(f"report: {result.report_dir / 'report.md'}  proposal: {result.proposal_path or 'none'}  "
                      f"({doc['wall_s']} s)")
    if result.proposal_path is None:
        raise typer.Exit(1)
    if result.submitted and result.submitted.get("error"):
        _err.print(f"[bold red]submit failed:[/] {result.submitted['error']}")
        raise typer.Exit(3)


def _null() -> Any:
    import contextlib

    return contextlib.nullcontext()


@app.command("convert")
def convert(
    src: Annotated[Path, typer.Argument(help="The wide replay file (replay-mmlu-gsm8k.csv.gz).")],
    dst: Annotated[Path, typer.Argument(help="Long-form output: .csv, .csv.gz, .jsonl or .jsonl.gz.")],
    bundle_out: Annotated[Path | None, Opt(help="Also write an example bundle for the data here.")] = None,
    include_prompt: Annotated[bool, Opt(help="Keep the prompt text (for clustering).")] = False,
    json_out: Annotated[bool, Opt("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Convert the wide replay file to the long form of CONTRACT §7 (drops contaminated rows)."""
    from routeguard.review.convert import convert_replay, replay_bundle_yaml
    from routeguard.review.load import ReviewInputError

    try:
        result = convert_replay(src, dst, include_prompt=include_prompt)
    except ReviewInputError as exc:
        _fail(exc.message, [str(i) for i in exc.issues], 2)
    if bundle_out is not None:
        bundle_out.parent.mkdir(parents=True, exist_ok=True)
        bundle_out.write_text(replay_bundle_yaml(result.classes), encoding="utf-8")
    if json_out:
        typer.echo(json.dumps(result.to_dict()))
        return
    console = make_console()
    console.print(
        f"{result.tasks} tasks in {len(result.classes)} classes -> {result.rows_written} rows in {dst} "
        f"({result.contaminated_dropped} contaminated dropped, {len(result.issues)} bad rows skipped)"
    )
    for line in result.assumptions:
        console.print(f"  note: {line}")
    if bundle_out is not None:
        console.print(f"example bundle: {bundle_out}")


def _class_limits(items: list[str]) -> tuple[tuple[str, float], ...]:
    """``--class-limit CLASS=SHARE`` values; ValueError naming the bad one."""
    out = []
    for item in items:
        name, sep, share = item.partition("=")
        try:
            value = float(share)
        except ValueError:
            value = float("nan")
        if not sep or not name.strip() or value != value:
            raise ValueError(f"--class-limit: expected CLASS=SHARE (e.g. grade_school_math=0.05), got {item!r}")
        out.append((name.strip(), value))
    return tuple(out)
