"""Alert history, feedback over the API and the Slack feedback link."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from alerts.links import feedback_url, link_token
from tests.fixtures.store import API_TOKEN

SPAN = {"start": "2024-03-04T00:00:00Z", "end": "2024-03-06T00:00:00Z"}


def test_alert_history_and_detail(api_client: Any) -> None:
    items = api_client.get("/api/v1/alerts", params={**SPAN, "state": "fired"}).json()["items"]
    assert [a["alert_id"] for a in items] == ["a3", "a1"]
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


def test_slack_link_shows_a_form_then_records_on_post(api_client: Any) -> None:
    url = feedback_url("http://testserver", SecretStr(API_TOKEN), "a1", "tp")
    page = api_client.get(url, headers={"Authorization": ""})
    assert page.status_code == 200
    assert "Mark as true positive" in page.text
    assert api_client.get("/api/v1/alerts/a1").json()["feedback"] is None  # a GET changes nothing
    token = link_token(SecretStr(API_TOKEN), "a1", "tp")
    done = api_client.post(
        "/feedback/a1",
        data={"verdict": "tp", "token": token, "author": "<b>eve</b>", "note": "yes"},
        headers={"Authorization": ""},
    )
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
