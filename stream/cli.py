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


def worker(
    loglevel: str = typer.Option("warn", help="Faust log level: crit, error, warn, info, debug."),
) -> None:
    """Run the stream worker (score -> windows -> detect); start more to share the partitions."""
    import asyncio
    import logging
    import sys

    from finpulse.cli import settings
    from finpulse.logs import quiet_repeats
    from finpulse.topics import ensure_topics
    from stream.app import create_app
    from stream.topics import worker_topics

    s = settings()
    asyncio.run(ensure_topics(s.kafka, worker_topics(s)))
    app = create_app(s)
    # Faust logs each backpressure wait of its producer (one story fans out to
    # several entities) as a warning: routine under load, not a problem.
    logging.getLogger("faust.transport.producer").addFilter(lambda r: "buffer full" not in r.getMessage())
    # While the broker is away, aiokafka logs each retry: keep one line per kind per 10 s.
    quiet_repeats("aiokafka")
    # Faust parses its own command line: hand it the worker command.
    sys.argv = ["finpulse-worker", "worker", "--loglevel", loglevel, "--without-web"]
    app.main()


def _print_cpu(console: Console, result: BenchResult) -> None:
    """Where the CPU went: the classifier alone vs the whole pipeline (broker included)."""

    def cores(v: float | None, per_s: float) -> str:
        return "n/a" if v is None else f"{v:.2f} cores = {1000 * v / per_s:.1f} ms CPU per item"

    c, p = result.classifier_cpu, result.pipeline_cpu
    console.print(f"CPU busy ({c.cores} cores on this machine):")
    console.print(f"  classifier alone            {cores(c.process, result.classifier_docs_s)}")
    machine = cores(result.worker_cpu.machine, result.worker_docs_s)
    console.print(f"  classifier as the worker    {machine} (whole machine)")
    console.print(f"  pipeline: worker process    {cores(p.process, result.pipeline_items_s)}")
    machine = cores(p.machine, result.pipeline_items_s)
    console.print(f"  pipeline: whole machine     {machine} (worker, broker, bench)")


def _runs(runs: tuple[float, float]) -> str:
    return f"  (before {runs[0]:.1f}, after {runs[1]:.1f})"


def bench(
    items: int = typer.Option(1000, help="Texts for the classifier and the throughput burst."),
    rates: str = typer.Option("25,50", help="Offered loads (items/s) for the latency runs."),
    duration_s: float = typer.Option(60.0, help="Seconds per offered load."),
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
            s, Path(work), items=items, rates=[float(r) for r in rates.split(",")], duration_s=duration_s
        )
    m, n = s.model, s.stream.classifier_processes
    threads = m.threads or "auto"
    label = f"classifier alone, in process ({threads} threads):"
    console.print(f"{label:<46}{result.classifier_docs_s:8.1f} docs/s{_runs(result.classifier_runs)}")
    parallel, kind = (n, "process(es)") if n else (s.stream.classifier_lanes, "lane(s)")
    label = f"classifier alone, {parallel} {kind} x {threads_each(m, parallel)} thread(s):"
    console.print(f"{label:<46}{result.worker_docs_s:8.1f} docs/s{_runs(result.worker_runs)}")
    console.print(f"{'pipeline (Kafka -> score -> windows):':<46}{result.pipeline_items_s:8.1f} items/s")
    console.print(f"ratio pipeline / faster classifier: {result.ratio:.2f}  (target >= 0.80)")
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
