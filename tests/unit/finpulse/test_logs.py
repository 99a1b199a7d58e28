"""Logging set-up: our own INFO lines stay, libraries' routine chatter does not."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from finpulse.logs import configure_logging


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
