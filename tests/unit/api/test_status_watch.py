"""`finpulse status --watch`: what one line says about two looks; how status says when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich.console import Console

from api.status import (
    GroupLag,
    KafkaStatus,
    TopicCount,
    ago,
    next_poll,
    print_kafka,
    watch_header,
    watch_line,
)


def _look(raw: int, scored: int, worker_lag: int, dead: int) -> KafkaStatus:
    topics = [
        TopicCount("news.raw", raw, 0, written=raw, dead_written=dead),
        TopicCount("news.scored", scored, 0, written=scored),
        TopicCount("sentiment.windows", 0, 0),
        TopicCount("alerts.events", 0, 0),
    ]
    groups = [
        GroupLag("app", "worker", {"news.raw": worker_lag}),
        GroupLag("app-history", "history sink", {}),
        GroupLag("app-alerts", "alert dispatcher", {"alerts.events": 0}),
    ]
    return KafkaStatus(topics, groups)


def test_the_first_look_has_no_rates_the_next_one_has_rates_and_changes() -> None:
    first = watch_line("10:00:00", _look(100, 90, 10, 1), None, 0.0)
    # The history sink has committed nothing yet: no lag to tell, not 0.
    assert first.split() == ["10:00:00", "-", "-", "-", "-", "10", "-", "0", "1"]
    second = watch_line("10:00:05", _look(150, 130, 20, 3), _look(100, 90, 10, 1), 5.0)
    assert second.split() == [
        "10:00:05", "10.0", "8.0", "0.0", "0.0", "20", "(+10)", "-", "0", "(+0)", "3", "(+2)",
    ]  # fmt: skip
    assert len(first) == len(watch_header())  # columns line up under the header


def test_a_missing_topic_keeps_its_column_and_is_named() -> None:
    look = _look(100, 90, 10, 1)
    gone = TopicCount("sentiment.windows", 0, 0, exists=False)
    look = KafkaStatus([*look.topics[:2], gone, look.topics[3]], look.groups)
    line = watch_line("10:00:05", look, _look(50, 40, 10, 1), 5.0)
    assert line.split()[1:5] == ["10.0", "10.0", "missing", "0.0"]
    assert len(line) >= len(watch_header())
    out = Console(record=True, width=200, color_system=None)
    print_kafka(out, look)
    text = out.export_text()
    assert _row(text, "sentiment.windows").split("│")[2].strip() == "missing"
    assert "`finpulse topics` creates them" in text


def _row(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


def test_ago_reads_both_ways() -> None:
    now = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    assert ago(now, None) == "never"
    assert ago(now, now - timedelta(seconds=12)) == "12 s ago"
    assert ago(now, now - timedelta(minutes=5)) == "5 min ago"
    assert ago(now, now - timedelta(hours=3)) == "3 h ago"
    assert ago(now, now - timedelta(days=2)) == "2 d ago"
    assert ago(now, now + timedelta(seconds=40)) == "in 40 s"
    assert ago(now, now) == "0 s ago"
    # A next poll: ahead, or not made when planned (the ingestor is busy, or stopped).
    assert next_poll(now, now + timedelta(seconds=40)) == "in 40 s"
    assert next_poll(now, now - timedelta(hours=5)) == "due 5 h ago"
    assert next_poll(now, None) == "never"
