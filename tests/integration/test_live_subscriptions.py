"""alerts.live: the store is the live copy of the subscriptions, the file seeds it (real DuckDB file)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.live import FILE_HASH_KEY, LiveSubscriptions, live_subscriptions
from alerts.subscriptions import Subscription
from finpulse.schema import utcnow
from store import DuckDBStore, HistoryStore

FILE_V1 = """
[[subscription]]
id = "acme-desk"
channel = "#acme"
filter = { tickers = ["ACME"] }

[[subscription]]
id = "energy-desk"
channel = "#energy"
filter = { topics = ["Energy | Oil"] }
"""

FILE_V2 = """
[[subscription]]
id = "acme-desk"
channel = "#acme-v2"
filter = { tickers = ["ACME"] }

[[subscription]]
id = "bolt-desk"
channel = "#bolt"
filter = { tickers = ["BOLT"] }
"""


def api_put(db: HistoryStore, sub: Subscription) -> None:
    """Store a subscription as the API does (api/routes/subscriptions.py)."""
    db.put_subscription(sub.id, sub.model_dump(mode="json", by_alias=True))


def channels(subs: tuple[Subscription, ...]) -> dict[str, str]:
    return {s.id: s.channel for s in subs}


@pytest.fixture
def subs_file(tmp_path: Path) -> Path:
    path = tmp_path / "subscriptions.toml"
    path.write_text(FILE_V1)
    return path


def test_first_import_seeds_the_store_and_records_the_hash(subs_file: Path, store: HistoryStore) -> None:
    subs = live_subscriptions(subs_file, store)
    assert channels(subs) == {"acme-desk": "#acme", "energy-desk": "#energy"}
    assert [r.id for r in store.list_subscriptions()] == ["acme-desk", "energy-desk"]
    assert store.get_meta(FILE_HASH_KEY)


def test_an_unchanged_file_is_not_imported_again_so_store_edits_survive(
    subs_file: Path, store: HistoryStore
) -> None:
    first = live_subscriptions(subs_file, store)
    edited = first[0].model_copy(update={"channel": "#acme-edited"})
    api_put(db=store, sub=edited)
    api_put(
        store,
        Subscription.model_validate({"id": "new-desk", "channel": "#new", "filter": {"tickers": ["NEW"]}}),
    )
    assert store.delete_subscription("energy-desk")
    subs = live_subscriptions(subs_file, store)
    assert channels(subs) == {"acme-desk": "#acme-edited", "new-desk": "#new"}


def test_a_changed_file_overwrites_its_ids_and_keeps_the_others(subs_file: Path, store: HistoryStore) -> None:
    live_subscriptions(subs_file, store)
    api_put(
        store,
        Subscription.model_validate({"id": "acme-desk", "channel": "#dash", "filter": {"tickers": ["X"]}}),
    )
    api_put(
        store,
        Subscription.model_validate({"id": "new-desk", "channel": "#new", "filter": {"tickers": ["NEW"]}}),
    )
    before = store.get_meta(FILE_HASH_KEY)
    subs_file.write_text(FILE_V2)
    subs = live_subscriptions(subs_file, store)
    # The file wins for acme-desk and adds bolt-desk; energy-desk, gone from the file, goes (the
    # file owns what it listed); new-desk, made in the dashboard, stays.
    assert channels(subs) == {"acme-desk": "#acme-v2", "bolt-desk": "#bolt", "new-desk": "#new"}
    assert [r.id for r in store.list_subscriptions()] == ["acme-desk", "bolt-desk", "new-desk"]
    assert store.get_meta(FILE_HASH_KEY) not in (None, before)


def test_a_changed_file_keeps_the_mutes_set_outside_it_until_they_end(
    subs_file: Path, store: HistoryStore
) -> None:
    [acme, _] = live_subscriptions(subs_file, store)
    now = utcnow()
    ended = acme.muting("ticker", "ACME", now - timedelta(days=2), now - timedelta(hours=1), "last week")
    api_put(store, ended.muting("ticker", "ACME", now, now + timedelta(days=1), "muted from the alert"))
    subs_file.write_text(FILE_V2)
    subs = {s.id: s for s in live_subscriptions(subs_file, store)}
    assert subs["acme-desk"].channel == "#acme-v2"  # the file's edit applies
    assert [m.reason for m in subs["acme-desk"].mute] == ["muted from the alert"]  # the ended one goes
    assert subs["acme-desk"].muted(now + timedelta(hours=1), "ticker", "ACME")
    assert not subs["acme-desk"].muted(now + timedelta(days=2), "ticker", "ACME")
    assert subs["bolt-desk"].mute == ()
    stored = {r.id: r.body for r in store.list_subscriptions()}
    assert [m["reason"] for m in stored["acme-desk"]["mute"]] == ["muted from the alert"]


def test_a_mute_deleted_or_shortened_in_the_file_goes_and_those_set_outside_it_stay(
    subs_file: Path, store: HistoryStore
) -> None:
    def with_holiday(until: str) -> str:
        mute = f'[[subscription.mute]]\nfrom = 2020-01-01T00:00:00Z\nuntil = {until}\nreason = "holiday"\n'
        return FILE_V1.replace('"ACME"] }\n', '"ACME"] }\n' + mute)

    subs_file.write_text(with_holiday("2100-01-01T00:00:00Z"))
    [acme, _] = live_subscriptions(subs_file, store)
    now = utcnow()
    assert acme.muted(now)
    link_end = now + timedelta(days=1)
    api_put(store, acme.muting("ticker", "ACME", now, link_end, "muted from the alert"))
    store.stop()  # a restart: which mutes the file gave is read back from the store
    store.start()
    subs_file.write_text(with_holiday("2021-01-01T00:00:00Z"))  # the holiday ended early
    [acme, _] = live_subscriptions(subs_file, store)
    assert [(m.reason, m.until) for m in acme.mute] == [
        ("holiday", datetime(2021, 1, 1, tzinfo=UTC)),
        ("muted from the alert", link_end),
    ]
    assert not acme.muted(now)
    subs_file.write_text(FILE_V1)  # the holiday deleted
    [acme, _] = live_subscriptions(subs_file, store)
    assert [m.reason for m in acme.mute] == ["muted from the alert"]
    assert acme.muted(now, "ticker", "ACME")


def test_what_a_subscription_may_not_mean_is_logged_at_import(
    subs_file: Path, store: HistoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    subs_file.write_text(FILE_V1.replace('tickers = ["ACME"]', 'tickers = ["Acme Inc"]'))
    with caplog.at_level(logging.WARNING, logger="alerts.live"):
        live_subscriptions(subs_file, store)
    assert (
        "subscription acme-desk: ticker 'Acme Inc' is not a symbol" in caplog.text
    )  # the services say it too


def test_an_invalid_stored_row_is_logged_and_skipped(
    subs_file: Path, store: HistoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    live_subscriptions(subs_file, store)
    store.put_subscription("broken", {"id": "broken", "channel": "#x", "filter": {}})
    with caplog.at_level(logging.WARNING, logger="alerts.live"):
        subs = live_subscriptions(subs_file, store)
    assert sorted(channels(subs)) == ["acme-desk", "energy-desk"]
    assert "id=broken" in caplog.text
    assert "filter watches nothing" in caplog.text


def test_without_a_usable_store_the_file_alone_with_a_warning(
    subs_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = DuckDBStore(tmp_path / "nowhere.duckdb", read_only=True)
    with caplog.at_level(logging.WARNING, logger="alerts.live"):
        assert sorted(channels(live_subscriptions(subs_file, None))) == ["acme-desk", "energy-desk"]
        assert sorted(channels(live_subscriptions(subs_file, missing))) == ["acme-desk", "energy-desk"]
    assert "no history store" in caplog.text
    assert "history store unavailable" in caplog.text


def test_a_read_only_store_lays_a_changed_file_over_its_rows_without_writing(
    subs_file: Path, store_path: Path
) -> None:
    with DuckDBStore(store_path) as db:
        live_subscriptions(subs_file, db)
        api_put(
            db,
            Subscription.model_validate({"id": "new-desk", "channel": "#new", "filter": {"tickers": ["N"]}}),
        )
        hash_v1 = db.get_meta(FILE_HASH_KEY)
    subs_file.write_text(FILE_V2)
    with DuckDBStore(store_path, read_only=True) as ro:
        subs = live_subscriptions(subs_file, ro)
        assert ro.get_meta(FILE_HASH_KEY) == hash_v1
        assert [r.id for r in ro.list_subscriptions()] == ["acme-desk", "energy-desk", "new-desk"]
    assert channels(subs) == {"acme-desk": "#acme-v2", "bolt-desk": "#bolt", "new-desk": "#new"}


def test_a_missing_file_seeds_nothing_and_the_store_is_live(tmp_path: Path, store: HistoryStore) -> None:
    api_put(
        store,
        Subscription.model_validate({"id": "new-desk", "channel": "#new", "filter": {"tickers": ["N"]}}),
    )
    assert channels(live_subscriptions(tmp_path / "absent.toml", store)) == {"new-desk": "#new"}


def test_refresh_reports_changes_and_keeps_the_set_when_a_reload_fails(
    subs_file: Path, store: HistoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[Subscription, ...]] = []
    live = LiveSubscriptions(subs_file, store, refresh_s=60, on_change=seen.append)
    live.load()
    assert live.refresh() is False  # nothing changed
    api_put(
        store,
        Subscription.model_validate({"id": "new-desk", "channel": "#new", "filter": {"tickers": ["N"]}}),
    )
    with caplog.at_level(logging.INFO, logger="alerts.live"):
        assert live.refresh() is True
    assert "count=3 added=new-desk removed=- changed=-" in caplog.text
    assert [len(s) for s in seen] == [2, 3]
    subs_file.write_text("[[subscription]]\nid = 'oops'\n")  # a broken edit
    with caplog.at_level(logging.WARNING, logger="alerts.live"):
        assert live.refresh() is False
    assert "reload failed, keeping 3" in caplog.text
    assert sorted(channels(live.current)) == ["acme-desk", "energy-desk", "new-desk"]


async def test_start_reloads_in_the_background_until_stopped(subs_file: Path, store_path: Path) -> None:
    import asyncio

    store = DuckDBStore(store_path)
    live = LiveSubscriptions(subs_file, store, refresh_s=0.05)
    await live.start()
    try:
        assert len(live.current) == 2
        with DuckDBStore(store_path) as db:
            api_put(
                db, Subscription.model_validate({"id": "new", "channel": "#n", "filter": {"tickers": ["N"]}})
            )
        for _ in range(100):
            if len(live.current) == 3:
                break
            await asyncio.sleep(0.05)
        assert sorted(channels(live.current)) == ["acme-desk", "energy-desk", "new"]
    finally:
        await live.stop()
        await live.stop()  # idempotent
