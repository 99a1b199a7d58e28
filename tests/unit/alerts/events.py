"""AlertEvents for the delivery tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from finpulse.schema import AlertEvent, HeadlineRef

from .synth import NOW, T0


def alert(
    n: int = 0,
    state: Literal["fired", "resolved"] = "fired",
    *,
    sub: str = "desk",
    channel: str | None = "#alerts",
    entity: str | None = None,
    title: str = "ACME shares tumble after profit warning",
    fired: str | None = None,
) -> AlertEvent:
    start = T0 + timedelta(minutes=5 * n)
    return AlertEvent(
        alert_id=f"{state[0]}{n:04d}-{sub}",
        subscription_id=sub,
        state=state,
        entity_kind="ticker",
        entity=entity or f"T{n:03d}",
        window_start=start,
        window_end=start + timedelta(minutes=5),
        count=24,
        negative_count=15,
        negative_share=0.625,
        baseline_negative_share=0.14,
        p_value=3.1e-6,
        significance=0.001,
        top_headlines=(
            HeadlineRef(
                story_id=f"s{n}",
                title=title,
                url=f"https://news.example/{n}",
                source="wire",
                sentiment_score=-0.91,
            ),
        ),
        channel=channel,
        created_at=NOW,
        fired_alert_id=fired if state == "resolved" else None,
    )
