"""`finpulse dead-letters` on the real broker: read back, filtered, replayed to the failed topic."""

from __future__ import annotations

import asyncio
import os
import subprocess
from datetime import timedelta

from aiokafka import AIOKafkaProducer

from finpulse.deadletters import Filter, read_dead_letters
from finpulse.errors import InvalidRecord, UnsupportedLanguage
from finpulse.schema import DeadLetter, utcnow
from finpulse.settings import KafkaSettings
from finpulse.topics import dead_letter_topic, send_dead_letter
from tests.conftest import FINPULSE
from tests.kafka_io import read_topic


async def _put_letters(kafka: KafkaSettings) -> None:
    """Two stories the score stage did not read (German), one record ingest could not parse, and
    a record on the dead-letter topic that is no dead letter at all."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(2):
            letter = DeadLetter.wrap(
                source_topic=kafka.topics.raw, stage="score", error=UnsupportedLanguage("de", ("en",)),
                value=f'{{"story": {i}, "title": "Die Aktie bricht ein {i}"}}'.encode(),
                key=f"de-{i}".encode(), partition=0, offset=i,
            )  # fmt: skip
            await send_dead_letter(producer, kafka.topics, letter)
        bad = DeadLetter.wrap(
            source_topic=kafka.topics.raw, stage="ingest", error=InvalidRecord("NewsItem", "source missing"),
            value=b"{}",
        )  # fmt: skip
        await send_dead_letter(producer, kafka.topics, bad)
        await producer.send_and_wait(dead_letter_topic(kafka.topics.raw, kafka.topics), b"garbage")
    finally:
        await producer.stop()


def _cli(kafka: KafkaSettings, *args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FINPULSE_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "FINPULSE_KAFKA_TOPICS": kafka.topics.model_dump_json(),
        "COLUMNS": str(columns),
    }
    return subprocess.run(
        [str(FINPULSE), "dead-letters", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_dead_letters_are_listed_filtered_and_replayed(kafka: KafkaSettings) -> None:
    asyncio.run(_put_letters(kafka))
    found = asyncio.run(read_dead_letters(kafka))
    assert len(found) == 4
    [unreadable] = [f for f in found if f.letter is None]
    assert unreadable.error is not None
    assert "JSON" in unreadable.error, unreadable.error
    german = [f for f in found if Filter(reason="NOT ONE THE MODEL READS")(f)]
    assert [f.letter.original_key() for f in german if f.letter] == [b"de-0", b"de-1"]
    [ingest] = [f.letter for f in found if Filter(stage="ingest")(f) and f.letter]
    assert ingest.reason == "source missing"

    listed = _cli(kafka)
    assert listed.returncode == 0, listed.stderr
    assert "4 dead letters" in listed.stdout
    assert "UnsupportedLanguage" in listed.stdout
    assert "language 'de' is not one the model reads (en)" in listed.stdout
    assert "not a dead letter" in listed.stdout
    # At 80 columns every cell reads whole; a long reason wraps.
    narrow = _cli(kafka, columns=80).stdout
    assert "…" not in narrow, narrow
    assert max(map(len, narrow.splitlines())) <= 80
    assert "UnsupportedLanguage" in narrow
    assert f"{kafka.topics.raw}[" in narrow  # the record's topic, partition and offset
    assert "Die Aktie bricht ein 1" in narrow  # and its story's headline
    later = (utcnow() + timedelta(minutes=5)).isoformat()
    none = " ".join(_cli(kafka, "--since", later).stdout.split())
    assert f"no dead letters on {kafka.topics.raw}{kafka.topics.dead_letter_suffix}, " in none, none
    # A filter that matches none says what the letters hold instead.
    bogus = " ".join(_cli(kafka, "--stage", "bogus").stdout.split())
    assert "none of the 4 dead letters match --stage 'bogus'; they failed on" in bogus, bogus
    assert "in stages ingest, score" in bogus, bogus
    bad_time = _cli(kafka, "--since", "yesterday")
    assert bad_time.returncode == 2
    assert "is not ISO 8601" in bad_time.stderr

    replayed = _cli(kafka, "--topic", kafka.topics.raw, "--replay")
    assert replayed.returncode == 0, replayed.stderr
    assert "3 dead letters" in replayed.stdout
    assert f"replayed 2 records to {kafka.topics.raw}" in replayed.stdout
    assert "1 letter not sent: they hold no record read from their topic" in replayed.stdout
    back = asyncio.run(read_topic(kafka, kafka.topics.raw, expect=2))
    assert sorted((r.key, r.value) for r in back) == [
        (b"de-0", b'{"story": 0, "title": "Die Aktie bricht ein 0"}'),
        (b"de-1", b'{"story": 1, "title": "Die Aktie bricht ein 1"}'),
    ]


def test_no_broker_is_one_clear_line(kafka: KafkaSettings) -> None:
    nowhere = kafka.model_copy(update={"bootstrap": "127.0.0.1:1"})
    done = _cli(nowhere)
    out = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, out  # worth trying again, unlike a usage or config error (2)
    assert "cannot reach Kafka at 127.0.0.1:1: start it with `finpulse kafka start`" in out
    assert "Unable connect" not in out  # aiokafka's own ERROR line, said again above
