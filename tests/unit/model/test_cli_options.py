"""The model commands refuse bad devices, back ends and batch sizes before loading anything, and a
CUDA device where no GPU is visible is a clear error, not torch's traceback; `train --quick` takes
a max_length that is set."""

from __future__ import annotations

import os
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
        (("eval", "--threads", "-2"), "Invalid value for '--threads'"),  # after a minute's export
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


@pytest.mark.parametrize(
    ("env", "args"),
    [({}, ("--backend", "onnx")), ({"FINPULSE_MODEL_BACKEND": "torch-int8"}, ())],
)
def test_bench_on_cuda_with_a_cpu_backend_is_refused(
    quick_model_dir: Path, env: dict[str, str], args: tuple[str, ...]
) -> None:
    """Not a CPU engine timed against a GPU pipeline, nor torch's error when there is no GPU."""
    done = subprocess.run(
        [sys.executable, "-m", "finpulse.cli", "model", "bench", "--model", str(quick_model_dir),
         "--texts", "4", "--batch-sizes", "1", "--device", "cuda", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "300", **env},
    )  # fmt: skip
    out = " ".join((done.stdout + done.stderr).replace("│", " ").split())
    assert done.returncode == 2, out
    assert "which runs on the CPU: name a CUDA back end" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(("env", "max_length"), [({}, 64), ({"FINPULSE_MODEL_MAX_LENGTH": "96"}, 96)])
def test_quick_training_keeps_its_max_length_unless_one_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], max_length: int
) -> None:
    import typer
    from typer.testing import CliRunner

    import model.train
    from model.cli import register

    class Trained(Exception):
        pass

    configs = []

    def fake_train(config: object, *args: object, **kwargs: object) -> None:
        configs.append(config)
        raise Trained

    monkeypatch.setattr(model.train, "train", fake_train)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    root = typer.Typer()
    register(root)
    result = CliRunner().invoke(root, ["model", "train", "--quick", "--out", str(tmp_path / "m")])
    assert isinstance(result.exception, Trained), result.output
    assert [c.max_length for c in configs] == [max_length]  # type: ignore[attr-defined]
