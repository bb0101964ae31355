"""Commands on the service and its store: `routeguard serve`, `audit verify|export`, `db upgrade`."""

from __future__ import annotations

import gc
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from routeguard.cli.output import console, err_console, print_json

if TYPE_CHECKING:
    from routeguard.service.state import ServiceState

__all__ = ["register"]

audit_app = typer.Typer(help="The hash-chained audit log of a store.", no_args_is_help=True)
db_app = typer.Typer(help="The store's database schema.", no_args_is_help=True)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="SQLAlchemy URL of the store (default: ROUTEGUARD_DB, else sqlite:///./routeguard.db)"
    ),
]


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(audit_app, name="audit")
    app.add_typer(db_app, name="db")


def _db_url(db: str | None) -> str:
    from routeguard.service.settings import default_db_url

    return db or default_db_url()


def _shown(url: str) -> str:
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)


def serve(
    config: Annotated[
        Path | None, typer.Option("--config", help="bundle published as version 1 on a store without one")
    ] = None,
    db: DbOpt = None,
    redis: Annotated[
        str | None,
        typer.Option(
            "--redis",
            envvar="ROUTEGUARD_REDIS",
            help="redis://… shared by the fleet: fleet-wide health (outcomes, ejections, probe budget, signals, "
            "quotas, per-principal rates) and one active check per model per interval; governance needs only --db",
        ),
    ] = None,
    auth: Annotated[Path | None, typer.Option("--auth", help="YAML list of {name, token, roles}")] = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", envvar="ROUTEGUARD_PORT", help="port to listen on")] = 8080,
    ssl_certfile: Annotated[Path | None, typer.Option("--ssl-certfile", help="TLS certificate (PEM)")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option("--ssl-keyfile", help="TLS private key (PEM)")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level")] = "warning",
    access_log: Annotated[bool, typer.Option("--access-log", help="log every request")] = False,
    replica_id: Annotated[
        str | None,
        typer.Option(
            "--replica-id",
            envvar="ROUTEGUARD_REPLICA_ID",
            help="this replica's id in GET /v1/cluster (default: host-pid-random)",
        ),
    ] = None,
    event_log_level: Annotated[
        str,
        typer.Option(
            "--event-log-level",
            help="level of routeguard's JSON log lines on stderr: routing events at info, decisions at debug",
        ),
    ] = "info",
    secrets: Annotated[
        Path | None,
        typer.Option("--secrets", help="YAML mapping NAME -> list of hosts: where each environment secret may go"),
    ] = None,
    allow_egress: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-egress", metavar="HOSTS", help="link-local/metadata hosts or networks to allow (comma-separated)"
        ),
    ] = None,
    checkpoint_every: Annotated[
        str, typer.Option("--checkpoint-every", help="write the signed audit head this often (0: never)")
    ] = "5m",
    checkpoint_file: Annotated[
        Path | None,
        typer.Option("--checkpoint-file", help="where checkpoints go (default: beside the SQLite store)"),
    ] = None,
    checkpoint_notify: Annotated[
        str | None, typer.Option("--checkpoint-notify", help="also send each checkpoint to this bundle notifier")
    ] = None,
    max_body: Annotated[int, typer.Option("--max-body-bytes", help="request body limit")] = 1 << 20,
    max_upload: Annotated[int, typer.Option("--max-upload-bytes", help="policy upload limit")] = 5 << 20,
    retain: Annotated[str, typer.Option("--retain", help="how long the outcome ledger keeps rows")] = "30d",
    review_every: Annotated[
        str | None,
        typer.Option("--review-every", help="review on a schedule (e.g. 7d) and on new approvals or prices; "
                     "proposals become drafts, never publications"),
    ] = None,
    review_evals: Annotated[
        Path | None, typer.Option("--review-evals", help="evaluations for those reviews (default: the ledger)")
    ] = None,
    reviews_dir: Annotated[
        Path, typer.Option("--reviews-dir", help="where those reviews' reports are kept")
    ] = Path("routeguard-reviews"),
    artifact_dir: Annotated[
        Path | None,
        typer.Option("--artifact-dir", help="where relative learned-primary artifacts are (default: --config's dir)"),
    ] = None,
) -> None:
    """Serve the routing API. Exit 1 when --config has findings, 2 on unsafe or invalid settings."""
    try:
        import uvicorn
    except ModuleNotFoundError as exc:  # a library or `cli`-only install
        err_console.print(escape(f"error: serving needs {exc.name!r}: pip install 'routeguard[server]'"))
        raise typer.Exit(2) from exc

    from routeguard.config.secrets import SecretsFileError
    from routeguard.service.app import create_app
    from routeguard.service.auth import AuthError
    from routeguard.service.bootstrap import StartupError
    from routeguard.service.settings import Settings
    from routeguard.service.state import ServiceState
    from routeguard.telemetry.logs import configure_json_logging

    try:
        configure_json_logging(event_log_level.upper())
    except ValueError as exc:
        err_console.print(f"[red]error[/]: --event-log-level: {escape(str(exc))}")
        raise typer.Exit(2) from exc
    if redis and "://" not in redis:
        err_console.print("[red]error[/]: --redis: expected a URL like redis://host:6379/0")
        raise typer.Exit(2)
    if redis:
        try:
            import redis as _redis_client  # noqa: F401
        except ModuleNotFoundError as exc:
            err_console.print(escape("error: --redis needs the 'redis' package: pip install 'routeguard[cluster]'"))
            raise typer.Exit(2) from exc
    from routeguard.core.durations import parse_duration

    try:
        retain_s = parse_duration(retain)
        every_s = parse_duration(review_every) if review_every else None
    except ValueError as exc:
        err_console.print(f"[red]error[/]: --retain/--review-every: {escape(str(exc))}")
        raise typer.Exit(2) from exc
    settings = Settings(
        db_url=_db_url(db), config_path=config, auth_file=auth, host=host, port=port, redis_url=redis,
        replica_id=replica_id or None,
        max_body_bytes=max_body, max_upload_bytes=max_upload, secrets_file=secrets,
        allow_egress=tuple(allow_egress or ()),
        checkpoint_every_s=_seconds(checkpoint_every, "--checkpoint-every"), checkpoint_file=checkpoint_file,
        checkpoint_notifier=checkpoint_notify,
        retain_s=retain_s, review_every_s=every_s, review_evals=review_evals, reviews_dir=reviews_dir,
        artifact_dir=artifact_dir,
    )
    try:
        state = ServiceState.open(settings)
    except (AuthError, SecretsFileError) as exc:
        err_console.print(f"[red]error[/]: {escape(str(exc))}")
        raise typer.Exit(2) from exc
    except StartupError as exc:
        err_console.print(f"[red]error[/]: {escape(exc.message)}")
        for finding in exc.findings:
            err_console.print(f"  {escape(str(finding))}")
        raise typer.Exit(exc.exit_code) from exc
    for note in state.report.notes:
        err_console.print(f"routeguard: {escape(note)}")
    scheme = "https" if ssl_certfile else "http"
    version = state.serving_version()
    err_console.print(
        f"routeguard: serving {'version ' + str(version) if version is not None else 'no published version'} "
        f"on {scheme}://{host}:{port} (store {escape(_shown(settings.db_url))}, "
        f"{'tokens' if not state.auth.open else 'no tokens: loopback development mode'}, "
        f"replica {escape(state.replica_id)})"
    )
    if redis:
        err_console.print(f"routeguard: fleet-wide health over {escape(_shown(redis))} (keys {state.redis_prefix}*)")
    _print_hint(state, f"{scheme}://{host}:{port}")
    gc.collect()
    gc.freeze()  # start-up objects leave the collector's generations: shorter pauses while serving
    try:
        uvicorn.run(
            create_app(settings, state=state),
            host=host,
            port=port,
            log_level=log_level,
            access_log=access_log,
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
            timeout_graceful_shutdown=30,
            server_header=False,
        )
    finally:
        state.store.close()


def _seconds(value: str, option: str) -> float:
    from routeguard.core.durations import parse_duration

    try:
        return float(parse_duration(value))
    except (TypeError, ValueError) as exc:
        err_console.print(f"[red]error[/]: {option}: {escape(str(exc))}")
        raise typer.Exit(2) from exc


def _open_existing(db: str | None, as_json: bool) -> Any:
    from sqlalchemy import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from routeguard.store.db import open_store

    url = _db_url(db)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        _fail(
            f"no store at {Path(parsed.database).resolve()}: pass --db URL (or ROUTEGUARD_DB), "
            "or --server URL to ask a running service",
            as_json,
            2,
        )
    try:
        return open_store(url, migrate=False)
    except SQLAlchemyError as exc:
        _fail(f"cannot open the store {_shown(url)}: {exc}", as_json, 2)


def _fail(message: str, as_json: bool, code: int) -> None:
    if as_json:
        print_json({"error": {"code": "store", "message": message}})
    else:
        err_console.print(f"[red]error[/]: {escape(message)}")
    raise typer.Exit(code)


AuditServerOpt = Annotated[
    str | None, typer.Option("--server", help="ask this service (token: ROUTEGUARD_TOKEN) instead of a store")
]
CheckpointOpt = Annotated[
    Path | None,
    typer.Option("--checkpoint", help="a checkpoint file: also detect a truncated or wiped chain", dir_okay=False),
]


@audit_app.command("verify")
def verify(
    db: DbOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
    server: AuditServerOpt = None,
    checkpoint: CheckpointOpt = None,
) -> None:
    """Check the audit hash chain: exit 0 when intact, 1 with the first broken record."""
    from sqlalchemy.exc import SQLAlchemyError

    if server is not None:
        from routeguard.cli.audit_remote import verify_remote

        verify_remote(server, as_json)

    from routeguard.store.checkpoint import CheckpointError, read_checkpoint

    try:
        anchor = read_checkpoint(checkpoint) if checkpoint is not None else None
    except CheckpointError as exc:
        _fail(str(exc), as_json, 2)
    store = _open_existing(db, as_json)
    try:
        result = store.audit.verify(anchor)
    except SQLAlchemyError as exc:
        _fail(f"cannot read the audit log: {exc}", as_json, 2)
    finally:
        store.close()
    if as_json:
        print_json(result.to_dict())
    elif result.ok:
        console.print(f"[green]✓[/] audit chain intact: {result.records} record(s)")
    else:
        err_console.print(
            f"[red]✗[/] audit chain broken at record {result.first_broken}: {escape(result.reason or '')} "
            f"({result.records} record(s))"
        )
    raise typer.Exit(0 if result.ok else 1)


@audit_app.command("checkpoint")
def checkpoint_cmd(
    db: DbOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the checkpoint to this file (atomically)")] = None,
) -> None:
    """Print (and with --out, write) the chain's signed head: {seq, hash, ts, alg, signature}. Keep it
    outside the database; `audit verify --checkpoint FILE` then detects truncation and wipes."""
    from sqlalchemy.exc import SQLAlchemyError

    from routeguard.store.checkpoint import write_checkpoint

    store = _open_existing(db, False)
    try:
        anchor = store.audit.checkpoint()
    except SQLAlchemyError as exc:
        _fail(f"cannot read the audit log: {exc}", False, 2)
    finally:
        store.close()
    if out is not None:
        write_checkpoint(out, anchor)
    print_json(anchor.to_dict())


@audit_app.command("export")
def export(
    db: DbOpt = None,
    out: Annotated[Path | None, typer.Option("--out", help="JSONL file (default: standard output)")] = None,
    server: AuditServerOpt = None,
) -> None:
    """Write every audit record, with seq, prev_hash and hash, as JSON lines."""
    if server is not None:
        from routeguard.cli.audit_remote import export_remote

        with out.open("w", encoding="utf-8") if out is not None else nullcontext(sys.stdout) as fp:
            count, head_seq, head_hash = export_remote(server, fp)
        err_console.print(f"exported {count} record(s); chain head {head_seq} {head_hash}")
        return
    store = _open_existing(db, False)
    try:
        if out is None:
            count = store.audit.export_jsonl(sys.stdout)
        else:
            with out.open("w", encoding="utf-8") as fp:
                count = store.audit.export_jsonl(fp)
        head_seq, head_hash = store.audit.head()
    finally:
        store.close()
    err_console.print(f"exported {count} record(s); chain head {head_seq} {head_hash}")


@db_app.command("upgrade")
def upgrade(db: DbOpt = None) -> None:
    """Create or migrate the store's tables to the latest schema (idempotent)."""
    from sqlalchemy.exc import SQLAlchemyError

    from routeguard.store.db import create_store_engine, current_revision
    from routeguard.store.db import upgrade as run_upgrade

    url = _db_url(db)
    engine = create_store_engine(url)
    try:
        run_upgrade(engine)
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        _fail(f"cannot migrate {_shown(url)}: {exc}", False, 2)
    finally:
        engine.dispose()
    console.print(f"store {escape(_shown(url))} is at revision {revision}")


def _print_hint(state: ServiceState, base: str) -> None:
    """How to call the service, with an agent of the serving bundle."""
    agents = sorted({cp.policy.agent for cp in state.router.table.policies.values()})
    if not agents:
        return
    agent = agents[0]
    err_console.print(
        "routeguard: try it —\n"
        f"  curl -s {base}/v1/route -d '{{\"agent\": \"{agent}\"}}'\n"
        f"  curl -s {base}/v1/routes\n"
        f"  OpenAI SDK: OpenAI(base_url=\"{base}/v1\", api_key=\"x\").chat.completions.create("
        f"model=\"{agent}\", messages=[...])",
        markup=False,
    )
