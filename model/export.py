"""ONNX export of a trained model: float32, and int8 with dynamic quantisation.

The float graph goes through ONNX Runtime's transformer optimiser (fused
attention, LayerNorm and GELU for BERT-style encoders); the int8 file is that
graph with its MatMul weights quantised to int8 (activations quantised on the
fly), which runs on VNNI / AVX-512 integer units.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import torch

from model.artifacts import ONNX_FILE, ONNX_INT8_FILE, load_net

logger = logging.getLogger(__name__)

# Opset 17 has LayerNormalization as one op; ONNX Runtime >= 1.14 runs it.
OPSET = 17


def export_onnx(model_dir: Path) -> tuple[Path, Path]:
    """Write model.onnx and model.int8.onnx beside the weights; returns both paths."""
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
    _quantise(fp32, int8)
    logger.info("exported onnx=%s int8=%s", fp32, int8)
    return fp32, int8


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

    model = optimizer.optimize_model(
        str(src), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1
    )
    model.save_model_to_file(str(dst))


def _quantise(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused ops (com.microsoft domain) defeat shape inference: their outputs are float.
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT}
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))  # the quantiser logs each fused op on the root logger
    try:
        quantize_dynamic(
            str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, extra_options=extra
        )
    finally:
        root.setLevel(level)
