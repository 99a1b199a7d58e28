"""finpulse.history: the pandas facade over a real store file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from finpulse import history
from finpulse.settings import Settings, StoreSettings
from store import DuckDBStore, HistoryStore, StoreError
from tests.fixtures.store import T0, seed_known

SPAN = {"start": "2024-03-04", "end": "2024-03-06"}


@pytest.fixture
def seeded(store_path: Path) -> Path:
    with DuckDBStore(store_path) as db:
        seed_known(db)
        db.put_feedback("a1", "fp", note="season", author="ann")
    return store_path


def test_trend_from_a_path(seeded: Path) -> None:
    df = history.trend(seeded, entity_kind="ticker", entity="aapl", granularity="day", **SPAN)
    assert df[["entity", "count", "negative_count"]].values.tolist() == [["AAPL", 3, 2], ["AAPL", 1, 0]]
    assert str(df["bucket_start"].dt.tz) == "UTC"
    # The kind in the name, as the API and the CLI take it; without a kind an entity is refused.
    named = history.trend(seeded, entity="ticker:aapl", granularity="day", **SPAN)
    assert named[["entity", "count"]].values.tolist() == [["AAPL", 3], ["AAPL", 1]]
    with pytest.raises(ValidationError, match="entity needs entity_kind"):
        history.trend(seeded, entity="aapl", **SPAN)


def test_every_function_from_url_and_settings(seeded: Path) -> None:
    settings = Settings(store=StoreSettings(url=f"duckdb:///{seeded}"))
    assert history.volume(settings, granularity="day", **SPAN)["count"].tolist() == [4, 2, 1]
    assert history.headlines(f"duckdb:///{seeded}", limit=2, **SPAN)["story_id"].tolist() == ["s4", "s1"]
    found = history.headlines(seeded, sentiment="any", search="misses apple", **SPAN)
    assert found["title"].tolist() == ["Apple misses estimates"]
    narrowed = history.entities(seeded, entity_kind="ticker", search="microsoft", **SPAN)
    assert narrowed[["entity", "count"]].values.tolist() == [["MSFT", 1]]
    busiest = history.entities(seeded, entity_kind="source", **SPAN)
    assert busiest[["entity", "count", "negative_count"]].values.tolist() == [
        ["reuters", 5, 4],
        ["bloomberg", 2, 0],
    ]
    assert history.alerts(seeded, state="fired", **SPAN)["alert_id"].tolist() == ["a3", "a1"]
    wins = history.windows(seeded, entity_kind="topic", entity="earnings", **SPAN)
    assert wins["count"].tolist() == [2, 1, 1]
    fb = history.feedback(seeded, **SPAN)
    assert fb[["alert_id", "verdict", "note", "entity"]].values.tolist() == [
        ["a1", "fp", "season", "earnings"]
    ]


def test_an_open_store_and_paging(known_store: HistoryStore) -> None:
    page = history.alerts(known_store, limit=1, offset=1, start=T0, end=T0 + timedelta(days=2))
    assert page["alert_id"].tolist() == ["a2"]
    assert history.trend(known_store, start=T0 - timedelta(days=9), end=T0).empty
    with pytest.raises(ValueError, match="offset needs a limit"):  # it was dropped: every row came back
        history.trend(known_store, offset=100)


def test_bad_arguments_say_what_is_wrong(seeded: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="granularity"):
        history.trend(seeded, granularity="week")
    with pytest.raises(ValidationError, match="must be before end"):
        history.trend(seeded, start="2024-03-05", end="2024-03-04")
    with pytest.raises(StoreError, match="does not exist yet"):
        history.trend(tmp_path / "missing.duckdb")
