"""Classification metrics of one head: accuracy, macro-F1, per class, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.stats import binomtest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

CONFIDENCE = 0.95
# The columns of TaskMetrics.cells(), for the CLI's table and the model card's.
METRIC_COLUMNS = ("n", "accuracy", f"{CONFIDENCE:.0%} interval", "macro-F1", "majority class")


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
    # Wilson interval of the accuracy on n examples: how far another sample of as many could
    # move it (on ~950 sentiment posts about +-2 points). Cards written before it lack it.
    accuracy_interval: tuple[float, float] = (0.0, 1.0)
    per_class: tuple[ClassMetrics, ...]
    # confusion[i][j]: examples of true class i predicted as j.
    confusion: tuple[tuple[int, ...], ...]

    def cells(self) -> list[str]:
        """One row of a metrics table, in METRIC_COLUMNS order."""
        low, high = self.accuracy_interval
        return [
            str(self.n), f"{self.accuracy:.4f}", f"{low:.3f}-{high:.3f}",
            f"{self.macro_f1:.4f}", f"{self.majority_accuracy:.4f}",
        ]  # fmt: skip


def task_metrics(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, labels: Sequence[str]
) -> TaskMetrics:
    """Metrics of predicted class indices against true ones."""
    true, pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    classes = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(true, pred, labels=classes, zero_division=0)
    counts = np.bincount(true, minlength=len(labels))
    # Macro over the classes in the truth or the predictions, as sklearn's f1_score(average="macro"):
    # a class predicted but never true counts, with its F1 of 0.
    present = (counts > 0) | (np.bincount(pred, minlength=len(labels)) > 0)
    correct = int((true == pred).sum())
    interval = (0.0, 1.0)
    if len(true):
        ci = binomtest(correct, len(true)).proportion_ci(CONFIDENCE, method="wilson")
        interval = (float(ci.low), float(ci.high))
    return TaskMetrics(
        n=len(true),
        accuracy=correct / len(true) if len(true) else 0.0,
        accuracy_interval=interval,
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
