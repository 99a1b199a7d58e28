"""`finpulse model` commands: train, eval, holdout, export, bench, gpu-kit, predict.

Module level imports only typer, rich and the stdlib; the model code loads
inside each command.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from finpulse.errors import ConfigError
from finpulse.settings import check_backend, check_device

if TYPE_CHECKING:
    from model.evaluate import Evaluation
    from model.labels import Task

console = Console()
logger = logging.getLogger(__name__)
model_app = typer.Typer(
    help="Train, evaluate, benchmark and run the topic + sentiment classifier.", no_args_is_help=True
)

ModelDir = Annotated[Path | None, typer.Option("--model", help="Model directory (default: model.model_dir).")]
DataDir = Annotated[
    Path | None, typer.Option("--data", help="Training data dir (default: model.train_data_dir).")
]
Threads = Annotated[
    int | None, typer.Option("--threads", min=1, help="CPU threads (default: model.threads).")
]


def _checked(check: Callable[[str], str]) -> Callable[[str | None], str | None]:
    """A typer callback: the settings' own check of a value, as a usage error naming the option."""

    def callback(value: str | None) -> str | None:
        try:
            return None if value is None else check(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    return callback


def _batch_sizes(value: str) -> str:
    """`1,8,32`: whole numbers from 1."""
    sizes = [b.strip() for b in value.split(",") if b.strip()]
    if not sizes or not all(b.isdigit() and int(b) >= 1 for b in sizes):
        raise ValueError(f"{value!r}: give whole numbers from 1, comma-separated, e.g. 1,8,32,128")
    return value


Device = Annotated[
    str | None,
    typer.Option(help="auto, cpu or cuda (default: model.device).", callback=_checked(check_device)),
]


def register(app: typer.Typer) -> None:
    """Add `finpulse model ...` to the root command."""
    app.add_typer(model_app, name="model")


@model_app.command("train")
def train_cmd(
    quick: Annotated[
        bool, typer.Option("--quick", help="Small subset, 2 epochs, at most 3 minutes of training.")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Save here (default: model.model_dir).")] = None,
    data: DataDir = None,
    extra_data: Annotated[
        list[Path] | None,
        typer.Option(
            "--extra-data",
            exists=True,
            file_okay=False,
            help="Also train on this dir's topic/ and/or sentiment/train.csv (e.g. `finpulse feedback "
            "export`'s); validation stays --data's split. Repeatable.",
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the split, initialisation and order.")] = None,
    device: Device = None,
    threads: Threads = None,
    budget_min: Annotated[float | None, typer.Option(help="Stop training after this many minutes.")] = None,
    evaluate: Annotated[bool, typer.Option("--eval/--no-eval", help="Export and evaluate after.")] = True,
) -> None:
    """Fine-tune the two-headed classifier, then export it and write its model card."""
    from finpulse.cli import settings
    from model.config import TrainConfig
    from model.train import train

    s = settings().model
    overrides: dict[str, object] = {"device": device or s.device, "threads": threads or s.threads}
    overrides |= {k: v for k, v in {"epochs": epochs, "seed": seed}.items() if v is not None}
    if budget_min is not None:
        overrides["time_budget_s"] = budget_min * 60
    if extra_data:
        overrides["extra_data_dirs"] = tuple(extra_data)
    # max_length is a training setting (the engine cuts texts where its model was trained): --quick
    # keeps its shorter 64 tokens unless FINPULSE_MODEL_MAX_LENGTH is set.
    if not quick or "max_length" in s.model_fields_set:
        overrides["max_length"] = s.max_length
    config = TrainConfig.quick(**overrides) if quick else TrainConfig(**overrides)  # type: ignore[arg-type]
    out_dir = Path(os.path.abspath(out or s.model_dir))  # `.` named; a symlink stays a link, replaced
    staged = staging_dir(out_dir)  # the model in use stays whole until the new one is
    result = train(config, data or s.train_data_dir, staged, base_model=s.base_model, final_dir=out_dir)
    console.print(
        f"trained [bold]{result.version}[/bold] in {result.seconds:.0f} s on {result.device} "
        f"({result.precision}), {result.stopped}, best epoch {result.best.epoch}"
    )
    best = result.best
    console.print(
        f"validation: topic accuracy {best.topic_accuracy:.4f} macro-F1 {best.topic_macro_f1:.4f}; "
        f"sentiment accuracy {best.sentiment_accuracy:.4f} macro-F1 {best.sentiment_macro_f1:.4f}"
    )
    if evaluate:
        try:
            _evaluate(staged, data, threads or s.threads, final_dir=out_dir)
        except BaseException:
            console.print(
                f"[red]the trained model is in {staged}, not exported or evaluated[/red]: "
                f"`finpulse model eval --model {staged}`, then move it to {out_dir}; or train again"
            )
            raise
    swap_in(staged, out_dir)
    console.print(f"model in {out_dir}")


def staging_dir(out_dir: Path) -> Path:
    """Where a model is trained, exported and evaluated before it replaces `out_dir`'s: a stream
    worker's classifier that (re)starts meanwhile loads the old model whole, never new weights
    beside the old card, or a half-written file. Emptied first (a run stopped midway)."""
    from model.artifacts import CONFIG_FILE

    if out_dir.parent == out_dir:
        raise ConfigError(f"--out {out_dir}: a model needs a folder of its own")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / CONFIG_FILE).is_file():
        raise ConfigError(
            f"--out {out_dir} holds files but no model ({CONFIG_FILE}), and the new model replaces the "
            "whole folder: give an empty folder, or a model's"
        )
    staged = out_dir.parent / f".{out_dir.name}.new"
    shutil.rmtree(staged, ignore_errors=True)
    return staged


def swap_in(staged: Path, out_dir: Path) -> None:
    """Put the staged model in `out_dir`'s place: two renames (a loader between them finds no
    model, a clear error its restart gets past). Where `out_dir` cannot be renamed (a volume's
    mount point), its model files are replaced one by one instead."""
    from model.artifacts import MODEL_FILES

    old = out_dir.parent / f".{out_dir.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    try:
        if out_dir.exists():
            out_dir.rename(old)
        staged.rename(out_dir)
    except OSError as exc:
        logger.warning("cannot rename %s (%s); replacing its files in place", out_dir, exc)
        if old.exists() and not out_dir.exists():
            old.rename(out_dir)
        model_files = {p.name for p in staged.iterdir()} | set(MODEL_FILES)
        for stale in out_dir.iterdir():
            if stale.is_file() and stale.name in model_files:
                stale.unlink()
        shutil.copytree(staged, out_dir, dirs_exist_ok=True)
        shutil.rmtree(staged)
    shutil.rmtree(old, ignore_errors=True)


@model_app.command("eval")
def eval_cmd(model: ModelDir = None, data: DataDir = None, threads: Threads = None) -> None:
    """Evaluate on the validation split; measure the CPU back ends; write the model card."""
    from finpulse.cli import settings

    s = settings().model
    _evaluate(model or s.model_dir, data, threads or s.threads)


@model_app.command("holdout")
def holdout_cmd(
    topic: Annotated[
        Path | None,
        typer.Option(help="Held-out topic posts: a CSV with columns text,label (the training ids)."),
    ] = None,
    sentiment: Annotated[
        Path | None,
        typer.Option(help="Held-out sentiment posts: text,label (0 bearish, 1 bullish, 2 neutral)."),
    ] = None,
    model: ModelDir = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Training data to find copies in (default: the model's own)."),
    ] = None,
    device: Device = None,
    threads: Threads = None,
    out: Annotated[Path | None, typer.Option(help="Report dir (default: <model>/holdout).")] = None,
) -> None:
    """Accuracy on posts kept aside from training, as the stream runs the model.

    Give --topic and/or --sentiment: CSVs of posts the model never saw (the datasets' published
    validation splits, or any of the training files' format). Writes holdout.json, holdout.md and
    confusion matrices."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from finpulse.cli import settings
    from model.holdout import REPORT_MD, evaluate_holdout, write_report

    s = settings().model
    model_dir = model or s.model_dir
    given: tuple[tuple[Task, Path | None], ...] = (("topic", topic), ("sentiment", sentiment))
    files = {task: path for task, path in given if path is not None}
    if not files:
        raise typer.BadParameter("give --topic FILE and/or --sentiment FILE")
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:

        def progress(total: int) -> Callable[[int], None]:
            task_id = bar.add_task("classifying", total=total)
            return lambda n: bar.advance(task_id, n)

        report = evaluate_holdout(
            model_dir, files, data_dir=data, device=device or s.device, threads=threads or s.threads,
            progress=progress,
        )  # fmt: skip
    out_dir = out or model_dir / "holdout"
    write_report(report, out_dir)
    view = Table(
        title=f"{report.version} ({report.backend}) on held-out posts",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("head", "n", "accuracy", "95% CI", "macro-F1", "target", "copies", "without"):
        view.add_column(column, no_wrap=True)
    for task, t in report.tasks.items():
        n, accuracy, interval, macro_f1, _, target, copies, without = t.cells()
        view.add_row(task, n, accuracy, interval, macro_f1, target.replace("not met", "no"), copies, without)
    console.print(view)
    console.print("copies: posts also in the training files; without: the accuracy on the others")
    console.print(f"report: {out_dir / REPORT_MD}")


# Shorter console headers for the back-end columns, so the table fits 80 columns (the card
# keeps the full ones).
SHORT = {"one by one": "1 by 1", "topic acc": "topic", "sentiment acc": "sentiment", "agreement": "agree"}


def _evaluate(model_dir: Path, data: Path | None, threads: int | None, final_dir: Path | None = None) -> None:
    from model.evaluate import evaluate_dir

    evaluation = evaluate_dir(model_dir, data, threads=threads, final_dir=final_dir)
    for table in evaluation_tables(evaluation):
        console.print(table)
    console.print(
        f"engine CPU back end: [bold]{evaluation.engine['cpu_backend']}[/bold]; "
        f"card: {final_dir or model_dir}/card.md"
    )


def evaluation_tables(evaluation: Evaluation) -> tuple[Table, Table]:
    """The console's view of an evaluation: the metrics, and the CPU back ends measured."""
    from model.evaluate import BACKEND_COLUMNS
    from model.metrics import METRIC_COLUMNS

    metrics = Table(title=f"{evaluation.version} on {evaluation.data_dir} (validation split)")
    for column in ("head", *METRIC_COLUMNS):
        metrics.add_column(column)
    for task, m in evaluation.metrics.items():
        metrics.add_row(task, *m.cells())
    backends = Table(title="CPU back ends (topic, sentiment: accuracy; agree: labels as torch's)")
    name, *figures = BACKEND_COLUMNS
    backends.add_column(name, no_wrap=True)
    for column in figures:
        backends.add_column(SHORT.get(column, column), justify="right")
    chosen = evaluation.engine["cpu_backend"]
    for r in evaluation.backends:
        backends.add_row(*r.cells(), style="bold" if r.backend == chosen else None)
    return metrics, backends


@model_app.command("export")
def export_cmd(model: ModelDir = None, data: DataDir = None) -> None:
    """Write the ONNX exports (float32 and int8) beside the weights."""
    from finpulse.cli import settings
    from model.evaluate import calibration_texts
    from model.export import export_onnx

    model_dir = model or settings().model.model_dir
    fp32, int8 = export_onnx(model_dir, calibration_texts(model_dir, data))
    console.print(f"exported {fp32} and {int8}")


@model_app.command("bench")
def bench_cmd(
    model: ModelDir = None,
    data: DataDir = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.", callback=_checked(check_device))] = "cpu",
    backend: Annotated[
        str | None,
        typer.Option(help="Engine back end (default: what device means).", callback=_checked(check_backend)),
    ] = None,
    threads: Threads = None,
    texts: Annotated[int, typer.Option(min=1, help="How many posts to classify per batch size.")] = 512,
    batch_sizes: Annotated[
        str, typer.Option(help="Comma-separated batch sizes.", callback=_checked(_batch_sizes))
    ] = "1,8,32,128",
) -> None:
    """Engine vs a plain transformers pipeline: docs/s and batch latency, side by side."""
    from finpulse.cli import settings
    from model.bench import bench_texts, run_bench

    s = settings().model
    sample = bench_texts(data or s.train_data_dir, texts)
    sizes = [int(b) for b in batch_sizes.split(",") if b.strip()]
    result = run_bench(
        model or s.model_dir, sample, device, backend or s.backend, threads or s.threads, sizes
    )
    table = Table(
        title=f"engine ({result.backend}) vs pipeline, {result.n_texts} posts, {result.threads} threads"
    )
    for column in (
        "batch",
        "engine docs/s",
        "p50 ms",
        "p95 ms",
        "pipeline docs/s",
        "p50 ms",
        "p95 ms",
        "ratio",
    ):
        table.add_column(column, justify="right")
    for r in result.rows:
        table.add_row(
            str(r.batch_size),
            f"{r.engine_docs_s:.0f}", f"{r.engine_p50_ms:.1f}", f"{r.engine_p95_ms:.1f}",
            f"{r.pipeline_docs_s:.0f}", f"{r.pipeline_p50_ms:.1f}", f"{r.pipeline_p95_ms:.1f}",
            f"{r.ratio:.2f}x",
        )  # fmt: skip
    console.print(table)


@model_app.command("gpu-kit")
def gpu_kit_cmd(
    model: ModelDir = None,
    data: DataDir = None,
    out: Annotated[
        Path, typer.Option("--out", help="Kit folder (replaced); its run.sh finds the kit beside itself.")
    ] = Path(".device-kit"),
    python: Annotated[
        str | None, typer.Option(help="The GPU host's Python, for the wheels it lacks; '' for none.")
    ] = "3.12",
) -> None:
    """Pack a model for `model bench --device cuda` on a GPU host without network access.

    Float16 weights, the bench's posts, the wheels such a host may lack and run.sh. Copy the
    repository with the kit there and run `bash .device-kit/run.sh` from its root: it writes
    gpu.txt, bench-cuda.txt and bench-cpu-torch.txt into $OUT (default /tmp/out). See README,
    Development."""
    from finpulse.cli import settings
    from finpulse.settings import REPO_ROOT
    from model.kit import LIMIT_BYTES, build_kit, working_tree_bytes

    s = settings().model
    tree = working_tree_bytes(REPO_ROOT)
    size = build_kit(model or s.model_dir, data or s.train_data_dir, out, python or None, beside=tree)
    console.print(
        f"wrote {out} ({size / 2**20:.1f} MiB; with the working tree {(size + tree) / 2**20:.1f} of the "
        f"{LIMIT_BYTES / 2**20:.0f} MiB that travel); run there: bash {out}/run.sh"
    )


@model_app.command("predict")
def predict_cmd(
    texts: Annotated[list[str], typer.Argument(help="Texts to classify.")],
    model: ModelDir = None,
    device: Device = None,
) -> None:
    """Classify texts given on the command line."""
    from finpulse.cli import settings
    from model.engine import Classifier

    s = settings().model
    overrides = {k: v for k, v in (("model_dir", model), ("device", device)) if v}
    clf = Classifier.from_settings(s.model_copy(update=overrides))
    table = Table(
        title=f"model {clf.version} ({clf.backend})",
        title_justify="left",
        caption="score: P(positive) - P(negative), -1 to +1. The worker scores only stories in "
        "model.languages (FINPULSE_MODEL_LANGUAGES); text in another language gets a guess here.",
        caption_justify="left",
    )
    table.add_column("sentiment", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("topic", no_wrap=True)
    table.add_column("p(topic)", justify="right", no_wrap=True)
    table.add_column("text", ratio=1, overflow="fold")  # wraps within its column
    for text, p in zip(texts, clf.predict(texts), strict=True):
        shown = "(empty)" if p.empty else text[:200] + ("…" if len(text) > 200 else "")
        # Text objects: brackets in a headline ("[UPDATE]") are not rich markup.
        topic, sure = ("-", "-") if p.empty else (p.topic, f"{p.topic_probs[p.topic]:.2f}")  # nothing to read
        table.add_row(p.sentiment, f"{p.sentiment_score:+.2f}", topic, sure, Text(shown))
    console.print(table)
