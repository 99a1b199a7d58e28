"""docker/compose.yaml's settings are ones finpulse reads: a misnamed or misshapen one stopped
every container at start once (its topic partitions)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from finpulse.settings import REPO_ROOT, load_settings

COMPOSE = REPO_ROOT / "docker" / "compose.yaml"


def _with_defaults(value: str) -> str:
    """`${VAR:-default}` as compose reads it with VAR unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_the_compose_files_settings_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = yaml.safe_load(COMPOSE.read_text())["x-finpulse"]["environment"]
    assert env, "the services' shared settings"
    monkeypatch.setenv("FINPULSE_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    for name, value in env.items():
        monkeypatch.setenv(name, _with_defaults(str(value)))
    s = load_settings()
    assert (s.kafka.bootstrap, s.kafka.topics.partitions) == ("kafka:9092", 6)
    assert str(s.api.public_url).startswith("http://localhost:8000")
    assert s.data_dir == Path("/data")


def test_the_worker_image_scores_on_the_cpu_where_no_gpu_is_visible() -> None:
    """The compose file says: without a GPU, drop the worker's `deploy` block and it scores on the
    CPU. A device pinned to cuda in the image refuses to start there; auto picks the GPU if any."""
    dockerfile = (REPO_ROOT / "docker" / "Dockerfile").read_text()
    worker = dockerfile.split(" AS worker", 1)[1]
    assert "FINPULSE_MODEL_DEVICE" not in worker or "FINPULSE_MODEL_DEVICE=auto" in worker
