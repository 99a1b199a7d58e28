"""Device and numeric precision: what `auto` means on this machine."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

import torch

logger = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """`auto` is CUDA when a GPU is visible, else CPU; anything else as torch spells it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 matrix instructions (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # older torch: no probe, assume emulated (slow) bf16
        return False


def cuda_has_bf16(device: torch.device | str) -> bool:
    """True on GPUs with native bf16 (compute capability 8.0, Ampere, and later).

    Not torch.cuda.is_bf16_supported(): it counts emulated bf16 too, which on a T4 or V100
    runs slower than their fp16 tensor cores.
    """
    return torch.cuda.get_device_capability(device) >= (8, 0)


def cpu_has_amx() -> bool:
    """True on CPUs with AMX tiles, where bf16 matrix products beat float32."""
    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def resolve_precision(precision: str, device: torch.device, step: Callable[[str], None] | None = None) -> str:
    """`auto`: bf16 on a GPU that has it natively (else fp16); on CPU bf16 with AMX, float32 without
    bf16 instructions, and with AVX-512 BF16 alone whichever runs `step` (one training step
    in the given precision) faster: a step of the default config took 0.64 s in bf16 against
    0.31 s in float32 on a 2-core Xeon, 0.41 s against 0.54 s on a 2-core AMD EPYC."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if cuda_has_bf16(device) else "fp16"
    if cpu_has_amx():
        return "bf16"
    if step is None or not cpu_has_bf16():
        return "fp32"
    seconds = {p: _best_time(step, p) for p in ("fp32", "bf16")}
    chosen = min(seconds, key=seconds.__getitem__)
    logger.info(
        "training precision auto: a step takes %.3f s in fp32, %.3f s in bf16 -> %s",
        seconds["fp32"], seconds["bf16"], chosen,
    )  # fmt: skip
    return chosen


def _best_time(step: Callable[[str], None], precision: str, repeats: int = 3) -> float:
    """The fastest of `repeats` timed calls, after one warm-up (kernels chosen, memory grown)."""
    step(precision)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step(precision)
        times.append(time.perf_counter() - start)
    return min(times)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """Mixed-precision context for forward passes (weights stay float32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
