"""The feedback and mute pages' account of an alert: news text is escaped, only web links link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.links import FeedbackLinks
from api.routes.feedback_links import _describe
from finpulse.schema import AlertEvent, HeadlineRef

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _alert(state: str, headlines: tuple[HeadlineRef, ...]) -> AlertEvent:
    return AlertEvent(
        alert_id="a<1>", subscription_id="desk", state=state, entity_kind="ticker", entity="A&B",  # type: ignore[arg-type]
        window_start=T0, window_end=T0 + timedelta(minutes=5), count=16, negative_count=9,
        negative_share=9 / 16, baseline_negative_share=0.05, p_value=3.2e-7, significance=0.01,
        top_headlines=headlines, channel="#desk", created_at=T0 + timedelta(minutes=5),
    )  # fmt: skip


def test_headlines_are_escaped_and_only_web_links_link() -> None:
    headlines = (
        HeadlineRef(story_id="s1", title="A&B <b>falls</b>", url="https://news.example/1?a=1&b=2",
                    source="wire", sentiment_score=-0.71),
        HeadlineRef(story_id="s2", title="A&B cut", url="javascript:alert(1)", sentiment_score=-0.5),
        HeadlineRef(story_id="s3", title="no link", sentiment_score=-0.2),
    )  # fmt: skip
    page = _describe(_alert("fired", headlines), FeedbackLinks("", None))
    assert "<b>falls</b>" not in page
    assert (
        '<li><a href="https://news.example/1?a=1&amp;b=2" rel="noopener noreferrer">A&amp;B &lt;b&gt;falls'
        "&lt;/b&gt;</a> — wire (-0.71)</li>"
    ) in page
    assert "javascript:" not in page
    assert "<li>A&amp;B cut (-0.50)</li>" in page
    assert "<li>no link (-0.20)</li>" in page
    assert "9 of 16 stories negative" in page
    assert "p = 3.2e-07 (one-sided binomial, adjusted; α = 0.01)" in page
    assert 'href="/?kind=ticker&amp;entity=A%26B&amp;range=custom' in page


def test_a_resolved_alert_has_no_test_or_headlines() -> None:
    page = _describe(_alert("resolved", ()), FeedbackLinks("", None))
    assert "p = " not in page
    assert "headlines" not in page
    assert "(resolved, subscription desk)" in page
