"""The stream worker's Prometheus metrics (served when FINPULSE_STREAM_METRICS_PORT is set)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SCORED = Counter("finpulse_stream_scored", "Stories scored and published to news.scored")
BATCH_SECONDS = Histogram(
    "finpulse_stream_batch_seconds", "Time the classifier took for one batch",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)  # fmt: skip
BATCH_SIZE = Histogram(
    "finpulse_stream_batch_size", "Stories per classifier batch", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256)
)
ALERT_EVENTS = Counter("finpulse_stream_alert_events", "Alert events the detector emitted", ["state"])
