"""Training data: the topic and sentiment CSV sets, and a grouped, stratified split.

A data directory holds `topic/train.csv` and `sentiment/train.csv`, each with
columns `text,label` (../shared/data/README.md). The validation split is made
from these files with a fixed seed, stratified by (task, label), and grouped
so that near-duplicate copies of one post (same words, another link) never sit
on both sides: otherwise validation would reward memorised posts.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from model.errors import TrainingDataError
from model.labels import SENTIMENT_FILE_IDS, TOPICS, Task
from model.text import group_key, normalize_text

logger = logging.getLogger(__name__)

FILES: dict[Task, str] = {"topic": "topic/train.csv", "sentiment": "sentiment/train.csv"}


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text: normalised text, the task its label is for, class index."""

    text: str
    task: Task
    label: int
    group: str


def split_fingerprint(val: list[Example]) -> str:
    """Which texts a validation split holds, in 16 hex digits: eval checks that it scores the
    split the model was trained without (other data reshuffles it, mostly into training texts)."""
    digest = hashlib.sha256()
    for key in sorted(f"{ex.task}\x1f{ex.text}" for ex in val):
        digest.update(key.encode("utf-8") + b"\x1e")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Split:
    """Training and validation examples of both tasks."""

    train: list[Example]
    val: list[Example]

    def describe(self) -> str:
        def count(xs: list[Example], task: Task) -> int:
            return sum(1 for x in xs if x.task == task)

        return (
            f"train topic={count(self.train, 'topic')} sentiment={count(self.train, 'sentiment')}; "
            f"val topic={count(self.val, 'topic')} sentiment={count(self.val, 'sentiment')}"
        )


def read_task(data_dir: Path, task: Task) -> list[Example]:
    """Read one task's training CSV."""
    path = data_dir / FILES[task]
    if not path.is_file():
        raise TrainingDataError(
            f"{path} not found: a training directory needs {FILES['topic']} and {FILES['sentiment']} "
            "(columns text,label); set FINPULSE_MODEL_TRAIN_DATA_DIR or pass --data"
        )
    return read_labelled(path, task)


def read_labelled(path: Path, task: Task) -> list[Example]:
    """One task's labelled posts from a CSV of the training files' format (columns text,label;
    a real CSV parser: texts hold quoted newlines)."""
    if not path.is_file():
        raise TrainingDataError(f"{path} not found")
    try:
        frame = pd.read_csv(path, dtype={"text": "string"})
    except (ValueError, pd.errors.ParserError) as exc:
        raise TrainingDataError(f"{path}: not a readable CSV: {exc}") from exc
    if not {"text", "label"} <= set(frame.columns):
        raise TrainingDataError(f"{path}: needs columns text,label, found {list(frame.columns)}")
    mapping = {i: i for i in range(len(TOPICS))} if task == "topic" else SENTIMENT_FILE_IDS
    examples = []
    for row, (text, label) in enumerate(zip(frame["text"], frame["label"], strict=True), start=2):
        if pd.isna(label) or int(label) not in mapping:
            raise TrainingDataError(f"{path}:{row}: label {label!r} is not one of {sorted(mapping)}")
        if pd.isna(text) or not normalize_text(str(text)):
            logger.warning("skipping empty text file=%s row=%d", path, row)
            continue
        examples.append(Example(normalize_text(str(text)), task, mapping[int(label)], group_key(str(text))))
    return examples


def load_examples(data_dir: Path) -> list[Example]:
    """All examples of both tasks, in file order."""
    return read_task(data_dir, "topic") + read_task(data_dir, "sentiment")


def read_extra(data_dir: Path) -> list[Example]:
    """Extra training rows: whichever task files the directory has (at least one)."""
    tasks = [task for task in FILES if (data_dir / FILES[task]).is_file()]
    if not tasks:
        raise TrainingDataError(
            f"{data_dir}: no {FILES['topic']} or {FILES['sentiment']} (columns text,label) to add"
        )
    return [ex for task in tasks for ex in read_task(data_dir, task)]


def split_examples(examples: list[Example], val_fraction: float, seed: int) -> Split:
    """Stratified (task, label) split of near-duplicate groups, reproducible by seed."""
    members: dict[str, list[Example]] = defaultdict(list)
    for ex in examples:
        members[ex.group].append(ex)
    # A group's stratum: its first member's task and label. A class with a single
    # group cannot be split: it trains.
    stratum = {g: f"{m[0].task}:{m[0].label}" for g, m in members.items()}
    sizes = Counter(stratum.values())
    groups = sorted(g for g in members if sizes[stratum[g]] >= 2)
    train_groups, val_groups = train_test_split(
        groups, test_size=val_fraction, random_state=seed, stratify=[stratum[g] for g in groups]
    )
    train_groups += sorted(g for g in members if sizes[stratum[g]] < 2)
    train = [ex for g in train_groups for ex in members[g]]
    val = [ex for g in sorted(val_groups) for ex in members[g]]
    return Split(train=train, val=val)


def subsample(examples: list[Example], per_task: dict[Task, int], seed: int) -> list[Example]:
    """A stratified random subset with at most per_task[task] examples of each task."""
    rng = random.Random(seed)
    out: list[Example] = []
    for task, limit in per_task.items():
        pool = [ex for ex in examples if ex.task == task]
        if len(pool) <= limit:
            out += pool
            continue
        by_label: dict[int, list[Example]] = defaultdict(list)
        for ex in pool:
            by_label[ex.label].append(ex)
        for label_pool in by_label.values():
            take = max(1, round(limit * len(label_pool) / len(pool)))
            out += rng.sample(label_pool, min(take, len(label_pool)))
    return out


def class_counts(examples: list[Example], task: Task, n_classes: int) -> list[int]:
    """How many examples of each class a task has."""
    counts = Counter(ex.label for ex in examples if ex.task == task)
    return [counts.get(i, 0) for i in range(n_classes)]
