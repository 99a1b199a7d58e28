"""When a subscription's daily digest is due, in its own timezone and weekdays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alerts.digest import digest_id, due_digests, scheduled
from alerts.subscriptions import Subscription

LONDON_8AM = {"at": "08:00:00", "timezone": "Europe/London", "weekdays": ["mon", "tue", "wed", "thu", "fri"]}


def _sub(digest: dict | None = LONDON_8AM, **kw: object) -> Subscription:
    body = {"id": "desk", "channel": "#alerts", "filter": {"tickers": ["ACME"]}, "digest": digest, **kw}
    return Subscription.model_validate(body)


@pytest.mark.parametrize(
    ("now", "due"),
    [
        ("2026-07-06T06:59:00Z", False),  # Monday 07:59 in London (BST, UTC+1)
        ("2026-07-06T07:00:00Z", True),  # 08:00 London
        ("2026-07-06T12:30:00Z", True),  # a dispatcher that was down catches up...
        ("2026-07-06T13:00:00Z", False),  # ...for six hours, then the day is skipped
        ("2026-07-04T07:30:00Z", False),  # Saturday
        ("2026-01-05T08:00:00Z", True),  # winter: 08:00 London is 08:00 UTC
    ],
)
def test_due_at_the_local_time_on_the_weekdays(now: str, due: bool) -> None:
    at = datetime.fromisoformat(now)
    slot = scheduled(_sub(), at)
    assert (slot is not None) is due
    if slot is not None:
        day_id, end = slot
        assert day_id == digest_id("desk", at.date())
        assert end.astimezone(UTC).hour == (7 if at.month == 7 else 8)  # the period ends at 08:00 local


def test_no_digest_configured_disabled_or_already_sent() -> None:
    at = datetime(2026, 7, 6, 7, 30, tzinfo=UTC)
    assert scheduled(_sub(None), at) is None
    assert due_digests((_sub(enabled=False),), at, lambda _: False) == []
    assert due_digests((_sub(),), at, lambda day_id: day_id == "digest:desk:2026-07-06") == []
    [(sub, day_id, _)] = due_digests((_sub(),), at, lambda _: False)
    assert (sub.id, day_id) == ("desk", "digest:desk:2026-07-06")


def test_a_digest_needs_a_weekday() -> None:
    with pytest.raises(ValueError, match="at least one weekday"):
        _sub({"weekdays": []})


def test_a_late_evening_digest_is_caught_up_after_midnight_as_its_own_day() -> None:
    evening = {**LONDON_8AM, "at": "21:00:00"}
    slot = scheduled(_sub(evening), datetime(2026, 7, 3, 23, 30, tzinfo=UTC))  # Saturday 00:30 BST
    assert slot is not None
    day_id, end = slot
    assert day_id == "digest:desk:2026-07-03"  # Friday's, a weekday, not Saturday's
    assert end.astimezone(UTC) == datetime(2026, 7, 3, 20, 0, tzinfo=UTC)
    assert scheduled(_sub(evening), datetime(2026, 7, 4, 23, 30, tzinfo=UTC)) is None  # Saturday's: none
