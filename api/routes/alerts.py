"""Alert history and analyst feedback (true / false positive)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.deps import Store
from api.paging import FILE_RESPONSES, FORMAT_PARAM, Format, Page, export, page
from finpulse.schema import AlertEvent
from store import AlertRecord, AlertsQuery, Feedback, FeedbackQuery, LabelledAlert, Verdict, queries

router = APIRouter(tags=["alerts"])
AlertId = Annotated[str, Path(min_length=1, max_length=200)]
# The query models' check: PostgreSQL text cannot hold a NUL (a bare 500 there; a DuckDB store kept
# it, and its copy into PostgreSQL stopped on it).
NoNul = AfterValidator(queries.Query._no_nul)


class FeedbackIn(BaseModel):
    """An analyst's verdict on one alert."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"verdict": "fp", "note": "scheduled results call", "author": "ann"}]
        },
    )

    verdict: Verdict = Field(description="tp: a real event; fp: a false alarm")
    note: Annotated[str, NoNul] = Field(default="", max_length=2_000)
    author: Annotated[str, NoNul] = Field(default="anonymous", min_length=1, max_length=200)


class AlertDetail(BaseModel):
    """One alert with its evidence and the verdict on it."""

    alert: AlertEvent
    feedback: Feedback | None


@router.get("/alerts", response_model=Page[AlertRecord], responses=FILE_RESPONSES)
def alerts(db: Store, q: Annotated[AlertsQuery, Query()], fmt: Format = FORMAT_PARAM) -> Any:
    """Alert history, newest first, with feedback."""
    return page(db, q) if fmt == "json" else export(db, q, fmt, "alerts")


@router.get("/alerts/{alert_id}", responses={404: {"description": "no such alert"}})
def alert(db: Store, alert_id: AlertId) -> AlertDetail:
    """One alert with its top headlines and feedback."""
    event = db.get_alert(alert_id)
    if event is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no alert with id {alert_id!r}")
    return AlertDetail(alert=event, feedback=db.get_feedback(alert_id))


@router.get(
    "/alerts/{alert_id}/chart.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "PNG"},
        404: {"description": "no alert or stories"},
    },
)
def alert_chart_png(db: Store, alert_id: AlertId) -> Response:
    """The alert's entity around its window: negative share against the alert's baseline, the window
    shaded, the alerts fired; stories per bucket (the chart linked from alert messages)."""
    event = db.get_alert(alert_id)
    if event is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no alert with id {alert_id!r}")
    from api.trend_plot import alert_chart  # matplotlib: loaded by the first chart, not at start

    png = alert_chart(db, event)
    if png is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"no stories for {event.entity_kind} {event.entity} around alert {alert_id}",
        )
    return Response(png, media_type="image/png")


@router.post("/alerts/{alert_id}/feedback", responses={404: {"description": "no such alert"}})
def post_feedback(db: Store, alert_id: AlertId, body: FeedbackIn) -> Feedback:
    """Mark an alert true (tp) or false (fp) positive; the latest verdict wins."""
    return db.put_feedback(alert_id, body.verdict, note=body.note, author=body.author)


@router.get("/feedback", response_model=Page[LabelledAlert], responses=FILE_RESPONSES)
def feedback(db: Store, q: Annotated[FeedbackQuery, Query()], fmt: Format = FORMAT_PARAM) -> Any:
    """Labelled alerts (by alert window start): the backtest's labels, exportable as training data."""
    return page(db, q) if fmt == "json" else export(db, q, fmt, "feedback")
