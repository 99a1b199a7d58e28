"""Pages of results and the `format` switch between JSON and file exports."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from fastapi import Query as QueryParam
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from api.deps import unprocessable
from store import HistoryStore, Query

T = TypeVar("T")
Format = Literal["json", "csv", "parquet"]
MEDIA_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
# OpenAPI: list endpoints also answer with a file when format=csv|parquet.
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
        "description": "JSON page; with format=csv or parquet the whole range as a file (no paging)",
    }
}
FORMAT_PARAM = QueryParam("json", alias="format", description="json (paged) or a csv / parquet export")


class Page(BaseModel, Generic[T]):
    """One page of rows; `next_offset` is null on the last page."""

    items: list[T]
    limit: int
    offset: int
    next_offset: int | None
    start: datetime = Field(description="the range's start, as resolved (default: end - 7 days)")
    end: datetime = Field(
        description="the range's end, as resolved (default: now): ask for the next page with this start and "
        "end, or stories stored meanwhile shift the rows between pages"
    )


def page(db: HistoryStore, query: Query) -> Page[Any]:
    """Fetch one page (one row more than asked, to know whether another follows)."""
    rows: Sequence[Any] = db.fetch(query.model_copy(update={"limit": query.limit + 1}))
    more = len(rows) > query.limit
    assert query.start is not None  # both set by the query's validator
    assert query.end is not None
    return Page(
        items=list(rows[: query.limit]),
        limit=query.limit,
        offset=query.offset,
        next_offset=query.offset + query.limit if more else None,
        start=query.start,
        end=query.end,
    )


def export(db: HistoryStore, query: Query, fmt: Literal["csv", "parquet"], name: str) -> FileResponse:
    """The query's whole range as a CSV or Parquet download; the temp file goes after sending.
    Paging asked for is refused: a script paging a CSV by offset got the whole file every time."""
    paged = sorted(query.model_fields_set & {"limit", "offset"})
    if paged:
        raise unprocessable(
            f"{paged[0]}: a {fmt.upper()} file holds the whole range (page the JSON, or narrow the range)",
            ("query", paged[0]),
        )
    tmp = Path(tempfile.mkdtemp(prefix="finpulse-export-"))
    path = db.export(query, tmp / f"{name}.{fmt}", fmt)

    def cleanup() -> None:
        path.unlink(missing_ok=True)
        tmp.rmdir()

    return FileResponse(
        path, media_type=MEDIA_TYPES[fmt], filename=path.name, background=BackgroundTask(cleanup)
    )
