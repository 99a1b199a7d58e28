"""The model commands refuse bad devices, back ends and batch sizes before loading anything, and a
CUDA device where no GPU is visible is a clear error, not torch's traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from finpulse.errors import ConfigError
from model.engine import _cuda_available, choose_backend


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("predict", "hi", "--device", "gpu"), "Invalid value for '--device': unknown device 'gpu'"),
        (("bench", "--backend", "fast"), "Invalid value for '--backend': unknown back end 'fast'"),
        (("bench", "--batch-sizes", "1,x"), "Invalid value for '--batch-sizes': '1,x': give whole numbers"),
        (("bench", "--batch-sizes", "0"), "give whole numbers from 1"),
        (("bench", "--texts", "0"), "Invalid value for '--texts'"),
    ],
)
def test_bad_options_are_usage_errors(args: tuple[str, ...], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "finpulse.cli", "model", *args],
        capture_output=True, text=True, timeout=120, env={"COLUMNS": "300", "PATH": ""},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in " ".join(done.stderr.replace("│", " ").split()), done.stderr
    assert "Traceback" not in done.stderr


def test_a_cuda_device_without_a_gpu_says_so(tmp_path: Path) -> None:
    if _cuda_available():  # a GPU host: cuda is what auto picks too
        assert choose_backend(tmp_path, "cuda").startswith("cuda")
        return
    with pytest.raises(ConfigError, match="device cuda: no CUDA GPU is visible here"):
        choose_backend(tmp_path, "cuda")
    assert choose_backend(tmp_path, "auto") == "torch"  # no card, no ONNX export: plain torch
