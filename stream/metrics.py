"""The stream worker's Prometheus metrics (served when FINPULSE_STREAM_METRICS_PORT is set)."""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

import faust
from faust.sensors import Monitor
from faust.types import TP
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

SCORED = Counter("finpulse_stream_scored", "Stories scored and published to news.scored")
BATCH_SECONDS = Histogram(
    "finpulse_stream_batch_seconds", "Time the classifier took for one batch",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)  # fmt: skip
BATCH_SIZE = Histogram(
    "finpulse_stream_batch_size", "Stories per classifier batch", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
ALERT_EVENTS = Counter("finpulse_stream_alert_events", "Alert events the detector emitted", ["state"])
# Stories that reach a window past its allowed lateness (a lagging ingestor, a source's backoff)
# are in the history but not in that window: seen here, not only in an INFO line.
LATE_STORY_WINDOWS = Counter(
    "finpulse_stream_late_story_windows", "Story-window pairs not counted: the window was past its lateness"
)


# The history sink (news.scored, windows and alerts -> the store): seen when the store is away from
# one host, where the worker's own lag stays flat and the sink only logs.
HISTORY_WRITTEN = Counter(
    "finpulse_history_written", "Records the history sink wrote to the store", ["topic"]
)
HISTORY_FAILURES = Counter(
    "finpulse_history_write_failures", "History writes that failed: their batch is read again"
)
HISTORY_LAST_WRITE = Gauge(
    "finpulse_history_last_write_timestamp_seconds", "When the history sink last wrote a batch (Unix time)"
)


class HasWatermarks(Protocol):
    def watermarks(self) -> dict[int, datetime | None]:
        """Each partition's watermark (None before its inputs were all seen)."""
        ...


class WatermarkAge(Collector):
    """Per by-entity partition of the aggregate stages in this process, how far its watermark (the
    event time windows close at) is behind the wall clock: growing, windows stopped closing."""

    def __init__(self) -> None:
        self._stages: weakref.WeakSet[HasWatermarks] = weakref.WeakSet()

    def watch(self, stage: HasWatermarks) -> None:
        """Report the stage's `watermarks()` while it lives."""
        self._stages.add(stage)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        age = GaugeMetricFamily(
            "finpulse_stream_watermark_age_seconds",
            "Wall clock minus the partition's watermark: windows close as it passes their end",
            labels=["partition"],
        )
        now = time.time()
        for stage in list(self._stages):
            for partition, mark in sorted(stage.watermarks().items()):
                if mark is not None:
                    age.add_metric([str(partition)], now - mark.timestamp())
        yield age


WATERMARKS = WatermarkAge()
REGISTRY.register(WATERMARKS)


class ConsumerLag(Collector):
    """Per partition this worker owns, the records it has not committed yet: the partition's
    end at the last fetch minus the offset the worker committed (both from Faust's monitor),
    read when Prometheus scrapes. A partition appears after the worker's first commit on it."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.assigned: frozenset[TP] = frozenset()  # set at each rebalance

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "finpulse_stream_consumer_lag",
            "Records on a partition this worker owns that it has not committed yet",
            labels=["topic", "partition"],
        )
        ends, committed = dict(self.monitor.tp_end_offsets), dict(self.monitor.tp_committed_offsets)
        for tp in sorted(self.assigned & ends.keys() & committed.keys()):
            lag.add_metric([tp.topic, str(tp.partition)], max(0, ends[tp] - committed[tp]))
        yield lag


def export_consumer_lag(app: faust.App) -> None:
    """Add the worker's consumer lag to the metrics this process serves."""
    collector = ConsumerLag(app.monitor)

    @app.on_partitions_assigned.connect
    async def track(sender: object, assigned: set[TP], **_: object) -> None:
        collector.assigned = frozenset(assigned)

    REGISTRY.register(collector)
