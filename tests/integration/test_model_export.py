"""The ONNX exports: the int8 graph's smoothing keeps the float function and helps int8 agree."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from model.artifacts import ONNX_FILE, ONNX_INT8_FILE, load_config, load_tokenizer
from model.engine import Classifier
from model.evaluate import calibration_texts, validation_examples
from model.export import quantise, smooth_feed_forward
from model.runtime import UNFUSED


@pytest.fixture(scope="module")
def val_texts(quick_model_dir: Path) -> list[str]:
    val, _, _ = validation_examples(quick_model_dir, None)
    return [e.text for e in val]


def _logits(model: onnx.ModelProto, tokenizer: object, texts: list[str]) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    enc = tokenizer(texts, truncation=True, padding=True, return_tensors="np")  # type: ignore[operator]
    feed = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
    return np.concatenate(session.run(None, feed), axis=-1)


def test_smoothing_leaves_the_float_graph_computing_the_same(
    quick_model_dir: Path, val_texts: list[str]
) -> None:
    tokenizer, texts = load_tokenizer(quick_model_dir), val_texts[:64]
    plain = onnx.load(str(quick_model_dir / ONNX_FILE))
    smoothed = onnx.load(str(quick_model_dir / ONNX_FILE))
    smooth_feed_forward(smoothed, calibration_texts(quick_model_dir, None, n=64), tokenizer, 128)
    assert sum(n.op_type == "Mul" and n.name.endswith("/Smooth") for n in smoothed.graph.node) == 12
    np.testing.assert_allclose(
        _logits(smoothed, tokenizer, texts), _logits(plain, tokenizer, texts), atol=2e-4
    )


def test_smoothed_int8_agrees_with_float32_more_than_unsmoothed(
    quick_model_dir: Path, val_texts: list[str], tmp_path: Path
) -> None:
    # The fixture's model was exported by `eval`, which smooths with training texts.
    assert any(
        n.name.endswith("/Smooth") for n in onnx.load(str(quick_model_dir / ONNX_INT8_FILE)).graph.node
    )
    plain = tmp_path / "plain"
    plain.mkdir()
    for f in quick_model_dir.iterdir():
        if f.is_file() and f.name != ONNX_INT8_FILE:
            (plain / f.name).symlink_to(f)
    max_length = int(load_config(quick_model_dir).train["max_length"])
    quantise(
        quick_model_dir / ONNX_FILE, plain / ONNX_INT8_FILE, [], load_tokenizer(quick_model_dir), max_length
    )

    def agreement(model_dir: Path) -> float:
        int8 = Classifier.load(model_dir, backend="onnx-int8", threads=2).probabilities(val_texts)
        return float(
            ((int8[0].argmax(-1) == ref[0].argmax(-1)) & (int8[1].argmax(-1) == ref[1].argmax(-1))).mean()
        )

    ref = Classifier.load(quick_model_dir, backend="onnx", threads=2).probabilities(val_texts)
    smoothed, unsmoothed = agreement(quick_model_dir), agreement(plain)
    assert smoothed > unsmoothed, (smoothed, unsmoothed)
    assert smoothed >= 0.97, smoothed


def test_residual_adds_stay_apart_from_their_layer_norms(quick_model_dir: Path, tmp_path: Path) -> None:
    # ONNX Runtime's CPU SkipLayerNormalization is slower than the Add + LayerNormalization it
    # fuses (model/export.py): neither the export nor the engine's sessions fuse them.
    for name in (ONNX_FILE, ONNX_INT8_FILE):
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(tmp_path / name)
        ort.InferenceSession(
            str(quick_model_dir / name),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=UNFUSED,
        )
        ops = Counter(n.op_type for n in onnx.load(str(tmp_path / name)).graph.node)
        assert (ops["SkipLayerNormalization"], ops["LayerNormalization"]) == (0, 12), (name, ops)
