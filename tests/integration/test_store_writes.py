"""Idempotent batched upserts, feedback and subscriptions on a real DuckDB file and a real
PostgreSQL database (the `store` fixture runs each test on both)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from finpulse.schema import EntityKind
from store import Changed, HistoryStore, NotFound, WindowsQuery
from tests.fixtures.store import T0, alert, known_alerts, known_items, known_windows, scored, window


def _dump(db: HistoryStore, table: str) -> list[tuple[object, ...]]:
    with db._connection() as con:
        return [tuple(row) for row in con.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()]


def test_writing_everything_twice_changes_nothing(store: HistoryStore) -> None:
    assert store.upsert_scored(known_items()) == 7
    assert store.upsert_windows(known_windows()) == 5
    assert store.upsert_alerts(known_alerts()) == 3
    before = {t: _dump(store, t) for t in ("scored_items", "windows", "alerts")}
    store.upsert_scored(known_items())
    store.upsert_windows(known_windows())
    store.upsert_alerts(list(reversed(known_alerts())))
    assert {t: _dump(store, t) for t in before} == before
    stats = store.stats()
    assert (stats.scored_items, stats.windows, stats.alerts) == (7, 5, 3)


def test_duplicates_inside_one_batch_are_one_row(store: HistoryStore) -> None:
    item = scored("dup", T0, "earnings", "negative", -0.5)
    assert store.upsert_scored([item, item, item]) == 1
    assert store.stats().scored_items == 1


def test_a_rescored_item_replaces_the_old_scores(store: HistoryStore) -> None:
    store.upsert_scored([scored("s", T0, "earnings", "negative", -0.5, model_version="m1")])
    store.upsert_scored([scored("s", T0, "macro", "positive", 0.5, model_version="m2")])
    (row,) = _dump(store, "scored_items")
    assert row[6:10] == ("macro", "positive", 0.5, "m2")


def test_higher_window_revision_wins_in_any_order(store: HistoryStore) -> None:
    old, new = window("earnings", T0, 4, 1, revision=1), window("earnings", T0, 6, 3, revision=2)
    store.upsert_windows([new])
    store.upsert_windows([old])  # a late replay of an older revision
    (stored,) = store.window_series("topic", "earnings", start=T0, end=T0 + timedelta(hours=1))
    assert (stored.count, stored.revision) == (6, 2)
    newest = window("earnings", T0, 7, 3, revision=3)
    store.upsert_windows([old, newest, new])  # one batch: the highest revision is kept
    (stored,) = store.window_series("topic", "earnings", start=T0, end=T0 + timedelta(hours=1))
    assert stored == newest


def test_a_window_keeps_its_first_revision_for_the_backtest(store: HistoryStore) -> None:
    hour = {"start": T0, "end": T0 + timedelta(hours=1)}
    for name, order in (("one", "0 1"), ("batch", "10"), ("again", "0 1 0")):
        first, late = window(name, T0, 4, 1, revision=0), window(name, T0, 9, 6, revision=1)
        for batch in order.split():  # a write per batch, each a list of revisions
            store.upsert_windows([(first, late)[int(r)] for r in batch])
        assert store.window_series("topic", name, **hour) == [late]  # trends: every story
        assert store.window_series("topic", name, **hour, as_tested=True) == [first]


def test_a_big_batch_is_written_whole(store: HistoryStore) -> None:
    n = 2017
    items = [scored(f"i{k}", T0 + timedelta(seconds=k), "macro", "neutral", 0.0) for k in range(n)]
    assert store.upsert_scored(items) == n
    assert store.stats().scored_items == n


def test_nulls_in_the_first_row_do_not_break_a_batch(store: HistoryStore) -> None:
    first = window("earnings", T0, 2, 1, baseline=None)
    second = window("earnings", T0 + timedelta(minutes=5), 2, 1, baseline=0.25)
    store.upsert_windows([first, second])
    rows = store.fetch(WindowsQuery(start=T0, end=T0 + timedelta(hours=1)), paged=False)
    assert [r.baseline_negative_share for r in rows] == [None, 0.25]  # type: ignore[attr-defined]


def test_window_series_round_trips_the_whole_message(known_store: HistoryStore) -> None:
    series = known_store.window_series("topic", "earnings", start=T0, end=T0 + timedelta(days=2))
    assert series == [w for w in known_windows() if w.entity == "earnings"]
    assert series[0].top_negative[0].title == "bad news"


def test_alert_events_round_trip_with_evidence(known_store: HistoryStore) -> None:
    from store import AlertsQuery

    events = known_store.alert_events(AlertsQuery(start=T0, end=T0 + timedelta(days=2)))
    assert events == known_alerts()


def test_feedback_latest_verdict_wins_and_unknown_alerts_are_refused(known_store: HistoryStore) -> None:
    known_store.put_feedback("a1", "fp", note="earnings season", author="ann")
    known_store.put_feedback("a1", "tp", note="really bad", author="bob")
    fb = known_store.get_feedback("a1")
    assert fb is not None
    assert (fb.verdict, fb.note, fb.author) == ("tp", "really bad", "bob")
    assert known_store.get_feedback("a2") is None
    with pytest.raises(NotFound, match="no alert with id 'nope'"):
        known_store.put_feedback("nope", "tp")
    labelled = known_store.labelled_alerts(start=T0, end=T0 + timedelta(days=2))
    assert [(x.alert_id, x.verdict, x.entity) for x in labelled] == [("a1", "tp", "earnings")]


def test_subscriptions_crud(store: HistoryStore) -> None:
    assert store.list_subscriptions() == []
    store.put_subscription("desk", {"channel": "#desk", "filter": {"topics": ["earnings"]}})
    store.put_subscription("apple", {"channel": "#apple"})
    store.put_subscription("desk", {"channel": "#desk2"})
    assert [(s.id, s.body) for s in store.list_subscriptions()] == [
        ("apple", {"channel": "#apple"}),
        ("desk", {"channel": "#desk2"}),
    ]
    got = store.get_subscription("apple")
    assert got is not None
    assert got.updated_at.tzinfo is not None
    assert store.delete_subscription("apple") is True
    assert store.delete_subscription("apple") is False
    assert store.get_subscription("apple") is None


def test_a_subscription_written_since_it_was_read_is_not_overwritten(store: HistoryStore) -> None:
    store.put_subscription("desk", {"channel": "#desk"})
    editor = store.get_subscription("desk")  # opened in the dashboard ...
    assert editor is not None
    muted = store.put_subscription(
        "desk", {"channel": "#desk", "mute": [{"from": "x"}]}, read_at=editor.updated_at
    )
    with pytest.raises(Changed, match="changed since it was read"):  # ... saved after a Slack mute
        store.put_subscription("desk", {"channel": "#desk3"}, read_at=editor.updated_at)
    assert store.get_subscription("desk").body["mute"] == [{"from": "x"}]  # type: ignore[union-attr]
    store.put_subscription("desk", {"channel": "#desk3"}, read_at=muted.updated_at)  # read again: fine
    with pytest.raises(Changed):  # no such subscription to update
        store.put_subscription("nobody", {"channel": "#x"}, read_at=muted.updated_at)


def test_alert_with_same_id_is_replaced_not_duplicated(store: HistoryStore) -> None:
    store.upsert_alerts([alert("x", "earnings", T0)])
    store.upsert_alerts([alert("x", "macro", T0)])
    assert store.stats().alerts == 1
    assert _dump(store, "alerts")[0][4] == "macro"


def test_get_alert_returns_the_whole_event(known_store: HistoryStore) -> None:
    assert known_store.get_alert("a1") == known_alerts()[0]
    assert known_store.get_alert("missing") is None


def test_batches_without_tickers_or_with_them_keep_their_lists(store: HistoryStore) -> None:
    # The batch travels as a DataFrame: a list column of only empty lists has no element type.
    store.upsert_scored([scored(f"e{k}", T0, "macro", "neutral", 0.0) for k in range(3)])
    store.upsert_scored([scored("t1", T0, "macro", "neutral", 0.0, tickers=("ACME", "XYZ"))])
    rows = dict((r[0], r[5]) for r in _dump(store, "scored_items"))
    assert rows == {"e0": [], "e1": [], "e2": [], "t1": ["ACME", "XYZ"]}


def test_scored_series_round_trips_the_whole_messages_oldest_first(known_store: HistoryStore) -> None:
    day = timedelta(days=1)
    expected = sorted(known_items(), key=lambda s: (s.item.published_at, s.story_id))
    assert known_store.scored_series(T0, T0 + 2 * day) == expected
    assert known_store.scored_series(T0 + day, T0 + 2 * day) == expected[-1:]


def test_a_backtest_reads_the_windows_and_stories_of_the_entities_it_names_alone(
    known_store: HistoryStore,
) -> None:
    """A subscription's replay picks its entities (as stored) first: others' are never read."""
    two_days = {"start": T0, "end": T0 + timedelta(days=2)}
    assert sorted(known_store.window_entities(**two_days)) == [
        ("ticker", "AAPL"), ("topic", "earnings"), ("topic", "macro"),
    ]  # fmt: skip
    some = known_store.window_series(**two_days, entities=[("topic", "macro"), ("ticker", "AAPL")])
    assert sorted((w.entity_kind, w.entity) for w in some) == [("ticker", "AAPL"), ("topic", "macro")]
    assert known_store.window_series(**two_days, entities=[]) == []
    assert sorted(known_store.story_entities(**two_days)) == [
        ("source", "bloomberg"), ("source", "reuters"), ("ticker", "AAPL"), ("ticker", "MSFT"),
        ("topic", "earnings"), ("topic", "macro"),
    ]  # fmt: skip

    def stories(*entities: tuple[EntityKind, str]) -> list[str]:
        return [s.story_id for s in known_store.scored_series(**two_days, entities=entities)]

    assert stories(("ticker", "MSFT")) == ["s2", "s4"]  # any of a story's tickers
    assert stories(("topic", "macro"), ("source", "bloomberg")) == ["s2", "s3", "s5", "s6"]
    assert stories() == []


def test_stories_span_is_the_first_and_last_story_published_in_the_range(known_store: HistoryStore) -> None:
    day = timedelta(days=1)
    published = sorted(s.item.published_at for s in known_items())
    assert known_store.stories_span(T0 - day, T0 + 2 * day) == (published[0], published[-1])
    later = [t for t in published if t >= T0 + day]
    assert known_store.stories_span(T0 + day, T0 + 2 * day) == (later[0], later[-1])
    assert known_store.stories_span(T0 - 9 * day, T0 - 8 * day) is None  # no story there
