"""The ONNX exports: the int8 graph's smoothing keeps the float function and helps int8 agree;
each records the model version it was made from, and is refused under other weights."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from model.artifacts import (
    ONNX_FILE,
    ONNX_INT8_FILE,
    WEIGHTS_FILE,
    load_config,
    load_tokenizer,
    model_version,
)
from model.engine import Classifier
from model.errors import InvalidModel
from model.evaluate import calibration_texts, evaluate_dir, validation_examples
from model.export import exported_from, exports_current, quantise, record_version, smooth_feed_forward
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
    record_version(plain / ONNX_INT8_FILE, model_version(quick_model_dir))

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


def test_each_export_records_the_model_version_it_was_made_from(quick_model_dir: Path) -> None:
    version = model_version(quick_model_dir)
    assert [exported_from(quick_model_dir / name) for name in (ONNX_FILE, ONNX_INT8_FILE)] == [version] * 2
    assert exports_current(quick_model_dir, version)


def _with_other_weights(quick_model_dir: Path, tmp_path: Path) -> Path:
    """A copy of the quick model whose weights were replaced after its export."""
    import shutil

    from safetensors.numpy import load_file, save_file

    copy = tmp_path / "model"
    shutil.copytree(quick_model_dir, copy)
    weights = load_file(str(copy / WEIGHTS_FILE))
    weights["topic_head.bias"] = weights["topic_head.bias"] + 1.0
    save_file(weights, str(copy / WEIGHTS_FILE))
    return copy


def test_an_export_of_other_weights_is_refused(quick_model_dir: Path, tmp_path: Path) -> None:
    """Before, the ONNX back ends ran the old network stamped with the new weights' version."""
    copy = _with_other_weights(quick_model_dir, tmp_path)
    old, new = model_version(quick_model_dir), model_version(copy)
    assert not exports_current(copy, new)
    for backend in ("onnx", "onnx-int8", "onnx-int8-checked"):
        with pytest.raises(InvalidModel) as caught:
            Classifier.load(copy, backend=backend, threads=1)
        path = copy / (ONNX_FILE if backend == "onnx" else ONNX_INT8_FILE)  # checked: int8 first
        expected = f"{path} was exported from model {old}, the weights are {new}: run `finpulse model export`"
        assert str(caught.value).startswith(expected)
    assert Classifier.load(copy, backend="torch", threads=1).version == new  # torch reads the weights
    # An export from before versions were recorded cannot be vouched for either.
    graph = onnx.load(str(copy / ONNX_FILE))
    del graph.metadata_props[:]
    onnx.save(graph, str(copy / ONNX_FILE))
    with pytest.raises(InvalidModel, match="exported from a model it does not record"):
        Classifier.load(copy, backend="onnx", threads=1)


def test_eval_exports_again_when_the_exports_are_of_other_weights(
    quick_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import model.evaluate

    copy = _with_other_weights(quick_model_dir, tmp_path)
    exported = []

    class Exported(Exception):
        pass

    def export(model_dir: Path, calibration: object = ()) -> None:
        exported.append(model_dir)
        raise Exported  # the export itself is tested above; eval's scoring need not run

    monkeypatch.setattr(model.evaluate, "export_onnx", export)
    with pytest.raises(Exported):
        evaluate_dir(copy)
    assert exported == [copy]
