"""The repeat filter that keeps a retrying Kafka client from flooding the log."""

from __future__ import annotations

import logging

from finpulse.logs import RepeatFilter


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("aiokafka.client", logging.ERROR, __file__, 1, msg, args, None)


def test_repeats_pass_once_per_interval_and_report_what_was_held() -> None:
    now = [0.0]
    repeat = RepeatFilter(every_s=10, clock=lambda: now[0])
    passed = []
    for t in [0.0, 0.1, 0.2, 5.0, 10.5, 10.6]:
        now[0] = t
        record = _record("Unable connect to node with id %s", 1)
        if repeat.filter(record):
            passed.append(record.getMessage())
    assert passed == [
        "Unable connect to node with id 1",
        "Unable connect to node with id 1 [3 more like this in the last 10s]",
    ]


def test_different_messages_are_counted_apart() -> None:
    repeat = RepeatFilter(every_s=10, clock=lambda: 0.0)
    assert repeat.filter(_record("Failed fetch"))
    assert repeat.filter(_record("Unable to update metadata"))
    assert not repeat.filter(_record("Failed fetch"))
