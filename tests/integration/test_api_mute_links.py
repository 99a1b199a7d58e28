"""The mute link in alert messages: a page, then a mute of the alert's entity alone stored in
its subscription (the history store's live copy, which the worker reloads)."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from pydantic import SecretStr

from alerts.links import MUTE, FeedbackLinks, link_token
from alerts.subscriptions import Subscription
from finpulse.schema import utcnow
from tests.fixtures.store import API_TOKEN

NO_AUTH = {"Authorization": ""}  # a link from Slack carries its own token, never the API's
DESK = {"id": "desk", "channel": "#alerts", "filter": {"topics": ["*"]}}


def _post(api_client: Any, alert_id: str, headers: dict[str, str] | None = None, **form: str) -> Any:
    token = link_token(SecretStr(API_TOKEN), alert_id, MUTE)
    return api_client.post(
        f"/feedback/{alert_id}/mute", data={"token": token, **form}, headers={**NO_AUTH, **(headers or {})}
    )


def test_the_mute_link_mutes_the_alerts_entity_alone(api_client: Any) -> None:
    url = FeedbackLinks("http://testserver", SecretStr(API_TOKEN)).mute_url("a1")
    form = api_client.get(url, headers=NO_AUTH)
    assert form.status_code == 200
    assert "Mute topic earnings" in form.text
    assert "/feedback/a1/chart.png?token=" in form.text  # the page shows what is being muted
    assert api_client.get("/api/v1/subscriptions").json() == []  # a GET changes nothing

    # The subscription lives in the file only (never stored): a clear refusal, nothing written.
    missing = _post(api_client, "a1", **{"for": "1d"})
    assert missing.status_code == 404
    assert "Subscription desk is not in the history store" in missing.text

    api_client.post("/api/v1/subscriptions", json=DESK)
    before = utcnow()
    same_origin = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}  # the page's button
    done = _post(api_client, "a1", same_origin, **{"for": "1d", "reason": "earnings season", "author": "ann"})
    assert done.status_code == 200, done.text
    assert "Muted topic <b>earnings</b> in subscription desk until" in done.text
    stored = Subscription.model_validate(api_client.get("/api/v1/subscriptions/desk").json())
    [mute] = stored.mute
    assert mute.entities == ("topic:earnings",)
    assert mute.reason == "earnings season (ann, from alert a1)"
    assert mute.from_ is not None
    assert mute.until is not None
    assert before <= mute.from_ <= utcnow()
    assert mute.until - mute.from_ == timedelta(days=1)
    assert f"until {mute.until.astimezone(UTC):%Y-%m-%d %H:%M} UTC." in done.text  # the end stored
    soon = before + timedelta(hours=1)
    assert stored.muted(soon, "topic", "Earnings")
    assert not stored.muted(soon, "topic", "macro")  # the subscription's other entities still alert
    assert not stored.muted(soon)
    assert not stored.muted(before + timedelta(days=2), "topic", "earnings")  # and it ends

    # The same link posted again (by anyone holding it, any number of times): still one mute, longer.
    for author in ("bob", "eve", "eve"):
        assert _post(api_client, "a1", **{"for": "7d", "author": author}).status_code == 200
    again = Subscription.model_validate(api_client.get("/api/v1/subscriptions/desk").json())
    [longer] = again.mute
    assert (longer.from_, longer.reason) == (mute.from_, "eve, from alert a1")
    assert longer.until is not None
    assert longer.until - before >= timedelta(days=7)

    # Used again for less time, it keeps the longer mute, and its page shows the end kept, not the
    # hour asked for.
    shorter = _post(api_client, "a1", **{"for": "1h", "author": "eve"})
    assert shorter.status_code == 200, shorter.text
    kept = Subscription.model_validate(api_client.get("/api/v1/subscriptions/desk").json())
    assert [m.until for m in kept.mute] == [longer.until]
    assert f"until {longer.until.astimezone(UTC):%Y-%m-%d %H:%M} UTC." in shorter.text
    assert "An earlier mute from a link of this alert lasts longer than the 1 hour chosen" in shorter.text
    assert "lasts longer" not in done.text


def test_the_mute_link_refuses_what_it_should(api_client: Any) -> None:
    api_client.post("/api/v1/subscriptions", json=DESK)
    verdict_token = link_token(SecretStr(API_TOKEN), "a1", "tp")
    assert (
        api_client.get("/feedback/a1/mute", params={"token": verdict_token}, headers=NO_AUTH).status_code
        == 403
    )
    forged = api_client.post("/feedback/a1/mute", data={"token": verdict_token, "for": "1d"}, headers=NO_AUTH)
    assert forged.status_code == 403
    # Another site's page posting the form, the link's token in hand, with the reader's browser.
    for sent_from in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        cross_site = _post(api_client, "a1", sent_from, **{"for": "7d"})
        assert cross_site.status_code == 403
        assert "This form was sent from another site, so nothing was recorded" in cross_site.text
    assert _post(api_client, "a1", **{"for": "forever"}).status_code == 422
    assert _post(api_client, "zz", **{"for": "1h"}).status_code == 404
    assert api_client.get("/api/v1/subscriptions/desk").json()["mute"] == []
    too_big = _post(api_client, "a1", **{"for": "1h", "reason": "x" * 20_000})
    assert too_big.status_code == 413
