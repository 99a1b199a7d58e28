"""The news sources' health, as their ingestors publish it on Kafka (`GET /sources`; the
dashboard's panel). The same rules as `finpulse status` (ingest/health.py); any number of
ingestors on any hosts, the API needs only the broker.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel

from finpulse.errors import BrokerUnavailable
from finpulse.schema import utcnow
from ingest.health import Health, SourceHealth, source_health

router = APIRouter(tags=["sources"])


class SourceStatus(BaseModel):
    name: str
    kind: str
    health: Health
    detail: str
    host: str
    interval_s: float
    last_poll_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    items_published: int
    last_new_at: datetime | None
    last_entries: int
    last_invalid: int
    consecutive_errors: int
    last_error: str | None


class Sources(BaseModel):
    topic: str
    # Empty: no ingestor has published on `topic` yet (none has started).
    items: list[SourceStatus]


@router.get("/sources", responses={503: {"description": "Kafka does not answer"}})
async def sources(request: Request) -> Sources:
    """Each news source an ingestor polls: ok, failing (the last error), late, invalid (every entry of
    its last poll dead-lettered), quiet (no new item for 3 days), waiting or disabled."""
    kafka = request.app.state.settings.kafka
    try:
        rows = await source_health(kafka, utcnow())
    except BrokerUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from None
    return Sources(topic=kafka.topics.sources, items=[_status(r) for r in rows])


def _status(r: SourceHealth) -> SourceStatus:
    st = r.status
    return SourceStatus(
        name=st.source,
        kind=st.source_kind,
        health=r.health,
        detail=r.detail(),
        **st.model_dump(include=set(SourceStatus.model_fields) - {"name", "kind", "health", "detail"}),
    )
