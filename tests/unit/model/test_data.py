"""Training data: CSV loading, label mapping, the grouped stratified split."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from model.data import class_counts, load_examples, split_examples, subsample
from model.errors import TrainingDataError
from model.labels import SENTIMENT_LABELS


def write_csv(path: Path, rows: list[tuple[str, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    topic = [(f"topic post {i} about subject {i % 4} https://t.co/{i}", i % 4) for i in range(80)]
    topic.append(('a "quoted"\nmultiline post', 1))
    sentiment = [(f"$T{i} shares move {i} https://t.co/s{i}", i % 3) for i in range(60)]
    write_csv(tmp_path / "topic" / "train.csv", topic)
    write_csv(tmp_path / "sentiment" / "train.csv", sentiment)
    return tmp_path


def test_loads_both_sets_with_mapped_labels(data_dir: Path) -> None:
    examples = load_examples(data_dir)
    assert sum(e.task == "topic" for e in examples) == 81
    assert any(e.text == 'a "quoted" multiline post' for e in examples)
    sentiments = [e for e in examples if e.task == "sentiment"]
    # File ids: 0 bearish, 1 bullish, 2 neutral.
    by_file_id = {i % 3: SENTIMENT_LABELS[e.label] for i, e in enumerate(sentiments)}
    assert by_file_id == {0: "negative", 1: "positive", 2: "neutral"}


def test_split_is_seeded_stratified_and_grouped(data_dir: Path) -> None:
    examples = load_examples(data_dir)
    # A repost of a validation text with another link must land on the same side.
    first = split_examples(examples, 0.25, seed=7)
    again = split_examples(examples, 0.25, seed=7)
    other = split_examples(examples, 0.25, seed=8)
    assert [e.text for e in first.val] == [e.text for e in again.val]
    assert [e.text for e in first.val] != [e.text for e in other.val]
    assert len(first.train) + len(first.val) == len(examples)
    assert {e.group for e in first.train}.isdisjoint({e.group for e in first.val})
    val_counts = class_counts(first.val, "topic", 4)
    assert min(val_counts) >= 4  # every class represented in proportion (20 each, 25%)


def test_reposts_stay_together(tmp_path: Path) -> None:
    rows = [(f"same words {i % 10} https://t.co/{i}", i % 2) for i in range(40)]
    write_csv(tmp_path / "topic" / "train.csv", rows)
    write_csv(tmp_path / "sentiment" / "train.csv", [("up", 1), ("down", 0), ("flat", 2)] * 3)
    split = split_examples(load_examples(tmp_path), 0.3, seed=1)
    train_texts = {e.group for e in split.train}
    assert all(e.group not in train_texts for e in split.val)


def test_subsample_keeps_every_class(data_dir: Path) -> None:
    examples = load_examples(data_dir)
    small = subsample(examples, {"topic": 20, "sentiment": 9}, seed=0)
    assert 18 <= sum(e.task == "topic" for e in small) <= 22
    assert all(n > 0 for n in class_counts(small, "topic", 4))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"sentiment": [("x", 1)]}, "topic/train.csv not found"),
        ({"topic": [("x", 25)], "sentiment": [("x", 1)]}, "label 25"),
        ({"topic": [("x", 1)], "sentiment": [("x", 3)]}, "label 3"),
    ],
)
def test_bad_data_dirs_say_what_is_wrong(
    tmp_path: Path, files: dict[str, list[tuple[str, int]]], message: str
) -> None:
    for task, rows in files.items():
        write_csv(tmp_path / task / "train.csv", rows)
    with pytest.raises(TrainingDataError, match=message):
        load_examples(tmp_path)


def test_extra_rows_join_the_training_split_only(data_dir: Path, tmp_path: Path) -> None:
    from model.config import TrainConfig
    from model.train import make_split

    config = TrainConfig(val_fraction=0.2)
    base = make_split(config, data_dir)
    held_out = next(e for e in base.val if e.task == "sentiment")
    extra = tmp_path / "feedback"
    # Bearish verdict rows (as `finpulse feedback export` writes them), one repeating a validation text.
    write_csv(extra / "sentiment" / "train.csv", [("ACME recalls every widget", 0), (held_out.text, 0)])
    split = make_split(config.model_copy(update={"extra_data_dirs": (extra,)}), data_dir)
    assert split.val == base.val  # the figures stay comparable
    added = split.train[len(base.train) :]
    assert split.train[: len(base.train)] == base.train
    assert [(e.text, e.task, SENTIMENT_LABELS[e.label]) for e in added] == [
        ("ACME recalls every widget", "sentiment", "negative")
    ]  # the validation text's twin is left out
    with pytest.raises(TrainingDataError, match=r"no topic/train.csv or sentiment/train.csv"):
        make_split(config.model_copy(update={"extra_data_dirs": (tmp_path / "empty",)}), data_dir)
