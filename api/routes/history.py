"""Sentiment history: trends, volume, entities, movers, headlines, windows (JSON pages or exports)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel

from api.auto_buckets import pick_granularity
from api.deps import Store, unprocessable
from api.paging import FILE_RESPONSES, FORMAT_PARAM, Format, Page, export, page
from api.text_charts import TooManyBuckets
from finpulse.wording import range_text
from store import (
    EntitiesQuery,
    EntityCount,
    Granularity,
    Headline,
    HeadlinesQuery,
    Mover,
    MoversQuery,
    TrendPoint,
    TrendQuery,
    VolumePoint,
    VolumeQuery,
    WindowRow,
    WindowsQuery,
)

router = APIRouter(tags=["history"])


@router.get("/trends", response_model=Page[TrendPoint], responses=FILE_RESPONSES)
def trends(db: Store, q: Annotated[TrendQuery, Query()], fmt: Format = FORMAT_PARAM) -> Any:
    """Sentiment per entity (topic, ticker or source) and time bucket, from the scored items."""
    return page(db, q) if fmt == "json" else export(db, q, fmt, "trends")


@router.get(
    "/trends/plot.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "PNG"},
        404: {"description": "no stories in the range (the detail names it)"},
    },
)
def trend_plot(db: Store, q: Annotated[TrendQuery, Query()]) -> Response:
    """One entity's negative share per bucket with the alerts fired, and its stories per bucket, as
    PNG (the chart of `finpulse history trend --png`). `entity` is required; paging is ignored;
    too many buckets from the first story to the last (text_charts.MAX_BUCKETS) is a 422 naming a
    coarser `granularity`."""
    if q.entity is None:
        raise unprocessable("entity: required for a plot", ("query", "entity"))
    points = db.frame(q)
    if points.empty:
        detail = f"no stories for {q.entity_kind} {q.entity!r} in {range_text(q)}"
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=detail)
    from api.trend_plot import fired_alerts, plot_trend  # matplotlib: loaded by the first chart

    try:
        png = plot_trend(points, fired_alerts(db, q), f"{q.entity_kind} {q.entity}", q.granularity)
    except TooManyBuckets as exc:
        raise unprocessable(f"granularity: {exc}", ("query", "granularity")) from exc
    return Response(png, media_type="image/png")


@router.get("/volume", response_model=Page[VolumePoint], responses=FILE_RESPONSES)
def volume(db: Store, q: Annotated[VolumeQuery, Query()], fmt: Format = FORMAT_PARAM) -> Any:
    """Item counts per entity and time bucket."""
    return page(db, q) if fmt == "json" else export(db, q, fmt, "volume")


class AutoStep(BaseModel):
    """The buckets step "auto" picks for a range."""

    granularity: Granularity


@router.get("/granularity")
def granularity(db: Store, q: Annotated[VolumeQuery, Query()]) -> AutoStep:
    """Step "auto" for a range (the dashboard's, `finpulse history --granularity auto`): 5min when
    its stories (`entity`'s alone, when named), from the first to the range's end, span a day or
    less; hours up to 31 days; days beyond. `granularity`, `limit` and `offset` are ignored."""
    return AutoStep(granularity=pick_granularity(db, q))


@router.get("/entities", response_model=Page[EntityCount], responses=FILE_RESPONSES)
def entities(db: Store, q: Annotated[EntitiesQuery, Query()], fmt: Format = FORMAT_PARAM) -> Any:
    """Entities of one kind with items in the range, busiest first."""
    return page(db, q) if fmt == "json" else export(db, q, fmt, "entities")


@router.get("/movers", response_model=Page[Mover], responses=FILE_RESPONSES)
def movers(db: Store, q: Annotated[MoversQuery, Query()], fmt: Format = FORMAT_PARAM) -> Any:
    """Entities whose negative share rose (or fell, `direction=down`) most in the range against the
    range of equal length before it; each range needs `min_stories` for a change."""
    return page(db, q) if fmt == "json" else export(db, q, fmt, "movers")


@router.get("/headlines", response_model=Page[Headline], responses=FILE_RESPONSES)
def headlines(db: Store, q: Annotated[HeadlinesQuery, Query()], fmt: Format = FORMAT_PARAM) -> Any:
    """Headlines in the range: of one sentiment, the most extreme first (default: the most
    negative); `sentiment=any` or `newest`: newest first; `search`: words each title holds."""
    return page(db, q) if fmt == "json" else export(db, q, fmt, "headlines")


@router.get("/windows", response_model=Page[WindowRow], responses=FILE_RESPONSES)
def windows(db: Store, q: Annotated[WindowsQuery, Query()], fmt: Format = FORMAT_PARAM) -> Any:
    """Stored window aggregates (what the detector saw), oldest first."""
    return page(db, q) if fmt == "json" else export(db, q, fmt, "windows")
