"""The news sources' health, from the ingestor's state files (`GET /sources`; the dashboard's panel).

The API reads the sources file and the state dir of its own settings: where the
ingestor runs beside it (`finpulse up`, the Docker services sharing /data), they are
the ingestor's. The same rules as `finpulse status` (ingest/health.py).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel

from finpulse.schema import utcnow
from ingest.errors import SourcesFileError
from ingest.health import Health, SourceHealth, configured_health
from ingest.state import SourceState, states_dir

router = APIRouter(tags=["sources"])


class SourceStatus(BaseModel):
    name: str
    kind: str
    health: Health
    detail: str
    interval_s: float
    last_poll_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    items_published: int
    consecutive_errors: int
    last_error: str | None


class Sources(BaseModel):
    sources_file: str
    state_dir: str
    # False: no ingestor has written state here (it runs elsewhere, or not yet).
    state_found: bool
    items: list[SourceStatus]


@router.get("/sources", responses={503: {"description": "the sources file cannot be read"}})
def sources(request: Request) -> Sources:
    """Each configured news source: ok, failing (the last error), late, waiting or disabled."""
    ingest = request.app.state.settings.ingest
    try:
        rows = configured_health(ingest, utcnow())
    except SourcesFileError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from None
    items = [_status(r) for r in rows]
    return Sources(
        sources_file=str(ingest.sources_file),
        state_dir=str(ingest.state_dir),
        state_found=states_dir(ingest.state_dir).is_dir(),
        items=items,
    )


def _status(r: SourceHealth) -> SourceStatus:
    saved = r.state.model_dump(include=set(SourceStatus.model_fields) & set(SourceState.model_fields))
    return SourceStatus(
        name=r.name, kind=r.kind, health=r.health, detail=r.detail(), interval_s=r.interval_s, **saved
    )
