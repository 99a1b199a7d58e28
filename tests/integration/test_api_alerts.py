"""Alert history, feedback over the API and the Slack feedback link."""

from __future__ import annotations

import html
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from alerts.links import CHART, FeedbackLinks, feedback_url, link_token
from api.trend_plot import alert_chart
from store import DuckDBStore
from tests.fixtures.store import API_TOKEN, T0
from tests.fixtures.store import alert as alert_event

SPAN = {"start": "2024-03-04T00:00:00Z", "end": "2024-03-06T00:00:00Z"}


def test_alert_history_and_detail(api_client: Any) -> None:
    items = api_client.get("/api/v1/alerts", params={**SPAN, "state": "fired"}).json()["items"]
    assert [a["alert_id"] for a in items] == ["a3", "a1"]
    resolved = api_client.get("/api/v1/alerts", params={**SPAN, "state": "resolved"}).json()["items"]
    # What it ends, and why: in the list, JSON, CSV and Parquet alike.
    assert [(a["alert_id"], a["fired_alert_id"], a["resolved_because"]) for a in resolved] == [
        ("a2", "a1", "calm")
    ]
    listed = api_client.get("/api/v1/alerts", params={**SPAN, "state": "resolved", "format": "csv"}).text
    assert "resolved_because" in listed.splitlines()[0]
    assert ",calm," in listed.splitlines()[1]
    detail = api_client.get("/api/v1/alerts/a1").json()
    assert detail["alert"]["top_headlines"][0]["title"] == "Apple misses"
    assert detail["feedback"] is None
    missing = api_client.get("/api/v1/alerts/zzz")
    assert missing.status_code == 404
    assert "no alert with id 'zzz'" in missing.json()["detail"]


def test_posting_feedback(api_client: Any) -> None:
    r = api_client.post(
        "/api/v1/alerts/a1/feedback", json={"verdict": "fp", "note": "known", "author": "ann"}
    )
    assert r.status_code == 200
    assert r.json()["verdict"] == "fp"
    assert api_client.get("/api/v1/alerts/a1").json()["feedback"]["author"] == "ann"
    labelled = api_client.get("/api/v1/feedback", params=SPAN).json()["items"]
    assert [(x["alert_id"], x["verdict"], x["entity"]) for x in labelled] == [("a1", "fp", "earnings")]
    csv = api_client.get("/api/v1/feedback", params={**SPAN, "format": "csv"}).text
    assert csv.splitlines()[1].startswith("a1,fp,known,ann,")


def test_bad_feedback_is_refused_clearly(api_client: Any) -> None:
    cases = [
        ("a1", {"verdict": "maybe"}, 422, "'tp' or 'fp'"),
        ("a1", {}, 422, "Field required"),
        ("a1", {"verdict": "tp", "colour": "red"}, 422, "Extra inputs are not permitted"),
        ("a1", {"verdict": "tp", "note": "x" * 2001}, 422, "at most 2000 characters"),
        ("nope", {"verdict": "tp"}, 404, "no alert with id 'nope'"),
    ]
    for alert_id, body, code, needle in cases:
        r = api_client.post(f"/api/v1/alerts/{alert_id}/feedback", json=body)
        assert r.status_code == code, body
        assert needle in str(r.json()["detail"]), body
    r = api_client.post(
        "/api/v1/alerts/a1/feedback", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422
    assert "JSON decode error" in str(r.json()["detail"])


def test_feedback_with_a_nul_character_is_refused(api_client: Any) -> None:
    """PostgreSQL cannot store it (a bare 500 there); DuckDB kept it, and a copy into PostgreSQL failed."""
    for field in ("note", "author"):
        r = api_client.post("/api/v1/alerts/a1/feedback", json={"verdict": "fp", field: "from a PDF\u0000"})
        assert r.status_code == 422, r.text
        (error,) = r.json()["detail"]
        assert error["loc"] == ["body", field]
        assert "NUL character" in error["msg"]
    assert api_client.get("/api/v1/alerts/a1").json()["feedback"] is None


def test_slack_link_shows_a_form_then_records_on_post(api_client: Any) -> None:
    url = feedback_url("http://testserver", SecretStr(API_TOKEN), "a1", "tp")
    page = api_client.get(url, headers={"Authorization": ""})
    assert page.status_code == 200
    assert "Mark as true positive" in page.text
    # What the reader judges by: the test, the stories behind it, and where to look further.
    assert "12 of 20 stories negative" in page.text
    assert "p = 0.001 (one-sided binomial" in page.text
    assert "<li>Apple misses (-0.80)</li>" in page.text
    assert 'href="/?kind=topic&amp;entity=earnings&amp;range=custom&amp;from=' in page.text
    assert api_client.get("/api/v1/alerts/a1").json()["feedback"] is None  # a GET changes nothing
    token = link_token(SecretStr(API_TOKEN), "a1", "tp")
    # A NUL (a note pasted from a PDF) is dropped: PostgreSQL text cannot hold one.
    form = {"verdict": "tp", "token": token, "author": "<b>eve</b>", "note": "ye\x00s"}
    # Another site's page posting the form (the token in hand) with the reader's browser: refused.
    for sent_from in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = api_client.post("/feedback/a1", data=form, headers={"Authorization": "", **sent_from})
        assert refused.status_code == 403
        assert "sent from another site" in refused.text
    assert api_client.get("/api/v1/alerts/a1").json()["feedback"] is None
    # The page's own button, as a browser posts it.
    same_origin = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    done = api_client.post("/feedback/a1", data=form, headers={"Authorization": "", **same_origin})
    assert done.status_code == 200
    assert "Recorded" in done.text
    fb = api_client.get("/api/v1/alerts/a1").json()["feedback"]
    assert (fb["verdict"], fb["author"], fb["note"]) == ("tp", "<b>eve</b>", "yes")


def test_slack_link_refuses_wrong_tokens_and_unknown_alerts(api_client: Any) -> None:
    fp_token = link_token(SecretStr(API_TOKEN), "a1", "fp")
    wrong = api_client.get(
        "/feedback/a1", params={"verdict": "tp", "token": fp_token}, headers={"Authorization": ""}
    )
    assert wrong.status_code == 403
    post = api_client.post(
        "/feedback/a1", data={"verdict": "tp", "token": fp_token}, headers={"Authorization": ""}
    )
    assert post.status_code == 403
    assert api_client.get("/api/v1/alerts/a1").json()["feedback"] is None
    token = link_token(SecretStr(API_TOKEN), "zz", "tp")
    assert api_client.get("/feedback/zz", params={"verdict": "tp", "token": token}).status_code == 404
    assert api_client.get("/feedback/a1", params={"verdict": "meh"}).status_code == 422
    assert api_client.post("/feedback/a1", data={"verdict": "meh"}).status_code == 422


def test_behind_a_path_prefix_the_link_page_shows_its_chart_and_dashboard_under_it(api_store: Path) -> None:
    """A proxy serving the API at public_url's path, the prefix stripped: the page's own links too."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from finpulse.settings import ApiSettings, Settings, StoreSettings

    public = "https://tools.example/finpulse"
    api = ApiSettings(token=SecretStr(API_TOKEN), public_url=public)
    settings = Settings(store=StoreSettings(url=f"duckdb:///{api_store}"), api=api)
    links = FeedbackLinks.from_settings(api)
    with TestClient(create_app(settings)) as client:
        stripped = links.url("a1", "fp").removeprefix(public)
        page = client.get(stripped)
    assert page.status_code == 200
    assert f'src="{html.escape(links.chart_url("a1"))}"' in page.text
    assert 'href="https://tools.example/finpulse/?kind=' in page.text


def test_an_alert_links_to_its_chart(api_client: Any, api_store: Path) -> None:
    chart_token = link_token(SecretStr(API_TOKEN), "a1", CHART)
    page = api_client.get(
        feedback_url("http://testserver", SecretStr(API_TOKEN), "a1", "fp"), headers={"Authorization": ""}
    )
    assert f'src="/feedback/a1/chart.png?token={chart_token}"' in page.text  # the page shows the chart
    png = api_client.get(
        "/feedback/a1/chart.png", params={"token": chart_token}, headers={"Authorization": ""}
    )
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    with DuckDBStore(api_store, read_only=True) as db:
        alert = db.get_alert("a1")
        assert alert is not None
        # The chart draws the alert's own baseline: another baseline, another picture.
        other = alert.model_copy(update={"baseline_negative_share": 0.9})
        assert alert_chart(db, alert) != alert_chart(db, other)
    for token in (None, link_token(SecretStr(API_TOKEN), "a1", "tp")):  # a verdict token draws nothing
        refused = api_client.get(
            "/feedback/a1/chart.png", params={"token": token} if token else {}, headers={"Authorization": ""}
        )
        assert refused.status_code == 403
    unknown = api_client.get(
        "/feedback/zz/chart.png", params={"token": link_token(SecretStr(API_TOKEN), "zz", CHART)}
    )
    assert unknown.status_code == 404
    with DuckDBStore(api_store) as db:  # an alert whose stories were pruned: no chart, a clear 404
        db.upsert_alerts([alert_event("old", "gone-topic", T0 - timedelta(days=400))])
    pruned = api_client.get(
        "/feedback/old/chart.png", params={"token": link_token(SecretStr(API_TOKEN), "old", CHART)}
    )
    assert pruned.status_code == 404
    assert "no stories for topic gone-topic" in pruned.text


def test_the_api_draws_an_alerts_chart(api_client: Any) -> None:
    png = api_client.get("/api/v1/alerts/a1/chart.png")
    assert png.status_code == 200
    assert png.content.startswith(b"\x89PNG")
    assert api_client.get("/api/v1/alerts/a1/chart.png", headers={"Authorization": ""}).status_code == 401
    missing = api_client.get("/api/v1/alerts/zz/chart.png")
    assert missing.status_code == 404
    assert "no alert with id 'zz'" in missing.json()["detail"]
