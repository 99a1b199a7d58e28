"""Subscriptions: the example file, validation errors, filters and mute windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts import MuteWindow, Subscription, load_subscriptions
from alerts.subscriptions import SubscriptionFilter, parse_subscriptions
from finpulse.errors import ConfigError
from finpulse.settings import REPO_ROOT

GOOD = {"id": "desk", "channel": "#a", "filter": {"tickers": ["ACME"]}}


def test_example_file_loads() -> None:
    subs = load_subscriptions(REPO_ROOT / "config" / "subscriptions.toml")
    assert [s.id for s in subs] == ["markets-desk", "megacaps"]
    assert subs[1].matches("ticker", "$nvda", "hopping")
    assert not subs[1].matches("ticker", "NVDA", "tumbling")
    assert subs[0].matches("topic", "anything", "tumbling")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**GOOD, "filter": {}}, "filter watches nothing"),
        ({**GOOD, "detector": {"min_rise": 0.1, "resolve_rise": 0.2}}, "must be below min_rise"),
        ({**GOOD, "detector": {"significance": 1.5}}, "detector.significance"),
        ({**GOOD, "detector": {"windw": "tumbling"}}, "detector.windw"),
        ({**GOOD, "id": "bad id!"}, "subscription bad id!: id"),
        # Places 1-based, as the file's [[subscription.mute]] tables count: the first is #1.
        (
            {**GOOD, "mute": [{"weekdays": ["sat"], "timezone": "Mars/Base"}]},
            "mute #1.timezone: unknown timezone",
        ),
        (
            {**GOOD, "filter": {"tickers": ["A", "B", 3]}},
            r"filter.tickers #3: Input should be a valid string",
        ),
        (
            {**GOOD, "mute": [{"until": datetime(2025, 1, 1)}]},
            "mute #1: until: give an offset .* or the mute's timezone",
        ),
        ({**GOOD, "mute": [{"start": "09:00:00"}]}, "both start and end"),
        ({**GOOD, "mute": [{"start": "22:00:00", "end": "22:00:00"}]}, "a daily mute of no time"),
        # pydantic's words made into what to write: a list, a time, a probability.
        ({**GOOD, "filter": {"tickers": "ACME, AAPL"}}, r'filter.tickers: give a list: \["ACME", "AAPL"\]'),
        ({**GOOD, "digest": {"at": "8:30"}}, "digest.at: give a time as HH:MM:SS, e.g. 08:30:00"),
        ({**GOOD, "detector": {"significance": 5}}, "detector.significance: is a probability: 0.05 for 5%"),
        (
            {**GOOD, "mute": [{"from": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"}]},
            "from is not before until: the mute would never apply",
        ),
        ({**GOOD, "mute": [{}]}, "either absolute"),
        ({**GOOD, "mute": [{"from": "2025-01-01T00:00:00Z", "entities": ["ACME"]}]}, "is not KIND:NAME"),
        ({**GOOD, "mute": [{"from": "2025-01-01T00:00:00Z", "entities": ["sector:x"]}]}, "is not KIND:NAME"),
    ],
)
def test_invalid_subscriptions_are_named(entry: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_subscriptions({"subscription": [entry]}, "subs.toml")


def test_duplicate_ids_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="appears twice"):
        parse_subscriptions({"subscription": [GOOD, GOOD]})
    with pytest.raises(ConfigError, match="unknown top-level keys"):
        parse_subscriptions({"subscriptions": [GOOD]})
    bad = tmp_path / "s.toml"
    bad.write_text("[[subscription]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_subscriptions(bad)
    with pytest.raises(ConfigError, match="FINPULSE_ALERTS_SUBSCRIPTIONS_FILE"):
        load_subscriptions(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("mute", "at", "active"),
    [
        ({"from": "2025-01-01T00:00:00Z"}, "2025-01-01T00:00:00Z", True),
        ({"until": "2025-01-01T00:00:00Z"}, "2025-01-01T00:00:00Z", False),
        ({"weekdays": ["sat", "sun"]}, "2025-03-08T12:00:00Z", True),  # a Saturday
        ({"weekdays": ["sat", "sun"]}, "2025-03-10T12:00:00Z", False),
        ({"start": "22:00:00", "end": "06:00:00"}, "2025-03-10T23:30:00Z", True),  # spans midnight
        ({"start": "22:00:00", "end": "06:00:00"}, "2025-03-10T06:00:00Z", False),
        # 18:00 in New York on a Friday is 23:00 UTC; the weekday is New York's.
        ({"weekdays": ["fri"], "start": "17:00:00", "end": "20:00:00", "timezone": "America/New_York"},
         "2025-03-14T22:30:00Z", True),
        # from/until without an offset are read in the mute's timezone: 09:00 in London is 08:00 UTC in June.
        ({"from": "2025-06-02T09:00:00", "timezone": "Europe/London"}, "2025-06-02T08:00:00Z", True),
        ({"from": "2025-06-02T09:00:00", "timezone": "Europe/London"}, "2025-06-02T07:59:00Z", False),
        ({"until": datetime(2025, 1, 1, 9), "timezone": "Asia/Tokyo"}, "2025-01-01T00:00:00Z", False),
        # Weeknights over midnight: the hours after midnight are the night's that began the day before.
        ({"weekdays": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00:00", "end": "06:00:00"},
         "2025-03-15T01:00:00Z", True),  # Saturday 01:00: Friday's night
        ({"weekdays": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00:00", "end": "06:00:00"},
         "2025-03-17T01:00:00Z", False),  # Monday 01:00: Sunday's night
        ({"weekdays": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00:00", "end": "06:00:00"},
         "2025-03-16T23:00:00Z", False),  # Sunday 23:00
    ],
)  # fmt: skip
def test_mute_windows(mute: dict, at: str, active: bool) -> None:
    when = datetime.fromisoformat(at).astimezone(UTC)
    assert MuteWindow.model_validate(mute).active(when) is active


def test_a_mute_can_name_entities() -> None:
    at = datetime(2025, 3, 10, 12, tzinfo=UTC)
    acme = MuteWindow.model_validate(
        {"from": "2025-03-10T00:00:00Z", "entities": ["ticker:$acme", "topic:Earnings"]}
    )
    assert acme.covers("ticker", "ACME")
    assert acme.covers("topic", "earnings")  # names compare without case
    assert not acme.covers("ticker", "BOLT")
    assert not acme.covers("source", "ACME")  # and with their kind
    everything = MuteWindow.model_validate({"from": "2025-03-10T00:00:00Z"})
    sub = Subscription.model_validate({**GOOD, "mute": [acme.model_dump(by_alias=True)]})
    assert sub.muted(at, "ticker", "ACME")
    assert not sub.muted(at, "ticker", "BOLT")
    assert not sub.muted(at), "an entity's mute does not mute the whole subscription"
    assert sub.model_copy(update={"mute": (everything,)}).muted(at, "ticker", "BOLT")
    assert not sub.muted(datetime(2025, 3, 9, tzinfo=UTC), "ticker", "ACME")  # before it starts


def test_names_that_never_match_are_doubted() -> None:
    def doubts(**names: list[str]) -> tuple[str, ...]:
        return SubscriptionFilter.model_validate(names).doubts()

    assert doubts(topics=["*", "earnings", "Energy | Oil"], tickers=["*", "$aapl", "BRK.B"]) == ()
    typo, short = doubts(topics=["Enrgy", "Fed"])
    assert "topic 'Enrgy' is none of the classifier's topics" in typo
    assert typo.endswith("did you mean 'Energy | Oil'?")
    assert short.endswith("did you mean 'Fed | Central Banks'?")
    [far] = doubts(topics=["zzz"])
    assert "Stock Movement)" in far  # nothing close: every topic listed
    [name] = doubts(tickers=["Apple Inc"])
    assert "ticker 'Apple Inc' is not a symbol as news writes it" in name
    # The shipped subscriptions file names only what the pipeline produces.
    assert [s.filter.doubts() for s in load_subscriptions(REPO_ROOT / "config" / "subscriptions.toml")] == [
        (),
        (),
    ]


def test_a_misspelt_key_and_points_for_a_fraction_say_what_was_meant() -> None:
    entry = {"id": "x", "channel": "#x", "filter": {"tickers": ["AAPL"]}}
    with pytest.raises(
        ConfigError, match=r"min_volum: Extra inputs are not permitted \(did you mean min_volume\?\)"
    ):
        parse_subscriptions({"subscription": [{**entry, "detector": {"min_volum": 5}}]})
    with pytest.raises(
        ConfigError, match=r"min_rise: is a fraction of the stories: 0\.2 for 20 points, not 20"
    ):
        parse_subscriptions({"subscription": [{**entry, "detector": {"min_rise": 20}}]})
    with pytest.raises(ConfigError, match="fix the file \\(running services keep"):
        parse_subscriptions({"subscription": [{**entry, "detector": {"min_rise": 0.1, "resolve_rise": 0.2}}]})


def test_what_a_subscription_may_not_mean_is_doubted() -> None:
    now = datetime(2026, 3, 2, tzinfo=UTC)
    sub = Subscription.model_validate(
        {
            **GOOD,
            "filter": {"tickers": ["ACME"]},
            "mute": [
                {"until": "2026-01-01T08:00:00", "timezone": "Europe/Berlin"},  # over, in Berlin time
                {"from": "2026-03-01T00:00:00Z"},  # no end
                {"weekdays": ["sat", "sun"]},  # no timezone: UTC
                {
                    "from": "2026-03-01T00:00:00Z",
                    "until": "2026-04-01T00:00:00Z",
                    "entities": ["ticker:TSLA"],
                },
                {"weekdays": ["sat"], "timezone": "UTC"},  # fine
            ],
        }
    )
    assert sub.doubts(now) == [
        "mute #1 ended 2026-01-01 07:00 UTC: remove it",
        "mute #2 has no until: it mutes from its start for good",
        "mute #3 gives no timezone: its days and times are UTC (timezone = 'Europe/London')",
        "mute #4: ticker:TSLA is not one the subscription watches (filter), so it mutes nothing",
    ]


def test_a_mute_link_used_again_extends_its_mute_while_in_force_and_never_rewrites_the_past() -> None:
    sub = Subscription(id="desk", channel="#a", filter=SubscriptionFilter(tickers=("ACME",)))
    monday, hour, day = datetime(2026, 3, 2, 9, tzinfo=UTC), timedelta(hours=1), timedelta(days=1)
    week = sub.muting(
        "ticker", "ACME", monday, monday + 7 * day, "ann, from alert a1", replacing="from alert a1"
    )
    # Posted again an hour on, for an hour: one mute, still to the week's end.
    again = week.muting(
        "ticker", "ACME", monday + hour, monday + 2 * hour, "bob, from alert a1", replacing="from alert a1"
    )
    [mute] = again.mute
    assert (mute.from_, mute.until, mute.reason) == (monday, monday + 7 * day, "bob, from alert a1")
    # An hour's mute that ended on Monday, the link used again on Friday: Monday stays as it was.
    short = sub.muting(
        "ticker", "ACME", monday, monday + hour, "ann, from alert a1", replacing="from alert a1"
    )
    friday = monday + 4 * day
    later = short.muting(
        "ticker", "ACME", friday, friday + hour, "ann, from alert a1", replacing="from alert a1"
    )
    assert [(m.from_, m.until) for m in later.mute] == [(monday, monday + hour), (friday, friday + hour)]
    assert not later.muted(monday + day, "ticker", "ACME")
