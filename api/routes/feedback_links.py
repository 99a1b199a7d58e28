"""Feedback from a Slack message: `GET /feedback/{alert_id}?verdict=tp&token=...`, and the
alert's chart: `GET /feedback/{alert_id}/chart.png?token=...`.

The GET only shows the alert, its chart and a confirm button (Slack and mail
scanners prefetch links, so a GET must not change anything); the button POSTs
the form back to the same URL, which records the verdict.
"""

from __future__ import annotations

import html
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool

from alerts.links import CHART, FeedbackLinks
from alerts.render import safe_url, significance_text
from api.auth import cross_site, link_allowed
from api.deps import Store
from finpulse.schema import AlertEvent
from store import HistoryStore, NotFound, Verdict

router = APIRouter(tags=["feedback link"])
LABELS = {"tp": "true positive (a real event)", "fp": "false positive (a false alarm)"}
# Form fields are short; anything longer is cut (note) or refused (the rest).
MAX_FORM_BYTES = 16_384

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>finpulse feedback</title>
<style>body{{font:15px system-ui,sans-serif;max-width:56em;margin:3em auto;padding:0 1em}}
.err{{color:#b00}} button{{font-size:1em;padding:.4em 1em}} input,textarea{{width:100%}}</style></head>
<body><h1>finpulse alert feedback</h1>{body}</body></html>"""


INVALID_LINK = "<p class=err>This link is not valid (wrong or missing token).</p>"
# A form posted by another site's page (cross_site): it would record a verdict or a mute with the
# operator's browser, unasked.
CROSS_SITE = (
    "<p class=err>This form was sent from another site, so nothing was recorded. Open the link from "
    "the alert's message and confirm on this page.</p>"
)
AlertId = Annotated[str, Path(min_length=1, max_length=200)]
LinkToken = Annotated[
    str | None, Query(max_length=200, description="the alert's own signed token, from its message's link")
]


def page(body: str, status_code: int = 200) -> HTMLResponse:
    """The feedback pages' HTML around `body` (which the caller escaped)."""
    return HTMLResponse(_PAGE.format(body=body), status_code=status_code)


def no_alert(alert_id: str) -> HTMLResponse:
    return page(f"<p class=err>No alert {html.escape(alert_id)} in the history.</p>", 404)


async def read_form(request: Request) -> dict[str, str] | None:
    """The posted form's fields (first value of each); None when it is over MAX_FORM_BYTES."""
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        return None
    # NUL out: PostgreSQL text cannot hold one (a note pasted from a PDF failed the verdict).
    return {k: v[0].replace("\x00", "") for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}


def linked_alert(
    request: Request, db: HistoryStore, alert_id: str, purpose: str, token: str | None
) -> AlertEvent | HTMLResponse:
    """The alert a signed link names, or the page that says why not (403 or 404)."""
    if not link_allowed(request, alert_id, purpose, token):
        return page(INVALID_LINK, 403)
    alert = db.get_alert(alert_id)
    return no_alert(alert_id) if alert is None else alert


def author_of(form: dict[str, str]) -> str:
    return form.get("author", "").strip()[:200] or "slack link"


def describe(request: Request, alert: AlertEvent) -> str:
    """The alert in a sentence, and its chart (signed by this server): under public_url, as the
    message's links (a proxy serving the API under a path prefix), else from this server's root."""
    api = request.app.state.settings.api
    return _describe(alert, FeedbackLinks(api.public_url or "", api.token))


def _describe(alert: AlertEvent, links: FeedbackLinks) -> str:
    """What the reader judges the alert by: the test, the chart, the stories behind it."""
    e = html.escape
    test = f"; {e(significance_text(alert))}" if alert.state == "fired" else ""
    return (
        f"<p><b>{e(alert.entity_kind)} {e(alert.entity)}</b> ({e(alert.state)}, subscription "
        f"{e(alert.subscription_id)}): negative share {alert.negative_share:.0%} against a baseline of "
        f"{alert.baseline_negative_share:.0%}, {alert.negative_count} of {alert.count} stories negative "
        f"in the window {alert.window_start:%Y-%m-%d %H:%M}–{alert.window_end:%H:%M} UTC{test}.</p>"
        f'<p><img src="{e(links.chart_url(alert.alert_id))}" alt="negative share of {e(alert.entity)} '
        'around the alert" style="width:100%" onerror="this.remove()"></p>'
        f"{_headlines(alert)}"
        f'<p><a href="{e(links.dashboard_url(alert))}">Its trend on the dashboard</a></p>'
    )


def _headlines(alert: AlertEvent) -> str:
    if not alert.top_headlines:
        return ""
    e = html.escape
    items = []
    for h in alert.top_headlines:
        url = safe_url(h.url)
        title = f'<a href="{e(url)}" rel="noopener noreferrer">{e(h.title)}</a>' if url else e(h.title)
        source = f" — {e(h.source)}" if h.source else ""
        items.append(f"<li>{title}{source} ({h.sentiment_score:+.2f})</li>")
    return f"<p>Its most negative headlines:</p><ul>{''.join(items)}</ul>"


@router.get("/feedback/{alert_id}", response_class=HTMLResponse, responses={403: {}, 404: {}})
def feedback_form(
    request: Request,
    db: Store,
    alert_id: AlertId,
    verdict: Annotated[Verdict, Query(description="tp: a real event; fp: a false alarm")],
    token: LinkToken = None,
) -> HTMLResponse:
    """A confirmation page for the link in a Slack message; its button records the verdict."""
    alert = linked_alert(request, db, alert_id, verdict, token)
    if isinstance(alert, HTMLResponse):
        return alert
    e = html.escape
    form = (
        f'<form method="post"><input type="hidden" name="verdict" value="{e(verdict)}">'
        f'<input type="hidden" name="token" value="{e(token or "")}">'
        '<p><label>Your name <input name="author" maxlength="200"></label></p>'
        '<p><label>Note <textarea name="note" maxlength="2000" rows="3"></textarea></label></p>'
        f"<p><button type=submit>Mark as {e(LABELS[verdict])}</button></p></form>"
    )
    return page(describe(request, alert) + form)


@router.get(
    "/feedback/{alert_id}/chart.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "PNG"}, 403: {}, 404: {}},
)
def alert_chart_png(request: Request, db: Store, alert_id: AlertId, token: LinkToken = None) -> Response:
    """The alert's entity around its window: negative share against the alert's baseline, the
    window shaded, the alerts fired; stories per bucket (the link in alert messages)."""
    alert = linked_alert(request, db, alert_id, CHART, token)
    if isinstance(alert, HTMLResponse):
        return alert
    from api.trend_plot import alert_chart  # matplotlib: loaded by the first chart, not at start

    png = alert_chart(db, alert)
    if png is None:
        return PlainTextResponse(
            f"no stories for {alert.entity_kind} {alert.entity} around alert {alert_id}", 404
        )
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


@router.post("/feedback/{alert_id}", response_class=HTMLResponse, include_in_schema=False)
async def feedback_submit(request: Request, db: Store, alert_id: str) -> HTMLResponse:
    """Record the verdict posted by the confirmation page's form."""
    if cross_site(request):
        return page(CROSS_SITE, 403)
    form = await read_form(request)
    if form is None:
        return page("<p class=err>Form too large.</p>", 413)
    verdict = form.get("verdict", "")
    if verdict not in LABELS:
        return page("<p class=err>verdict must be tp or fp.</p>", 422)
    if not link_allowed(request, alert_id, verdict, form.get("token")):
        return page(INVALID_LINK, 403)
    note = form.get("note", "").strip()[:2000]
    try:
        await run_in_threadpool(db.put_feedback, alert_id, verdict, note=note, author=author_of(form))  # type: ignore[arg-type]
    except NotFound:
        return no_alert(alert_id)
    return page(f"<p>Recorded: {html.escape(alert_id)} is a {LABELS[verdict]}. Thank you.</p>")
