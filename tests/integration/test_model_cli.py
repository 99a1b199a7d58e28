"""`finpulse model` commands against the quick-trained model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from model.cli import register


@pytest.fixture
def app(quick_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("FINPULSE_MODEL_MODEL_DIR", str(quick_model_dir))
    monkeypatch.setenv("FINPULSE_MODEL_THREADS", "1")
    monkeypatch.setenv("COLUMNS", "200")
    root = typer.Typer()
    register(root)
    return root


def test_predict_prints_labels_and_version(app: typer.Typer, quick_model_dir: Path) -> None:
    headline = "[UPDATE] Shares plunge after profit warning [/]"  # brackets are text, not rich markup
    result = CliRunner().invoke(app, ["model", "predict", headline, ""])
    assert result.exit_code == 0, result.output
    # The empty text's defined result, on its own row.
    empty_row = next(line for line in result.output.splitlines() if "(empty)" in line)
    for expected in ("neutral", "+0.00", "General News | Opinion"):
        assert expected in empty_row, empty_row
    assert headline in result.output
    assert "model ft-" in result.output


def test_bench_runs_engine_and_pipeline_side_by_side(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["model", "bench", "--texts", "16", "--batch-sizes", "1,8"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if re.search(r"\d+\.\d\dx", line)]
    assert [line.split()[1] for line in rows] == ["1", "8"], result.output


def test_eval_of_missing_model_fails_clearly(app: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["model", "eval", "--model", str(tmp_path)])
    assert result.exit_code != 0
    assert "finpulse model train" in str(result.exception)


def test_eval_tables_fit_an_80_column_terminal_with_names_whole(quick_model_dir: Path) -> None:
    from rich.console import Console

    from model.artifacts import CARD_JSON
    from model.cli import evaluation_tables
    from model.evaluate import Evaluation

    evaluation = Evaluation.model_validate_json((quick_model_dir / CARD_JSON).read_text())
    console = Console(width=80, record=True)
    for table in evaluation_tables(evaluation):
        console.print(table)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in "\n".join(lines)  # nothing cut short
    for report in evaluation.backends:
        assert any(f" {report.backend} " in line and f" {report.docs_per_s:.0f} " in line for line in lines)
