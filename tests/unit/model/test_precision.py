"""What `auto` precision resolves to on each kind of machine."""

from __future__ import annotations

import time

import pytest
import torch

from model.precision import resolve_precision


def _cpu(monkeypatch: pytest.MonkeyPatch, *, bf16: bool, amx: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)


class _Steps:
    """A training step that takes `seconds[precision]`, recording what was timed."""

    def __init__(self, **seconds: float) -> None:
        self.seconds, self.calls = seconds, []

    def __call__(self, precision: str) -> None:
        self.calls.append(precision)
        time.sleep(self.seconds[precision])


@pytest.mark.parametrize(("fp32", "bf16", "expected"), [(0.002, 0.02, "fp32"), (0.02, 0.002, "bf16")])
def test_avx512_bf16_alone_takes_the_faster_step(
    monkeypatch: pytest.MonkeyPatch, fp32: float, bf16: float, expected: str
) -> None:
    # A 2-core Xeon stepped twice as fast in float32, a 2-core EPYC a quarter faster in bf16.
    _cpu(monkeypatch, bf16=True, amx=False)
    steps = _Steps(fp32=fp32, bf16=bf16)
    assert resolve_precision("auto", torch.device("cpu"), steps) == expected
    assert steps.calls.count("fp32") == steps.calls.count("bf16") >= 2


def test_amx_trains_in_bf16_without_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, bf16=True, amx=True)
    steps = _Steps(fp32=0.0, bf16=0.0)
    assert resolve_precision("auto", torch.device("cpu"), steps) == "bf16"
    assert steps.calls == []


def test_without_bf16_instructions_or_a_step_to_time_it_is_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, bf16=False, amx=False)
    steps = _Steps(fp32=0.0, bf16=0.0)
    assert resolve_precision("auto", torch.device("cpu"), steps) == "fp32"
    assert steps.calls == []
    _cpu(monkeypatch, bf16=True, amx=False)
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"


def test_explicit_precision_is_kept() -> None:
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
