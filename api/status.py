"""`finpulse status`: is the pipeline flowing? One look at every part.

Kafka: each pipeline topic's records and its dead letters; each consumer group's
lag per topic (records it has not committed yet: a lag that grows between two
looks is a stage that stopped or cannot keep up). The groups are the worker's
(its app id: news.raw and its internal by-entity topic), the history sink's
(`<app id>-history`) and the dispatcher's, each with its state and members (no
member: that process is not running). Then the history store (rows, the latest
scored story), the model (version, back end, validation accuracy from its card)
and each news source's health as its ingestor published it on Kafka (ingest/health.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import TopicPartition
from aiokafka.errors import KafkaTimeoutError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from finpulse.errors import BrokerUnavailable
from finpulse.settings import ModelSettings, Settings
from finpulse.topics import (
    STAGE_TOPIC_FIELDS,
    coordinator,
    dead_letter_topic,
    describe_groups,
    kafka_admin,
    kafka_consumer,
    partition_metadata,
    pipeline_topics,
    stage_topics,
)
from finpulse.wording import counted


@dataclass(frozen=True)
class TopicCount:
    topic: str
    records: int  # held now: end offsets minus the first kept
    dead_letters: int
    written: int = 0  # ever: the end offsets (retention does not lower it)
    dead_written: int = 0
    exists: bool = True  # False: the broker has no such topic (`finpulse topics` creates it)


@dataclass(frozen=True)
class GroupLag:
    group: str
    role: str
    lag: dict[str, int]  # topic -> records not committed yet
    state: str = "Dead"  # the coordinator's: Stable, Empty (no member), Dead (unknown), rebalancing
    members: tuple[str, ...] = ()  # "client id@host"


@dataclass(frozen=True)
class KafkaStatus:
    topics: list[TopicCount]
    groups: list[GroupLag]
    brokers: int = 1  # those the cluster's metadata lists: the live ones
    partitions: int = 0  # the pipeline's topics'
    # Topic -> its partitions with fewer in-sync replicas than replicas: a broker down or behind.
    under_replicated: dict[str, int] = field(default_factory=dict)


def consumer_groups(settings: Settings) -> dict[str, str]:
    """The pipeline's consumer groups and what each is."""
    app = settings.stream.app_id
    return {
        app: "worker",
        f"{app}-history": "history sink",
        settings.alerts.consumer_group: "alert dispatcher",
    }


async def kafka_status(settings: Settings) -> KafkaStatus:
    kafka = settings.kafka
    t = kafka.topics
    pipeline = stage_topics(t)
    groups = consumer_groups(settings)
    async with kafka_admin(kafka) as admin:
        existing = set(await admin.list_topics())
        present = [spec.name for spec in pipeline_topics(t) if spec.name in existing]
        layout = await partition_metadata(admin, present)
        partitions = {TopicPartition(topic, p["partition"]) for topic, p in layout}
        nodes = {g: await coordinator(admin, g) for g in groups}
        committed = {
            g: await admin.list_consumer_group_offsets(g, group_coordinator_id=nodes[g]) for g in groups
        }
        described = await describe_groups(admin, nodes)
        brokers = len((await admin.describe_cluster())["brokers"])
    # A deleted topic's committed offsets can outlive it (seen after a demo run deleted the last
    # run's topics, which its dispatcher had read): asking their ends would time out.
    committed = {
        g: {tp: meta for tp, meta in offsets.items() if tp.topic in existing}
        for g, offsets in committed.items()
    }
    # Committed partitions of topics outside the pipeline's (the worker's internal ones) count too.
    partitions |= {tp for offsets in committed.values() for tp in offsets}
    async with kafka_consumer(kafka) as consumer:
        try:
            ends = await consumer.end_offsets(list(partitions)) if partitions else {}
            starts = await consumer.beginning_offsets(list(partitions)) if partitions else {}
        except KafkaTimeoutError as exc:  # a partition without a leader: a cluster's broker down
            raise BrokerUnavailable(
                f"Kafka at {kafka.bootstrap} gave no offsets for {counted(len(partitions), 'partition')} "
                f"within {kafka.request_timeout_s:g} s: is a broker of the cluster down?"
            ) from exc

    def held(topic: str) -> int:
        return sum(ends[tp] - starts[tp] for tp in ends if tp.topic == topic)

    def written(topic: str) -> int:
        return sum(ends[tp] for tp in ends if tp.topic == topic)

    # Every stage topic, in stage order, a missing one marked: --watch's columns rely on it.
    topics = [
        TopicCount(n, held(n), held(dead), written(n), written(dead), exists=n in existing)
        for n in pipeline
        for dead in [dead_letter_topic(n, t)]
    ]
    lags = []
    for group, role in groups.items():
        lag: dict[str, int] = {}
        offsets = committed[group]
        read = {tp.topic for tp in offsets}
        for tp, end in ends.items():
            if tp.topic in read:
                # A partition of a topic it reads with nothing committed yet: the group starts it at
                # the earliest record, so all of it is still to do (it counted as 0).
                done = offsets[tp].offset if tp in offsets else starts[tp]
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, end - done)
        state, members = described.get(group, ("Dead", ()))
        lags.append(GroupLag(group, role, dict(sorted(lag.items())), state, members))
    under = Counter(topic for topic, p in layout if len(p["isr"]) < len(p["replicas"]))
    return KafkaStatus(topics, lags, brokers, len(layout), dict(sorted(under.items())))


def cluster_text(status: KafkaStatus) -> str:
    """Its live brokers, and the pipeline's partitions short of in-sync replicas, if any."""
    text = f"answering, {counted(status.brokers, 'broker')}"
    if not status.under_replicated:
        return text
    short = sum(status.under_replicated.values())
    where = ", ".join(f"{topic} {n}" for topic, n in status.under_replicated.items())
    return (
        f"{text}; [yellow]{short} of {counted(status.partitions, 'partition')} with fewer in-sync "
        f"replicas than replicas ({where}): a broker is down or behind[/yellow]"
    )


def model_summary(model: ModelSettings) -> str:
    """Version, CPU back end and validation accuracy from the model card, or what is missing or
    wrong (a damaged file; a card of other weights than the model's)."""
    from model.artifacts import load_config, model_version, read_card
    from model.errors import ModelNotFound

    model_dir = model.model_dir
    if not model.trained:
        return f"none in {model_dir}: run `finpulse model train` (or `--quick`)"
    try:
        load_config(model_dir)
        body = read_card(model_dir)
        version = model_version(model_dir)
    except ModelNotFound as exc:
        return f"[red]{escape(str(exc))}[/red]"
    if body is None:
        return f"{version} in {model_dir}: not evaluated yet (`finpulse model eval` writes its card)"
    card_version = body.get("version", "?")
    if card_version != version:
        return (
            f"{version} in {model_dir}; [yellow]its card is of model {card_version}, not these weights: "
            "`finpulse model eval` writes the card again[/yellow]"
        )
    accuracy = " ".join(f"{task} {m['accuracy']:.3f}" for task, m in body.get("metrics", {}).items())
    backend = body.get("engine", {}).get("cpu_backend", "?")
    return f"{version} in {model_dir}; CPU back end {backend}; validation accuracy {accuracy}"


def print_kafka(console: Console, status: KafkaStatus) -> None:
    topics = Table(title="topics", title_justify="left")
    for name in ("topic", "records", "dead letters"):
        topics.add_column(name, justify="left" if name == "topic" else "right", no_wrap=True)
    for t in status.topics:
        if not t.exists:
            topics.add_row(t.topic, "[yellow]missing[/yellow]", "-")
            continue
        topics.add_row(t.topic, f"{t.records:,}", f"[red]{t.dead_letters:,}[/red]" if t.dead_letters else "0")
    console.print(topics)
    if not all(t.exists for t in status.topics):
        console.print("missing topics: `finpulse topics` creates them (the stages also do when they start)")
    groups = Table(title="consumer groups (lag: records not processed yet)", title_justify="left")
    for name in ("group", "role, members", "topic", "lag"):
        groups.add_column(name, justify="right" if name == "lag" else "left", no_wrap=name != "role, members")
    for g in status.groups:
        rows = list(g.lag.items()) or [("(nothing committed yet)", 0)]
        for i, (topic, lag) in enumerate(rows):
            head = (g.group, Text(f"{g.role}\n").append_text(_members(g))) if i == 0 else ("", "")
            groups.add_row(*head, topic, f"{lag:,}" if g.lag else "-")
    console.print(groups)
    idle = [g.role for g in status.groups if not g.members]
    if idle:
        console.print(
            f"no member: not running now ({', '.join(idle)}); `finpulse worker` runs the worker and "
            "its history sink, `finpulse alerts` the dispatcher"
        )


# `finpulse status --watch`: one line per look, what changed since the last one.
WATCH_ROLES = {"worker": "worker", "history sink": "history", "alert dispatcher": "alerts"}
TIME_W, RATE_W, LAG_W, DEAD_W = 9, 10, 15, 14


def watch_header() -> str:
    rates = "".join(f"{name + '/s':>{RATE_W}}" for name in STAGE_TOPIC_FIELDS)
    lags = "".join(f"{role + ' lag':>{LAG_W}}" for role in WATCH_ROLES.values())
    return f"{'UTC':<{TIME_W}}{rates}{lags}{'dead letters':>{DEAD_W}}"


def watch_line(at: str, now: KafkaStatus, before: KafkaStatus | None, elapsed_s: float) -> str:
    """Records per second into each stage's topic since the last look, each group's lag with its
    change (a lag that keeps growing: that stage stopped or cannot keep up), new dead letters."""
    old = {t.topic: t for t in before.topics} if before else {}
    rates = ""
    for t in now.topics:  # the stage topics, in STAGE_TOPIC_FIELDS' order (kafka_status)
        prev = old.get(t.topic)
        rate = (t.written - prev.written) / elapsed_s if prev and elapsed_s > 0 else None
        cell = "missing" if not t.exists else "-" if rate is None else f"{rate:.1f}"
        rates += f"{cell:>{RATE_W}}"
    lags_before = {g.group: sum(g.lag.values()) for g in before.groups} if before else {}
    lags = ""
    for g in now.groups:
        lag, prev_lag = sum(g.lag.values()), lags_before.get(g.group)
        change = "" if prev_lag is None else f" ({lag - prev_lag:+,})"
        cell = f"{lag:,}{change}" if g.lag else "-"  # nothing committed yet: no lag to tell
        lags += f"{cell:>{LAG_W}}"
    dead = sum(t.dead_written for t in now.topics)
    new_dead = dead - sum(t.dead_written for t in before.topics) if before else None
    dead_cell = f"{dead:,}" + ("" if new_dead is None else f" ({new_dead:+,})")
    return f"{at:<{TIME_W}}{rates}{lags}{dead_cell:>{DEAD_W}}"


def _members(group: GroupLag) -> Text:
    if group.members:
        return Text(f"{len(group.members)}: {', '.join(group.members)}")
    # Empty: it ran and committed, nothing consumes now; Dead: the broker knows no such group.
    return Text(f"no member ({group.state})", style="yellow")


def print_store(console: Console, settings: Settings) -> None:
    """The history store's counts, or why they cannot be read (a malformed URL, a schema newer than
    this finpulse, a wrong password: said, and the report goes on)."""
    from store import StoreConfigError, StoreError, StoreUnavailable, open_store

    try:
        db = open_store(settings.store, read_only=True)
        with db:
            stats = db.stats()
    except (StoreConfigError, StoreError, StoreUnavailable) as exc:
        console.print(Text(str(exc), style="red"))
        return
    latest = stats.latest_scored_at
    when = latest.strftime("%Y-%m-%d %H:%M:%S UTC") if latest else "never"
    console.print(
        f"history store {db.where}: {counted(stats.scored_items, 'scored story')} "
        f"(latest scored {when}), {counted(stats.windows, 'window')}, "
        f"{counted(stats.alerts, 'alert event')}, {counted(stats.subscriptions, 'subscription')}"
    )


HEALTH_STYLE = {
    "ok": "green", "failing": "red", "late": "yellow", "invalid": "red", "quiet": "yellow", "waiting": "dim",
    "disabled": "dim",
}  # fmt: skip


def print_sources(console: Console, settings: Settings, now: datetime) -> None:
    """Each source an ingestor polls: its health, last success, items published, what is wrong."""
    from ingest.health import due, source_health

    topic = settings.kafka.topics.sources
    try:
        rows = asyncio.run(source_health(settings.kafka, now))
    except BrokerUnavailable as exc:
        console.print(Text(f"sources: {exc}", style="red"))
        return
    if not rows:
        console.print(f"sources: no ingestor has published on {topic} yet (is `finpulse ingest` running?)")
        return
    # Said above the table, not as its title: a title wraps to the table's width.
    console.print(f"sources (as their ingestors published them on {topic})")
    table = Table()
    for column in ("source", "kind", "health", "last success", "published", "next poll"):
        # A narrow terminal wraps the times, never cuts a source's name or health.
        wraps = column in ("last success", "next poll")
        table.add_column(column, justify="right" if column == "published" else "left", no_wrap=not wraps)
    for r in rows:
        st = r.status
        if r.health == "disabled":
            upcoming = "-"
        elif st.source_kind == "replay":  # a file, read once
            upcoming = "read once"
        else:
            upcoming = next_poll(now, due(st))
        table.add_row(
            st.source, st.source_kind, Text(r.health, style=HEALTH_STYLE[r.health]),
            ago(now, st.last_success_at), f"{st.items_published:,}", upcoming,
        )  # fmt: skip
    console.print(table)
    # Why, under the table: errors and URLs are long, and a column of them is a tower at 80 columns.
    for r in rows:
        if why := r.detail():
            console.print(Text(r.health, style=HEALTH_STYLE[r.health]).append(f" {r.status.source}: {why}"))
    if any(r.health == "late" for r in rows):
        console.print("a late source that no ingestor polls any more: `finpulse ingest forget NAME`")


def next_poll(now: datetime, at: datetime | None) -> str:
    """`in 40 s`, or for a poll not made when planned `due 5 h ago`."""
    when = ago(now, at)
    return f"due {when}" if at is not None and at <= now else when


def ago(now: datetime, at: datetime | None) -> str:
    """`5 min ago`, `in 40 s`, or `never`."""
    if at is None:
        return "never"
    seconds = (now - at).total_seconds()
    span = abs(seconds)
    text = next(
        f"{span / size:.0f} {unit}"
        for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))
        if span >= size or unit == "s"
    )
    return f"{text} ago" if seconds >= 0 else f"in {text}"
