"""What `auto` precision (training) and back end (inference) resolve to on each kind of machine."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from model import engine
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


def _gpu(monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int]) -> list[object]:
    """A visible GPU of `capability`; returns the devices whose capability was asked."""
    asked: list[object] = []

    def get_device_capability(device: object = None) -> tuple[int, int]:
        asked.append(device)
        return capability

    monkeypatch.setattr(engine, "_cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", get_device_capability)
    # As torch answers: emulated bf16 counts unless told otherwise.
    monkeypatch.setattr(
        torch.cuda,
        "is_bf16_supported",
        lambda including_emulation=True: including_emulation or capability >= (8, 0),
    )
    return asked


@pytest.mark.parametrize(
    ("capability", "backend", "precision"),
    [
        ((7, 5), "cuda-fp16", "fp16"),
        ((7, 0), "cuda-fp16", "fp16"),
        ((8, 0), "cuda-bf16", "bf16"),
        ((9, 0), "cuda-bf16", "bf16"),
    ],
)
def test_cuda_uses_bf16_only_where_the_gpu_runs_it_natively(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capability: tuple[int, int], backend: str, precision: str
) -> None:
    # T4 (7.5) and V100 (7.0) only emulate bf16, slower than their fp16 tensor cores.
    _gpu(monkeypatch, capability)
    assert engine.choose_backend(tmp_path, "auto") == backend
    assert engine.choose_backend(tmp_path, "cuda") == backend
    assert resolve_precision("auto", torch.device("cuda")) == precision


def test_the_capability_asked_is_the_chosen_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    asked = _gpu(monkeypatch, (8, 0))
    engine.choose_backend(tmp_path, "cuda:1")
    resolve_precision("auto", torch.device("cuda:1"))
    assert [torch.device(d) for d in asked] == [torch.device("cuda:1")] * 2
