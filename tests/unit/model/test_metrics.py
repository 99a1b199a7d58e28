"""Metrics of one head."""

from __future__ import annotations

import pytest

from model.metrics import task_metrics


def test_metrics_of_a_known_confusion() -> None:
    m = task_metrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 0], ["a", "b", "c"])
    assert m.accuracy == pytest.approx(4 / 6)
    assert m.majority_accuracy == pytest.approx(3 / 6)
    assert m.confusion == ((2, 1, 0), (0, 2, 0), (1, 0, 0))
    a, b, c = m.per_class
    assert (a.precision, a.recall, a.support) == (pytest.approx(2 / 3), pytest.approx(2 / 3), 3)
    assert (b.precision, b.recall) == (pytest.approx(2 / 3), 1.0)
    assert (c.precision, c.recall, c.f1) == (0.0, 0.0, 0.0)
    assert m.macro_f1 == pytest.approx((2 / 3 + 0.8 + 0.0) / 3)


def test_macro_f1_ignores_absent_classes() -> None:
    m = task_metrics([0, 0, 1], [0, 0, 1], ["a", "b", "c"])
    assert m.macro_f1 == 1.0
    assert m.per_class[2].support == 0
