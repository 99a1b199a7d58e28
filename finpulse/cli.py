"""The `finpulse` command. Stage commands are registered from each stage's
own `cli.py`, which imports only typer at module level, so `finpulse --help`
stays fast and the core does not import stage code until a command runs."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console

from finpulse.errors import FinpulseError, exit_status
from finpulse.logs import configure_logging
from finpulse.settings import Settings, load_settings, unknown_env
from finpulse.terminal import labelled
from finpulse.wording import counted

console = Console()
app = typer.Typer(help="finpulse: real-time financial-news sentiment monitor.", no_args_is_help=True)
kafka_app = typer.Typer(help="Run a local Apache Kafka broker (KRaft).", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")

# Stage packages that contribute commands through `register(app)`.
STAGE_CLIS = ("model.cli", "ingest.cli", "alerts.cli", "stream.cli", "api.cli", "api.backtest_cli")


def settings() -> Settings:
    """Load settings and configure logging: the start of every command; a warning names each
    FINPULSE_* variable that is no setting (a typo the settings would ignore)."""
    s = load_settings()
    configure_logging(s.log_level)
    for line in unknown_env():
        logging.getLogger("finpulse.settings").warning("%s", line)
    return s


def parse_time(value: str | None, option: str) -> datetime | None:
    """ISO 8601 (a date, or date and time; no offset means UTC); BadParameter otherwise."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{value!r} is not ISO 8601 (e.g. 2026-03-02 or 2026-03-02T09:00Z)", param_hint=option
        ) from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """--since and --until (parse_time); BadParameter where the range they leave is empty."""
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    if start is not None and start >= (end or datetime.now(UTC)):
        before = f"--until ({end:%Y-%m-%d %H:%M} UTC)" if end else "now (the default --until)"
        raise typer.BadParameter(
            f"{start:%Y-%m-%d %H:%M} UTC is not before {before}: the range would be empty",
            param_hint="--since",
        )
    return start, end


@kafka_app.command("start")
def kafka_start() -> None:
    """Fetch the broker jars once, format storage, start, wait until it answers.

    Needs Java 17+ to run the broker, and Maven the first time: it fetches the broker jars from Maven
    Central once (into kafka.local_jars_dir)."""
    from finpulse.kafka_local import LocalKafka

    status = LocalKafka(settings().kafka).start()
    console.print(f"kafka: {status.describe()}")


@kafka_app.command("stop")
def kafka_stop() -> None:
    """Stop the local broker; leaves no Java process behind."""
    from finpulse.kafka_local import LocalKafka

    stopped = LocalKafka(settings().kafka).stop()
    console.print("kafka: stopped" if stopped else "kafka: was not running")


@kafka_app.command("status")
def kafka_status() -> None:
    """Report whether the local broker runs and answers (exit 1 when not)."""
    from finpulse.kafka_local import LocalKafka

    status = LocalKafka(settings().kafka).status()
    console.print(f"kafka: {status.describe()}")
    raise typer.Exit(0 if status.answering else 1)


@app.command("topics")
def topics() -> None:
    """Create the pipeline's topics (and dead-letter topics) that are missing; say (exit 1) where
    existing ones differ from the settings."""
    from finpulse.topics import ensure_topics, topic_mismatches

    kafka = settings().kafka
    created = asyncio.run(ensure_topics(kafka))
    console.print(f"topics: created {', '.join(created)}" if created else "topics: all present")
    differ = asyncio.run(topic_mismatches(kafka))
    if differ:
        for line in differ:
            console.print(labelled("differs:", line))
        console.print(
            "Kafka keeps a topic as it was created: add replicas with kafka-reassign-partitions.sh, or "
            "change the settings. Do not add partitions to the pipeline's topics in place: the worker's "
            "windows, baselines and alert states are kept by partition, and an entity moved to another "
            "starts afresh (README, Operations: more partitions means a new FINPULSE_STREAM_APP_ID and "
            "topics, and a replay of the history)"
        )
        raise typer.Exit(1)


@app.command("dead-letters")
def dead_letters(
    topic: Annotated[
        str | None,
        typer.Option(
            help="Only records that failed on this topic (news.raw, ...; the demo's prefixed ones too)."
        ),
    ] = None,
    stage: Annotated[
        str | None, typer.Option(help="Only this stage's (ingest, score, history, ...).")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Only letters whose reason holds this text (any case).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this time, ISO 8601 (default: all kept).")] = None,
    last: Annotated[int, typer.Option(min=0, help="How many of the newest letters to list.")] = 20,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay", help="Send the matching letters' records back to the topics they failed on."
        ),
    ] = False,
) -> None:
    """What the stages could not process and why, per topic, stage and error; --replay after a fix."""
    from finpulse.deadletters import Filter, Replayer, Tally, iter_dead_letters, print_dead_letters
    from finpulse.topics import dead_letter_topics

    s = settings()
    match = Filter(source_topic=topic, stage=stage, reason=reason)
    start = parse_time(since, "--since")

    everything = Tally(last=0)  # what a filter left out, to say so when it matched none

    async def read(sender: Replayer | None) -> Tally:
        tally = Tally(last=last)
        async for found in iter_dead_letters(s.kafka, since=start):
            everything.add(found)
            if match(found):
                tally.add(found)
                if sender is not None and found.letter is not None:
                    await sender.send(found.letter)
        return tally

    async def read_and_replay() -> tuple[Tally, Replayer | None]:
        if not replay:
            return await read(None), None
        async with Replayer(s.kafka) as sender:
            return await read(sender), sender

    tally, sent = asyncio.run(read_and_replay())
    print_dead_letters(console, tally, dead_letter_topics(s.kafka.topics), since=start)
    if not tally.total and (missed := match.missed(everything)):
        console.print(missed)
    if sent is not None:
        targets = ", ".join(sorted(sent.targets))
        console.print(f"replayed {counted(sent.sent, 'record')}" + (f" to {targets}" if sent.sent else ""))
        if sent.kept:
            console.print(
                f"{counted(sent.kept, 'letter')} not sent: they hold no record read from their topic "
                "(ingest's hold the source's entry: fix the source and ingest again)"
            )


@app.command("demo")
def demo(
    keep_running: bool = typer.Option(
        None, help="Keep the services up after the alert (default: when run from a terminal)."
    ),
) -> None:
    """Run the service end to end on local defaults and show what happened."""
    from finpulse.demo import run_demo

    run_demo(settings(), console, keep_running=sys.stdin.isatty() if keep_running is None else keep_running)


@app.command("up")
def up(
    sink: Annotated[
        list[str] | None,
        typer.Option(
            "--sink",
            metavar="SINK",
            help="Alert sink: slack, console, webhook; repeatable (default: settings.alerts.sinks).",
        ),
    ] = None,
    without: Annotated[
        list[str] | None,
        typer.Option(
            "--without",
            metavar="SERVICE",
            help="Leave out a service: api, alerts, worker or ingest (repeatable).",
        ),
    ] = None,
) -> None:
    """Run the whole service here and keep it running; Ctrl+C stops it.

    The local broker (when the settings point at it), the API, the alert dispatcher, the stream
    worker and the ingestor."""
    from finpulse.up import GaveUp, run_up

    try:
        run_up(settings(), console, sinks=sink, without=without or ())
    except GaveUp as exc:
        console.print(labelled("gave up:", exc))
        raise typer.Exit(1) from None


def _register_stages() -> None:
    for name in STAGE_CLIS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # stage not built yet
                continue
            raise
        module.register(app)
    _unwrap_help(app)
    _flags_untyped()


def _unwrap_help(group: typer.Typer) -> None:
    """Each paragraph of a command's docstring one line in its --help: typer prints them with the
    docstring's line breaks and wraps them to the terminal as well (ragged half-empty lines)."""
    for command in group.registered_commands:
        text = command.help if command.help is not None else inspect.getdoc(command.callback)
        if text:
            command.help = "\n\n".join(
                p if p.startswith("\b") else " ".join(p.split()) for p in inspect.cleandoc(text).split("\n\n")
            )
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _unwrap_help(sub.typer_instance)


def _flags_untyped() -> None:
    """Flags in --help without a `<bool>` type: typer's rich help gives them one, as if they took
    a value (its plain help, like click's, shows none)."""
    from typer.core import TyperOption

    typed = TyperOption.display_type_rich
    if getattr(typed, "flags_untyped", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:  # typer's own click's Context
        return None if self.is_flag else typed(self, ctx)

    display_type_rich.flags_untyped = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def main() -> None:
    _register_stages()
    try:
        app()
    except FinpulseError as exc:
        console.print(labelled("error:", exc))
        sys.exit(exit_status(exc))


if __name__ == "__main__":
    main()
