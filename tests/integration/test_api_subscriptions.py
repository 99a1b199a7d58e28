"""Subscriptions CRUD with the alerts' Subscription model."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from finpulse.schema import utcnow
from store import DuckDBStore
from tests.fixtures.store import alert

SUB = {"id": "energy-desk", "channel": "C0123", "filter": {"topics": ["Energy | Oil"], "tickers": ["XOM"]}}


def test_crud_round_trip(api_client: Any) -> None:
    assert api_client.get("/api/v1/subscriptions").json() == []
    created = api_client.post("/api/v1/subscriptions", json=SUB)
    assert created.status_code == 201
    assert created.json()["detector"]["min_volume"] == 10  # defaults filled in by the model
    dup = api_client.post("/api/v1/subscriptions", json=SUB)
    assert dup.status_code == 409
    assert "PUT to replace" in dup.json()["detail"]
    changed = {
        **SUB,
        "channel": "C999",
        "mute": [{"from": "2025-01-01T00:00:00Z", "until": "2025-01-02T00:00:00Z"}],
    }
    put = api_client.put("/api/v1/subscriptions/energy-desk", json=changed)
    assert put.status_code == 200
    got = api_client.get("/api/v1/subscriptions/energy-desk").json()
    assert got["channel"] == "C999"
    assert got["mute"][0]["from"] == "2025-01-01T00:00:00Z"
    assert [s["id"] for s in api_client.get("/api/v1/subscriptions").json()] == ["energy-desk"]
    assert api_client.delete("/api/v1/subscriptions/energy-desk").status_code == 204
    gone = api_client.delete("/api/v1/subscriptions/energy-desk")
    assert gone.status_code == 404
    assert api_client.get("/api/v1/subscriptions/energy-desk").status_code == 404


def test_a_put_with_if_match_does_not_undo_a_change_made_since(api_client: Any) -> None:
    api_client.post("/api/v1/subscriptions", json=SUB)
    opened = api_client.get("/api/v1/subscriptions/energy-desk")  # the editor's copy, and its ETag
    etag = opened.headers["ETag"]
    muted = {**SUB, "mute": [{"from": "2025-01-01T00:00:00Z", "until": "2025-01-02T00:00:00Z"}]}
    assert api_client.put("/api/v1/subscriptions/energy-desk", json=muted).status_code == 200  # a mute
    stale = api_client.put(
        "/api/v1/subscriptions/energy-desk", json=opened.json(), headers={"If-Match": etag}
    )
    assert stale.status_code == 412
    assert "load it again" in stale.json()["detail"]
    assert api_client.get("/api/v1/subscriptions/energy-desk").json()["mute"]  # kept
    fresh = api_client.get("/api/v1/subscriptions/energy-desk")
    edit = {**fresh.json(), "channel": "C777"}
    put = api_client.put(
        "/api/v1/subscriptions/energy-desk", json=edit, headers={"If-Match": fresh.headers["ETag"]}
    )
    assert put.status_code == 200
    bad = api_client.put("/api/v1/subscriptions/energy-desk", json=edit, headers={"If-Match": '"yesterday"'})
    assert bad.status_code == 412


def test_writes_give_the_etag_a_get_gives_so_edits_chain(api_client: Any) -> None:
    created = api_client.post("/api/v1/subscriptions", json=SUB)
    assert created.status_code == 201
    assert created.headers["Location"] == "/api/v1/subscriptions/energy-desk"
    assert created.headers["ETag"] == api_client.get(created.headers["Location"]).headers["ETag"]
    etag = created.headers["ETag"]
    for channel in ("C1", "C2"):  # each PUT's ETag is the If-Match of the next: no GET between
        put = api_client.put(
            "/api/v1/subscriptions/energy-desk", json={**SUB, "channel": channel}, headers={"If-Match": etag}
        )
        assert put.status_code == 200, put.text
        assert put.headers["ETag"] != etag
        etag = put.headers["ETag"]
        assert api_client.get("/api/v1/subscriptions/energy-desk").headers["ETag"] == etag
    plain = api_client.put("/api/v1/subscriptions/energy-desk", json=SUB)  # no If-Match: ETag too
    assert plain.headers["ETag"] == api_client.get("/api/v1/subscriptions/energy-desk").headers["ETag"]
    stale = api_client.put("/api/v1/subscriptions/energy-desk", json=SUB, headers={"If-Match": etag})
    assert stale.status_code == 412


def test_a_put_with_if_match_to_a_missing_subscription_is_a_404(api_client: Any) -> None:
    etag = api_client.post("/api/v1/subscriptions", json=SUB).headers["ETag"]
    assert api_client.delete("/api/v1/subscriptions/energy-desk").status_code == 204
    for if_match in (etag, '"yesterday"', "*"):  # whatever it says: no subscription to change
        r = api_client.put("/api/v1/subscriptions/energy-desk", json=SUB, headers={"If-Match": if_match})
        assert r.status_code == 404, (if_match, r.text)
        assert r.json()["detail"] == "no subscription 'energy-desk'"
    assert api_client.get("/api/v1/subscriptions").json() == []
    assert api_client.put("/api/v1/subscriptions/energy-desk", json=SUB).status_code == 200  # creates


def test_invalid_subscriptions_get_a_422_naming_the_field(api_client: Any) -> None:
    cases = [
        ({**SUB, "filter": {}}, "filter watches nothing"),
        ({**SUB, "id": "bad id!"}, "String should match pattern"),
        ({k: v for k, v in SUB.items() if k != "channel"}, "Field required"),
        ({**SUB, "detector": {"min_rise": 0.1, "resolve_rise": 0.2}}, "must be below min_rise"),
        ({**SUB, "mute": [{"weekdays": ["mon"], "timezone": "Mars/Olympus"}]}, "unknown timezone"),
        ({**SUB, "surprise": 1}, "Extra inputs are not permitted"),
    ]
    for body, needle in cases:
        r = api_client.post("/api/v1/subscriptions", json=body)
        assert r.status_code == 422, body
        assert needle in str(r.json()["detail"]), body
    mismatch = api_client.put("/api/v1/subscriptions/other", json=SUB)
    assert mismatch.status_code == 422
    [error] = mismatch.json()["detail"]  # the documented shape, as the model's own 422s
    assert error["loc"] == ["body", "id"]
    assert "differs from the path" in error["msg"]
    assert api_client.get("/api/v1/subscriptions").json() == []


def test_a_test_message_needs_a_sink_that_can_send(api_client: Any) -> None:
    assert api_client.post("/api/v1/subscriptions/energy-desk/test").status_code == 404
    api_client.post("/api/v1/subscriptions", json=SUB)
    # The default sink is Slack and this server has no token: a 503 that names the setting.
    refused = api_client.post("/api/v1/subscriptions/energy-desk/test")
    assert refused.status_code == 503
    assert "FINPULSE_ALERTS_SLACK_TOKEN" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) > 0  # as every 503
    unknown = api_client.post("/api/v1/subscriptions/energy-desk/test", params={"sink": "pager"})
    assert unknown.status_code == 503
    assert "unknown sink 'pager'" in unknown.json()["detail"]
    [console] = api_client.post("/api/v1/subscriptions/energy-desk/test", params={"sink": "console"}).json()
    assert console == {
        "subscription_id": "energy-desk",
        "channel": "C0123",
        "sink": "console",
        "sent": True,
        "detail": "sent",
    }


def test_a_subscriptions_overview(api_client: Any, api_store: Path) -> None:
    assert api_client.get("/api/v1/subscriptions/desk/overview").status_code == 404
    now = utcnow()
    desk = {
        "id": "desk",
        "channel": "#alerts",
        "filter": {"topics": ["*"]},
        "digest": {"at": "07:30:00", "timezone": "Europe/London"},
        "mute": [
            {
                "from": (now - timedelta(hours=1)).isoformat(),
                "until": (now + timedelta(hours=2)).isoformat(),
                "entities": ["ticker:TSLA"],
            }
        ],
    }
    api_client.post("/api/v1/subscriptions", json=desk)
    with DuckDBStore(api_store) as db:
        db.upsert_alerts(
            [alert("d1", "earnings", now - timedelta(hours=3)), alert("d2", "macro", now - timedelta(days=9))]
        )
        db.put_feedback("d1", "tp")
    o = api_client.get("/api/v1/subscriptions/desk/overview").json()
    assert (o["state"], o["alerts"], o["true_positives"], o["false_positives"]) == ("on", 1, 1, 0)
    assert o["still_open"] == 1  # no resolve has ended d1
    assert o["entity_mutes"][0].startswith("ticker:TSLA until ")
    assert o["summary"].startswith(
        "on · every topic · digest 07:30 Europe/London · 1 alert in 7 days (1 tp / 0 fp), 1 still open, "
        "latest "
    )
    assert o["summary"].endswith(" topic earnings · muted " + o["entity_mutes"][0])
    # It watches topics only: a mute of a ticker mutes nothing (as `alerts check` would say).
    assert o["warnings"] == [
        "mute #1: ticker:TSLA is not one the subscription watches (filter), so it mutes nothing"
    ]
    wider = api_client.get("/api/v1/subscriptions/desk/overview", params={"days": 30}).json()
    assert wider["alerts"] == 2
