"""`GET /api/v1/sources`: each news source's health from the ingestor's state files (written by the
ingestor's own StateStore), over the API's settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from finpulse.schema import utcnow
from finpulse.settings import IngestSettings, Settings, StoreSettings
from ingest.state import SourceState, StateStore

SOURCES = """
[[feeds]]
name = "wire"
url = "https://wire.example/rss"
interval_s = 300
[[feeds]]
name = "broken"
url = "https://broken.example/rss"
[[feeds]]
name = "quiet"
url = "https://quiet.example/rss"
interval_s = 60
[[feeds]]
name = "new"
url = "https://new.example/rss"
[[feeds]]
name = "paused"
url = "https://paused.example/rss"
enabled = false
"""


@pytest.fixture
def client(tmp_path: Path, store_path: Path) -> Iterator[tuple[Any, Path]]:
    sources = tmp_path / "sources.toml"
    sources.write_text(SOURCES)
    settings = Settings(
        store=StoreSettings(url=f"duckdb:///{store_path}"),
        ingest=IngestSettings(sources_file=sources, state_dir=tmp_path / "ingest"),
    )
    with TestClient(create_app(settings)) as c:
        yield c, tmp_path


def test_each_sources_health_from_the_ingestors_state(client: tuple[Any, Path]) -> None:
    c, tmp_path = client
    before = c.get("/api/v1/sources").json()
    assert before["state_found"] is False  # no ingestor has polled here yet
    assert {s["name"]: s["health"] for s in before["items"]}["wire"] == "waiting"

    now = utcnow()
    states = StateStore(tmp_path / "ingest")
    ago = now - timedelta(minutes=2)
    states.save(SourceState(source="wire", last_poll_at=ago, last_success_at=ago, items_published=42))
    states.save(
        SourceState(
            source="broken", last_poll_at=ago, consecutive_errors=3, errors_total=3,
            last_error="http_404: https://broken.example/rss: HTTP 404; check the URL",
        )
    )  # fmt: skip
    states.save(SourceState(source="quiet", last_poll_at=now - timedelta(minutes=4), last_success_at=ago))
    answer = c.get("/api/v1/sources").json()
    assert answer["state_found"] is True
    by_name = {s["name"]: s for s in answer["items"]}
    assert list(by_name) == ["wire", "broken", "quiet", "new", "paused"]  # the file's order
    assert {n: s["health"] for n, s in by_name.items()} == {
        "wire": "ok", "broken": "failing", "quiet": "late", "new": "waiting", "paused": "disabled",
    }  # fmt: skip
    assert by_name["wire"]["items_published"] == 42
    assert by_name["broken"]["detail"] == (
        "3 failed poll(s) in a row: http_404: https://broken.example/rss: HTTP 404; check the URL"
    )
    assert "is `finpulse ingest` running?" in by_name["quiet"]["detail"]


def test_an_unreadable_sources_file_is_a_503_naming_it(client: tuple[Any, Path]) -> None:
    c, tmp_path = client
    (tmp_path / "sources.toml").write_text("[[feeds]\n")
    r = c.get("/api/v1/sources")
    assert r.status_code == 503
    assert "sources.toml cannot be read" in r.json()["detail"]
