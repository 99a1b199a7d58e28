"""Device and numeric precision: what `auto` means on this machine."""

from __future__ import annotations

import contextlib

import torch


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


def cpu_has_amx() -> bool:
    """True on CPUs with AMX tiles, where bf16 matrix products beat float32. With AVX-512 BF16
    alone they do not: a training step of the default config took 0.64 s in bf16 and 0.31 s in
    float32 on such a 2-core Xeon."""
    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto`: bf16 on CUDA that has it (else fp16), bf16 on CPUs with AMX, else fp32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_amx() else "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[object]:
    """Mixed-precision context for forward passes (weights stay float32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
