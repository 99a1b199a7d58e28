"""Inference back ends: the same network run by PyTorch or ONNX Runtime.

    torch        float32 on CPU (the reference)
    torch-bf16   bfloat16 weights on CPUs with native bf16 (AVX-512 BF16 / AMX)
    torch-int8   PyTorch dynamic int8 quantisation of every Linear layer
    onnx         ONNX Runtime, fused transformer graph, float32
    onnx-int8    ONNX Runtime, fused graph with int8 MatMul weights
    onnx-int8-checked  onnx-int8, and the texts it leaves near a tie run again in onnx
                 (the engine decides which: model/engine.py)
    cuda-bf16    PyTorch on the GPU in bfloat16 (cuda-fp16 where bf16 is missing)

Each takes padded int64 ids and mask and returns float32 logits of both heads.
The CPU torch back ends run the network traced into a frozen TorchScript graph
(`traced`): same numbers, but one call from Python instead of hundreds.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from finpulse.settings import BACKENDS, CPU_BACKENDS, CUDA_BACKENDS
from model.artifacts import EXPORTED_FROM, ONNX_FILE, ONNX_INT8_FILE, check_export, load_net
from model.errors import REEXPORT, ModelNotFound

if TYPE_CHECKING:  # torch loads with a torch back end only: a process on ONNX starts seconds sooner
    import torch


logger = logging.getLogger(__name__)

# ONNX Runtime graph rewrites left out: its SkipLayerNormalization is slower on CPU than the
# Add and LayerNormalization it replaces (model/export.py).
UNFUSED = ["SkipLayerNormFusion"]


def cpu_backends() -> tuple[str, ...]:
    """The CPU back ends worth measuring here (bf16 only where the CPU has it natively)."""
    from model.precision import cpu_has_bf16

    return tuple(b for b in CPU_BACKENDS if b != "torch-bf16" or cpu_has_bf16())


class Runtime(Protocol):
    """Runs the two-headed network on one padded batch."""

    name: str

    def __call__(
        self, input_ids: np.ndarray, attention_mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]: ...


class TorchRuntime:
    """The network in PyTorch: float32, int8-quantised (CPU) or half precision (CUDA)."""

    def __init__(self, net: torch.nn.Module, device: torch.device, name: str) -> None:
        self.net, self.device, self.name = net.eval(), device, name

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self.device, non_blocking=True)
            mask = torch.from_numpy(attention_mask).to(self.device, non_blocking=True)
            topic, sentiment = self.net(ids, mask)
            return topic.float().cpu().numpy(), sentiment.float().cpu().numpy()


class OnnxRuntime:
    """An exported graph in an ONNX Runtime CPU session."""

    def __init__(self, path: Path, threads: int | None, name: str, version: str) -> None:
        """`version`: the model's; the export must record it (model/export.py)."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Threads spin between the ops of one run (waking a sleeping thread for each of a
        # batch of 1's ~100 small ops cost 5.0 ms a text instead of 3.3, onnx-int8 on a 2-core
        # EPYC) but stop when the run ends: they share the cores with the event loop (and, in
        # `finpulse model bench`, the pipeline), whose turn threads left spinning took: the
        # pipeline's batch of 1 went from 17 to 48 ms beside an engine that spun on.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        self.session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=UNFUSED
        )
        check_export(path, self.session.get_modelmeta().custom_metadata_map.get(EXPORTED_FROM), version)
        self.name = name

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        topic, sentiment = self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        return np.asarray(topic, dtype=np.float32), np.asarray(sentiment, dtype=np.float32)


class CheckedRuntime:
    """A fast back end with a float32 one beside it, for the texts the fast one leaves unsure."""

    def __init__(self, fast: Runtime, reference: Runtime, name: str) -> None:
        self.fast, self.reference, self.name = fast, reference, name

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.fast(input_ids, attention_mask)


def traced(net: torch.nn.Module) -> torch.nn.Module:
    """The network as a frozen TorchScript graph, or as it is where tracing fails.

    Eager PyTorch dispatches each of the encoder's ~200 ops from Python, holding the GIL
    between them: beside a busy event loop (the stream worker runs the classifier in a
    thread) it got 5 forward passes in 3 s where the traced graph, which runs without the
    GIL, got 37. Alone it is faster too (bf16, 2-core AMX Xeon: 176 -> 277 docs/s at
    batch 1, 501 -> 608 at 32), and gives the same logits.
    """
    import torch

    from model.network import quiet_transformers

    ids = torch.ones((2, 16), dtype=torch.int64)
    mask = torch.ones_like(ids)
    # A padded row: with an all-ones mask transformers leaves the mask out of the graph.
    mask[1, 8:] = 0
    try:
        with torch.inference_mode(), warnings.catch_warnings(), quiet_transformers():
            warnings.simplefilter("ignore")  # tracer notes on shape checks that hold for every input
            return torch.jit.freeze(torch.jit.trace(net.eval(), (ids, mask), check_trace=False))
    except Exception:  # eager is slower, not wrong
        logger.warning("tracing the network failed; running it eagerly", exc_info=True)
        return net


def make_runtime(
    backend: str, model_dir: Path, version: str, threads: int | None = None, device: str = "cuda"
) -> Runtime:
    """Build one back end for the model `version` in model_dir; a CUDA one on `device` (`cuda`: the
    current GPU). An ONNX back end refuses an export of other weights."""
    if backend == "onnx-int8-checked":
        fast, reference = (
            make_runtime("onnx-int8", model_dir, version, threads),
            make_runtime("onnx", model_dir, version, threads),
        )
        return CheckedRuntime(fast, reference, backend)
    if backend in ("onnx", "onnx-int8"):
        path = model_dir / (ONNX_FILE if backend == "onnx" else ONNX_INT8_FILE)
        if not path.is_file():
            raise ModelNotFound(f"{path} missing: {REEXPORT}")
        return OnnxRuntime(path, threads, backend, version)
    import torch

    if threads:
        torch.set_num_threads(threads)
    net, _ = load_net(model_dir)
    if backend == "torch":
        return TorchRuntime(traced(net), torch.device("cpu"), backend)
    if backend == "torch-bf16":
        return TorchRuntime(traced(net.to(torch.bfloat16)), torch.device("cpu"), backend)
    if backend == "torch-int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
            qnet = torch.ao.quantization.quantize_dynamic(net, {torch.nn.Linear}, dtype=torch.qint8)
        return TorchRuntime(traced(qnet), torch.device("cpu"), backend)
    if backend in CUDA_BACKENDS:
        dtype = {"cuda-bf16": torch.bfloat16, "cuda-fp16": torch.float16, "cuda": torch.float32}[backend]
        gpu = torch.device(device)
        return TorchRuntime(net.to(gpu, dtype=dtype), gpu, backend)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
