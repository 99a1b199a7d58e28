"""Evaluation of a trained model on its validation split, and the CPU back-end choice.

The split is rebuilt from the seed, fraction and data directory saved in the
model's config, so evaluation sees exactly the texts training held out. Every
CPU back end is run over them: accuracy, macro-F1, throughput in batches and
one text at a time, and agreement with the float32 reference. The engine's CPU
default is the fastest back end (geometric mean of the two throughputs: the
stream sees single posts in quiet hours and full batches in bursts) that loses
less than one accuracy point on each head and agrees with the reference on at
least 99% of labels. Results go to the model card.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from model.artifacts import load_config, model_version
from model.config import TrainConfig
from model.data import Example, split_fingerprint
from model.engine import Classifier
from model.errors import TrainingDataError
from model.export import export_onnx, exports_current
from model.labels import TASKS, Task, labels_for
from model.lexical import lexical_saved
from model.metrics import TaskMetrics, task_metrics
from model.runtime import cpu_backends

logger = logging.getLogger(__name__)

REFERENCE = "torch"
MAX_ACCURACY_LOSS = 0.01
MIN_AGREEMENT = 0.99
# Training texts that size the int8 export's smoothing.
CALIBRATION_TEXTS = 512
# Validation texts timed one at a time per back end.
SINGLE_TEXTS = 128


class BackendReport(BaseModel):
    """One back end on the validation texts."""

    model_config = ConfigDict(frozen=True)

    backend: str
    # Throughput on the validation texts in batches (max_batch), and one text per call.
    docs_per_s: float
    single_docs_per_s: float = 0.0
    topic_accuracy: float
    sentiment_accuracy: float
    topic_macro_f1: float
    sentiment_macro_f1: float
    # Share of (topic, sentiment) labels equal to the float32 reference's.
    agreement: float
    eligible: bool = True

    @property
    def speed(self) -> float:
        """What the engine's default is chosen by: both throughputs alike."""
        return float(np.sqrt(self.docs_per_s * max(self.single_docs_per_s, 1e-9)))

    def cells(self) -> list[str]:
        """The report as one row of BACKEND_COLUMNS (the CLI's table and the model card's)."""
        return [
            self.backend, f"{self.docs_per_s:.0f}", f"{self.single_docs_per_s:.0f}",
            f"{self.topic_accuracy:.4f}", f"{self.sentiment_accuracy:.4f}", f"{self.agreement:.4f}",
            "yes" if self.eligible else "no",
        ]  # fmt: skip


BACKEND_COLUMNS = ("back end", "docs/s", "one by one", "topic acc", "sentiment acc", "agreement", "eligible")


class Evaluation(BaseModel):
    """What `finpulse model eval` found; the body of card.json."""

    model_config = ConfigDict(frozen=True)

    version: str
    evaluated_at: datetime
    model_dir: str
    data_dir: str
    split: dict[str, Any]
    metrics: dict[Task, TaskMetrics]
    backends: tuple[BackendReport, ...]
    engine: dict[str, Any]
    training: dict[str, Any] | None = None
    # The reference's encoder heads without the n-gram heads (None: the model has none).
    encoder_only: dict[Task, TaskMetrics] | None = None
    lexical_weight: float = 0.0


def validation_examples(model_dir: Path, data_dir: Path | None) -> tuple[list[Example], Path, TrainConfig]:
    """The validation examples the model was trained without (its extra training rows, which
    never join them, are not read).

    Raises:
        TrainingDataError: the data makes another split than the model's (rows added or removed
            since, or another copy): its texts would be mostly training ones.
    """
    from model.train import make_split

    saved = dict(load_config(model_dir).train)
    trained_on = saved.pop("data_dir", None)
    expected = saved.pop("validation", None)  # absent for models trained before 2026-12-07
    data = data_dir or Path(trained_on or ".")
    config = TrainConfig(**saved).model_copy(update={"extra_data_dirs": ()})
    val = make_split(config, data).val
    if expected is not None and split_fingerprint(val) != expected:
        raise TrainingDataError(
            f"{data} makes another validation split than the one {model_dir.name} was trained without "
            "(rows added or removed since, or other data): scored on it, the model would be marked on "
            "its own training texts; evaluate with the data it was trained on (--data), or train again"
        )
    return val, data, config


def calibration_texts(model_dir: Path, data_dir: Path | None, n: int = CALIBRATION_TEXTS) -> list[str]:
    """Training texts (never validation ones) for the int8 export's smoothing (model/export.py);
    none where the training data is missing."""
    from model.train import make_split

    try:
        _, data, config = validation_examples(model_dir, data_dir)
        train = make_split(config, data).train
    except TrainingDataError as exc:
        logger.warning("int8 export not smoothed: %s", exc)
        return []
    return [ex.text for ex in random.Random(config.seed).sample(train, min(n, len(train)))]


def labels_of(classifier: Classifier, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, float]:
    """Arg-max topic and sentiment indices, and docs/s (after one warm-up batch)."""
    classifier.probabilities(texts[: classifier.max_batch])
    began = time.perf_counter()
    topic, sentiment, _, _ = classifier.probabilities(texts)
    rate = len(texts) / (time.perf_counter() - began)
    return topic.argmax(-1), sentiment.argmax(-1), rate


def single_rate(classifier: Classifier, texts: Sequence[str]) -> float:
    """docs/s one text per call (after a few warm-up calls)."""
    for text in texts[:8]:
        classifier.probabilities([text])
    began = time.perf_counter()
    for text in texts:
        classifier.probabilities([text])
    return len(texts) / (time.perf_counter() - began)


def score_backends(
    model_dir: Path, val: list[Example], backends: Sequence[str], threads: int | None
) -> tuple[dict[Task, TaskMetrics], list[BackendReport]]:
    """Metrics of the reference and a report per back end."""
    texts = [ex.text for ex in val]
    reference: tuple[np.ndarray, np.ndarray] | None = None
    reports: list[BackendReport] = []
    ref_metrics: dict[Task, TaskMetrics] = {}
    for backend in (REFERENCE, *[b for b in backends if b != REFERENCE]):
        clf = Classifier.load(model_dir, backend=backend, threads=threads)
        topic, sentiment, rate = labels_of(clf, texts)
        single = single_rate(clf, texts[:SINGLE_TEXTS])
        reference = reference or (topic, sentiment)
        metrics = _metrics(val, topic, sentiment)
        ref_metrics = ref_metrics or metrics
        agreement = float(((topic == reference[0]) & (sentiment == reference[1])).mean())
        eligible = agreement >= MIN_AGREEMENT and all(
            ref_metrics[t].accuracy - metrics[t].accuracy < MAX_ACCURACY_LOSS for t in TASKS
        )
        reports.append(
            BackendReport(
                backend=backend,
                docs_per_s=round(rate, 1),
                single_docs_per_s=round(single, 1),
                topic_accuracy=metrics["topic"].accuracy,
                sentiment_accuracy=metrics["sentiment"].accuracy,
                topic_macro_f1=metrics["topic"].macro_f1,
                sentiment_macro_f1=metrics["sentiment"].macro_f1,
                agreement=agreement,
                eligible=eligible,
            )
        )
        logger.info(
            "backend=%s docs/s=%.0f one-by-one=%.0f agreement=%.4f eligible=%s",
            backend, rate, single, agreement, eligible,
        )  # fmt: skip
    return ref_metrics, reports


def _metrics(val: list[Example], topic: np.ndarray, sentiment: np.ndarray) -> dict[Task, TaskMetrics]:
    task = np.array([TASKS.index(ex.task) for ex in val])
    truth = np.array([ex.label for ex in val])
    return {
        name: task_metrics(truth[task == i], pred[task == i], labels_for(name))
        for i, (name, pred) in enumerate(zip(TASKS, (topic, sentiment), strict=True))
    }


def encoder_only(model_dir: Path, val: list[Example], threads: int | None) -> dict[Task, TaskMetrics] | None:
    """The reference without its n-gram heads: what they add (None when it has none)."""
    if not lexical_saved(model_dir):
        return None
    clf = Classifier.load(model_dir, backend=REFERENCE, threads=threads, lexical=False)
    topic, sentiment, _ = labels_of(clf, [ex.text for ex in val])
    return _metrics(val, topic, sentiment)


def evaluate_dir(
    model_dir: Path,
    data_dir: Path | None = None,
    threads: int | None = None,
    backends: Sequence[str] | None = None,
    final_dir: Path | None = None,
) -> Evaluation:
    """Evaluate every CPU back end, choose the engine's default, write the model card
    (`final_dir`: where the model will live once moved from `model_dir`, as the card names it)."""
    from model.card import write_card

    saved = load_config(model_dir)  # ModelNotFound, InvalidModel before anything else
    version = model_version(model_dir)
    if not exports_current(model_dir, version):  # missing, or of weights since replaced
        export_onnx(model_dir, calibration_texts(model_dir, data_dir))
    val, data, config = validation_examples(model_dir, data_dir)
    metrics, reports = score_backends(model_dir, val, backends or cpu_backends(), threads)
    chosen = max((r for r in reports if r.eligible), key=lambda r: r.speed)
    training_file = model_dir / "training.json"
    evaluation = Evaluation(
        version=version,
        evaluated_at=datetime.now(UTC),
        model_dir=str(final_dir or model_dir),
        data_dir=str(data),
        split={
            "seed": config.seed,
            "val_fraction": config.val_fraction,
            "grouped_near_duplicates": True,
            **{f"val_{t}": sum(1 for e in val if e.task == t) for t in TASKS},
        },
        metrics=metrics,
        backends=tuple(reports),
        engine={
            "cpu_backend": chosen.backend,
            "threads": threads,
            "rule": "fastest (geometric mean of docs/s in batches and one by one) with "
            f"accuracy loss < {MAX_ACCURACY_LOSS:.0%} per head "
            f"and label agreement >= {MIN_AGREEMENT:.0%} vs {REFERENCE}",
        },
        training=_load_json(training_file) if training_file.is_file() else None,
        encoder_only=encoder_only(model_dir, val, threads),
        lexical_weight=float(saved.train.get("lexical_weight", 0.0)),
    )
    write_card(evaluation, model_dir)
    return evaluation


def _load_json(path: Path) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
