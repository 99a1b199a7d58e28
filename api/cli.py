"""`finpulse api`: serve the query API and the dashboard with uvicorn."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from finpulse.settings import Settings


def register(app: typer.Typer) -> None:
    from api import history_cli

    app.command("api")(serve)
    app.command("prune")(prune)
    app.command("migrate")(migrate)
    app.command("copy-history")(copy_history)
    app.command("status")(status)
    history_cli.register(app)


def serve(
    host: str = typer.Option(None, help="bind address (default: settings api.host)"),
    port: int = typer.Option(None, min=1, max=65535, help="port (default: settings api.port)"),
) -> None:
    """Serve the history API (OpenAPI at /docs) and the dashboard at /; apply retention on a schedule."""
    import uvicorn
    from rich.console import Console

    from api.app import create_app
    from api.auth import loopback
    from finpulse.cli import settings as load
    from finpulse.errors import ConfigError
    from finpulse.metrics import serve_metrics
    from finpulse.ports import listen_socket

    s = load()
    api = s.api.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    if api.token is None and not loopback(api.host):
        raise ConfigError(
            f"refusing to serve on {api.host} without a token: set FINPULSE_API_TOKEN, or bind to 127.0.0.1"
        )
    s = s.model_copy(update={"api": api})
    # Bound before anything starts: a port in use is one clear line, not uvicorn's traceback.
    sock = listen_socket(api.host, api.port, "FINPULSE_API_PORT (or --port)")
    Console().print(f"finpulse api: dashboard at http://{api.host}:{api.port}/  (OpenAPI: /docs)")
    serve_metrics(api.metrics_port, "FINPULSE_API_METRICS_PORT", api.metrics_host)
    # Prunes at start, then periodically.
    app = create_app(s, retention_interval_h=s.store.retention_interval_h)
    config = uvicorn.Config(app, host=api.host, port=api.port, log_level=s.log_level.lower())
    uvicorn.Server(config).run(sockets=[sock])


def prune() -> None:
    """Delete history older than store.retention_days (FINPULSE_STORE_RETENTION_DAYS)."""
    from rich.console import Console

    from finpulse.cli import settings as load
    from store import open_store

    s = load()
    _require_existing(s)
    with open_store(s.store) as db:
        deleted = db.apply_retention()
    if deleted is None:
        Console().print("prune: skipped: another process is pruning this store now")
        return
    summary = ", ".join(f"{table} {n}" for table, n in deleted.items())
    Console().print(f"prune: kept {s.store.retention_days} days; deleted {summary}")


def migrate() -> None:
    """Bring the history store's schema up to date, deleting nothing.

    For a store an older finpulse wrote, which the history commands refuse. The worker and the API
    update it as they start too, but the API, like `prune`, also deletes history older than
    store.retention_days."""
    from rich.console import Console

    from finpulse.cli import settings as load
    from store import open_store

    s = load()
    _require_existing(s)
    with open_store(s.store, read_only=True) as db:  # read-only: as it is, not migrated
        before = db.stats().schema_version
    with open_store(s.store) as db:
        after = db.stats().schema_version
        where = db.where
    done = f"schema version {before} -> {after}" if after != before else f"schema version {after}, up to date"
    Console().print(f"migrate: history store {where}: {done}; no rows deleted")


def _require_existing(s: Settings) -> None:
    """Refuse a DuckDB URL naming no file: a mistyped one is not an empty store pruned or migrated
    (opening it would create it)."""
    from store import StoreConfigError
    from store.backends import is_postgres
    from store.url import duckdb_path

    path = None if is_postgres(s.store.url) else duckdb_path(s.store.url)
    if path is not None and not path.is_file():
        raise StoreConfigError(f"history store {path} does not exist: check FINPULSE_STORE_URL")


def copy_history(
    target: str = typer.Argument(
        ..., help="The store to copy into: postgresql://user:password@host:5432/db or duckdb:///path.duckdb"
    ),
    source: str | None = typer.Option(
        None, "--from", help="The store to copy from (default: FINPULSE_STORE_URL)."
    ),
) -> None:
    """Copy the whole history into another store (e.g. DuckDB into PostgreSQL).

    Stories, windows, alerts, verdicts and subscriptions: for instance the DuckDB file into a
    PostgreSQL server when workers move to several hosts. Rows are upserted: run it again after an
    interruption, or to catch up before switching over."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from finpulse.cli import settings as load
    from finpulse.errors import ConfigError
    from finpulse.logs import quiet_store
    from store import open_store

    s = load()
    quiet_store()
    source_settings = s.store.model_copy(update={"url": source}) if source else s.store
    if target.strip() == source_settings.url.strip():
        raise ConfigError("the target is the store being copied: name another one")
    console = Console()
    with (
        open_store(source_settings, read_only=True) as src,
        open_store(s.store.model_copy(update={"url": target})) as dst,
    ):
        totals = src.stats().model_dump()
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bars:
            tasks: dict[str, TaskID] = {}

            def advance(table: str, done: int) -> None:
                if table not in tasks:
                    tasks[table] = bars.add_task(table, total=totals.get(table))
                bars.update(tasks[table], completed=done)

            copied = src.copy_to(dst, progress=advance)
        summary = ", ".join(f"{table} {n:,}" for table, n in copied.items())
        console.print(f"copied {src.where} -> {dst.where}: {summary}")


def status(
    watch: float | None = typer.Option(
        None, "--watch", min=0.5, help="Look again every SECONDS: one line per look (rates, lag changes)."
    ),
    looks: int | None = typer.Option(None, "--looks", min=1, help="With --watch: stop after N looks."),
) -> None:
    """Is the pipeline flowing? Topics, dead letters, lag, store, model, sources' health.

    Each topic's records and dead letters, the consumer lag of the worker, history sink and
    dispatcher, the history store's counts, the model, and each news source's health. Exits 1 when
    Kafka does not answer."""
    import asyncio

    from rich.console import Console

    from api.status import cluster_text, kafka_status, model_summary, print_kafka, print_sources, print_store
    from finpulse.cli import settings as load
    from finpulse.errors import BrokerUnavailable
    from finpulse.schema import utcnow
    from finpulse.terminal import labelled

    s = load()
    # Their lines ("store started", a refused connection) repeat what the report says.
    logging.getLogger("store").setLevel(logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    console = Console()
    if watch is not None:
        _watch(s, console, watch, looks)
        return
    code = 0
    try:
        kafka = asyncio.run(kafka_status(s))
    except BrokerUnavailable as exc:
        console.print(labelled("kafka:", exc))
        code = 1
    else:
        console.print(f"kafka {s.kafka.bootstrap}: {cluster_text(kafka)}")
        print_kafka(console, kafka)
    print_store(console, s)
    console.print(f"model: {model_summary(s.model)}")
    if code == 0:  # the sources' health is on Kafka too
        print_sources(console, s, utcnow())
    raise typer.Exit(code)


def _watch(s: Settings, console: Console, every_s: float, looks: int | None) -> None:
    """`status --watch`: a line per look until Ctrl+C (or `looks` lines); a refused look is said."""
    import asyncio
    import time
    from datetime import UTC, datetime

    from rich.text import Text

    from api.status import KafkaStatus, kafka_status, watch_header, watch_line
    from finpulse.errors import BrokerUnavailable

    console.print(f"kafka {s.kafka.bootstrap}, every {every_s:g} s (Ctrl+C stops)")
    console.print(watch_header(), highlight=False, soft_wrap=True)
    before: KafkaStatus | None = None
    last = time.monotonic()
    done = 0
    try:
        while looks is None or done < looks:
            if done:
                time.sleep(max(0.0, last + every_s - time.monotonic()))
            at = datetime.now(UTC).strftime("%H:%M:%S")
            try:
                now = asyncio.run(kafka_status(s))
            except BrokerUnavailable as exc:
                console.print(Text.assemble(f"{at}  ", (str(exc), "red")), soft_wrap=True)
                before = None
            else:
                line = watch_line(at, now, before, time.monotonic() - last)
                console.print(line, highlight=False, soft_wrap=True)
                before = now
            last = time.monotonic()
            done += 1
    except KeyboardInterrupt:
        pass
