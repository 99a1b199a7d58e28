"""`finpulse ingest` commands. Module level imports only typer, rich and the stdlib."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from finpulse.tables import compact_table
from finpulse.terminal import labelled

console = Console()
ingest_app = typer.Typer(
    help="Ingest RSS/Atom/RDF feeds, JSON news APIs and replay files into Kafka (news.raw).\n\n"
    "`finpulse ingest` without a command runs the ingestor, a long-running service (Ctrl-C / SIGTERM "
    "stops it): it polls every source on its interval; --once polls each once and exits.",
    invoke_without_command=True,
)


@ingest_app.callback()
def ingest(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Poll every source once, print a summary, exit.")
    ] = False,
    sources: Annotated[
        Path | None, typer.Option("--sources", help="Sources file (default: ingest.sources_file).")
    ] = None,
) -> None:
    """Run the scheduler: poll every source on its interval until Ctrl-C / SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    from finpulse.cli import settings
    from finpulse.topics import ensure_topics
    from ingest.ingestor import Ingestor
    from ingest.live_config import ConfigFiles, ConfigWatch
    from ingest.sources import load_sources

    s = settings()
    files = ConfigFiles(
        sources or s.ingest.sources_file, s.ingest.companies_file, s.ingest.allow_private_hosts
    )
    # Hashed before the first load: an edit made while the ingestor starts (the broker may take
    # a while) is taken at the first check, not missed until the next edit.
    watch = ConfigWatch(files, s.ingest.config_refresh_s)
    config = load_sources(files.sources, allow_private=files.allow_private)
    ingestor = Ingestor(s.ingest, s.kafka, config)  # its files' errors before the broker's
    asyncio.run(ensure_topics(s.kafka))
    if once and not ingestor.sources:  # (running, it waits for an edit that enables one)
        console.print(f"no enabled source in {files.sources}: nothing to poll", soft_wrap=True)
        raise typer.Exit(1)
    if once:
        reports = asyncio.run(_poll_once(ingestor))
        _print_summary(ingestor, reports)
        raise typer.Exit(1 if reports and all(r.status == "error" for r in reports) else 0)
    from finpulse.metrics import serve_metrics
    from ingest.scheduler import run_scheduled

    serve_metrics(s.ingest.metrics_port, "FINPULSE_INGEST_METRICS_PORT", s.ingest.metrics_host)
    console.print(
        f"ingest: polling {len(ingestor.sources)} sources; edits of {files.sources.name} and "
        f"{files.companies.name} apply within {s.ingest.config_refresh_s:g} s (at once on SIGHUP); "
        "Ctrl-C to stop"
    )
    asyncio.run(_run_until_signal(ingestor, run_scheduled, watch))
    _print_summary(ingestor, [])


async def _poll_once(ingestor: Any) -> Any:
    async with ingestor:
        return await ingestor.poll_all(force=True)


async def _run_until_signal(ingestor: Any, run_scheduled: Any, watch: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, watch.request)
    await run_scheduled(ingestor, stop, watch=watch)


def _print_summary(ingestor: Any, reports: list[Any]) -> None:
    from ingest.ingestor import LANGUAGE

    table = compact_table(
        "ingest", ("source", "status", "published", "duplicates", "invalid", "languages"),
        right=("published", "duplicates", "invalid"), wraps=("languages",),
    )  # fmt: skip
    by_name = {r.source: r for r in reports}
    errors = []
    for name in ingestor.sources:
        r = by_name.get(name)
        counts = ingestor.metrics.snapshot().get(name, {})
        table.add_row(
            name,
            r.status if r else "-",
            str(counts.get("published", 0)),
            str(counts.get("duplicates", 0)),
            str(counts.get("invalid", 0)),
            languages_text(
                {k.removeprefix(LANGUAGE): n for k, n in counts.items() if k.startswith(LANGUAGE)}
            ),
        )
        error = (r.error if r else None) or ", ".join(k[6:] for k in counts if k.startswith("error."))
        if error:
            errors.append(f"error {name}: {error}")
    console.print(table)
    # Under the table, a line each, as `finpulse status` says why: a column cut names and errors.
    for line in errors:
        console.print(line, highlight=False)


def languages_text(languages: dict[str, int]) -> str:
    """Stories per language, most first: "unknown 178, en 90"."""
    ranked = sorted(languages.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{language} {n}" for language, n in ranked)


@ingest_app.command("replay")
def replay(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL or CSV news file.")],
    speed: Annotated[
        float, typer.Option("--speed", min=0, help="Replay speed factor (1 = real time, 0 = no waits).")
    ] = 1.0,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Publish as fast as possible (--speed 0).")
    ] = False,
    rebase: Annotated[
        bool, typer.Option("--rebase-to-now", help="Shift timestamps: first item = now.")
    ] = False,
    dedup: Annotated[
        bool, typer.Option("--dedup", help="Mark near-duplicate rows with duplicate_of.")
    ] = False,
) -> None:
    """Publish a replay file to news.raw in timestamp order and exit when all are acknowledged.

    Exit 1 when it publishes no row (an empty file, or every row invalid)."""
    from finpulse.cli import settings
    from finpulse.topics import ensure_topics
    from ingest.companies import CompanyNames
    from ingest.replay import publish_replay_async

    s = settings()
    names = CompanyNames.load(s.ingest.companies_file)
    asyncio.run(ensure_topics(s.kafka))
    with Progress(
        TextColumn("replay {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("left"), TimeRemainingColumn(), console=console, transient=True,
    ) as bars:  # fmt: skip
        task = bars.add_task("reading", total=None)

        def shown(done: int, total: int, at: datetime) -> None:
            bars.update(task, completed=done, total=total, description=f"at {at:%Y-%m-%d %H:%M} (file time)")

        report = asyncio.run(
            publish_replay_async(
                s.kafka,
                path,
                0.0 if no_wait else speed,
                rebase_to_now=rebase,
                dedup=dedup,
                progress=shown,
                names=names,
            )
        )
    console.print(
        f"replay: published {report.published} of {report.rows} rows to {s.kafka.topics.raw} "
        f"in {report.elapsed_s:.1f}s (invalid {report.invalid}, duplicates {report.duplicates}; "
        f"languages {languages_text(report.languages) or '-'})"
    )
    if not report.published:
        raise typer.Exit(1)


# A poll interval this short is more likely minutes written as seconds than a wish (a site may
# block a client that asks every few seconds).
FAST_POLL_S = 30


@ingest_app.command("check")
def check(
    sources: Annotated[
        Path | None, typer.Option("--sources", help="Sources file (default: ingest.sources_file).")
    ] = None,
) -> None:
    """Validate the sources and companies files before an edit goes live; contacts nothing.

    They are read as a running ingestor reloads them; prints what they hold, or the problem
    (exit 2)."""
    from finpulse.cli import settings
    from ingest.live_config import ConfigFiles

    s = settings()
    files = ConfigFiles(
        sources or s.ingest.sources_file, s.ingest.companies_file, s.ingest.allow_private_hosts
    )
    config, names = files.load()
    enabled = config.all()
    kinds = Counter(source.kind for source in enabled)
    held = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in sorted(kinds.items()))
    disabled = len(config.all(include_disabled=True)) - len(enabled)
    console.print(f"{files.sources}: sources {len(enabled)} enabled ({held or 'none'}), {disabled} disabled")
    missing = [r for r in config.replays if r.enabled and not r.path.is_file()]
    for replay in missing:  # the ingestor reads it at its first poll: that poll would fail
        console.print(labelled("error:", f"replay {replay.name!r}: no file {replay.path}"))
    for polled in (x for x in enabled if x.kind != "replay" and x.interval_s and x.interval_s < FAST_POLL_S):
        every = f"{polled.name!r} polls every {polled.interval_s:g} s"
        said = f"{every} (interval_s is in seconds: 600 is 10 min)"
        console.print(labelled("warning:", said, style="yellow"))
    tickers = len(set(names.by_name.values()))
    console.print(f"{files.companies}: company names {len(names.by_name)}, for tickers {tickers}")
    if missing:
        raise typer.Exit(2)


@ingest_app.command("try")
def try_source(
    url: Annotated[
        str | None, typer.Argument(help="A feed's URL (RSS, Atom, RDF), or a feed saved to a file.")
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="Or an entry of the sources file (a feed or a JSON API).")
    ] = None,
    sources: Annotated[
        Path | None, typer.Option("--sources", help="Sources file (default: ingest.sources_file).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Newest items to list.")] = 15,
) -> None:
    """Fetch one feed or API once and show its items as finpulse would publish them.

    Title, time, language and tickers of each; publishes nothing. Exit 1 when it yields no
    item."""
    from finpulse.cli import settings
    from ingest.preview import local_file, pick_source, preview, preview_file

    s = settings()
    if (url is None) == (source is None):
        raise typer.BadParameter("give a feed URL or --source NAME (one of them)")
    saved = local_file(url) if url is not None else None
    if url is not None and saved is None and "://" not in url:
        raise typer.BadParameter(f"{url!r} is neither a file here nor a URL (https://...)", param_hint="URL")
    if saved is not None:
        result = preview_file(s.ingest, saved)
    else:
        chosen = pick_source(
            url, source, sources or s.ingest.sources_file, allow_private=s.ingest.allow_private_hosts
        )
        result = asyncio.run(preview(s.ingest, chosen))
    table = Table(
        title=f"{result.source}: newest {min(limit, len(result.items))} of {len(result.items)} items"
    )
    # Right-aligned, so a "~" (an estimate: the fetch time) leaves the times in line.
    table.add_column("published (UTC)", overflow="fold", justify="right")
    for column in ("title", "language", "tickers"):
        table.add_column(column, overflow="fold")
    for item in result.items[:limit]:
        language = item.language or "unknown"
        if not s.model.reads(item.language):
            language += " (not scored)"
        when = f"{'~' if item.published_estimated else ''}{item.published_at:%Y-%m-%d %H:%M}"
        # News text as written: "[VIDEO] ..." is not rich markup.
        table.add_row(when, Text(item.title), language, " ".join(item.tickers))
    console.print(table)
    estimated = sum(item.published_estimated for item in result.items)
    if estimated:
        console.print(
            f"~ = fetch time: {estimated} of {len(result.items)} items have no published date, "
            "or one that cannot be read",
            markup=False,
        )
    languages = ", ".join(f"{lang} {n}" for lang, n in result.languages().most_common())
    console.print(
        f"{result.entries} entries: {len(result.items)} items ({languages or 'none'}), "
        f"{len(result.invalid)} invalid"
        + (f"; warnings: {', '.join(result.warnings)}" if result.warnings else ""),
        markup=False,
    )
    for reason in dict.fromkeys(exc.reason for exc in result.invalid):
        console.print(f"  invalid: {reason}", markup=False)
    if not result.items:
        raise typer.Exit(1)


@ingest_app.command("forget")
def forget(
    names: Annotated[list[str], typer.Argument(help="Source names, as `finpulse status` lists them.")],
) -> None:
    """Take sources that no ingestor polls any more off the health list (status, the API).

    An ingestor's own removed sources go at its next start; a retired ingestor's need this."""
    from finpulse.cli import settings
    from ingest.health import forget_sources

    s = settings()
    known = asyncio.run(forget_sources(s.kafka, names))
    for name in names:
        console.print(f"{name}: {'forgotten' if name in known else 'not on the list'}")
    if len(known) < len(names):
        raise typer.Exit(1)


@ingest_app.command("bench")
def bench(
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Passes over the feed documents.")] = 3,
    feeds_dir: Annotated[Path | None, typer.Option("--feeds-dir", help="Default: ingest.feeds_dir.")] = None,
) -> None:
    """Feeds parsed/s and items normalised/s (with and without the language guess) on one core, over
    the sample feed documents."""
    from finpulse.cli import settings
    from ingest.bench import pin_one_core, run_bench
    from ingest.companies import CompanyNames

    s = settings()
    cpu = pin_one_core()
    names = CompanyNames.load(s.ingest.companies_file)
    result = run_bench(feeds_dir or s.ingest.feeds_dir, rounds=rounds, names=names)
    console.print(
        f"ingest bench (cpu {cpu if cpu is not None else 'any'}, {rounds} rounds): "
        f"{result.documents} documents, {result.megabytes:.1f} MB, {result.entries} entries"
    )
    console.print(f"  feeds parsed/s:      {result.feeds_per_s:10.1f}  ({result.mb_per_s:.2f} MB/s)")
    console.print(f"  items normalised/s:  {result.items_per_s:10.1f}  (with the language guess)")
    console.print(f"  without the guess:   {result.bare_items_per_s:10.1f}")
    console.print(f"  dedup items/s:       {result.dedup_items_per_s:10.1f}")


def register(app: typer.Typer) -> None:
    """Add `finpulse ingest` to the root app."""
    app.add_typer(ingest_app, name="ingest")
