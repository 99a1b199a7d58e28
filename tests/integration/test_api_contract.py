"""What the API's answers promise a client beyond their bodies: the 422s' `loc`, the 401 and 503
its schema lists, and a Retry-After on every 503."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from finpulse.settings import ApiSettings, KafkaSettings, Settings, StoreSettings
from store import StoreError
from tests.conftest import free_port
from tests.fixtures.store import LOCAL, LOCAL_URL


@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("/api/v1/trends", {"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z"}, "start"),
        ("/api/v1/alerts", {"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z"}, "start"),
        ("/api/v1/headlines", {"entity": "AAPL"}, "entity"),
    ],
)
def test_a_query_models_own_check_names_its_field(
    api_client: Any, path: str, params: dict[str, str], loc: str
) -> None:
    r = api_client.get(path, params=params)
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["query", loc]
    assert error["msg"].removeprefix("Value error, ").startswith(loc)
    assert "input" not in error  # not the whole query echoed back


def test_an_end_before_the_default_start_is_placed_on_end(api_client: Any) -> None:
    # No start sent: the default one (a week before, or the open alerts' span) is not the client's.
    [error] = api_client.get(
        "/api/v1/alerts", params={"state": "open", "end": "1960-01-01T00:00:00Z"}
    ).json()["detail"]
    assert error["loc"] == ["query", "end"]


def test_other_422s_keep_their_field(api_client: Any) -> None:
    [error] = api_client.get("/api/v1/trends", params={"limit": "x"}).json()["detail"]
    assert error["loc"] == ["query", "limit"]
    assert error["input"] == "x"


def test_the_schema_lists_401_and_503_on_the_api_routes(api_client: Any) -> None:
    paths = api_client.get("/openapi.json").json()["paths"]
    for path, method in [("/api/v1/trends", "get"), ("/api/v1/subscriptions/{sub_id}", "put")]:
        responses = paths[path][method]["responses"]
        assert {"401", "503"} <= set(responses), path
        assert "Retry-After" in responses["503"]["headers"]
    assert "401" not in paths["/api/v1/health"]["get"]["responses"]  # no token needed there


def test_kafka_away_is_a_503_with_retry_after(tmp_path: Path) -> None:
    away = KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}", request_timeout_s=2)
    settings = Settings(store=StoreSettings(url=f"duckdb:///{tmp_path / 'h.duckdb'}"), kafka=away)
    with TestClient(create_app(settings), client=LOCAL, base_url=LOCAL_URL) as c:
        r = c.get("/api/v1/sources")
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) > 0


def test_a_store_error_is_a_503_with_retry_after(api_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def fails() -> None:
        raise StoreError("the database is read-only")

    monkeypatch.setattr(api_client.app.state.store, "list_subscriptions", fails)
    r = api_client.get("/api/v1/subscriptions")
    assert r.status_code == 503
    assert int(r.headers["Retry-After"]) > 0


def test_cors_only_for_the_origins_set(tmp_path: Path) -> None:
    store = StoreSettings(url=f"duckdb:///{tmp_path / 'h.duckdb'}")
    preflight = {"Origin": "https://bi.example", "Access-Control-Request-Method": "GET"}
    with TestClient(
        create_app(Settings(store=store)), client=LOCAL, base_url=LOCAL_URL
    ) as c:  # the default: none
        assert "access-control-allow-origin" not in c.options("/api/v1/trends", headers=preflight).headers
    api = ApiSettings(cors_origins=("https://bi.example",))
    with TestClient(create_app(Settings(store=store, api=api)), client=LOCAL, base_url=LOCAL_URL) as c:
        allowed = c.options(
            "/api/v1/trends", headers={**preflight, "Access-Control-Request-Headers": "authorization"}
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://bi.example"
        got = c.get("/api/v1/trends", headers={"Origin": "https://bi.example"})
        assert got.headers["access-control-allow-origin"] == "https://bi.example"
        other = c.get("/api/v1/trends", headers={"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers
