"""The stream worker's Prometheus metrics (served when FINPULSE_STREAM_METRICS_PORT is set)."""

from __future__ import annotations

from collections.abc import Iterator

import faust
from faust.sensors import Monitor
from faust.types import TP
from prometheus_client import REGISTRY, Counter, Histogram
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
