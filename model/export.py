"""ONNX export of a trained model: float32, and int8 with dynamic quantisation.

The float graph goes through ONNX Runtime's transformer optimiser (fused
attention, embedding LayerNorm and GELU for BERT-style encoders); the int8 file is that
graph with its MatMul weights quantised to int8 (activations quantised on the
fly, one scale per tensor), which runs on VNNI / AVX-512 integer units.

Before quantising, the feed-forward layers are smoothed (SmoothQuant, Xiao et
al. 2023): their inputs have a few channels ~15x larger than the rest, which set
the one activation scale and leave the others a handful of int8 steps. Each
such MatMul gets its input divided per channel by s and its weight rows
multiplied by s (the same product in float), s = max|x|^a / max|w|^(1-a) from
calibration texts. On the quick model's validation texts int8 then agreed with
float32 on 98.6% (both labels) instead of 96.4%.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.artifacts import EXPORTED_FROM, ONNX_FILE, ONNX_INT8_FILE, load_net, load_tokenizer, model_version

logger = logging.getLogger(__name__)

# Opset 17 has LayerNormalization as one op; ONNX Runtime >= 1.14 runs it.
OPSET = 17
# Smoothing strength a (0: none, 1: all of the input's range moved into the weights):
# 0.7-0.9 agreed alike (98.3-98.6%) on the quick model.
SMOOTH_ALPHA = 0.8
# The feed-forward MatMuls (not attention's output, which gained nothing), by exported name.
SMOOTHED = ("/intermediate/dense/MatMul", "/output/dense/MatMul")


def export_onnx(model_dir: Path, calibration: Sequence[str] = ()) -> tuple[Path, Path]:
    """Write model.onnx and model.int8.onnx beside the weights; returns both paths.

    `calibration`: normalised training texts whose activations size the smoothing of
    the int8 graph (a few hundred are plenty); without them it is not smoothed."""
    net, config = load_net(model_dir)
    # Eager attention exports as plain MatMul/Softmax, which ONNX Runtime fuses into
    # its Attention op (the SDPA export is left unfused).
    net.encoder.config._attn_implementation = "eager"
    fp32, int8 = model_dir / ONNX_FILE, model_dir / ONNX_INT8_FILE
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        _torch_export(net, raw)
        _optimise(
            raw,
            fp32,
            hidden=int(config.encoder["hidden_size"]),
            heads=int(config.encoder["num_attention_heads"]),
        )
    quantise(fp32, int8, calibration, load_tokenizer(model_dir), int(config.train.get("max_length", 128)))
    version = model_version(model_dir)
    for path in (fp32, int8):
        record_version(path, version)
    logger.info("exported onnx=%s int8=%s smoothed=%s version=%s", fp32, int8, bool(calibration), version)
    return fp32, int8


def record_version(path: Path, version: str) -> None:
    """Write the model version into the file's metadata: the engine refuses it under other weights."""
    import onnx

    model = onnx.load(str(path))
    props = {p.key: p.value for p in model.metadata_props} | {EXPORTED_FROM: version}
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(path))


def exported_from(path: Path) -> str | None:
    """The model version an ONNX file was exported from (None: it records none)."""
    import onnx

    props = onnx.load(str(path), load_external_data=False).metadata_props
    return next((p.value for p in props if p.key == EXPORTED_FROM), None)


def exports_current(model_dir: Path, version: str) -> bool:
    """Whether both ONNX files are there and were exported from the model `version`."""
    return all(
        (model_dir / name).is_file() and exported_from(model_dir / name) == version
        for name in (ONNX_FILE, ONNX_INT8_FILE)
    )


def _torch_export(net: torch.nn.Module, path: Path) -> None:
    ids = torch.ones((2, 16), dtype=torch.int64)
    mask = torch.ones((2, 16), dtype=torch.int64)
    axes = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            net,
            (ids, mask),
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=["input_ids", "attention_mask"],
            output_names=["topic_logits", "sentiment_logits"],
            dynamic_axes={
                "input_ids": axes,
                "attention_mask": axes,
                "topic_logits": {0: "batch"},
                "sentiment_logits": {0: "batch"},
            },
        )


def _optimise(src: Path, dst: Path, hidden: int, heads: int) -> None:
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    # The residual Add stays apart from its LayerNorm: ONNX Runtime's CPU SkipLayerNormalization
    # took 17% of the int8 network's time at one text a call, Add + LayerNormalization 11%
    # (2-core EPYC; the sessions keep them apart too: model/runtime.py).
    fusions = FusionOptions("bert")
    fusions.enable_skip_layer_norm = fusions.enable_bias_skip_layer_norm = False
    model = optimizer.optimize_model(
        str(src), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1,
        optimization_options=fusions,
    )  # fmt: skip
    model.save_model_to_file(str(dst))


def _input_ranges(
    model: Any, names: Sequence[str], texts: Sequence[str], tokenizer: Any, max_length: int
) -> list[np.ndarray]:
    """Per channel, the largest |input| of each named node over the texts (float graph)."""
    import onnx
    import onnxruntime as ort

    nodes = {n.name: n for n in model.graph.node}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    inputs = [nodes[name].input[0] for name in names]
    for tensor in inputs:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(tensor, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    ranges = [np.zeros(0, dtype=np.float32) for _ in names]
    for start in range(0, len(texts), 32):
        enc = tokenizer(list(texts[start : start + 32]), truncation=True, max_length=max_length, padding=True,
                        return_tensors="np")  # fmt: skip
        feed = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
        for i, x in enumerate(session.run(inputs, feed)):
            top = np.abs(x).reshape(-1, x.shape[-1]).max(axis=0)
            ranges[i] = np.maximum(ranges[i], top) if ranges[i].size else top
    return ranges


def smooth_feed_forward(model: Any, texts: Sequence[str], tokenizer: Any, max_length: int) -> None:
    """Move the feed-forward inputs' outlier channels into the weights (module docstring)."""
    import onnx
    from onnx import numpy_helper

    targets = [
        n for n in model.graph.node
        if n.op_type == "MatMul" and n.name.endswith(SMOOTHED) and "/attention/" not in n.name
    ]  # fmt: skip
    weights = {w.name: w for w in model.graph.initializer}
    ranges = _input_ranges(model, [n.name for n in targets], texts, tokenizer, max_length)
    for node, top in zip(targets, ranges, strict=True):
        w = numpy_helper.to_array(weights[node.input[1]])  # [in, out]
        s = np.maximum(top, 1e-5) ** SMOOTH_ALPHA / np.maximum(np.abs(w).max(axis=1), 1e-5) ** (
            1 - SMOOTH_ALPHA
        )
        weights[node.input[1]].CopyFrom(
            numpy_helper.from_array((w * s[:, None]).astype(np.float32), node.input[1])
        )
        inverse = numpy_helper.from_array((1.0 / s).astype(np.float32), f"{node.name}/smooth")
        model.graph.initializer.append(inverse)
        mul = onnx.helper.make_node(
            "Mul", [node.input[0], inverse.name], [f"{node.name}/smoothed"], name=f"{node.name}/Smooth"
        )
        node.input[0] = mul.output[0]
        model.graph.node.insert(list(model.graph.node).index(node), mul)


def quantise(src: Path, dst: Path, calibration: Sequence[str], tokenizer: Any, max_length: int) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused ops (com.microsoft domain) defeat shape inference: their outputs are float.
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))  # the quantiser logs each fused op on the root logger
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if calibration:
                model = onnx.load(str(src))
                smooth_feed_forward(model, calibration, tokenizer, max_length)
                src = Path(tmp) / "smoothed.onnx"
                onnx.save(model, str(src))
            quantize_dynamic(
                str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, extra_options=extra
            )
    finally:
        root.setLevel(level)
