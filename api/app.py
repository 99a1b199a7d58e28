"""The FastAPI app: history queries, alerts and feedback, subscriptions, dashboard.

    uvicorn --factory api.app:app_from_env     # or: finpulse api

Everything under /api/v1 needs the token when `api.token` is set; the
dashboard page at / and /api/v1/health do not (the page asks for the token).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api import backtest_routes
from api.auth import LocalHostsOnly, authorized, given_token, require_token
from api.deps import API_RESPONSES, RETRY_AFTER_S, Store, known_query, validation_failed
from api.metrics import count_requests
from api.retention import RetentionScheduler
from api.routes import alerts, feedback_links, history, mute_links, sources, subscriptions
from finpulse.redact import RedactedArgs
from finpulse.settings import Settings
from store import NotFound, StoreError, StoreLocked, StoreStats, StoreUnavailable, open_store

logger = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
API_PREFIX = "/api/v1"
# The largest request body (a backtest with thousands of labelled events is well under it).
MAX_BODY_BYTES = 2_000_000


class Health(BaseModel):
    status: str
    auth: bool
    store: StoreStats | None = Field(
        description="the store's schema version and row counts; to callers with the token only"
    )


class Liveness(BaseModel):
    status: str = Field(description="ok while the process serves")


def create_app(settings: Settings, *, retention_interval_h: float | None = None) -> FastAPI:
    """Build the app; the store opens when the app starts (lifespan) and closes when it stops.

    Args:
        retention_interval_h: prune the store at start and then every this many hours
            (`finpulse api` passes `store.retention_interval_h`); None schedules nothing.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _redact_access_log()
        store = open_store(settings.store)
        await run_in_threadpool(store.start)
        app.state.store = store
        retention = None if retention_interval_h is None else RetentionScheduler(store, retention_interval_h)
        app.state.retention = retention
        if settings.api.token is None:
            logger.warning(
                "api.token is unset: the API and dashboard answer loopback clients WITHOUT auth "
                "(bound to %s) and no others; set FINPULSE_API_TOKEN to serve other hosts or a proxy",
                settings.api.host,
            )
        try:
            if retention is not None:
                await retention.start()
            yield
        finally:
            if retention is not None:
                await retention.stop()
            store.stop()

    # /docs and /redoc from the package's own copies of Swagger UI and ReDoc, not a CDN: offline too.
    app = FastAPIOffline(
        title="finpulse history API",
        version="1",
        description="Sentiment trends, volume, headlines, alerts, feedback and subscriptions "
        "from the finpulse history store. Times are UTC; ranges are [start, end).",
        lifespan=lifespan,
        # Read before any route's auth: an unbounded body was held in memory whole first.
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.settings = settings
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "X-API-Token", "Content-Type", "If-Match"],
            expose_headers=["ETag", "Location", "Retry-After"],
        )
    if settings.api.token is None:
        app.add_middleware(LocalHostsOnly, api=settings.api)
    api = APIRouter(
        prefix=API_PREFIX,
        dependencies=[Depends(require_token), Depends(known_query)],
        responses=API_RESPONSES,
    )
    for module in (history, alerts, subscriptions, sources, backtest_routes):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(feedback_links.router)
    app.include_router(mute_links.router)
    app.add_api_route(f"{API_PREFIX}/health", _health, methods=["GET"], tags=["health"], name="health")
    app.add_api_route(f"{API_PREFIX}/health/live", _live, methods=["GET"], tags=["health"], name="liveness")
    app.add_api_route("/", _dashboard, methods=["GET"], include_in_schema=False, name="dashboard")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_error_handlers(app)
    count_requests(app)
    return app


def _redact_access_log() -> None:
    """Keep tokens out of uvicorn's access log (a link's `?token=`, a dashboard opened as
    `/?token=`), however the app is served: at start, after uvicorn has set its logging up."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactedArgs) for f in access.filters):
        access.addFilter(RedactedArgs())


def _health(request: Request, db: Store) -> Health:
    """Liveness, and with the token the store's schema version and row counts. Without it no store
    query: each counts every table, and DuckDB's file stays locked from the worker meanwhile.
    (The token is optional here, so the route declares no security scheme.)"""
    token = request.app.state.settings.api.token is not None
    return Health(
        status="ok", auth=token, store=db.stats() if authorized(request, given_token(request)) else None
    )


def _live() -> Liveness:
    """Liveness alone, for a load balancer's frequent probe: no store query (/health counts every
    table's rows, a scan of each on PostgreSQL)."""
    return Liveness(status="ok")


def _dashboard() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(StoreUnavailable)
    async def unavailable(request: Request, exc: StoreUnavailable) -> JSONResponse:
        if isinstance(exc, StoreLocked):
            logger.warning("api store locked path=%s waited_s=%.1f", exc.path, exc.waited_s)
        else:
            logger.warning("api store unavailable path=%s: %s", request.url.path, exc)
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> JSONResponse:
        logger.error("api store error path=%s: %s", request.url.path, exc)
        return JSONResponse(
            {"detail": f"history store unavailable: {exc}"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Every 503 a route raises (Kafka away on /sources, sinks that cannot send) says when to
        try again, as the store's do."""
        headers = dict(exc.headers or {})
        if exc.status_code == 503 and not any(k.lower() == "retry-after" for k in headers):
            headers["Retry-After"] = str(RETRY_AFTER_S)
            exc = HTTPException(exc.status_code, detail=exc.detail, headers=headers)
        return await http_exception_handler(request, exc)

    # 422s in the documented shape: a query model's own check on the field it names.
    app.add_exception_handler(RequestValidationError, validation_failed)


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory api.app:app_from_env`: settings from the environment."""
    from finpulse.settings import load_settings

    s = load_settings()
    return create_app(s, retention_interval_h=s.store.retention_interval_h)
