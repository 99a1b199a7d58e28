"""What the API gives a caller without its token, and what any caller can cost it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from api.app import MAX_BODY_BYTES, create_app
from finpulse.settings import ApiSettings, Settings, StoreSettings
from tests.fixtures.store import LOCAL, LOCAL_URL

BIG = b"x" * (MAX_BODY_BYTES + 1)


def _app(tmp_path: Path, token: str | None = None, **api: Any) -> Any:
    settings = Settings(
        store=StoreSettings(url=f"duckdb:///{tmp_path / 'h.duckdb'}"), api=ApiSettings(token=token, **api)
    )
    return create_app(settings)


@pytest.mark.parametrize("path", ["/api/v1/backtest", "/api/v1/subscriptions"])
def test_a_body_over_the_limit_is_refused_before_it_is_read_whole(tmp_path: Path, path: str) -> None:
    """Before the token is checked (FastAPI reads and parses a JSON body first): 413, not 401
    after the body was held in memory whole."""
    with TestClient(_app(tmp_path, token="s3cret")) as client:
        response = client.post(path, content=BIG, headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text


def test_without_a_token_set_only_loopback_clients_are_answered(tmp_path: Path) -> None:
    """An app served by uvicorn itself on 0.0.0.0 without FINPULSE_API_TOKEN (finpulse api refuses)."""
    app = _app(tmp_path)
    # (Asking for localhost: the Host is the client's to write, so it is no check of the client.)
    with TestClient(app, client=("10.0.0.5", 4321), base_url="http://localhost:8000") as remote:
        refused = remote.delete("/api/v1/subscriptions/desk")
        assert refused.status_code == 401
        assert "answers loopback clients only" in refused.json()["detail"]
        assert remote.get("/api/v1/health").json()["store"] is None
        # Nor may it follow alert links (no links are signed without a token): mute, verdicts, charts.
        muted = remote.post("/feedback/a1/mute", data={"for": "7d"})
        assert muted.status_code == 403, muted.text
        assert remote.post("/feedback/a1", data={"verdict": "tp"}).status_code == 403
        assert remote.get("/feedback/a1/chart.png").status_code == 403
    with TestClient(app, client=LOCAL, base_url=LOCAL_URL) as local:
        assert local.get("/api/v1/trends").status_code == 200
        assert local.get("/api/v1/health").json()["store"]["scored_items"] == 0
        assert local.post("/feedback/a1", data={"verdict": "tp"}).status_code == 404  # past the check
    with TestClient(app, client=("::ffff:127.0.0.1", 4321), base_url=LOCAL_URL) as mapped:  # IPv4 to "::"
        assert mapped.get("/api/v1/trends").status_code == 200


def test_without_a_token_a_request_to_another_host_name_is_refused(tmp_path: Path) -> None:
    """DNS rebinding: a page on attacker.example, its name then pointed at 127.0.0.1, calls the API
    from the operator's browser as a loopback client, same-origin to the browser; its Host says so."""
    app = _app(tmp_path, public_url="https://finpulse.example:8443/desk")
    with TestClient(app, client=LOCAL, base_url="http://rebind.attacker.example:8000") as rebound:
        read = rebound.get("/api/v1/subscriptions")
        assert read.status_code == 400
        assert "'rebind.attacker.example:8000' is not this machine" in read.json()["detail"]
        desk = {"id": "desk", "channel": "#x", "filter": {"topics": ["*"]}}
        assert rebound.post("/api/v1/subscriptions", json=desk).status_code == 400
        assert rebound.post("/feedback/a1/mute", data={"for": "7d"}).status_code == 400
        assert rebound.get("/").status_code == 400
    for base in ("http://localhost:8000", "http://127.0.0.1", "http://[::1]:8000", "http://finpulse.example"):
        with TestClient(app, client=LOCAL, base_url=base) as local:
            assert local.get("/api/v1/subscriptions").status_code == 200, base
    # With a token, any name: behind a proxy, or a host's own name (the token is the check).
    with TestClient(_app(tmp_path, token="s3cret"), base_url="http://finpulse.internal") as named:
        assert named.get("/api/v1/trends", headers={"X-API-Token": "s3cret"}).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "null"}, 403),  # a sandboxed frame's
        ({"Origin": "http://127.0.0.1:9000"}, 403),  # another port: another origin
        ({"Sec-Fetch-Site": "cross-site"}, 403),
        ({}, 404),  # no browser's cross-site post (curl): past the check, to the unknown alert
        ({"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}, 404),
        # Its own page behind `Referrer-Policy: no-referrer`: Chromium sends Origin null, same-origin.
        ({"Origin": "null", "Sec-Fetch-Site": "same-origin"}, 404),
        ({"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-site"}, 403),  # a sibling subdomain
        ({"Origin": "https://tools.example"}, 404),  # public_url's, behind a proxy serving /finpulse
    ],
)
def test_the_alert_links_forms_refuse_posts_from_other_sites(
    tmp_path: Path, headers: dict[str, str], status: int
) -> None:
    """Without a token a page elsewhere could post them with the operator's loopback browser."""
    app = _app(tmp_path, public_url="https://tools.example/finpulse")
    with TestClient(app, client=LOCAL, base_url=LOCAL_URL) as local:
        for path, form in (("/feedback/a1/mute", {"for": "7d"}), ("/feedback/a1", {"verdict": "tp"})):
            posted = local.post(path, data=form, headers=headers)
            assert posted.status_code == status, (path, posted.text)
            if status == 403:
                assert "This form was sent from another site, so nothing was recorded" in posted.text


def test_made_up_methods_share_one_metrics_series(tmp_path: Path) -> None:
    def series() -> int:
        return sum(1 for m in REGISTRY.collect() if m.name == "finpulse_api_requests" for _ in m.samples)

    with TestClient(_app(tmp_path, token="s3cret")) as client:
        client.request("M0", "/")
        before = series()
        for n in range(1, 20):
            client.request(f"M{n}", "/")
    assert series() == before


def test_tokens_in_urls_stay_out_of_the_access_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """However the app is served (uvicorn --factory too): its start installs the filter."""
    with TestClient(_app(tmp_path, token="s3cret")), caplog.at_level(logging.INFO, "uvicorn.access"):
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "10.0.0.5:1", "GET", "/?token=s3cret", "1.1", 200
        )
    assert "s3cret" not in caplog.text
    assert "token=***" in caplog.text
