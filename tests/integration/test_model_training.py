"""Quick training on a small subset learns, and writes a complete model directory."""

from __future__ import annotations

import json
from pathlib import Path

from model.artifacts import (
    CARD_JSON,
    CARD_MD,
    CONFIG_FILE,
    ONNX_FILE,
    ONNX_INT8_FILE,
    WEIGHTS_FILE,
    model_version,
)
from model.labels import TOPICS
from model.lexical import LEXICAL_ARRAYS, LEXICAL_FILE, LexicalModel
from tests.markdown import tables


def test_quick_training_learns(quick_model_dir: Path) -> None:
    training = json.loads((quick_model_dir / "training.json").read_text())
    curve = training["loss_curve"]
    assert curve[-1] < 0.6 * curve[0], f"loss did not fall: {curve}"
    for task, margin in (("topic", 0.30), ("sentiment", 0.05)):
        val = training["val"][task]
        assert val["n"] >= 200
        assert val["accuracy"] > val["majority_accuracy"] + margin, (
            task,
            val["accuracy"],
            val["majority_accuracy"],
        )
    assert training["split"]["train_topic"] >= 1000
    assert training["stopped"] in ("epochs done", "early stopping")


def test_model_dir_holds_weights_exports_and_card(quick_model_dir: Path) -> None:
    files = (
        CONFIG_FILE,
        WEIGHTS_FILE,
        LEXICAL_FILE,
        LEXICAL_ARRAYS,
        ONNX_FILE,
        ONNX_INT8_FILE,
        CARD_JSON,
        CARD_MD,
    )
    for name in (*files, "tokenizer.json"):
        assert (quick_model_dir / name).is_file(), name
    for png in ("confusion_topic.png", "confusion_sentiment.png"):
        assert (quick_model_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = json.loads((quick_model_dir / CARD_JSON).read_text())
    assert card["version"] == model_version(quick_model_dir)
    assert len(card["metrics"]["topic"]["per_class"]) == 20
    assert {r["backend"] for r in card["backends"]} >= {"torch", "torch-int8", "onnx", "onnx-int8"}
    chosen = next(r for r in card["backends"] if r["backend"] == card["engine"]["cpu_backend"])
    assert chosen["eligible"]
    # Chosen for speed in batches and one text at a time alike (geometric mean).
    speed = {r["backend"]: (r["docs_per_s"] * r["single_docs_per_s"]) ** 0.5 for r in card["backends"]}
    assert all(r["single_docs_per_s"] > 0 for r in card["backends"])
    assert speed[chosen["backend"]] == max(speed[r["backend"]] for r in card["backends"] if r["eligible"])
    assert chosen["agreement"] >= 0.99
    markdown = (quick_model_dir / CARD_MD).read_text()
    assert "| topic |" in markdown
    # Each accuracy comes with its 95% interval, on the card and in its markdown.
    for task in ("topic", "sentiment"):
        m = card["metrics"][task]
        low, high = m["accuracy_interval"]
        assert 0 < low < m["accuracy"] < high < 1
        assert f"| {m['accuracy']:.4f} | {low:.3f}-{high:.3f} |" in markdown
    # The card shows the encoder's heads alone beside the mixture with the n-gram heads.
    assert card["lexical_weight"] > 0
    assert card["encoder_only"]["topic"]["n"] == card["metrics"]["topic"]["n"]
    assert "The encoder's heads alone" in markdown
    # A markdown reader sees each topic name (some hold a `|`) whole, in its one cell.
    per_class = next(t for t in tables(markdown) if t[0][0] == "class" and len(t) == 1 + len(TOPICS))
    assert [row[0] for row in per_class[1:]] == list(TOPICS)
    assert all(row[-1].isdigit() for row in per_class[1:])  # the support column is where it belongs


def test_version_is_a_hash_of_weights_and_config(quick_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(quick_model_dir, copy)
    assert model_version(copy) == model_version(quick_model_dir)
    config = json.loads((copy / CONFIG_FILE).read_text())
    config["max_length"] = 96
    (copy / CONFIG_FILE).write_text(json.dumps(config))
    changed_config = model_version(copy)
    assert changed_config != model_version(quick_model_dir)
    with (copy / WEIGHTS_FILE).open("r+b") as fh:
        fh.seek(-8, 2)
        fh.write(b"\x01\x02\x03\x04\x05\x06\x07\x08")
    changed_weights = model_version(copy)
    assert changed_weights != changed_config
    lexical = LexicalModel.load(copy)
    assert lexical is not None
    lexical.coef[0, 0] += 0.5
    lexical.save(copy)
    assert model_version(copy) != changed_weights


def test_precision_trial_steps_leave_the_run_as_it_was() -> None:
    # `auto` on CPUs with AVX-512 BF16 alone times a step in each precision before training.
    import torch

    from finpulse.settings import Settings
    from model.config import TrainConfig
    from model.network import base_model_dir
    from model.train import _Trainer, make_split

    # A step of 4 texts: bf16 without native support (this CI's CPU) took 29 s for the quick 32.
    config = TrainConfig.quick(
        precision="fp32",
        batch_size=4,
        train_subset={"topic": 60, "sentiment": 30},
        val_subset={"topic": 40, "sentiment": 30},
    )
    trainer = _Trainer(config, make_split(config, Settings().model.train_data_dir), False, base_model_dir())
    before = {k: v.clone() for k, v in trainer.net.state_dict().items()}
    rng = torch.random.get_rng_state()
    for precision in ("fp32", "bf16"):
        trainer.trial_step(precision)
    assert all(torch.equal(before[k], v) for k, v in trainer.net.state_dict().items())
    assert all(p.grad is None for p in trainer.net.parameters())
    assert torch.equal(torch.random.get_rng_state(), rng)


def test_after_an_epoch_each_text_also_trains_the_head_it_has_no_label_for() -> None:
    import numpy as np

    from finpulse.settings import Settings
    from model.config import TrainConfig
    from model.labels import TASKS
    from model.lexical import mix
    from model.network import base_model_dir
    from model.train import _Trainer, make_split

    config = TrainConfig.quick(
        precision="fp32",
        epochs=1,
        cross_distill=1.0,
        train_subset={"topic": 60, "sentiment": 40},
        val_subset={"topic": 40, "sentiment": 30},
    )
    trainer = _Trainer(config, make_split(config, Settings().model.train_data_dir), False, base_model_dir())
    topic_texts = [int(i) for i in np.flatnonzero(trainer.train_data.task == TASKS.index("topic"))[:8]]
    head = trainer.net.sentiment_head.weight

    # Before any epoch there are no soft targets: topic texts leave the sentiment head alone.
    trainer.forward_loss(topic_texts, "fp32")[0].backward()
    assert head.grad is None or not head.grad.any()
    trainer.net.zero_grad(set_to_none=True)

    trainer.run()  # one epoch: every text's pass through both heads is recorded
    seen = trainer.seen["sentiment"]
    assert not np.isnan(seen).any()
    trainer.new_targets()
    assert trainer.targets is not None
    targets = trainer.targets["sentiment"]
    # The encoder's last pass mixed with the n-gram heads, a distribution per text.
    expected = mix(seen, trainer.lexical_probs["sentiment"], config.lexical_weight)
    np.testing.assert_allclose(targets, expected, rtol=1e-6)
    np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-5)

    trainer.forward_loss(topic_texts, "fp32")[0].backward()
    assert head.grad is not None
    assert head.grad.abs().sum() > 0


def test_eval_refuses_data_that_splits_otherwise(
    quick_model_dir: Path, quick_data_dir: Path, tmp_path: Path
) -> None:
    """Rows added since training reshuffle the seeded split: its "validation" texts would be
    mostly training ones, and the card's figures flattering."""
    import shutil

    import pytest

    from model.errors import TrainingDataError
    from model.evaluate import validation_examples

    val, _, _ = validation_examples(quick_model_dir, quick_data_dir)  # the training data: accepted
    assert val
    grown = tmp_path / "data"
    shutil.copytree(quick_data_dir, grown, ignore=shutil.ignore_patterns("*.md", "LICENSE*"))
    with (grown / "topic" / "train.csv").open("a", encoding="utf-8") as f:
        f.writelines(f'"A headline added since, number {n}",3\n' for n in range(10))
    with pytest.raises(TrainingDataError, match="makes another validation split"):
        validation_examples(quick_model_dir, grown)


def test_confusion_figures_keep_their_titles_whole(quick_model_dir: Path) -> None:
    """The figures after the title ran past the 3-class figure's edge: n=1000 read n=100."""
    import matplotlib.pyplot as plt

    from model.card import confusion_figure
    from model.evaluate import Evaluation

    evaluation = Evaluation.model_validate_json((quick_model_dir / CARD_JSON).read_text())
    for task, metrics in evaluation.metrics.items():
        fig = confusion_figure(metrics.model_copy(update={"n": 1000}), f"{task} head, held out")
        fig.canvas.draw()
        title, whole = fig.axes[0].title.get_window_extent(), fig.bbox
        assert whole.x0 <= title.x0, (task, title, whole)
        assert title.x1 <= whole.x1, (task, title, whole)
        assert title.y1 <= whole.y1, (task, title, whole)
        assert fig.axes[0].get_title().endswith("n=1,000")
        plt.close(fig)
