"""Ingest the sample feed documents over a loopback HTTP server: the demo's ingest step.

    from ingest.samples import run_sample_ingest
    run = run_sample_ingest(settings)        # blocking; returns SampleRun
    run.published, run.reports, run.metrics

Serves `ingest.feeds_dir` on 127.0.0.1 with the standard library's file
server (Last-Modified / If-Modified-Since included), points feed sources at a
few real documents and polls each once through the real ingestor
(fetch -> parse -> normalise -> dedup -> news.raw). State lives in
`<ingest.state_dir>/samples` unless `state_dir` is given, so a second run
publishes only what is new (nothing, for unchanged files).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from finpulse.settings import Settings
from ingest.ingestor import Ingestor, PollReport
from ingest.sources import FeedSource, SourcesConfig

# Real documents from ../shared/feeds/real-world with items, dates and links.
SAMPLE_FEEDS: tuple[str, ...] = (
    "real-world/guardian.rss",
    "real-world/heise.atom",
    "real-world/encoding.rss",
    "real-world/craigslist.rss",
)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Serve `root` read-only on a free loopback port; yields the base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@dataclass(frozen=True)
class SampleRun:
    """What one sample ingest did."""

    reports: tuple[PollReport, ...]
    metrics: dict[str, dict[str, int]]

    @property
    def published(self) -> int:
        return sum(r.published for r in self.reports)


def run_sample_ingest(
    settings: Settings, feeds: Sequence[str] = SAMPLE_FEEDS, state_dir: Path | None = None
) -> SampleRun:
    """Poll the sample feeds once into `settings.kafka.topics.raw` (blocking)."""
    ingest = settings.ingest.model_copy(
        update={
            "allow_private_hosts": True,  # the server is on loopback
            "per_host_min_interval_s": 0.0,
            "state_dir": state_dir or settings.ingest.state_dir / "samples",
        }
    )
    with serve_directory(settings.ingest.feeds_dir) as base:
        sources = SourcesConfig(
            feeds=tuple(
                FeedSource(name=f"sample-{Path(f).stem}", url=f"{base}/{f}", tags=("sample",)) for f in feeds
            )
        )
        ingestor = Ingestor(ingest, settings.kafka, sources)

        async def poll() -> list[PollReport]:
            async with ingestor:
                return await ingestor.poll_all(force=True)

        reports = asyncio.run(poll())
    return SampleRun(reports=tuple(reports), metrics=ingestor.metrics.snapshot())
