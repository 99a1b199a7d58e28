"""Counters of what ingestion did and what went wrong, per source.

Names: polls, not_modified, entries, published, duplicates, already_seen,
invalid, error.<kind> (the poll failed) and warning.<kind> (the poll went on).
"""

from __future__ import annotations

from collections import Counter

import prometheus_client

# The same counts for Prometheus (finpulse/metrics.py): finpulse_ingest_events_total{source, event}.
EVENTS = prometheus_client.Counter(
    "finpulse_ingest_events",
    "What ingestion did per source (polls, published, error.<kind>...)",
    ["source", "event"],
)


class IngestMetrics:
    """In-process counters; `snapshot()` is what the CLI prints and tests assert on."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    def inc(self, source: str, name: str, n: int = 1) -> None:
        if n:
            self._counts[(source, name)] += n
            EVENTS.labels(source, name).inc(n)

    def get(self, source: str, name: str) -> int:
        return self._counts[(source, name)]

    def total(self, name: str) -> int:
        return sum(v for (_, n), v in self._counts.items() if n == name)

    def errors(self) -> dict[str, int]:
        """Error counts by kind across all sources."""
        found: Counter[str] = Counter()
        for (_, name), v in self._counts.items():
            if name.startswith("error."):
                found[name.removeprefix("error.")] += v
        return dict(found)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{source: {counter: value}}."""
        out: dict[str, dict[str, int]] = {}
        for (source, name), v in sorted(self._counts.items()):
            out.setdefault(source, {})[name] = v
        return out
