"""Prometheus metrics: each long-running process serves its own at http://<host>:<port>/metrics.

Off by default. `FINPULSE_INGEST_METRICS_PORT`, `FINPULSE_STREAM_METRICS_PORT` and
`FINPULSE_ALERTS_METRICS_PORT` turn them on for the ingestor, the stream worker and
the dispatcher (one port per process: several workers on one host each need their
own), on 127.0.0.1 unless the group's `metrics_host` names another address.
Counters live in the process and start at zero; Prometheus' rate() and
increase() read across restarts. Each stage defines its own metrics beside the code
that counts them; the dead letters of every stage are counted here.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, start_http_server

from finpulse.errors import ConfigError

logger = logging.getLogger(__name__)

DEAD_LETTERS = Counter(
    "finpulse_dead_letters",
    "Records a stage could not process, sent to a dead-letter topic",
    ["stage", "error"],
)


def serve_metrics(port: int | None, setting: str, host: str) -> None:
    """Serve this process's metrics on `host`:`port` in a daemon thread; None: not at all."""
    if port is None:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on {host} port {port} ({exc.strerror}): set another {setting}"
        ) from exc
    logger.info("metrics at http://%s:%d/metrics", host, port)
