"""The repeat filter that keeps a retrying Kafka client from flooding the log, and the libraries
held at WARNING."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from aiokafka.errors import GroupAuthorizationFailedError, GroupCoordinatorNotAvailableError

from finpulse.logs import RepeatFilter, configure_logging


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


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("apscheduler", "aiokafka", "alerts")}
    yield
    root.handlers[:], root.level = handlers, level
    for name, was in levels.items():
        logging.getLogger(name).setLevel(was)


@pytest.mark.usefixtures("restored_logging")
def test_scheduler_runs_are_not_logged_but_its_warnings_are() -> None:
    configure_logging("INFO")
    # APScheduler logs each run of a job at INFO: the dispatcher's digest job once a minute.
    assert not logging.getLogger("apscheduler.executors.default").isEnabledFor(logging.INFO)
    assert logging.getLogger("apscheduler.scheduler").isEnabledFor(logging.WARNING)
    assert not logging.getLogger("aiokafka.consumer").isEnabledFor(logging.INFO)
    assert logging.getLogger("alerts.dispatcher").isEnabledFor(logging.INFO)
    configure_logging("ERROR")  # a quieter choice holds for libraries too
    assert not logging.getLogger("apscheduler").isEnabledFor(logging.WARNING)


@pytest.mark.usefixtures("restored_logging")
def test_a_coordinator_lookup_aiokafka_retries_is_a_warning_and_one_it_gives_up_an_error() -> None:
    configure_logging("INFO")
    configure_logging("INFO")  # once per process matters not: one filter
    [retried] = logging.getLogger("aiokafka.consumer.group_coordinator").filters
    levels = []
    for error in (GroupCoordinatorNotAvailableError(), GroupAuthorizationFailedError()):
        record = _record("Group Coordinator Request failed: %s", error)
        assert retried.filter(record)
        levels.append((record.levelname, record.getMessage().endswith("(retrying)")))
    assert levels == [("WARNING", True), ("ERROR", False)]


@pytest.mark.usefixtures("restored_logging")
def test_logs_off_a_terminal_are_one_dated_line_each(capfd: pytest.CaptureFixture[str]) -> None:
    # A service's log file (finpulse up) or a container's collector: rich wrapped a long record at
    # 80 columns, a line per fragment, with the time alone.
    configure_logging("INFO")
    long = "x" * 200
    logging.getLogger("alerts.dispatcher").info("delivered alert=%s", long)
    [line] = capfd.readouterr().err.splitlines()
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{{4}} INFO alerts\.dispatcher: delivered alert={long}", line
    )
