"""`finpulse stream bench`: the pipeline's throughput and latency beside the classifier's.

In one run, on the same texts and the same machine:
1. after a burst to warm the worker up, rounds of: the classifier alone, two
   ways (`Classifier.predict` in this process in batches of `model.max_batch`,
   and the same batches through the worker's classifier, stream/services.py:
   its lanes or child processes, as many batches at once as it runs), then a
   burst through a real worker process on fresh topics, fed as fast as the
   broker takes: items/s from the first record produced to the last one
   scored, with the aggregate, detect and history stages running beside it on
   the same cores. Each burst is compared with the faster classifier measured
   just before and just after it (the mean of the two), and the result is the
   median round: a shared VM drifts by up to 20% within minutes, so only
   figures taken side by side make a fair ratio;
2. at fixed offered loads (items/s, live timestamps): latency from producing a
   news item to its ScoredItem (p50/p95/p99), and ingest-to-alert: from the
   moment a window's data is complete (its end; the item that closes it was
   just ingested) to the AlertEvent on Kafka. Short windows (2 s), a planted
   spike in every window (on one of four tickers in turn) and a subscription
   that fires on each make an alert every window or so.
"""

from __future__ import annotations

import asyncio
import csv
import os
import random
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from finpulse.kafka_auth import client_options
from finpulse.schema import AlertEvent, NewsItem, WindowAggregate
from finpulse.settings import AlertsSettings, KafkaSettings, Settings
from finpulse.topics import (
    delete_topics_starting,
    ensure_topics,
    pipeline_topics,
    run_settings,
    stop_consumer,
)
from ingest.producer import NewsProducer

BENCH_SEED = 11
# Each run's topics and stream app id start with this (and the run's tag); deleted after it.
BENCH_PREFIX = "bench-"
# Bench windows: 2 s tumbling, 10 s hopping every 2 s, so alerts come every few seconds.
BENCH_WINDOW_S = 2
# At fixed loads each window after the first CALM_WINDOWS plants a negative spike on one
# of these tickers in turn: an alert every window, so its latency has a percentile spread.
BENCH_TICKERS = ("BNCHA", "BNCHB", "BNCHC", "BNCHD")  # symbols: 1-5 letters
CALM_WINDOWS = 4
BENCH_SUBSCRIPTION = f"""
[[subscription]]
id = "bench"
channel = "#bench"
filter = {{ tickers = {list(BENCH_TICKERS)} }}
[subscription.detector]
min_volume = 5
min_rise = 0.2
significance = 0.05
resolve_windows = 1
cooldown_s = 0
"""


@dataclass(frozen=True)
class LoadResult:
    rate: float
    items: int
    score_latency_s: tuple[float, float, float]
    alert_latency_s: tuple[float, float, float] | None
    alerts: int


@dataclass(frozen=True)
class CpuUse:
    """Cores busy on average over a phase (None where /proc is not available)."""

    process: float | None  # the measured process: the classifier's, or the worker
    machine: float | None  # the whole machine: also the broker and this bench
    cores: int


@dataclass(frozen=True)
class Round:
    """One burst through the pipeline beside the classifier alone measured just before and just
    after it (each the mean of the two)."""

    classifier_docs_s: float  # in this process, model.threads
    worker_docs_s: float  # through the worker's ClassifierService (lanes or processes)
    pipeline_items_s: float

    @property
    def ratio(self) -> float:
        return self.pipeline_items_s / max(self.classifier_docs_s, self.worker_docs_s)


@dataclass(frozen=True)
class BenchResult:
    warmup_items_s: float  # the pipeline's first burst, not counted
    rounds: tuple[Round, ...]
    loads: tuple[LoadResult, ...]
    classifier_cpu: CpuUse
    worker_cpu: CpuUse
    pipeline_cpu: CpuUse

    @property
    def median_round(self) -> Round:
        """The round of median ratio (the lower one of an even number): one drifting
        measurement does not decide the result."""
        return sorted(self.rounds, key=lambda r: r.ratio)[(len(self.rounds) - 1) // 2]

    @property
    def ratio(self) -> float:
        return self.median_round.ratio


def bench_settings(settings: Settings, work: Path) -> Settings:
    run = run_settings(settings, f"{BENCH_PREFIX}{uuid.uuid4().hex[:8]}")
    subs = work / "subscriptions.toml"
    subs.write_text(BENCH_SUBSCRIPTION)
    alerts = AlertsSettings(
        subscriptions_file=subs, tumbling_window_s=BENCH_WINDOW_S, hopping_window_s=5 * BENCH_WINDOW_S,
        hopping_step_s=BENCH_WINDOW_S, baseline_min_windows=2,
    )  # fmt: skip
    return run.model_copy(
        update={
            "data_dir": work,
            "alerts": alerts,
            "stream": run.stream.model_copy(update={"idle_close_s": 1.0, "allowed_lateness_s": 2.0}),
            "store": settings.store.model_copy(update={"url": f"duckdb://{work / 'history.duckdb'}"}),
        }
    )


def load_texts(data_dir: Path, n: int) -> tuple[list[str], list[int]]:
    """`n` headlines and their sentiment labels (0 bearish, 1 bullish, 2 neutral), a fixed
    random sample of the training data (the file is sorted by label)."""
    with (data_dir / "sentiment" / "train.csv").open(newline="", encoding="utf-8") as fh:
        rows = [(row["text"], int(row["label"])) for row in csv.DictReader(fh)]
    sample = random.Random(BENCH_SEED).sample(rows, min(n, len(rows)))
    return [t for t, _ in sample], [label for _, label in sample]


def _process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float | None:
    """CPU seconds all cores spent busy so far (Linux /proc/stat)."""
    try:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return None
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class _CpuMeter:
    """Cores a process and the machine kept busy between start and `stop()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.wall, self.proc, self.machine = time.perf_counter(), _process_cpu_s(pid), _machine_busy_s()

    def stop(self) -> CpuUse:
        wall = time.perf_counter() - self.wall
        proc, machine = _process_cpu_s(self.pid), _machine_busy_s()

        def rate(now: float | None, then: float | None) -> float | None:
            return (now - then) / wall if now is not None and then is not None else None

        return CpuUse(rate(proc, self.proc), rate(machine, self.machine), os.cpu_count() or 1)


class _ClassifierAlone:
    """The classifier without the pipeline, two ways, loaded once for every round: `Classifier.predict`
    in this process in batches of `model.max_batch`, and the same batches through the worker's
    ClassifierService (its lanes or child processes), as many at once as it runs side by side."""

    def __init__(self, settings: Settings, texts: list[str]) -> None:
        from model.engine import Classifier
        from stream.inference import threads_each
        from stream.services import ClassifierService

        self.texts, self.batch = texts, settings.model.max_batch
        self.threads = threads_each(settings.model, 1)
        self.classifier = Classifier.from_settings(settings.model, threads=self.threads)
        stream = settings.stream
        self.service = ClassifierService(settings.model, stream.classifier_processes, stream.classifier_lanes)
        now = datetime.now(UTC)
        items = [_news(i, t, None, now) for i, t in enumerate(texts)]
        self.chunks = [items[i : i + self.batch] for i in range(0, len(items), self.batch)]

    def in_process(self) -> tuple[float, CpuUse]:
        import torch

        # Torch has one thread count per process, and each lane sets its own when it loads.
        lanes = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            self.classifier.predict(self.texts[: self.batch])  # warm-up
            meter = _CpuMeter(os.getpid())
            began = time.perf_counter()
            for i in range(0, len(self.texts), self.batch):
                self.classifier.predict(self.texts[i : i + self.batch])
            return len(self.texts) / (time.perf_counter() - began), meter.stop()
        finally:
            torch.set_num_threads(lanes)

    async def in_worker(self) -> tuple[float, CpuUse]:
        """With processes the work is in the children: only the machine figure says where it went."""
        parallel = self.service.parallel
        await asyncio.gather(*(self.service.score(self.chunks[0]) for _ in range(parallel)))  # warm-up
        meter = _CpuMeter(os.getpid())
        began = time.perf_counter()

        async def lane(mine: list[list[NewsItem]]) -> None:
            for chunk in mine:
                await self.service.score(chunk)

        await asyncio.gather(*(lane(self.chunks[i::parallel]) for i in range(parallel)))
        return len(self.texts) / (time.perf_counter() - began), meter.stop()

    async def close(self) -> None:
        await self.service.on_stop()


def _news(i: int, text: str, ticker: str | None, when: datetime) -> NewsItem:
    return NewsItem(
        story_id=f"bench-{i}-{uuid.uuid4().hex[:6]}", source="bench", title=text[:900] or "empty",
        published_at=when, fetched_at=when, tickers=(ticker,) if ticker else (),
    )  # fmt: skip


async def _produce(kafka: KafkaSettings, items: list[NewsItem], rate: float | None) -> dict[str, float]:
    """Publish items to news.raw through ingest's producer (its batching and acks, as real
    news arrives), paced at `rate`/s or all at once; returns the send time per story."""
    sent: dict[str, float] = {}
    async with NewsProducer(kafka) as producer:
        if not rate:
            sent = dict.fromkeys((item.story_id for item in items), time.time())
            await producer.publish(items)
            return sent
        began = time.perf_counter()
        pending = []
        for i, item in enumerate(items):
            await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
            now = datetime.now(UTC)
            item = item.model_copy(update={"published_at": now, "fetched_at": now})
            sent[item.story_id] = time.time()
            pending.append(asyncio.create_task(producer.publish([item])))
        await asyncio.gather(*pending)
    return sent


class _Watcher:
    """Reads scored items, windows and alerts of the bench topics as they arrive."""

    def __init__(self, settings: Settings) -> None:
        t = settings.kafka.topics
        self.topics = (t.scored, t.windows, t.alerts)
        self.consumer = AIOKafkaConsumer(
            *self.topics, **client_options(settings.kafka), auto_offset_reset="earliest",
            group_id=f"bench-watch-{uuid.uuid4().hex[:6]}",
        )  # fmt: skip
        self.scored: dict[str, float] = {}
        self.windows: list[tuple[float, WindowAggregate]] = []
        self.alerts: list[tuple[float, AlertEvent]] = []

    async def __aenter__(self) -> _Watcher:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await stop_consumer(self.consumer)

    async def _run(self) -> None:
        scored, windows, _ = self.topics
        async for record in self.consumer:
            now = time.time()
            if record.topic == scored:
                # news.scored is keyed by story id: the key is enough, and decoding every
                # item here would take CPU from the pipeline being measured.
                self.scored.setdefault(record.key.decode(), now)
            elif record.topic == windows:
                self.windows.append((now, WindowAggregate.from_bytes(record.value)))
            else:
                self.alerts.append((now, AlertEvent.from_bytes(record.value)))

    async def wait_scored(self, ids: set[str], timeout_s: float) -> float:
        """Wall time when the last of `ids` was scored."""
        deadline = time.monotonic() + timeout_s
        while not ids <= self.scored.keys():
            if time.monotonic() > deadline:
                missing = len(ids - self.scored.keys())
                raise TimeoutError(f"{missing} of {len(ids)} items not scored within {timeout_s}s")
            await asyncio.sleep(0.05)
        return max(self.scored[i] for i in ids)


def _pcts(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        v = values[0] if values else float("nan")
        return (v, v, v)
    q = statistics.quantiles(values, n=100, method="inclusive")
    return (q[49], q[94], q[98])


def _load_items(texts: list[str], labels: list[int], rate: float, duration_s: float) -> list[NewsItem]:
    """Live items for a fixed load, each naming one of BENCH_TICKERS in turn: calm
    (neutral/bullish) headlines, except that after CALM_WINDOWS windows every other item
    is a bearish headline on the window's spiking ticker (the next one each window)."""
    n = int(rate * duration_s)
    calm = [t for t, lab in zip(texts, labels, strict=True) if lab != 0]
    bearish = [t for t, lab in zip(texts, labels, strict=True) if lab == 0]
    per_window = max(1, int(rate * BENCH_WINDOW_S))
    items = []
    for i in range(n):
        window = i // per_window
        if window >= CALM_WINDOWS and i % 2 == 0:
            text, ticker = bearish[i % len(bearish)], BENCH_TICKERS[window % len(BENCH_TICKERS)]
        else:
            text, ticker = calm[i % len(calm)], BENCH_TICKERS[(i // 2) % len(BENCH_TICKERS)]
        items.append(_news(i, text, ticker, datetime.now(UTC)))
    return items


def _mean_cpu(uses: list[CpuUse]) -> CpuUse:
    def mean(values: list[float | None]) -> float | None:
        return None if None in values else statistics.fmean(v for v in values if v is not None)

    return CpuUse(mean([u.process for u in uses]), mean([u.machine for u in uses]), uses[0].cores)


async def _wait_quiet(pid: int, timeout_s: float = 30.0) -> None:
    """Until the worker idles (under a tenth of a core for half a second): it may still be
    aggregating a burst after its last item was scored, and the classifier measured beside
    that work would look slower than it is."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        meter = _CpuMeter(pid)
        await asyncio.sleep(0.5)
        busy = meter.stop().process
        if busy is None or busy < 0.1:
            return


@dataclass
class _Phases:
    """What `_measure` collects, round by round."""

    rounds: list[Round]
    classifier_cpu: list[CpuUse]
    worker_cpu: list[CpuUse]
    pipeline_cpu: list[CpuUse]
    loads: list[LoadResult]
    warmup_items_s: float = 0.0


async def _measure(
    settings: Settings, worker_pid: int, alone: _ClassifierAlone, labels: list[int], rates: list[float],
    duration_s: float, rounds: int,
) -> _Phases:  # fmt: skip
    kafka, texts = settings.kafka, alone.texts
    out = _Phases([], [], [], [], [])

    async def classifier_alone() -> tuple[float, float]:
        # In a thread: this loop keeps serving the watcher's consumer meanwhile.
        docs_s, cpu = await asyncio.to_thread(alone.in_process)
        worker_docs_s, worker_cpu = await alone.in_worker()
        out.classifier_cpu.append(cpu)
        out.worker_cpu.append(worker_cpu)
        return docs_s, worker_docs_s

    async with _Watcher(settings) as watch:
        # Warm-up: the worker has loaded its model and joined the group once these are scored.
        warm = [_news(i, t, None, datetime.now(UTC)) for i, t in enumerate(texts[:16])]
        await _produce(kafka, warm, None)
        await watch.wait_scored({w.story_id for w in warm}, timeout_s=300)

        async def burst() -> tuple[float, CpuUse]:
            """Throughput: everything at once."""
            items = [_news(i, t, None, datetime.now(UTC)) for i, t in enumerate(texts)]
            began = time.time()
            meter = _CpuMeter(worker_pid)
            await _produce(kafka, items, None)
            done = await watch.wait_scored({b.story_id for b in items}, timeout_s=900)
            cpu = meter.stop()
            await _wait_quiet(worker_pid)
            return len(items) / (done - began), cpu

        # A burst to warm up, as the classifier gets a batch first: the first burst after the
        # worker started was the slowest round in 6 of 10 runs, and a long-running worker is past it.
        out.warmup_items_s, _ = await burst()
        before = await classifier_alone()
        for _ in range(rounds):
            items_s, cpu = await burst()
            out.pipeline_cpu.append(cpu)
            after = await classifier_alone()
            in_process, in_worker = (statistics.fmean(pair) for pair in zip(before, after, strict=True))
            out.rounds.append(Round(in_process, in_worker, items_s))
            before = after
        for rate in rates:
            items = _load_items(texts, labels, rate, duration_s)
            seen_alerts = len(watch.alerts)
            sent = await _produce(kafka, items, rate)
            await watch.wait_scored(set(sent), timeout_s=300)
            await asyncio.sleep(3 * BENCH_WINDOW_S)  # let the last windows close
            score_lat = [watch.scored[i] - t for i, t in sent.items()]
            fired = [(at, a) for at, a in watch.alerts[seen_alerts:] if a.state == "fired"]
            alert_lat = [at - a.window_end.timestamp() for at, a in fired]
            out.loads.append(LoadResult(rate, len(items), _pcts(score_lat),
                                        _pcts(alert_lat) if fired else None, len(fired)))  # fmt: skip
    return out


def run_bench(
    settings: Settings, work: Path, *, items: int, rates: list[float], duration_s: float, rounds: int = 3
) -> BenchResult:
    """Measure classifier and pipeline side by side, `rounds` times; starts and stops its own worker."""
    from finpulse.processes import CliProcess, settings_env

    bench = bench_settings(settings, work)
    texts, labels = load_texts(settings.model.train_data_dir, items)
    alone = _ClassifierAlone(bench, texts)
    asyncio.run(ensure_topics(bench.kafka, pipeline_topics(bench.kafka.topics)))
    worker = CliProcess(["worker"], settings_env(bench), work / "worker.log").start()
    assert worker.proc is not None

    async def measure(pid: int) -> _Phases:
        try:
            return await _measure(bench, pid, alone, labels, rates, duration_s, rounds)
        finally:
            await alone.close()

    try:
        out = asyncio.run(measure(worker.proc.pid))
    except TimeoutError as exc:
        raise TimeoutError(f"{exc}; worker log tail:\n{worker.tail()}") from exc
    finally:
        worker.stop()
        # The run's topics (its results are in `out`) would pile up on a long-lived broker.
        asyncio.run(delete_topics_starting(bench.kafka, bench.stream.app_id))
    return BenchResult(
        out.warmup_items_s, tuple(out.rounds), tuple(out.loads), _mean_cpu(out.classifier_cpu),
        _mean_cpu(out.worker_cpu), _mean_cpu(out.pipeline_cpu),
    )  # fmt: skip
