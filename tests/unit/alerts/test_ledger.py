"""The delivery ledger's file is one dispatcher's: a second one opening it is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.ledger import DeliveryLedger
from finpulse.errors import ConfigError


def test_a_second_dispatcher_on_the_same_ledger_is_refused(tmp_path: Path) -> None:
    first, second = (
        DeliveryLedger(tmp_path / "deliveries.sqlite"),
        DeliveryLedger(tmp_path / "deliveries.sqlite"),
    )
    first.open()
    with pytest.raises(ConfigError, match="in use by another dispatcher: run one dispatcher per ledger"):
        second.open()
    first.close()  # stopped: the next one may open it
    second.open()
    second.close()
    DeliveryLedger(tmp_path / "other.sqlite").open()  # another file is another ledger
