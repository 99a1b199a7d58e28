"""`finpulse alerts list`'s overview lines: times in UTC, and said so."""

from __future__ import annotations

from datetime import UTC, datetime

from alerts.overview import overviews
from alerts.subscriptions import Subscription


def test_an_entity_mutes_end_is_shown_in_utc() -> None:
    # 09:00-10:00 in New York (UTC-5 in January), as the stored copy keeps it (its own offset).
    sub = Subscription.model_validate(
        {
            "id": "desk",
            "channel": "#alerts",
            "filter": {"tickers": ["ACME"]},
            "mute": [
                {
                    "from": "2030-01-01T09:00:00",
                    "until": "2030-01-01T10:00:00",
                    "timezone": "America/New_York",
                    "entities": ["ticker:ACME"],
                }
            ],
        }
    )
    stored = Subscription.model_validate(sub.stored_body())
    for s in (sub, stored):
        [o] = overviews((s,), None, datetime(2030, 1, 1, 14, 30, tzinfo=UTC), 7)
        assert o.entity_mutes == ("ticker:ACME until 01-01 15:00 UTC",)
        assert o.line(7).endswith(" · muted ticker:ACME until 01-01 15:00 UTC")
