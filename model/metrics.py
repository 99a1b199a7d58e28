"""Classification metrics of one head: accuracy, macro-F1, per class, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support


class ClassMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    precision: float
    recall: float
    f1: float
    support: int


class TaskMetrics(BaseModel):
    """One head on one set of examples."""

    model_config = ConfigDict(frozen=True)

    n: int
    accuracy: float
    macro_f1: float
    majority_accuracy: float
    per_class: tuple[ClassMetrics, ...]
    # confusion[i][j]: examples of true class i predicted as j.
    confusion: tuple[tuple[int, ...], ...]


def task_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> TaskMetrics:
    """Metrics of predicted class indices against true ones."""
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    classes = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(true, pred, labels=classes, zero_division=0)
    present = s > 0  # macro over classes that occur, as sklearn's default would
    counts = np.bincount(true, minlength=len(labels)) if len(true) else np.zeros(len(labels))
    return TaskMetrics(
        n=len(true),
        accuracy=float((true == pred).mean()) if len(true) else 0.0,
        macro_f1=float(f[present].mean()) if present.any() else 0.0,
        majority_accuracy=float(counts.max() / max(1, len(true))),
        per_class=tuple(
            ClassMetrics(
                label=labels[i], precision=float(p[i]), recall=float(r[i]), f1=float(f[i]), support=int(s[i])
            )
            for i in classes
        ),
        confusion=tuple(tuple(int(x) for x in row) for row in confusion_matrix(true, pred, labels=classes)),
    )
