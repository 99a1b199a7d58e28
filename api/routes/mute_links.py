"""Muting from an alert message: `GET /feedback/{alert_id}/mute?token=...` shows the alert and
a form; its POST adds a mute of the alert's entity alone, for the time chosen, to the stored
subscription, which the worker and the dispatcher reload within
`alerts.subscriptions_refresh_s`. A GET changes nothing (link scanners prefetch links).
"""

from __future__ import annotations

import html
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from alerts.links import MUTE
from alerts.subscriptions import Subscription
from api.auth import cross_site, link_allowed
from api.deps import Store
from api.routes.feedback_links import (
    CROSS_SITE,
    INVALID_LINK,
    AlertId,
    LinkToken,
    author_of,
    describe,
    linked_alert,
    page,
    read_form,
)
from finpulse.schema import AlertEvent, utcnow
from store import Changed, HistoryStore

router = APIRouter(tags=["feedback link"])
# Attempts at adding a mute while other writes (mutes from other links) change the subscription.
MUTE_TRIES = 3
DURATIONS = {
    "1h": (timedelta(hours=1), "1 hour"),
    "1d": (timedelta(days=1), "1 day"),
    "7d": (timedelta(days=7), "1 week"),
}


class MuteRefused(Exception):
    """The mute cannot be stored; the message says why (shown on the page)."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


@router.get("/feedback/{alert_id}/mute", response_class=HTMLResponse, responses={403: {}, 404: {}})
def mute_form(request: Request, db: Store, alert_id: AlertId, token: LinkToken = None) -> HTMLResponse:
    """A page that mutes the alert's entity in its subscription, for the time chosen."""
    alert = linked_alert(request, db, alert_id, MUTE, token)
    if isinstance(alert, HTMLResponse):
        return alert
    e = html.escape
    choices = "".join(
        f'<option value="{key}"{" selected" if key == "1d" else ""}>{label}</option>'
        for key, (_, label) in DURATIONS.items()
    )
    form = (
        f'<form method="post"><input type="hidden" name="token" value="{e(token or "")}">'
        f"<p>No alerts for {e(alert.entity_kind)} <b>{e(alert.entity)}</b> in subscription "
        f'{e(alert.subscription_id)} for <select name="for">{choices}</select> '
        "(its other entities still alert; resolves still go out).</p>"
        '<p><label>Your name <input name="author" maxlength="200"></label></p>'
        '<p><label>Why <input name="reason" maxlength="500"></label></p>'
        f"<p><button type=submit>Mute {e(alert.entity_kind)} {e(alert.entity)}</button></p></form>"
    )
    return page(describe(request, alert) + form)


@router.post("/feedback/{alert_id}/mute", response_class=HTMLResponse, include_in_schema=False)
async def mute_submit(request: Request, db: Store, alert_id: str) -> HTMLResponse:
    """Store the mute the page's form asks for."""
    if cross_site(request):
        return page(CROSS_SITE, 403)
    form = await read_form(request)
    if form is None:
        return page("<p class=err>Form too large.</p>", 413)
    if not link_allowed(request, alert_id, MUTE, form.get("token")):
        return page(INVALID_LINK, 403)
    choice = DURATIONS.get(form.get("for", ""))
    if choice is None:
        return page(f"<p class=err>for must be one of {', '.join(DURATIONS)}.</p>", 422)
    reason = form.get("reason", "").strip()[:500]
    try:
        alert, (until, stored) = await run_in_threadpool(
            _mute, db, alert_id, choice[0], reason, author_of(form)
        )
    except MuteRefused as exc:
        return page(f"<p class=err>{html.escape(str(exc))}</p>", exc.status_code)
    refresh = request.app.state.settings.alerts.subscriptions_refresh_s
    # A link used again never shortens the mute its earlier use made (Subscription.muting).
    kept = (
        f" An earlier mute from a link of this alert lasts longer than the {choice[1]} chosen: it is kept."
        if stored > until
        else ""
    )
    return page(
        f"<p>Muted {html.escape(alert.entity_kind)} <b>{html.escape(alert.entity)}</b> in subscription "
        f"{html.escape(alert.subscription_id)} until {stored.astimezone(UTC):%Y-%m-%d %H:%M} UTC.{kept} "
        f"The worker applies it within {refresh:g} s; the dashboard's subscription editor shows and "
        "removes it.</p>"
    )


def _mute(
    db: HistoryStore, alert_id: str, duration: timedelta, reason: str, author: str
) -> tuple[AlertEvent, tuple[datetime, datetime]]:
    alert = db.get_alert(alert_id)
    if alert is None:
        raise MuteRefused(f"No alert {alert_id} in the history.", 404)
    for _ in range(MUTE_TRIES):
        with suppress(Changed):  # written meanwhile (another mute): read it again, mute that
            return alert, _mute_once(db, alert, duration, reason, author)
    raise MuteRefused(f"Subscription {alert.subscription_id} keeps changing: try again.", 409)


def _mute_once(
    db: HistoryStore, alert: AlertEvent, duration: timedelta, reason: str, author: str
) -> tuple[datetime, datetime]:
    """Add the mute to the subscription as stored now; Changed if it was written meanwhile. The end
    asked for, and the end stored: later when an earlier mute from this alert's link lasts longer."""
    alert_id = alert.alert_id
    record = db.get_subscription(alert.subscription_id)
    if record is None:
        raise MuteRefused(
            f"Subscription {alert.subscription_id} is not in the history store (deleted?): nothing muted.",
            404,
        )
    try:
        sub = Subscription.model_validate(record.body)
    except ValidationError as exc:
        raise MuteRefused(
            f"Stored subscription {alert.subscription_id} is no longer valid; fix it in the dashboard first.",
            409,
        ) from exc
    start = utcnow()
    until = start + duration
    source = f"from alert {alert_id}"
    why = f"{reason} ({author}, {source})" if reason else f"{author}, {source}"
    muted = sub.muting(alert.entity_kind, alert.entity, start, until, why, replacing=source)
    db.put_subscription(sub.id, muted.stored_body(), read_at=record.updated_at)
    stored = muted.mute[-1].until  # muting adds the entity's mute last
    return until, stored if stored is not None else until
