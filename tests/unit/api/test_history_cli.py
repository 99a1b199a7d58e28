"""The history CLI's pure pieces: bars, sparklines, the bucket grid, output formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
import typer

from api.history_cli import output_format
from api.text_charts import (
    EMPTY,
    MAX_BUCKETS,
    TooManyBuckets,
    auto_granularity,
    bucket_count,
    bucket_series,
    coarse_granularity,
    share_bar,
    spark_start,
    sparkline,
)


def test_share_bar_counts_eighths_of_a_cell() -> None:
    assert share_bar(0.0) == ""
    assert share_bar(1.0) == "█" * 10
    assert share_bar(0.5) == "█" * 5
    assert share_bar(0.33) == "███▎"  # 26.4 eighths -> 26 = 3 cells and 2 eighths
    assert share_bar(1.7) == share_bar(1.0)
    assert share_bar(-0.2) == ""


def test_sparkline_one_cell_per_bucket_up_to_the_width() -> None:
    assert sparkline([4, 0, 4, 2], [0, 0, 4, 1]) == f"▁{EMPTY}█▅"  # 1/2 -> 3.5 -> 4 of 0..7
    assert sparkline([], []) == ""


def test_sparkline_merges_buckets_by_summing_their_stories() -> None:
    # 6 buckets into 3 cells: (1 of 2), (0 of 0), (3 of 3)
    assert sparkline([1, 1, 0, 0, 2, 1], [1, 0, 0, 0, 2, 1], width=3) == f"▅{EMPTY}█"
    assert len(sparkline([1] * 500, [0] * 500, width=48)) == 48


def test_bucket_series_fills_empty_buckets_with_zero() -> None:
    start = datetime(2026, 3, 2, 9, 20, tzinfo=UTC)  # mid-bucket: the grid starts at 09:00
    points = pd.DataFrame(
        {
            "bucket_start": pd.to_datetime(["2026-03-02 09:00", "2026-03-02 11:00"], utc=True),
            "count": [3, 5],
            "negative_count": [1, 4],
        }
    )
    counts, negatives = bucket_series(points, start, start + timedelta(hours=3), "hour")
    assert (counts, negatives) == ([3, 0, 5, 0], [1, 0, 4, 0])
    five = bucket_series(points.iloc[:0], start, start + timedelta(minutes=30), "5min")
    assert five == ([0] * 6, [0] * 6)


def test_sparklines_start_at_the_chosen_start_or_the_first_bucket_with_stories() -> None:
    start = datetime(2026, 3, 2, 9, 20, tzinfo=UTC)
    end = datetime(2026, 3, 5, tzinfo=UTC)
    later = pd.Series(pd.to_datetime(["2026-03-04 11:00", "2026-03-03 10:00"], utc=True))
    assert spark_start(start, end, later, False, "hour") == datetime(2026, 3, 3, 10, tzinfo=UTC)
    assert spark_start(start, end, later, True, "hour") == start
    assert spark_start(start, end, later.iloc[:0], False, "hour") == start
    # a bucket begun before the range's start (floored) does not move the start back
    early = pd.Series(pd.to_datetime(["2026-03-02 09:00"], utc=True))
    assert spark_start(start, end, early, False, "hour") == start
    # --since too far back for its buckets: from the first story instead
    since = datetime(1, 1, 1, tzinfo=UTC)
    assert spark_start(since, end, later, True, "5min") == datetime(2026, 3, 3, 10, tzinfo=UTC)


def test_buckets_past_the_limit_are_refused_naming_a_coarser_step() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    points = pd.DataFrame({"bucket_start": [], "count": [], "negative_count": []})
    with pytest.raises(
        TooManyBuckets, match=r"5min buckets .* more than 20,000: use a coarser granularity: hour or day"
    ):
        bucket_series(points, start, datetime(2026, 6, 1, tzinfo=UTC), "5min")
    with pytest.raises(TooManyBuckets, match="give a shorter range"):
        bucket_series(points, datetime(1, 1, 1, tzinfo=UTC), start, "day")
    fits = start + MAX_BUCKETS * timedelta(minutes=5)
    assert len(bucket_series(points, start, fits, "5min")[0]) == MAX_BUCKETS


def test_auto_granularity_by_the_span_from_the_first_story() -> None:
    end = datetime(2026, 3, 10, tzinfo=UTC)
    week = end - timedelta(days=7)
    at = lambda *days: pd.Series(pd.to_datetime([end - timedelta(days=d) for d in days], utc=True))  # noqa: E731
    assert auto_granularity(week, end, at(0.5, 0.1)) == "5min"  # half a day of stories
    assert auto_granularity(week, end, at(3)) == "hour"
    assert auto_granularity(end - timedelta(days=90), end, at(40)) == "day"
    assert auto_granularity(week, end, at()) == "hour"  # no stories: the range
    assert coarse_granularity(end - timedelta(days=31), end) == "hour"
    assert coarse_granularity(end - timedelta(days=32), end) == "day"


def test_auto_granularity_stays_within_the_bucket_limit() -> None:
    # The longest spans auto reads in 5 minutes and in hours; days fit 54 years of stories.
    end = datetime(2026, 3, 10, tzinfo=UTC)
    for days, step in ((1, "5min"), (31, "hour"), (54 * 365, "day")):
        start = end - timedelta(days=days)
        picked = auto_granularity(start, end, pd.Series(pd.to_datetime([start], utc=True)))
        assert (picked, bucket_count(start, end, picked) <= MAX_BUCKETS) == (step, True)


def test_output_format_by_suffix() -> None:
    assert [output_format(p) for p in (Path("a.CSV"), Path("b.parquet"), Path("c.json"))] == [
        "csv",
        "parquet",
        "json",
    ]
    with pytest.raises(typer.BadParameter, match=r"\.csv, \.parquet or \.json"):
        output_format(Path("trend.xlsx"))
