"""What `auto` precision resolves to on each kind of machine."""

from __future__ import annotations

import pytest
import torch

from model.precision import resolve_precision


@pytest.mark.parametrize(("amx", "expected"), [(True, "bf16"), (False, "fp32")])
def test_cpu_trains_in_bf16_only_with_amx(monkeypatch: pytest.MonkeyPatch, amx: bool, expected: str) -> None:
    # AVX-512 BF16 alone is not enough: bf16 steps took twice as long as float32 there.
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert resolve_precision("auto", torch.device("cpu")) == expected


def test_explicit_precision_is_kept() -> None:
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
