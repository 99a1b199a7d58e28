"""The alert dispatcher's Prometheus metrics (served when FINPULSE_ALERTS_METRICS_PORT is set)."""

from __future__ import annotations

from prometheus_client import Counter

DELIVERED = Counter(
    "finpulse_alerts_delivered", "Alert events delivered, per sink and state", ["sink", "state"]
)
RETRIES = Counter("finpulse_alerts_retries", "Sends tried again after a failure that may pass", ["error"])
DIGESTS = Counter("finpulse_alerts_digests_sent", "Daily digests sent, per sink", ["sink"])
