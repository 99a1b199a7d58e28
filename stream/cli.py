"""`finpulse worker` and `finpulse stream bench`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def worker(
    loglevel: str = typer.Option("warn", help="Faust log level: crit, error, warn, info, debug."),
) -> None:
    """Run the stream worker (score -> windows -> detect); start more to share the partitions."""
    import asyncio
    import sys

    from finpulse.cli import settings
    from finpulse.topics import ensure_topics
    from stream.app import create_app

    s = settings()
    asyncio.run(ensure_topics(s.kafka))
    app = create_app(s)
    # Faust parses its own command line: hand it the worker command.
    sys.argv = ["finpulse-worker", "worker", "--loglevel", loglevel, "--without-web"]
    app.main()
