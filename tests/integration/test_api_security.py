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
from tests.fixtures.store import LOCAL

BIG = b"x" * (MAX_BODY_BYTES + 1)


def _app(tmp_path: Path, token: str | None = None) -> Any:
    settings = Settings(
        store=StoreSettings(url=f"duckdb:///{tmp_path / 'h.duckdb'}"), api=ApiSettings(token=token)
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
    with TestClient(app, client=("10.0.0.5", 4321)) as remote:
        refused = remote.delete("/api/v1/subscriptions/desk")
        assert refused.status_code == 401
        assert "answers loopback clients only" in refused.json()["detail"]
        assert remote.get("/api/v1/health").json()["store"] is None
        # Nor may it follow alert links (no links are signed without a token): mute, verdicts, charts.
        muted = remote.post("/feedback/a1/mute", data={"for": "7d"})
        assert muted.status_code == 403, muted.text
        assert remote.post("/feedback/a1", data={"verdict": "tp"}).status_code == 403
        assert remote.get("/feedback/a1/chart.png").status_code == 403
    with TestClient(app, client=LOCAL) as local:
        assert local.get("/api/v1/trends").status_code == 200
        assert local.get("/api/v1/health").json()["store"]["scored_items"] == 0
        assert local.post("/feedback/a1", data={"verdict": "tp"}).status_code == 404  # past the check
    with TestClient(app, client=("::ffff:127.0.0.1", 4321)) as mapped:  # IPv4 to a server on "::"
        assert mapped.get("/api/v1/trends").status_code == 200


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
