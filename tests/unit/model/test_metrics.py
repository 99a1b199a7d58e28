"""Metrics of one head."""

from __future__ import annotations

import math

import pytest

from model.metrics import METRIC_COLUMNS, task_metrics


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


def test_accuracy_interval_is_wilsons_and_narrows_with_more_examples() -> None:
    def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return centre - half, centre + half

    few = task_metrics([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 0], ["a", "b", "c"])
    assert few.accuracy_interval == pytest.approx(wilson(4, 6), abs=1e-4)
    many = task_metrics([0] * 600, [0] * 400 + [1] * 200, ["a", "b"])
    low, high = many.accuracy_interval
    assert low < many.accuracy < high
    assert high - low < (few.accuracy_interval[1] - few.accuracy_interval[0]) / 5
    assert many.cells()[2] == f"{low:.3f}-{high:.3f}"
    assert len(many.cells()) == len(METRIC_COLUMNS)


def test_macro_f1_averages_over_the_true_and_predicted_classes_as_sklearn() -> None:
    from sklearn.metrics import f1_score

    # Class c is predicted once but never true: sklearn's macro counts its F1 of 0; class d is
    # neither, and counts for neither.
    true, pred = [0, 0, 1, 1, 1], [0, 2, 1, 1, 0]
    m = task_metrics(true, pred, ["a", "b", "c", "d"])
    assert m.macro_f1 == pytest.approx(f1_score(true, pred, average="macro"))
    assert m.macro_f1 == pytest.approx((0.5 + 0.8 + 0.0) / 3)  # a, b and c; d neither true nor predicted
