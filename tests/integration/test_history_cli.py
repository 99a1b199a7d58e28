"""`finpulse history` over a real DuckDB file: what it prints, what it writes, how it fails."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import typer
from fastapi.testclient import TestClient
from matplotlib.image import imread
from pydantic import SecretStr
from typer.testing import CliRunner

from api.app import create_app
from api.cli import register
from finpulse import history
from finpulse.settings import ApiSettings, Settings, StoreSettings
from model.labels import TOPICS
from store import DuckDBStore
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.store import API_TOKEN, alert, known_alerts, scored, seed_known

SPAN = ["--since", "2024-03-04", "--until", "2024-03-06"]
runner = CliRunner()
app = typer.Typer()
register(app)  # as the root CLI registers api's commands, `history` among them


@pytest.fixture
def seeded(store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    with DuckDBStore(store_path) as db:
        seed_known(db)
        db.put_feedback("a1", "fp", note="season", author="ann")
        for sub_id in ("desk", "apple"):
            db.put_subscription(sub_id, {"channel": "#alerts"})
    (tmp_path / "empty.toml").write_text("")
    monkeypatch.setenv("FINPULSE_CONFIG", str(tmp_path / "empty.toml"))
    monkeypatch.setenv("FINPULSE_STORE_URL", f"duckdb:///{store_path}")
    monkeypatch.setenv("FINPULSE_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("COLUMNS", "160")
    return store_path


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["history", *args])
    return result.exit_code, result.output


def _line(output: str, needle: str) -> str:
    return next(line for line in output.splitlines() if needle in line)


def _api(store_path: Path) -> TestClient:
    """The API over the same store, authorized."""
    settings = Settings(
        store=StoreSettings(url=f"duckdb:///{store_path}"), api=ApiSettings(token=SecretStr(API_TOKEN))
    )
    return TestClient(create_app(settings), headers={"Authorization": f"Bearer {API_TOKEN}"})


def test_trend_prints_buckets_and_marks_the_fired_alert(seeded: Path) -> None:
    code, out = _run("trend", "topic:earnings", "--granularity", "hour", *SPAN)
    assert code == 0, out
    # earnings: s1 (neg), s2 (pos) at 09:xx; s4 (neg), s5 at 10:xx; s7 (pos) next day
    assert "topic earnings, hour buckets" in out
    assert "5 stories, 40% negative, 1 alert fired" in out
    assert "1  50%" in _line(out, "2024-03-04 09:00")
    assert "▲ desk" in _line(out, "2024-03-04 10:00")  # a1 fired for 10:00-10:05; a2 only resolved
    assert "▲" not in _line(out, "2024-03-04 09:00")
    assert "+0.40" in _line(out, "2024-03-05 09:00")
    # 48 hourly buckets, three with stories: two sparkline cells, the rest empty
    spark = next(line for line in out.splitlines() if line.strip().startswith("03-04 00:00")).split()[2]
    assert len(spark) == 48
    assert spark.count("·") == 45


def test_trend_marks_alerts_by_their_windows_however_late_they_were_sent(seeded: Path) -> None:
    nine = datetime(2024, 3, 4, 9, 55, tzinfo=UTC)  # its window 09:55-10:00: the 09:00 hour's stories
    late = alert("late", "earnings", nine).model_copy(
        update={"created_at": datetime(2024, 3, 10, tzinfo=UTC)}
    )
    # sent in the range for a window days before it: not the range's
    early = alert("early", "earnings", datetime(2024, 3, 1, 9, tzinfo=UTC)).model_copy(
        update={"created_at": nine}
    )
    with DuckDBStore(seeded) as db:
        db.upsert_alerts([late, early])
    code, out = _run("trend", "topic:earnings", "--granularity", "hour", *SPAN)
    assert code == 0, out
    assert "5 stories, 40% negative, 2 alerts fired" in out  # a1 and the late one
    assert "▲ desk" in _line(out, "2024-03-04 09:00")
    assert "▲ desk" in _line(out, "2024-03-04 10:00")  # a1, 10:00-10:05
    # a1's window 10:00-10:05 holds s4 (10:02): its own 5-minute bucket, not the next (no stories).
    code, out = _run("trend", "topic:earnings", "--granularity", "5min", *SPAN)
    assert "▲ desk" in _line(out, "2024-03-04 10:00"), out


def test_an_alert_ending_in_a_bucket_without_stories_has_a_row_of_its_own(
    seeded: Path, tmp_path: Path
) -> None:
    # An hour's window, 09:40-10:40 (hopping): its last moment in the 5-minute bucket 10:35, where
    # earnings has no stories (10:02, 10:30). The header counted it; the table and --out left it out.
    hop = alert("hop", "earnings", datetime(2024, 3, 4, 9, 40, tzinfo=UTC)).model_copy(
        update={"window_end": datetime(2024, 3, 4, 10, 40, tzinfo=UTC)}
    )
    with DuckDBStore(seeded) as db:
        db.upsert_alerts([hop])
    out = tmp_path / "earnings.csv"
    code, text = _run("trend", "topic:earnings", "--granularity", "5min", *SPAN, "--out", str(out))
    assert code == 0, text
    assert "5 stories, 40% negative, 2 alerts fired" in text
    assert _line(text, "2024-03-04 10:35").split()[2:] == ["0", "-", "-", "▲", "desk"]
    rows = pd.read_csv(out)
    assert rows["alerts"].sum() == 2
    quiet = rows[rows["bucket_start"] == "2024-03-04 10:35:00+00"]
    assert quiet[["entity", "count", "alerts", "alerted_by"]].values.tolist() == [["earnings", 0, 1, "desk"]]
    assert quiet["negative_share"].isna().all()


def test_trend_without_since_starts_its_sparkline_at_the_first_story(seeded: Path) -> None:
    code, out = _run("trend", "topic:earnings", "--granularity", "hour", "--until", "2024-03-06")
    assert code == 0, out
    assert "2024-02-28 00:00 – 2024-03-06 00:00" in out  # the default week before --until
    assert "negative share from the first story" in out
    # from s1's bucket (03-04 09:00) to the range end: 39 hours, stories in three
    spark = next(line for line in out.splitlines() if line.strip().startswith("03-04 09:00")).split()[2]
    assert len(spark) == 39
    assert spark.count("·") == 36


def test_granularity_auto_follows_the_span_of_the_stories(seeded: Path) -> None:
    # The default: three hours of stories in the week before 12:00 are 5-minute buckets; from
    # the first story (03-04 09:00) to the end of the two days --since/--until name, hours.
    code, out = _run("trend", "topic:earnings", "--until", "2024-03-04T12:00")
    assert code == 0, out
    assert "topic earnings, 5min buckets" in out
    assert "2024-03-04 10:00" in out  # s4's bucket, a1's marker in it
    assert "hour buckets" in _run("trend", "topic:earnings", *SPAN)[1]
    code, out = _run("compare", "topic:earnings", "topic:macro", "--until", "2024-03-04T12:00")
    assert (code, "2 entities, 5min buckets" in out) == (0, True), out
    wide = ["--since", "2024-02-01", "--until", "2024-03-06"]  # 34 days asked, 39 hours of stories
    assert "2 entities, hour buckets" in _run("compare", "topic:earnings", "topic:macro", *wide)[1]


def test_granularity_auto_is_the_dashboards_whether_or_not_since_is_given(seeded: Path) -> None:
    # A month asked for, its stories in the last three hours (09:01-10:30): 5-minute buckets
    # from the first story to the end, as GET /granularity says; the sparkline still spans
    # the month --since asked for.
    month = ["--since", "2024-02-04T12:00", "--until", "2024-03-04T12:00"]
    code, out = _run("trend", "topic:earnings", *month)
    assert (code, "topic earnings, 5min buckets" in out) == (0, True), out
    assert "negative share over the range" in out
    assert next(line for line in out.splitlines() if line.strip().startswith("02-04 12:00"))
    code, out = _run("compare", "topic:earnings", "topic:macro", *month)
    assert (code, "2 entities, 5min buckets" in out) == (0, True), out
    with _api(seeded) as client:
        params = {"entity_kind": "topic", "start": "2024-02-04T12:00:00Z", "end": "2024-03-04T12:00:00Z"}
        for entity in ("earnings", None):
            step = client.get(
                "/api/v1/granularity", params={**params, "entity": entity} if entity else params
            )
            assert step.json() == {"granularity": "5min"}


def test_a_range_too_long_for_its_buckets_draws_from_the_first_story_to_the_last(
    seeded: Path, tmp_path: Path
) -> None:
    # 5-minute buckets from the first story (03-04 09:00) to 06-30: 33,876, more than a sparkline
    # lays out; to the last story (03-05 09:03), 289. The CLI refused what /trends/plot.png drew.
    long = ["--since", "2024-03-04", "--until", "2024-06-30", "--granularity", "5min"]
    png = tmp_path / "earnings.png"
    code, out = _run("trend", "topic:earnings", *long, "--png", str(png))
    assert code == 0, out
    assert "5 stories, 40% negative" in out
    assert "negative share from the first story to the last" in out
    assert _line(out, "03-04 09:00 ").split()[-2:] == ["03-05", "09:05"]  # the last story's bucket's end
    assert imread(png).shape[:2] == (500, 1100)
    code, out = _run("compare", "topic:earnings", "topic:macro", *long)
    assert (code, "2 entities, 5min buckets" in out) == (0, True), out
    params = {"entity": "earnings", "entity_kind": "topic", "granularity": "5min"}
    with _api(seeded) as client:
        drawn = client.get(
            "/api/v1/trends/plot.png", params={**params, "start": "2024-03-04", "end": "2024-06-30"}
        )
    assert drawn.status_code == 200


def test_too_many_buckets_is_a_clear_error_naming_a_coarser_granularity(seeded: Path) -> None:
    # A story 89 days after the first: more 5-minute buckets between them than 20,000, with
    # any range (it was a MemoryError from --since 0001-01-01), as /trends/plot.png answers 422.
    with DuckDBStore(seeded) as db:
        db.upsert_scored([scored("late", datetime(2024, 6, 1, tzinfo=UTC), "earnings", "negative", -0.5)])
    far = ["--since", "0001-01-01", "--until", "2026-06-01"]
    for args in (("trend", "topic:earnings"), ("compare", "topic:earnings", "topic:macro")):
        code, out = _run(*args, *far, "--granularity", "5min")
        assert code == 2, out
        assert "more than 20,000: use a coarser --granularity: hour or day" in " ".join(out.split())
    params = {"entity": "earnings", "entity_kind": "topic", "granularity": "5min"}
    with _api(seeded) as client:
        refused = client.get(
            "/api/v1/trends/plot.png", params={**params, "start": "2024-03-04", "end": "2024-06-30"}
        )
    assert refused.status_code == 422
    assert "use a coarser granularity: hour or day" in refused.json()["detail"][0]["msg"]
    # Fewer from --since than the limit: the sparkline spans the range asked for; more, it
    # starts at the first story.
    code, out = _run("trend", "topic:earnings", *far, "--granularity", "day")
    assert (code, "negative share from the first story" in out) == (0, True), out
    code, out = _run("trend", "topic:earnings", "--since", "2000-01-01", "--until", "2026-06-01")
    assert (code, "day buckets" in out, "negative share over the range" in out) == (0, True, True), out


def test_trend_reads_whole_at_80_columns_with_many_alerts_in_a_bucket(
    seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    ten = datetime(2024, 3, 4, 10, 5, tzinfo=UTC)  # a1's window on topic:earnings, 10:00-10:05
    more = [alert(f"a{n}", "earnings", ten + timedelta(minutes=5 * n)) for n in range(4, 6)]
    more.append(alert("a6", "earnings", ten + timedelta(minutes=30), subscription_id="research-team"))
    with DuckDBStore(seeded) as db:
        db.upsert_alerts(more)
    code, out = _run("trend", "topic:earnings", "--granularity", "hour", *SPAN)
    assert code == 0, out
    assert max(map(len, out.splitlines())) <= 80
    assert "…" not in out, out  # every count, share and time whole (the alerts cut them before)
    assert "▲ desk x3, research-team" in " ".join(out.split()), out  # a1, a4, a5 and a6 at 10:xx
    assert _line(out, "2024-03-04 10:00").split()[2:5] == ["2", "1", "50%"]  # stories, negative


def test_trend_writes_every_row_as_csv_parquet_json_and_a_png(seeded: Path, tmp_path: Path) -> None:
    expected = history.trend(seeded, entity_kind="ticker", entity="AAPL", granularity="day",
                             start="2024-03-04", end="2024-03-06")  # fmt: skip
    for suffix in ("csv", "parquet", "json"):
        out = tmp_path / "out" / f"aapl.{suffix}"
        code, text = _run(
            "trend", "ticker:$aapl", "--granularity", "day", "--rows", "1", *SPAN, "--out", str(out)
        )
        assert code == 0, text
        assert f"wrote {out}" in text.replace("\n", "")
        if suffix == "csv":
            got = pd.read_csv(out)
            assert out.read_text().splitlines()[1].startswith("2024-03-04 00:00:00+00,ticker,AAPL,")  # UTC
        elif suffix == "parquet":
            got = duckdb.sql(f"SELECT * FROM '{out}'").df()
        else:
            got = pd.DataFrame(json.loads(out.read_text()))
        got = got.fillna({"alerted_by": ""})  # a CSV's empty cell
        # With the alerts each bucket holds, as the table shows them (a3: subscription apple, day 2).
        assert got[["entity", "count", "negative_count", "alerts", "alerted_by"]].values.tolist() == [
            ["AAPL", 3, 2, 0, ""],
            ["AAPL", 1, 0, 1, "apple"],
        ]
        assert len(got) == len(expected)
    png = tmp_path / "aapl.png"
    code, text = _run("trend", "ticker:AAPL", *SPAN, "--png", str(png))
    assert code == 0, text
    assert imread(png).shape[:2] == (500, 1100)
    # No rows: the columns' types all the same (Parquet's were NULL and DOUBLE).
    empty = tmp_path / "none.parquet"
    assert _run("trend", "ticker:NONE", *SPAN, "--out", str(empty))[0] == 1
    types = {name: kind for name, kind, *_ in duckdb.sql(f"DESCRIBE SELECT * FROM '{empty}'").fetchall()}
    assert [types[c] for c in ("entity", "count", "negative_share", "alerts", "alerted_by")] == [
        "VARCHAR",
        "BIGINT",
        "DOUBLE",
        "BIGINT",
        "VARCHAR",
    ]


def test_json_rows_are_the_apis(seeded: Path, tmp_path: Path) -> None:
    # Every float to its last digit and times to the microsecond, as the API's JSON (pandas'
    # to_json wrote 10 digits: reuters' mean score -0.4000000000000001 as -0.4).
    runs = {
        "entities": (("entities", "--kind", "source"), {"entity_kind": "source"}),
        "headlines": (("headlines", "--sentiment", "any"), {"sentiment": "any"}),
    }
    with _api(seeded) as client:
        for what, (args, params) in runs.items():
            out = tmp_path / f"{what}.json"
            code, text = _run(*args, *SPAN, "--out", str(out))
            assert code == 0, text
            answer = client.get(
                f"/api/v1/{what}", params={**params, "start": "2024-03-04", "end": "2024-03-06"}
            )
            assert json.loads(out.read_text()) == answer.json()["items"], what


def test_compare_puts_entities_side_by_side(seeded: Path, tmp_path: Path) -> None:
    png = tmp_path / "compare.png"
    args = ("compare", "topic:earnings", "topic:macro", "ticker:$aapl", "--granularity", "hour", *SPAN)
    code, out = _run(*args, "--png", str(png))
    assert code == 0, out
    assert "3 entities, hour buckets" in out
    # stories, negative share, alerts fired (known_items / known_alerts by hand)
    assert _line(out, "topic:earnings ").split()[1:4] == ["5", "40%", "1"]
    assert _line(out, "topic:macro ").split()[1:4] == ["2", "100%", "0"]
    assert _line(out, "ticker:AAPL ").split()[1:4] == ["4", "50%", "1"]
    # Each bucket's negative share (stories) per entity; "-" where one had none.
    assert _line(out, "2024-03-04 10:00").split()[2:] == ["50%", "(2)", "100%", "(1)", "100%", "(1)"]
    assert _line(out, "2024-03-05 09:00").split()[2:] == ["0%", "(1)", "-", "0%", "(1)"]
    assert imread(png).shape[:2] == (400, 1100)


def test_long_names_take_more_lines_not_the_numbers_room_at_80_columns(
    seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    source = "Federal Reserve Board press releases (RSS)"
    at = datetime(2024, 3, 4, 10, 30, tzinfo=UTC)
    with DuckDBStore(seeded) as db:
        db.upsert_scored([scored(f"fed{n}", at, "Macro", "negative", -0.9, source=source) for n in range(3)])
    code, out = _run(
        "compare", f"source:{source}", "topic:earnings", "ticker:AAPL", "--granularity", "hour", *SPAN
    )
    assert code == 0, out
    assert max(map(len, out.splitlines())) <= 80
    # The name folds over lines; its counts and each bucket's time and cells stay whole.
    assert _line(out, "source:Federal").split()[-4:-1] == ["3", "100%", "0"], out  # the sparkline last
    assert _line(out, "2024-03-04 10:00").split()[2:4] == ["100%", "(3)"], out
    code, out = _run("entities", "--kind", "source", *SPAN)
    assert code == 0, out
    assert max(map(len, out.splitlines())) <= 80
    assert _line(out, "Federal").split()[-4:-1] == ["3", "100%", "-0.90"], out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("compare", "ticker:AAPL"), "compare two to 6 entities"),
        (("compare", "AAPL", "MSFT"), "is not KIND:NAME"),
    ],
)
def test_compare_needs_two_to_six_entities(seeded: Path, args: tuple[str, ...], needle: str) -> None:
    code, out = _run(*args)
    assert code == 2
    assert needle in out


def test_trend_of_an_unknown_name_suggests_the_known_ones(seeded: Path) -> None:
    code, out = _run("trend", "topic:Earnings", *SPAN)
    assert code == 1
    assert "no stories for topic 'Earnings'" in out
    assert "did you mean: topic:earnings" in out
    # A known name whose titles lack the words: the search emptied it, not the name.
    code, out = _run("trend", "topic:earnings", "-q", "zzzz", *SPAN)
    assert code == 1
    assert "topic earnings has 5 stories in the range without the search" in out
    assert "did you mean" not in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("trend", "acme"), "is not KIND:NAME"),
        (
            ("trend", "ticker:ACME", "--since", "2024-03-06", "--until", "2024-03-04"),
            "2024-03-06 00:00 UTC is not before --until (2024-03-04 00:00 UTC): the range would be empty",
        ),
        (("trend", "ticker:ACME", "--since", "2999-01-01"), "is not before now (the default --until)"),
        (("trend", "ticker:ACME", "--granularity", "week"), "'5min', 'hour' or 'day'"),
        (("trend", "ticker:ACME", "--since", "yesterday"), "is not ISO 8601"),
        (("trend", "ticker:AAPL", "--out", "aapl.xlsx"), ".csv, .parquet or .json"),
        (("entities", "--kind", "sector"), "--kind: Input should be 'topic', 'ticker' or 'source'"),
        (("alerts", "--state", "active"), "'fired', 'resolved' or 'open'"),
    ],
)
def test_bad_input_is_a_clear_error(seeded: Path, args: tuple[str, ...], needle: str) -> None:
    code, out = _run(*args)
    assert code == 2
    assert needle in " ".join(out.replace("│", " ").split())  # typer boxes and wraps its errors


def test_a_bad_out_suffix_is_refused_before_any_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINPULSE_STORE_URL", f"duckdb:///{tmp_path / 'absent.duckdb'}")
    for command in (("trend", "ticker:AAPL"), ("entities",), ("alerts",)):
        code, out = _run(*command, "--out", str(tmp_path / "rows.xlsx"))
        assert code == 2
        assert ".csv, .parquet or .json" in " ".join(out.replace("│", " ").split())
        assert "does not exist" not in out  # the store was never opened
    assert not (tmp_path / "absent.duckdb").exists()


def test_entities_busiest_first_with_their_sentiment(seeded: Path) -> None:
    code, out = _run("entities", "--kind", "ticker", *SPAN)
    assert code == 0, out
    aapl, msft = _line(out, "AAPL"), _line(out, "MSFT")
    assert out.index("AAPL") < out.index("MSFT")
    assert aapl.split()[1:4] == ["4", "50%", "+0.00"]
    assert msft.split()[1:4] == ["2", "50%", "-0.15"]


def test_sparklines_without_since_start_at_the_first_story(seeded: Path) -> None:
    # The default week before 12:00 holds three hours of stories, from 09:01: within a day the
    # sparklines count 5-minute buckets, two to a cell: 09:00-09:10, ..., 11:50-12:00.
    code, out = _run("entities", "--kind", "ticker", "--until", "2024-03-04T12:00")
    assert code == 0, out
    assert _line(out, "AAPL").split()[-1] == "▅" + "·" * 10 + "█" + "·" * 6  # s1 + s2, s6 at 10:59
    assert _line(out, "MSFT").split()[-1] == "▁" + "·" * 5 + "█" + "·" * 11  # s2, s4 at 10:02
    assert "negative trends from the first story in the range, 03-04 09:00 UTC" in out
    code, out = _run(
        "compare", "ticker:AAPL", "ticker:MSFT", "--granularity", "hour", "--until", "2024-03-04T12:00"
    )
    assert code == 0, out
    assert _line(out, "ticker:AAPL").split()[-1] == "▅█·"
    assert _line(out, "ticker:MSFT").split()[-1] == "▁█·"
    assert "from the first story in the range, 03-04 09:00 UTC" in out
    code, out = _run("entities", "--kind", "ticker", *SPAN)  # a chosen range: the whole of it
    assert "first story" not in out
    assert _line(out, "AAPL").split()[-1].startswith("·")


def test_entities_fit_80_columns_with_the_longest_topic_name_whole(
    seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "long.duckdb"
    at = datetime(2024, 3, 5, 12, tzinfo=UTC)
    longest = max(TOPICS, key=len)
    with DuckDBStore(path) as db:
        db.upsert_scored([scored("t1", at, longest, "negative", -0.8, title="Bond yields jump")])
    monkeypatch.setenv("FINPULSE_STORE_URL", f"duckdb:///{path}")
    monkeypatch.setenv("COLUMNS", "80")
    code, out = _run("entities", "--kind", "topic", *SPAN)
    assert code == 0, out
    row = _line(out, longest)  # the name whole, then every column: nothing cut to fit
    assert row.split()[-4:-1] == ["1", "100%", "-0.80"]
    assert "…" not in out, out
    assert max(map(len, out.splitlines())) <= 80


def test_movers_against_the_range_before(seeded: Path) -> None:
    day2 = ["--since", "2024-03-05", "--until", "2024-03-06"]
    code, out = _run("movers", "--kind", "topic", "--min-stories", "1", "--falling", *day2)
    assert code == 0, out
    assert "fell most" in out
    assert "against 2024-03-04 00:00 – 2024-03-05 00:00" in " ".join(out.split())  # the title wraps
    # earnings: 1 positive story on day 2 against 4 on day 1, two of them negative; the bar: 50 pts.
    assert _line(out, "earnings").split()[1:8] == ["1", "0%", "50%", "of", "4", "-50", "pts"]
    assert _line(out, "earnings").split()[-1] == "█████"
    # Rising: none of them (earnings fell; macro has no story on day 2).
    code, out = _run("movers", "--kind", "topic", "--min-stories", "1", *day2)
    assert (code, "earnings" in out) == (0, False), out
    assert "no topic with 1+ stories whose negative share rose" in " ".join(out.split())
    code, out = _run("movers", "--kind", "ticker", "--min-stories", "3", *day2)
    assert "no ticker with 3+ stories" in out
    frame = history.movers(
        seeded, entity_kind="ticker", start="2024-03-05", end="2024-03-06", min_stories=1, direction="down"
    )
    assert frame[["entity", "count", "previous_count"]].values.tolist() == [["AAPL", 1, 3]]
    assert frame["change"].round(4).tolist() == [round(0 - 2 / 3, 4)]


def test_headlines_most_negative_first(seeded: Path) -> None:
    code, out = _run("headlines", *SPAN, "--limit", "2")
    assert code == 0, out
    assert out.index("Microsoft warns") < out.index("Apple misses estimates")
    assert "headline s3" not in out  # third most negative, beyond --limit
    code, out = _run("headlines", "--entity", "ticker:msft", "--positive", *SPAN)
    assert code == 0, out
    assert "headline s2" in out
    assert "Microsoft warns" not in out


def test_headlines_read_as_lines_at_80_columns(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    title = "Acme shares sink after MoffettNathanson downgrade on weak guidance"  # 66 characters
    at = datetime(2024, 3, 4, 11, 0, tzinfo=UTC)
    with DuckDBStore(seeded) as db:
        db.upsert_scored(
            [scored("long", at, "Company | Product News", "negative", -0.9, ("ACME",), title=title)]
        )
    code, wide = _run("headlines", *SPAN, "--limit", "3")
    assert code == 0, wide
    assert title in wide  # 160 columns: every column, the title on one line
    assert "Company | Product News" in _line(wide, "2024-03-04 11:00")
    monkeypatch.setenv("COLUMNS", "80")
    code, out = _run("headlines", *SPAN, "--limit", "3")
    assert code == 0, out
    assert max(map(len, out.splitlines())) <= 80
    assert "…" not in out, out
    header = _line(out, "published (UTC)")
    # Without the topic and the source (in --out): the title at its least width, every cell whole.
    assert ("topic" in header, "source" in header, "tickers" in header) == (False, False, True)
    first = _line(out, "2024-03-04 11:00")  # the title in a few lines, not a tower of a word each
    assert len(first.split("ACME", 1)[1].strip()) >= 30, out
    assert title in " ".join(out.split())


def test_headlines_found_by_their_words(seeded: Path) -> None:
    code, out = _run("headlines", "--search", "HEADLINE", *SPAN)  # any sentiment, newest first
    assert code == 0, out
    title = "headlines, newest first, 2024-03-04 00:00 – 2024-03-06 00:00 UTC, titles holding 'HEADLINE'"
    assert title in " ".join(out.split())  # the title as rich wraps it
    assert out.index("headline s7") < out.index("headline s6") < out.index("headline s2")
    code, out = _run("headlines", "-q", "headline", "--sentiment", "negative", *SPAN)
    assert "negative headlines, most negative first" in out
    assert out.index("headline s3") < out.index("headline s6")  # -0.5 before -0.2
    assert "headline s7" not in out
    code, out = _run("headlines", "-q", "headline", "--sentiment", "negative", "--newest", *SPAN)
    assert out.index("headline s6") < out.index("headline s3")
    code, out = _run("headlines", "-q", "mergers", "--entity", "ticker:AAPL", *SPAN)
    assert (code, "no headlines for ticker:AAPL in" in out, "holding 'mergers'" in out) == (0, True, True)
    code, out = _run("headlines", "--sentiment", "gloomy", *SPAN)
    assert code == 2
    assert "sentiment" in out
    assert "'any'" in out
    code, out = _run("headlines", "--sentiment", "negative", "--positive", *SPAN)
    assert code == 2
    assert "--positive and --sentiment say different things" in out


def test_trends_entities_and_movers_of_the_stories_holding_words(seeded: Path) -> None:
    code, out = _run("entities", "--kind", "topic", "-q", "headline", *SPAN)
    assert code == 0, out
    assert "titles holding 'headline'" in " ".join(out.split())
    assert "3" in _line(out, "earnings")  # s2, s5, s7 of its five stories
    code, out = _run("trend", "topic:earnings", "--granularity", "day", "--search", "apple", *SPAN)
    assert code == 0, out
    assert "1 story, 100% negative" in out  # s1, "Apple misses estimates", alone
    code, out = _run("compare", "topic:earnings", "topic:macro", "-q", "microsoft", *SPAN)
    assert code == 0, out
    assert "titles holding 'microsoft'" in out
    code, out = _run("movers", "--kind", "topic", "--min-stories", "1", "-q", "nothing like this", *SPAN)
    assert (code, "no topic with 1+ stories" in out) == (0, True)


def test_alerts_with_verdicts(seeded: Path) -> None:
    code, out = _run("alerts", "--state", "fired", *SPAN)
    assert code == 0, out
    assert "fp" in _line(out, "topic:earnings")  # a1, marked a false positive
    a3 = _line(out, "ticker:AAPL")
    assert "60% vs 20%  0.001" in a3  # p as the Slack alert writes it
    # Newest first by when they were sent, which leads each row, then the window's end that day.
    sent = next(a for a in known_alerts() if a.alert_id == "a3").created_at
    assert a3.split()[:3] == [f"{sent:%Y-%m-%d}", f"{sent:%H:%M}", f"{sent - timedelta(seconds=2):%H:%M}"]
    assert "resolved" not in out
    assert "open" in a3  # fired, and no resolve has ended it; a2 ended a1
    assert "open" not in _line(out, "topic:earnings")
    code, out = _run("alerts", "--state", "open", *SPAN)
    assert code == 0, out
    assert "ticker:AAPL" in out
    assert "topic:earnings" not in out
    code, out = _run("alerts", "--subscription", "nobody", *SPAN)
    assert (code, "no alerts of --subscription nobody in" in out) == (0, True)
    # what the filter left out: a typo shows the names to use
    assert (
        "3 alerts in the range without them: subscriptions apple, desk; entities ticker:AAPL, topic:earnings"
        in (" ".join(out.split()))
    )
    # An alert found by the id its message showed (the first characters).
    code, out = _run("alerts", "--id", "a3", *SPAN)
    assert code == 0, out
    assert "ticker:AAPL" in out
    assert "topic:earnings" not in out
    code, out = _run("alerts", "--id", "zz", *SPAN)
    assert "no alerts of --id zz in" in out


def test_alerts_read_whole_at_80_columns(seeded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    # Two subscriptions, two entities: every column but the window's end, nothing cut.
    code, out = _run("alerts", *SPAN)
    assert code == 0, out
    assert max(map(len, out.splitlines())) <= 80
    assert "…" not in out, out
    assert "subscription" in out
    assert "window end" not in out
    assert "fp" in _line(out, "fired     desk")  # a1's verdict, on its row
    # One subscription's alerts on one entity: said once, in the title; the window's end fits.
    code, out = _run("alerts", "--subscription", "desk", *SPAN)
    assert code == 0, out
    assert "alerts of desk on topic:earnings, newest first" in out
    header = _line(out, "sent (UTC)")
    assert "window end" in header
    assert "subscription" not in header
    assert "entity" not in header


def test_a_missing_store_is_a_clear_error(
    seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINPULSE_STORE_URL", f"duckdb:///{tmp_path / 'nowhere.duckdb'}")
    code, out = _run("alerts")
    assert code == 2
    assert "does not exist yet" in out


def test_a_store_that_does_not_answer_exits_1_worth_trying_again(
    seeded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FINPULSE_STORE_URL", "postgresql://fp:s3cret@127.0.0.1:1/finpulse")
    monkeypatch.setenv("FINPULSE_STORE_LOCK_TIMEOUT_S", "1")
    code, out = _run("entities", *SPAN)
    assert code == 1, out  # not 2: a usage error would fail again as it is
    assert "did not answer" in out
    assert "s3cret" not in out


def test_a_database_the_server_does_not_have_is_said_in_its_words(
    seeded: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It read "did not answer ... (exit 1)", the server's own words only in the pool's warnings.
    monkeypatch.setenv("FINPULSE_STORE_URL", postgres_server.url("nodb"))
    monkeypatch.setenv("FINPULSE_STORE_LOCK_TIMEOUT_S", "1")
    code, out = _run("entities", *SPAN)
    assert code == 1, out  # a database created meanwhile answers the next try
    said = " ".join(out.split())
    assert "refused the connection (connection failed: " in said
    assert 'database "nodb" does not exist' in said


def test_a_store_older_code_wrote_is_a_clear_error(
    seeded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read-only opens never migrate: the queries met a column the old schema lacks (a traceback)."""
    import duckdb

    from store.migrations import MIGRATIONS, migrate

    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as con:
        migrate(con, "test", migrations=MIGRATIONS[:3])  # before scored_items.duplicate_of
    monkeypatch.setenv("FINPULSE_STORE_URL", f"duckdb:///{old}")
    for args in (("entities",), ("trend", "topic:earnings"), ("headlines",)):
        code, out = _run(*args, *SPAN)
        assert code == 2, out
        assert "has schema version 3, older than this finpulse reads" in " ".join(out.split()), out
    with DuckDBStore(old):  # a writer brings it up to date
        pass
    code, out = _run("entities", *SPAN)
    assert (code, "no stories in" in out) == (0, True), out


def test_names_and_titles_from_outside_print_as_written(seeded: Path) -> None:
    """A feed's source and title, an alert's entity, as they came: not rich markup ("[/]" was a
    MarkupError) and without control characters (a title's escapes cleared the screen)."""
    source = "[/]wire[red]"
    title = "\x1b[2J\x1b]0;owned\x07[/] Fed [link=https://evil.example]cuts[/link]"
    at = datetime(2024, 3, 4, 11, 0, tzinfo=UTC)
    with DuckDBStore(seeded) as db:
        db.upsert_scored([scored("odd", at, "[b]Macro", "negative", -0.9, source=source, title=title)])
        db.upsert_alerts([alert("odd-alert", source, at, subscription_id="[i]desk", entity_kind="source")])
    runs = {
        "entities": ("entities", "--kind", "source"),
        "movers": ("movers", "--kind", "source", "--min-stories", "1"),
        "headlines": ("headlines", "--entity", f"source:{source}"),
        "alerts": ("alerts", "--entity", f"source:{source}"),
        "trend": ("trend", f"source:{source}"),
        "compare": ("compare", f"source:{source}", "topic:earnings"),  # the name as a column header
    }
    for what, args in runs.items():
        code, out = _run(*args, *SPAN)
        assert code == 0, (what, out)
        assert source in out, (what, out)
        assert "\x1b" not in out, (what, out)
    code, out = _run("headlines", "--entity", f"source:{source}", *SPAN)
    assert "]0;owned[/] Fed [link=https://evil.example]cuts[/link]" in " ".join(out.split()), out
    assert "[b]Macro" in out
    code, out = _run("alerts", "--entity", f"source:{source}", *SPAN)
    assert f"alerts of [i]desk on source:{source}, newest first" in out
    # Nothing found: what was asked for, as written.
    for args, code_, said in (
        (("headlines", "--entity", "source:[/wire]"), 0, "no negative headlines for source:[/wire] in"),
        (("alerts", "--subscription", "[/desk]"), 0, "no alerts of --subscription [/desk] in"),
        (("entities", "-q", "[/x]"), 0, "titles holding '[/x]'"),
        (("movers", "-q", "[/x]"), 0, "titles holding '[/x]'"),
        (("compare", "topic:earnings", "topic:macro", "-q", "[/x]"), 1, "titles holding '[/x]'"),
    ):
        code, out = _run(*args, *SPAN)
        assert (code, said in " ".join(out.split())) == (code_, True), out


def test_a_search_without_words_names_the_option_as_the_api_names_its_field(seeded: Path) -> None:
    code, out = _run("trend", "ticker:AAPL", "-q", "  ", *SPAN)
    assert code == 2
    assert "error: --search / -q: search needs a word" in out  # it read "range: ..."
    with _api(seeded) as client:
        [error] = client.get("/api/v1/trends", params={"search": "  "}).json()["detail"]
    assert (error["loc"], error["msg"]) == (["query", "search"], "Value error, search needs a word")
