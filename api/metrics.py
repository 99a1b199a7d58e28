"""The API's Prometheus metrics (served when FINPULSE_API_METRICS_PORT is set): requests by
handler and status, and how long they took."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "finpulse_api_requests", "API and dashboard requests answered", ["method", "handler", "status"]
)
SECONDS = Histogram(
    "finpulse_api_request_seconds", "Time to answer a request", ["handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)  # fmt: skip
# Requests no route matched (scans, typos) share one label: paths would grow without bound.
UNMATCHED = "unmatched"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def handler(scope: Mapping[str, Any]) -> str:
    """What answered: the route's name (`trend`, `alert_chart_png`: a few dozen, whatever the
    path's parameters), a mounted app's path (`/static`), or `unmatched`."""
    route = scope.get("route")
    return str(route.name) if route is not None else scope.get("root_path") or UNMATCHED


def count_requests(app: FastAPI) -> None:
    """Count every request by its handler and status, and time it."""

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start, status = time.perf_counter(), "500"  # unless an answer comes back
        try:
            response = await call_next(request)
            status = str(response.status_code)
            return response
        finally:
            name = handler(request.scope)
            REQUESTS.labels(_method(request.method), name, status).inc()
            SECONDS.labels(name).observe(time.perf_counter() - start)


def _method(method: str) -> str:
    """The method as a label: any other a client makes up is "other" (a series each, kept
    forever, would grow the metrics without end)."""
    return method if method in HTTP_METHODS else "other"
