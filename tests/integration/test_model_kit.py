"""The GPU kit (model/kit.py): small enough to travel, and its float16 model labels as the model."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from finpulse.errors import ConfigError
from finpulse.settings import ModelSettings
from model.engine import Classifier
from model.errors import ModelNotFound
from model.evaluate import validation_examples
from model.kit import LIMIT_BYTES, build_kit, working_tree_bytes


def test_the_kit_travels_and_its_float16_model_labels_as_the_model(
    quick_model_dir: Path, tmp_path: Path
) -> None:
    kit = tmp_path / "kit"
    size = build_kit(quick_model_dir, ModelSettings().train_data_dir, kit, python=None)
    assert size < LIMIT_BYTES
    weights = kit / "model" / "model.safetensors"
    assert weights.stat().st_size < 0.55 * (quick_model_dir / "model.safetensors").stat().st_size
    assert not list((kit / "model").glob("*.onnx"))  # the CPU back ends' exports stay behind
    assert (kit / "data" / "sentiment" / "train.csv").is_file()
    assert subprocess.run(["bash", "-n", str(kit / "run.sh")], check=False).returncode == 0

    val, _, _ = validation_examples(quick_model_dir, None)
    texts = [e.text for e in val][:300]
    original = Classifier.load(quick_model_dir, device="cpu", backend="torch").predict(texts)
    packed = Classifier.load(kit / "model", device="cpu", backend="torch").predict(texts)
    same = sum(
        (a.topic, a.sentiment) == (b.topic, b.sentiment) for a, b in zip(original, packed, strict=True)
    )
    assert same >= 0.99 * len(texts)


def test_the_kit_and_the_working_tree_together_stay_under_the_limit(
    quick_model_dir: Path, tmp_path: Path
) -> None:
    size = build_kit(quick_model_dir, ModelSettings().train_data_dir, tmp_path / "kit", python=None)
    with pytest.raises(
        ValueError, match=r"the kit is [\d.]+ MiB and the working tree [\d.]+: over the 64 MiB"
    ):
        build_kit(
            quick_model_dir, ModelSettings().train_data_dir, tmp_path / "kit", None, LIMIT_BYTES - size + 1
        )


def test_a_folder_that_is_no_kit_and_a_missing_model_are_refused_before_anything_is_deleted(
    quick_model_dir: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "mine" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("important")
    data = ModelSettings().train_data_dir
    with pytest.raises(ConfigError, match="holds files and is no kit"):
        build_kit(quick_model_dir, data, notes.parent, python=None)
    with pytest.raises(ModelNotFound, match="no trained model"):
        build_kit(tmp_path / "empty", data, notes.parent, python=None)
    assert notes.read_text() == "important"
    build_kit(quick_model_dir, data, tmp_path / "kit", python=None)
    build_kit(quick_model_dir, data, tmp_path / "kit", python=None)  # a kit is replaced


def test_the_working_tree_is_what_git_tracks_or_would(tmp_path: Path) -> None:
    assert working_tree_bytes(tmp_path) == 0  # no checkout
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("kit/\n")  # 5 bytes
    (tmp_path / "tracked.py").write_text("x" * 100)
    subprocess.run(["git", "-C", str(tmp_path), "add", "tracked.py"], check=True)
    (tmp_path / "new.py").write_text("y" * 10)
    (tmp_path / "kit").mkdir()
    (tmp_path / "kit" / "weights").write_bytes(b"z" * 1000)
    assert working_tree_bytes(tmp_path) == 100 + 10 + 5
