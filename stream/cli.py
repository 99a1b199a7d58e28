"""`finpulse worker` and `finpulse stream bench`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from stream.bench import BenchResult


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
    stream_app = typer.Typer(help="Stream pipeline tools.", no_args_is_help=True)
    stream_app.command("bench")(bench)
    app.add_typer(stream_app, name="stream")


# Faust's log levels by the settings' (FINPULSE_LOG_LEVEL) names, checked here: Faust itself would
# refuse another only after start-up has created topics and opened the store, naming its own
# command line.
FAUST_LEVELS = {"CRITICAL": "crit", "ERROR": "error", "WARNING": "warn", "INFO": "info", "DEBUG": "debug"}
LOG_LEVELS = tuple(FAUST_LEVELS.values())


def _loglevel(value: str | None) -> str | None:
    if value is not None and value.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r}: give one of {', '.join(LOG_LEVELS)}")
    return value.lower() if value is not None else None


def _rates(value: str) -> str:
    """`25,50`: offered loads in items/s, each above 0."""
    try:
        ok = all(float(r) > 0 for r in value.split(","))
    except ValueError:
        ok = False
    if not ok:
        raise typer.BadParameter(f"{value!r}: give items/s above 0, comma-separated, e.g. 25,50")
    return value


def worker(
    loglevel: str | None = typer.Option(
        None,
        callback=_loglevel,
        help=f"Log level: {', '.join(LOG_LEVELS)} (default: FINPULSE_LOG_LEVEL's).",
        show_default=False,
    ),
) -> None:
    """Run the stream worker (score -> windows -> detect); start more to share the partitions."""
    import asyncio
    import logging
    import sys

    from finpulse.cli import settings
    from finpulse.logs import logging_config, quiet_repeats
    from finpulse.metrics import serve_metrics
    from finpulse.topics import check_partitions, ensure_topics
    from stream.app import create_app
    from stream.topics import copartitioned, worker_topics

    s = settings()
    asyncio.run(ensure_topics(s.kafka, worker_topics(s)))
    asyncio.run(check_partitions(s.kafka, copartitioned(s)))
    serve_metrics(s.stream.metrics_port, "FINPULSE_STREAM_METRICS_PORT", s.stream.metrics_host)
    app = create_app(s)
    if s.stream.metrics_port is not None:
        from stream.metrics import export_consumer_lag

        export_consumer_lag(app)
    # Faust logs each backpressure wait of its producer (one story fans out to
    # several entities) as a warning: routine under load, not a problem.
    logging.getLogger("faust.transport.producer").addFilter(lambda r: "buffer full" not in r.getMessage())
    # While the broker is away, aiokafka logs each retry: keep one line per kind per 10 s.
    quiet_repeats("aiokafka")
    level = {faust: ours for ours, faust in FAUST_LEVELS.items()}[loglevel] if loglevel else s.log_level
    # Faust sets logging up again as its worker starts, by default in a format of its own on stdout.
    app.conf.logging_config = logging_config(level)
    # Faust parses its own command line: hand it the worker command.
    sys.argv = ["finpulse-worker", "worker", "--loglevel", FAUST_LEVELS[level], "--without-web"]
    app.main()


def _print_cpu(console: Console, result: BenchResult) -> None:
    """Where the CPU went: the classifier alone vs the whole pipeline (broker included)."""

    def cores(v: float | None, per_s: float) -> str:
        return "n/a" if v is None else f"{v:.2f} cores = {1000 * v / per_s:.1f} ms CPU per item"

    c, p = result.classifier_cpu, result.pipeline_cpu
    mid = result.median_round
    console.print(
        f"CPU busy ({c.cores} cores on this machine; mean of the rounds, per item of the median round):"
    )
    console.print(f"  classifier alone            {cores(c.process, mid.classifier_docs_s)}")
    machine = cores(result.worker_cpu.machine, mid.worker_docs_s)
    console.print(f"  classifier as the worker    {machine} (whole machine)")
    console.print(f"  pipeline: worker process    {cores(p.process, mid.pipeline_items_s)}")
    machine = cores(p.machine, mid.pipeline_items_s)
    console.print(f"  pipeline: whole machine     {machine} (worker, broker, bench)")


def bench(
    items: int = typer.Option(1000, min=1, help="Texts for the classifier and the throughput burst."),
    rates: str = typer.Option("25,50", callback=_rates, help="Offered loads (items/s) for the latency runs."),
    duration_s: float = typer.Option(60.0, min=1.0, help="Seconds per offered load."),
    rounds: int = typer.Option(3, min=1, help="Bursts, each beside the classifier alone measured around it."),
) -> None:
    """Pipeline items/s and latency beside the classifier's own throughput, in one run."""
    import tempfile
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from finpulse.cli import settings
    from stream.bench import run_bench
    from stream.inference import threads_each

    console = Console()
    s = settings()
    with tempfile.TemporaryDirectory(prefix="finpulse-bench-") as work:
        result = run_bench(
            s, Path(work), items=items, rates=[float(r) for r in rates.split(",")], duration_s=duration_s,
            rounds=rounds,
        )  # fmt: skip
    m, n = s.model, s.stream.classifier_processes
    parallel, kind = (n, "processes") if n else (s.stream.classifier_lanes, "lanes")
    threads, each = threads_each(m, 1), threads_each(m, parallel)
    table = Table(
        title=f"throughput: bursts of {items} items",
        caption=f"classifier alone: in process ({threads} threads) and as the worker runs it ({parallel} "
        f"{kind} x {each} thread(s)), each the mean of before and after the burst",
    )
    for col in ("round", "in process docs/s", f"{parallel} {kind} docs/s", "pipeline items/s", "ratio"):
        table.add_column(col, justify="right")
    for i, r in enumerate(result.rounds, 1):
        table.add_row(
            str(i), f"{r.classifier_docs_s:.1f}", f"{r.worker_docs_s:.1f}", f"{r.pipeline_items_s:.1f}",
            f"{r.ratio:.2f}",
        )  # fmt: skip
    console.print(table)
    console.print(f"warm-up burst before the rounds (not counted): {result.warmup_items_s:.1f} items/s")
    console.print(f"ratio pipeline / faster classifier, median round: {result.ratio:.2f}  (target >= 0.80)")
    _print_cpu(console, result)
    table = Table(title="latency at fixed offered load (seconds)")
    for col in ("items/s", "items", "score p50", "p95", "p99", "alerts", "alert p50", "p95", "p99"):
        table.add_column(col, justify="right")
    for load in result.loads:
        alert = load.alert_latency_s or (float("nan"),) * 3
        table.add_row(
            f"{load.rate:g}", str(load.items), *(f"{v:.3f}" for v in load.score_latency_s),
            str(load.alerts), *(f"{v:.3f}" for v in alert),
        )  # fmt: skip
    console.print(table)
