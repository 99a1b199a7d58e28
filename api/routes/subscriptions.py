"""Subscriptions CRUD: the alerts' Subscription model (as in the TOML file), stored in the database;
a test message to a stored subscription's channel through the alert sinks."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from alerts.overview import overviews
from alerts.sample import SampleResult, send_samples
from alerts.sinks.build import build_sinks
from alerts.subscriptions import Subscription
from alerts.windows import window_sizes
from api.deps import Store
from finpulse.errors import ConfigError
from finpulse.schema import describe_validation_error, utcnow
from store import SubscriptionRecord

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])
SubId = Annotated[str, Path(min_length=1, max_length=64)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such subscription"}}


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


@router.post("", status_code=status.HTTP_201_CREATED, responses={409: {"description": "id exists"}})
def create_subscription(db: Store, sub: Subscription) -> Subscription:
    """Store a new subscription (409 when the id exists: use PUT to replace)."""
    if db.get_subscription(sub.id) is not None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"subscription {sub.id!r} exists; PUT to replace it"
        )
    db.put_subscription(sub.id, sub.stored_body())
    return sub


@router.get("/{sub_id}", responses=NOT_FOUND)
def get_subscription(db: Store, sub_id: SubId) -> Subscription:
    """The stored (live) copy of one subscription, as the worker and the dispatcher use it."""
    record = db.get_subscription(sub_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no subscription {sub_id!r}")
    return _model(record)


@router.put("/{sub_id}", responses={422: {"description": "invalid, or id differs from the path"}})
def put_subscription(db: Store, sub_id: SubId, sub: Subscription) -> Subscription:
    """Create or replace the subscription with this id."""
    if sub.id != sub_id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"body id {sub.id!r} differs from the path's {sub_id!r}",
        )
    db.put_subscription(sub.id, sub.stored_body())
    return sub


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
    sub = await run_in_threadpool(get_subscription, db, sub_id)
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
    sub = get_subscription(db, sub_id)
    [o] = overviews((sub,), db, utcnow(), days)
    tp, fp = o.verdicts
    return SubscriptionOverview(
        subscription_id=sub.id, state=o.state, entity_mutes=list(o.entity_mutes), alerts=len(o.fired),
        true_positives=tp, false_positives=fp, summary=o.line(days), warnings=sub.doubts(utcnow()),
    )  # fmt: skip
