"""Subscriptions CRUD: the alerts' Subscription model (as in the TOML file), stored in the database;
a test message to a stored subscription's channel through the alert sinks."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from alerts.overview import overviews
from alerts.sample import SampleResult, send_samples
from alerts.sinks.build import build_sinks
from alerts.subscriptions import Subscription
from alerts.windows import window_sizes
from api.deps import Store, unprocessable
from finpulse.errors import ConfigError
from finpulse.schema import describe_validation_error, utcnow
from store import Changed, HistoryStore, SubscriptionRecord
from store.records import as_utc

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])
SubId = Annotated[str, Path(min_length=1, max_length=64)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such subscription"}}
_ETAG = {"ETag": {"description": "send it back as If-Match with the next PUT", "schema": {"type": "string"}}}


def _model(record: SubscriptionRecord) -> Subscription:
    try:
        return Subscription.model_validate(record.body)
    except ValidationError as exc:  # stored by an older version with other rules
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"stored subscription {record.id!r} is no longer valid: {describe_validation_error(exc)}; "
            "PUT a corrected one",
        ) from exc


@router.get("")
def list_subscriptions(db: Store) -> list[Subscription]:
    """Every stored subscription, by id (invalid stored ones are skipped, with a warning)."""
    subs = []
    for record in db.list_subscriptions():
        try:
            subs.append(Subscription.model_validate(record.body))
        except ValidationError as exc:
            logger.warning("api skipped invalid stored subscription id=%s: %s", record.id, exc.error_count())
    return subs


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        201: {"headers": {**_ETAG, "Location": {"description": "its URL", "schema": {"type": "string"}}}},
        409: {"description": "id exists"},
    },
)
def create_subscription(db: Store, sub: Subscription, request: Request, response: Response) -> Subscription:
    """Store a new subscription (409 when the id exists: use PUT to replace). Its `Location`, and
    its `ETag` for the If-Match of the next PUT (as a GET gives it)."""
    if db.get_subscription(sub.id) is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"subscription {sub.id!r} exists; PUT to replace it"
        )
    record = db.put_subscription(sub.id, sub.stored_body())
    response.headers["Location"] = request.url_for("get_subscription", sub_id=sub.id).path
    response.headers["ETag"] = _etag(record)
    return sub


def _stored(db: HistoryStore, sub_id: str) -> SubscriptionRecord:
    record = db.get_subscription(sub_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no subscription {sub_id!r}")
    return record


@router.get("/{sub_id}", responses={**NOT_FOUND, 200: {"headers": _ETAG}})
def get_subscription(db: Store, sub_id: SubId, response: Response) -> Subscription:
    """The stored (live) copy of one subscription, as the worker and the dispatcher use it; its
    ETag, sent back as If-Match with a PUT, keeps that PUT from undoing a change made since."""
    record = _stored(db, sub_id)
    response.headers["ETag"] = _etag(record)
    return _model(record)


@router.put(
    "/{sub_id}",
    responses={
        **NOT_FOUND,
        200: {"headers": _ETAG},
        412: {"description": "changed since the If-Match copy was read (a mute from a Slack link?)"},
        422: {"description": "invalid, or id differs from the path"},
    },
)
def put_subscription(
    db: Store,
    sub_id: SubId,
    sub: Subscription,
    response: Response,
    if_match: Annotated[
        str | None,
        Header(description="the ETag of the copy this one changes: refused if written since; 404 if gone"),
    ] = None,
) -> Subscription:
    """Create or replace the subscription with this id (with If-Match: replace only, 404 when there
    is none). Its new `ETag`, for the If-Match of the next PUT (as a GET gives it)."""
    if sub.id != sub_id:
        raise unprocessable(f"body id {sub.id!r} differs from the path's {sub_id!r}", ("body", "id"))
    if if_match is not None:
        _stored(db, sub_id)  # a missing one is a 404, whatever If-Match says
    try:
        record = db.put_subscription(sub.id, sub.stored_body(), read_at=_read_at(if_match))
    except Changed as exc:
        _stored(db, sub_id)  # deleted since: a 404 too
        raise HTTPException(
            status.HTTP_412_PRECONDITION_FAILED,
            detail=f"{exc}, perhaps muted from a Slack link: load it again, then make the change",
        ) from exc
    response.headers["ETag"] = _etag(record)
    return sub


def _etag(record: SubscriptionRecord) -> str:
    """The ETag of a stored copy (GET's, POST's and PUT's): its `updated_at`."""
    return f'"{record.updated_at.isoformat()}"'


def _read_at(if_match: str | None) -> datetime | None:
    """The time an If-Match ETag names (None: no precondition)."""
    if if_match is None or if_match.strip() == "*":
        return None
    try:
        return as_utc(datetime.fromisoformat(if_match.strip().removeprefix("W/").strip('"')))
    except ValueError as exc:
        raise HTTPException(
            status.HTTP_412_PRECONDITION_FAILED, detail=f"If-Match {if_match!r} is not an ETag this API gave"
        ) from exc


@router.delete("/{sub_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete_subscription(db: Store, sub_id: SubId) -> Response:
    """Remove the stored subscription; its alerts stay in the history. One the subscriptions file
    still holds comes back when the file is imported again (its next edit)."""
    if not db.delete_subscription(sub_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no subscription {sub_id!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{sub_id}/test", responses={**NOT_FOUND, 503: {"description": "the sinks cannot send"}})
async def send_test_message(
    request: Request,
    db: Store,
    sub_id: SubId,
    sink: Annotated[
        list[str] | None, Query(description="slack, console, webhook (default: alerts.sinks)")
    ] = None,
) -> list[SampleResult]:
    """Send the subscription's channel a test message through each sink (`finpulse alerts test`);
    each result says whether it went and, if not, why (e.g. channel_not_found)."""
    sub = _model(await run_in_threadpool(_stored, db, sub_id))
    settings = request.app.state.settings
    try:
        sinks = build_sinks(sink, settings)
        return await send_samples((sub,), sinks, utcnow(), window_sizes(settings.alerts))
    except ConfigError as exc:  # no token, a refused one, an unknown sink: the server's settings
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=f"cannot send: {exc}") from exc


class SubscriptionOverview(BaseModel):
    """Where a stored subscription stands now (`finpulse alerts list`'s row)."""

    subscription_id: str
    state: str
    entity_mutes: list[str]
    alerts: int
    still_open: int = Field(description="of those alerts, the ones no resolve has ended yet")
    true_positives: int
    false_positives: int
    summary: str
    warnings: list[str] = Field(
        default_factory=list, description="what may not do what was meant (`finpulse alerts check`'s)"
    )


@router.get("/{sub_id}/overview", responses=NOT_FOUND)
def subscription_overview(
    db: Store,
    sub_id: SubId,
    days: Annotated[float, Query(gt=0, le=366, description="how far back to count its alerts")] = 7.0,
) -> SubscriptionOverview:
    """On, disabled or muted now, the entities muted, and the alerts it fired in the last `days`
    with the analysts' verdicts."""
    sub = _model(_stored(db, sub_id))
    [o] = overviews((sub,), db, utcnow(), days)
    tp, fp = o.verdicts
    return SubscriptionOverview(
        subscription_id=sub.id, state=o.state, entity_mutes=list(o.entity_mutes), alerts=len(o.fired),
        still_open=o.still_open, true_positives=tp, false_positives=fp, summary=o.line(days),
        warnings=sub.doubts(utcnow()),
    )  # fmt: skip
