"""Sentiment history: trends, volume, entities, headlines, windows (JSON pages or exports)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Store
from api.paging import FILE_RESPONSES, FORMAT_PARAM, Format, Page, export, page
from store import (
    EntitiesQuery,
    EntityCount,
    Headline,
    HeadlinesQuery,
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


@router.get("/volume", response_model=Page[VolumePoint], responses=FILE_RESPONSES)
def volume(db: Store, q: Annotated[VolumeQuery, Query()], fmt: Format = FORMAT_PARAM) -> Any:
    """Item counts per entity and time bucket."""
    return page(db, q) if fmt == "json" else export(db, q, fmt, "volume")


@router.get("/entities", response_model=Page[EntityCount], responses=FILE_RESPONSES)
def entities(db: Store, q: Annotated[EntitiesQuery, Query()], fmt: Format = FORMAT_PARAM) -> Any:
    """Entities of one kind with items in the range, busiest first."""
    return page(db, q) if fmt == "json" else export(db, q, fmt, "entities")


@router.get("/headlines", response_model=Page[Headline], responses=FILE_RESPONSES)
def headlines(db: Store, q: Annotated[HeadlinesQuery, Query()], fmt: Format = FORMAT_PARAM) -> Any:
    """Top headlines of one sentiment in the range (default: most negative first)."""
    return page(db, q) if fmt == "json" else export(db, q, fmt, "headlines")


@router.get("/windows", response_model=Page[WindowRow], responses=FILE_RESPONSES)
def windows(db: Store, q: Annotated[WindowsQuery, Query()], fmt: Format = FORMAT_PARAM) -> Any:
    """Stored window aggregates (what the detector saw), oldest first."""
    return page(db, q) if fmt == "json" else export(db, q, fmt, "windows")
