"""Accuracy on labelled posts kept aside from training: the datasets' published validation
splits, or any CSV of the training files' format (`finpulse model holdout`).

The engine runs as the stream runs it (the card's CPU back end, or CUDA), over each
file whole. Per head: accuracy with its Wilson interval, macro-F1, per class,
confusion, and the issue's target. Posts that are also in the training data (the
same post, perhaps re-shared with another link: the split's near-duplicate key)
are counted, and the accuracy without them shown: a copy of a training post
measures memory, not generalisation. Written to `<model>/holdout/` as JSON,
markdown and confusion-matrix PNGs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from finpulse.markdown import table
from model.artifacts import load_config, model_version
from model.data import Example, load_examples, read_labelled
from model.engine import Classifier
from model.errors import TrainingDataError
from model.labels import TASKS, Task, labels_for
from model.metrics import CONFIDENCE, METRIC_COLUMNS, TaskMetrics, task_metrics

# The targets (published: FinBERT-tone 0.911 topic, 0.884 sentiment).
TARGETS: dict[Task, float] = {"topic": 0.91, "sentiment": 0.89}
# Posts per engine call: a progress step.
CHUNK = 256
REPORT_JSON, REPORT_MD = "holdout.json", "holdout.md"

Progress = Callable[[int], None]


class HoldoutTask(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: str
    sha256: str
    target: float
    metrics: TaskMetrics
    # Posts also in the training data (None: that data was not found), and the metrics without them.
    in_training: int | None
    unseen: TaskMetrics | None

    def cells(self) -> list[str]:
        """One row of HOLDOUT_COLUMNS (without the head's name)."""
        met = "met" if self.metrics.accuracy >= self.target else "not met"
        seen = "?" if self.in_training is None else str(self.in_training)
        unseen = f"{self.unseen.accuracy:.4f}" if self.unseen is not None else "-"
        return [*self.metrics.cells(), f"{self.target:.2f} {met}", seen, unseen]


HOLDOUT_COLUMNS = (*METRIC_COLUMNS, "target", "in training files", "accuracy without them")


class HoldoutReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str
    backend: str
    evaluated_at: datetime
    model_dir: str
    training_data: str | None
    tasks: dict[Task, HoldoutTask]


def evaluate_holdout(
    model_dir: Path,
    files: dict[Task, Path],
    *,
    data_dir: Path | None = None,
    device: str = "auto",
    threads: int | None = None,
    progress: Callable[[int], Progress] | None = None,
) -> HoldoutReport:
    """Each file's posts through the engine; `data_dir` (default: the one the model was trained
    on) is searched for copies of them. `progress(total)` gives a callback of posts done."""
    if not files:
        raise TrainingDataError("give at least one held-out file (topic or sentiment)")
    examples = {task: read_labelled(path, task) for task, path in files.items()}
    for task, rows in examples.items():
        if not rows:
            raise TrainingDataError(f"{files[task]}: no labelled posts")
    training = data_dir or _trained_on(model_dir)
    seen = _training_groups(training)
    classifier = Classifier.load(model_dir, device=device, threads=threads)
    step = progress(sum(len(rows) for rows in examples.values())) if progress else None
    tasks = {}
    for task, rows in examples.items():
        predicted = _predict(classifier, task, [ex.text for ex in rows], step)
        truth = np.array([ex.label for ex in rows])
        copied = np.array([seen is not None and ex.group in seen[task] for ex in rows])
        tasks[task] = HoldoutTask(
            file=str(files[task]),
            sha256=hashlib.sha256(files[task].read_bytes()).hexdigest(),
            target=TARGETS[task],
            metrics=task_metrics(truth, predicted, labels_for(task)),
            in_training=int(copied.sum()) if seen is not None else None,
            unseen=task_metrics(truth[~copied], predicted[~copied], labels_for(task))
            if copied.any() and not copied.all()
            else None,
        )
    return HoldoutReport(
        version=model_version(model_dir),
        backend=classifier.backend,
        evaluated_at=datetime.now(UTC),
        model_dir=str(model_dir),
        training_data=str(training) if seen is not None else None,
        tasks=tasks,
    )


def _trained_on(model_dir: Path) -> Path | None:
    saved = load_config(model_dir).train.get("data_dir")
    return Path(saved) if saved else None


def _training_groups(data_dir: Path | None) -> dict[Task, set[str]] | None:
    """The near-duplicate keys of every training post, per task; None when the data is missing."""
    if data_dir is None:
        return None
    try:
        examples: list[Example] = load_examples(data_dir)
    except TrainingDataError:
        return None
    return {task: {ex.group for ex in examples if ex.task == task} for task in TASKS}


def _predict(classifier: Classifier, task: Task, texts: Sequence[str], step: Progress | None) -> np.ndarray:
    labels = []
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        topic, sentiment, _, _ = classifier.probabilities(chunk)
        labels.append((topic if task == "topic" else sentiment).argmax(-1))
        if step is not None:
            step(len(chunk))
    return np.concatenate(labels)


def render_markdown(report: HoldoutReport) -> str:
    from model.card import per_class_table

    rows = ([task, *t.cells()] for task, t in report.tasks.items())
    lines = [
        f"# Held-out evaluation of {report.version}",
        "",
        f"The engine as the stream runs it ({report.backend}), {report.evaluated_at:%Y-%m-%d %H:%M} UTC. "
        f'Interval: the accuracy\'s {CONFIDENCE:.0%} Wilson interval. "In training files": posts '
        f"whose near-duplicate key is also in {report.training_data or 'the training data (not found)'}; "
        '"accuracy without them": on the others.',
        "",
        *table(("head", *HOLDOUT_COLUMNS), rows),
        "",
        *(f"- {task}: `{t.file}` (sha256 {t.sha256[:16]})" for task, t in report.tasks.items()),
    ]
    for task, t in report.tasks.items():
        lines += ["", f"![{task}](holdout_confusion_{task}.png)", "", f"## Per class: {task}"]
        lines += per_class_table(t.metrics)
    return "\n".join(lines) + "\n"


def write_report(report: HoldoutReport, out_dir: Path) -> None:
    """holdout.json, holdout.md and a confusion matrix PNG per head in `out_dir`."""
    from model.card import confusion_png

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORT_JSON).write_text(report.model_dump_json(indent=2), encoding="utf-8")
    (out_dir / REPORT_MD).write_text(render_markdown(report), encoding="utf-8")
    for task, t in report.tasks.items():
        confusion_png(t.metrics, f"{task} head, held out", out_dir / f"holdout_confusion_{task}.png")
