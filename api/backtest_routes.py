"""Backtest over the history store: `POST /backtest` (report JSON) and `GET /backtest/plot.png`.

Both run the same code as `finpulse backtest --from-store` (api/backtest.py).
The report carries `trend` (the plotted entity's windows, which the dashboard
draws with uPlot) and `plot_url`: the GET that draws the same trend with each
setting's alerts as PNG. Bad input is a 422 that names the field; a range
without windows is a 404.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from alerts.backtest import BacktestError, BacktestReport, in_focus
from api.backtest import BacktestOutcome, BacktestRequest, NoHistory, run_from_store
from api.deps import Store, unprocessable
from finpulse.schema import EntityKind, WindowKind, describe_validation_error, normalise_entity, utcnow
from store import HistoryStore

router = APIRouter(tags=["backtest"])
ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": "no windows for the entity / subscription in the range"},
    422: {"description": "invalid entity, range, grid or labels"},
}


class BacktestPoint(BaseModel):
    """One replayed window of the plotted entity: what the detector compared."""

    window_kind: WindowKind
    window_start: datetime
    window_end: datetime
    count: int
    negative_share: float
    baseline_negative_share: float | None


class BacktestTrend(BaseModel):
    """The entity the picture shows (the focus, else the one alerting most) and its windows."""

    entity_kind: EntityKind | None = None
    entity: str | None = None
    points: list[BacktestPoint] = Field(default_factory=list, description="oldest first, per window kind")

    @classmethod
    def of(cls, outcome: BacktestOutcome) -> BacktestTrend:
        entity = outcome.plot_entity()
        if entity is None:
            return cls()
        kind, name = entity[0], normalise_entity(*entity)
        mine = [w for w in outcome.windows if in_focus(entity, w.entity_kind, w.entity)]
        mine.sort(key=lambda w: (w.window_kind, w.window_end))
        return cls(
            entity_kind=kind,
            entity=name,
            points=[BacktestPoint.model_validate(w, from_attributes=True) for w in mine],
        )


class BacktestResponse(BaseModel):
    """The report, the trend it replayed, and where to get its picture."""

    report: BacktestReport
    trend: BacktestTrend
    plot_url: str


def _run(request: Request, body: BacktestRequest, db: HistoryStore) -> BacktestOutcome:
    try:
        return run_from_store(body, request.app.state.settings, db, now=utcnow())
    except NoHistory as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    except ValidationError as exc:  # e.g. a range the store's query refuses
        raise unprocessable(describe_validation_error(exc)) from exc
    except (ValueError, OverflowError) as exc:  # BacktestError is a ValueError
        raise unprocessable(str(exc) or type(exc).__name__) from exc


@router.post("/backtest", responses=ERRORS)
async def backtest(request: Request, body: BacktestRequest, db: Store) -> BacktestResponse:
    """Replay stored windows with a grid of detector parameters; metrics per setting and a recommendation."""
    # The range pinned as run: the plot's own request, later, would otherwise end at its own now.
    body = body if body.end is not None else body.model_copy(update={"end": utcnow().replace(microsecond=0)})
    outcome = await run_in_threadpool(_run, request, body, db)
    query = {"request": body.model_dump_json(exclude_defaults=True)}
    plot_url = str(request.url_for("backtest_plot").include_query_params(**query))
    return BacktestResponse(report=outcome.report, trend=BacktestTrend.of(outcome), plot_url=plot_url)


@router.get(
    "/backtest/plot.png",
    name="backtest_plot",
    responses={**ERRORS, 200: {"content": {"image/png": {}}, "description": "PNG"}},
    response_class=Response,
)
async def backtest_plot(
    request: Request,
    db: Store,
    body: Annotated[str, Query(alias="request", max_length=100_000, description="the POST body, as JSON")],
) -> Response:
    """The trend of the backtest's entity with each setting's alerts, as PNG."""
    try:
        parsed = BacktestRequest.model_validate(json.loads(body))
    except ValueError as exc:  # JSON errors and ValidationError
        detail = describe_validation_error(exc) if isinstance(exc, ValidationError) else f"not JSON: {exc}"
        raise unprocessable(f"invalid backtest request: {detail}", ("query", "request")) from exc
    outcome = await run_in_threadpool(_run, request, parsed, db)
    try:
        png = await run_in_threadpool(outcome.png)
    except BacktestError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from exc
    return Response(png, media_type="image/png")
