"""`finpulse model` commands against the quick-trained model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
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
    # The empty text's defined result, on its own row: neutral, and no topic to guess from nothing.
    empty_row = next(line for line in result.output.splitlines() if "(empty)" in line)
    assert empty_row.replace("│", " ").split()[:4] == ["neutral", "+0.00", "-", "-"], empty_row
    assert "score: P(positive) - P(negative), -1 to +1" in result.output
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


def _write_posts(path: Path, task: str, examples: list[Any]) -> None:
    """Labelled posts in the training files' format (sentiment in the file's own ids)."""
    from model.labels import SENTIMENT_FILE_IDS

    file_id = {v: k for k, v in SENTIMENT_FILE_IDS.items()}
    labels = [ex.label if task == "topic" else file_id[ex.label] for ex in examples]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": [ex.text for ex in examples], "label": labels}).to_csv(path, index=False)


def test_holdout_runs_the_engine_over_posts_kept_aside(
    app: typer.Typer, quick_model_dir: Path, tmp_path: Path
) -> None:
    from model.evaluate import Evaluation, validation_examples
    from model.holdout import HoldoutReport

    # Posts the model was not trained on: its own validation split, as CSV files.
    val, _, _ = validation_examples(quick_model_dir, None)
    posts = {task: [ex for ex in val if ex.task == task] for task in ("topic", "sentiment")}
    for task, examples in posts.items():
        _write_posts(tmp_path / f"{task}.csv", task, examples)
    # Training data holding copies of five sentiment posts (and no topic post).
    _write_posts(tmp_path / "data" / "sentiment" / "train.csv", "sentiment", posts["sentiment"][:5])
    _write_posts(tmp_path / "data" / "topic" / "train.csv", "topic", [])
    out = tmp_path / "report"
    files = ["--topic", str(tmp_path / "topic.csv"), "--sentiment", str(tmp_path / "sentiment.csv")]
    result = CliRunner().invoke(
        app, ["model", "holdout", *files, "--data", str(tmp_path / "data"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = HoldoutReport.model_validate_json((out / "holdout.json").read_text())
    card = Evaluation.model_validate_json((quick_model_dir / "card.json").read_text())
    chosen = next(b for b in card.backends if b.backend == card.engine["cpu_backend"])
    # The engine as the stream runs it: the card's figures for its back end, post for post.
    assert report.backend == chosen.backend
    assert report.tasks["topic"].metrics.n == len(posts["topic"])
    assert report.tasks["topic"].metrics.accuracy == pytest.approx(chosen.topic_accuracy)
    assert report.tasks["sentiment"].metrics.accuracy == pytest.approx(chosen.sentiment_accuracy)
    assert report.tasks["sentiment"].metrics.macro_f1 == pytest.approx(chosen.sentiment_macro_f1)
    assert report.tasks["topic"].in_training == 0
    assert report.tasks["sentiment"].in_training == 5
    unseen = report.tasks["sentiment"].unseen
    assert unseen is not None
    assert unseen.n == len(posts["sentiment"]) - 5
    assert {p.name for p in out.iterdir()} == {
        "holdout.json", "holdout.md", "holdout_confusion_topic.png", "holdout_confusion_sentiment.png",
    }  # fmt: skip
    assert "| sentiment | " in (out / "holdout.md").read_text()
    assert re.search(r"sentiment +\d+ +0\.\d{4} .* 0\.89 (no|met) +5 +0\.\d{4}", result.output), result.output
    # Training data not found: the copies are unknown, not none.
    elsewhere = tmp_path / "elsewhere"
    args = [
        "model",
        "holdout",
        "--sentiment",
        str(tmp_path / "sentiment.csv"),
        "--data",
        str(tmp_path / "nowhere"),
    ]
    unknown = CliRunner().invoke(app, [*args, "--out", str(elsewhere)])
    assert unknown.exit_code == 0, unknown.output
    only = HoldoutReport.model_validate_json((elsewhere / "holdout.json").read_text())
    assert list(only.tasks) == ["sentiment"]
    assert only.tasks["sentiment"].in_training is None
    assert only.training_data is None


def test_holdout_errors_name_what_is_wrong(app: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    nothing = runner.invoke(app, ["model", "holdout"])
    assert nothing.exit_code == 2
    assert "--topic FILE and/or --sentiment FILE" in nothing.output
    bad = tmp_path / "topic.csv"
    bad.write_text("headline,topic\nShares fall,5\n")
    wrong = runner.invoke(app, ["model", "holdout", "--topic", str(bad)])
    assert wrong.exit_code != 0
    assert f"{bad}: needs columns text,label" in str(wrong.exception)
    missing = runner.invoke(app, ["model", "holdout", "--sentiment", str(tmp_path / "nope.csv")])
    assert "nope.csv not found" in str(missing.exception)


def test_status_says_when_the_card_is_of_other_weights_or_unreadable(
    quick_model_dir: Path, tmp_path: Path
) -> None:
    import json
    import shutil

    from api.status import model_summary
    from finpulse.settings import ModelSettings

    copy = tmp_path / "model"
    shutil.copytree(quick_model_dir, copy)
    settings = ModelSettings(model_dir=copy)
    card = json.loads((copy / "card.json").read_text())
    assert model_summary(settings).startswith(f"{card['version']} in {copy}; CPU back end ")
    (copy / "card.json").write_text(json.dumps(card | {"version": "ft-000000000000"}))
    assert "its card is of model ft-000000000000, not these weights" in model_summary(settings)
    (copy / "card.json").write_text("{bad")
    summary = model_summary(settings)
    assert f"{copy / 'card.json'} is unusable" in summary
    assert "`finpulse model eval`" in summary
