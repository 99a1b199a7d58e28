"""Session-wide fixtures: the real Kafka broker, unique topics per test."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from finpulse.kafka_local import LocalKafka
from finpulse.processes import CliProcess
from finpulse.settings import KafkaSettings, TopicSettings
from finpulse.topics import ensure_topics

# pytest-xdist's workers start with COLUMNS=80, which the CLI's module-level rich consoles would
# keep from their import on; the tests that check a layout set the width they need themselves.
os.environ.pop("COLUMNS", None)

# Area fixtures (model, feeds, slack, store...) live in tests/fixtures/<area>.py.
pytest_plugins = [
    f"tests.fixtures.{p.stem}" for p in sorted((Path(__file__).parent / "fixtures").glob("[!_]*.py"))
]

# The installed `finpulse` command of this environment, for tests that run it as a process.
FINPULSE = Path(sys.executable).parent / "finpulse"


async def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Until `condition()` holds; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def wait_for_log(proc: CliProcess, needle: str, timeout_s: float) -> None:
    """Until `needle` is in the process's log; fails at once if the process ended."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while needle not in proc.tail(400):
        assert proc.running, proc.tail()
        assert asyncio.get_running_loop().time() < deadline, f"no {needle!r} in the log:\n{proc.tail()}"
        await asyncio.sleep(0.25)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def kafka_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaSettings]:
    """One broker per test session (each pytest-xdist worker's own): FINPULSE_KAFKA_BOOTSTRAP if
    set, else a local one.

    Never skips: if the broker cannot start, every test that needs it fails.
    """
    external = os.environ.get("FINPULSE_KAFKA_BOOTSTRAP")
    if external:
        yield KafkaSettings(bootstrap=external)
        return
    port, controller = free_port(), free_port()
    settings = KafkaSettings(
        bootstrap=f"127.0.0.1:{port}",
        local_port=port,
        local_controller_port=controller,
        local_dir=Path(tmp_path_factory.mktemp("kafka")),
    )
    broker = SignInKafka(settings, free_port())
    broker.start()
    try:
        yield settings
    finally:
        broker.stop()


# The session broker's second listener's user (SASL/PLAIN): a secured cluster's sign-in.
SASL_USER, SASL_PASSWORD = "finpulse", "s3cret-kafka-pass"


class SignInKafka(LocalKafka):
    """The local broker with a second listener, SASL_PLAINTEXT on `sasl_port`, where clients
    sign in as SASL_USER (the tests of a secured cluster use it; the rest use the first)."""

    def __init__(self, settings: KafkaSettings, sasl_port: int) -> None:
        super().__init__(settings)
        self.sasl_port = sasl_port

    def _properties(self) -> str:
        port, sasl = self.settings.local_port, self.sasl_port
        props = super()._properties()
        # Both listeners and advertised.listeners name the first one: the second joins it.
        first = f"=PLAINTEXT://127.0.0.1:{port}"
        props = props.replace(first, f"{first},SASL_PLAINTEXT://127.0.0.1:{sasl}")
        props = props.replace(
            "protocol.map=PLAINTEXT:PLAINTEXT,",
            "protocol.map=PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,",
        )
        login = "org.apache.kafka.common.security.plain.PlainLoginModule required"
        jaas = f'{login} user_{SASL_USER}="{SASL_PASSWORD}";'
        return (
            props
            + f"sasl.enabled.mechanisms=PLAIN\nlistener.name.sasl_plaintext.plain.sasl.jaas.config={jaas}\n"
        )


@pytest.fixture(scope="session")
def sasl_port(kafka_settings: KafkaSettings) -> int:
    """The session broker's SASL listener's port (read from its server.properties)."""
    if os.environ.get("FINPULSE_KAFKA_BOOTSTRAP"):
        pytest.skip("an external broker (FINPULSE_KAFKA_BOOTSTRAP) has no SASL listener of the tests'")
    props = (kafka_settings.local_dir / "server.properties").read_text()
    return int(props.split("SASL_PLAINTEXT://127.0.0.1:")[1].split(",")[0].split("\n")[0])


@pytest.fixture
def kafka(kafka_settings: KafkaSettings) -> KafkaSettings:
    """Broker settings with topic names unique to this test, already created."""
    settings = own_topics(kafka_settings)
    asyncio.run(ensure_topics(settings))
    return settings


def own_topics(kafka: KafkaSettings) -> KafkaSettings:
    """`kafka` with topic names no other test uses (not created yet)."""
    tag = uuid.uuid4().hex[:8]
    topics = TopicSettings(
        raw=f"news.raw.{tag}",
        scored=f"news.scored.{tag}",
        windows=f"sentiment.windows.{tag}",
        alerts=f"alerts.events.{tag}",
        sources=f"ingest.sources.{tag}",
        partitions=3,
    )
    return kafka.model_copy(update={"topics": topics})


@pytest.fixture
def group_id() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"
