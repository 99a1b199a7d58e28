"""A local Apache Kafka broker (KRaft, broker+controller in one JVM).

The broker's jars come from Maven Central once, resolved by `mvn` from the
pinned pom beside this module into a shared cache dir; the broker runs on the
machine's Java 17 with its storage, config and log under `local_dir`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from finpulse.errors import BrokerUnavailable, ConfigError
from finpulse.settings import KafkaSettings

logger = logging.getLogger(__name__)

POM = Path(__file__).with_name("kafka_pom") / "pom.xml"
STOP_TIMEOUT_S = 30.0

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data_dir}
num.partitions=1
# One node: internal topics cannot have more replicas than brokers.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# Consumers join at once instead of waiting 3 s for more members (local only).
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
"""

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = org.apache.kafka
logger.kafka.level = WARN
"""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    answering: bool
    log_file: Path

    def describe(self) -> str:
        if not self.running:
            return f"stopped (bootstrap {self.bootstrap})"
        health = "answering" if self.answering else "NOT answering"
        return f"running pid={self.pid} bootstrap={self.bootstrap} {health} log={self.log_file}"


class LocalKafka:
    """Start, stop and inspect one local broker; every operation is idempotent."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.dir = settings.local_dir
        self.data_dir = self.dir / "data"
        self.log_file = self.dir / "logs" / "server.log"
        self.pid_file = self.dir / "broker.pid"
        self.bootstrap = f"127.0.0.1:{settings.local_port}"

    # -- jars ---------------------------------------------------------------
    def jars_dir(self) -> Path:
        """The resolved broker jars, fetched with Maven on first use."""
        pom = POM.read_bytes()
        target = self.settings.local_jars_dir / hashlib.sha256(pom).hexdigest()[:12]
        if (target / ".complete").exists():
            return target
        mvn = _require_tool("mvn", "Maven is needed once to fetch the Kafka jars: apt-get install maven")
        staging = target.with_name(target.name + f".tmp{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        logger.info("fetching Kafka broker jars with Maven into %s", target)
        cmd = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
               f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-2000:]
            raise ConfigError(f"Maven could not fetch the Kafka jars (exit {proc.returncode}):\n{tail}")
        (staging / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return target

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> BrokerStatus:
        """Start the broker and return once it answers; harmless if already running."""
        current = self.status()
        if current.running:
            if not current.answering:
                self._wait_until_answering()
            return self.status()
        for port in (self.settings.local_port, self.settings.local_controller_port):
            if _port_in_use(port):
                raise ConfigError(
                    f"port {port} is taken by another process: stop it, or set "
                    "FINPULSE_KAFKA_LOCAL_PORT / FINPULSE_KAFKA_LOCAL_CONTROLLER_PORT"
                )
        java = _require_tool(
            "java", "Java 17+ is needed to run Kafka: apt-get install openjdk-17-jre-headless"
        )
        jars = self.jars_dir()
        props = self._write_config()
        self._format_storage(java, jars, props)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        heap = f"-Xmx{self.settings.local_heap_mb}m"
        cmd = [java, heap, f"-Xms{self.settings.local_heap_mb // 2}m", "-XX:+UseG1GC",
               "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}",
               "-cp", f"{jars}/*", "kafka.Kafka", str(props)]  # fmt: skip
        with open(self.dir / "logs" / "stdout.log", "ab") as out:
            proc = subprocess.Popen(  # noqa: S603
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid_file.write_text(str(proc.pid))
        logger.info("started Kafka pid=%s bootstrap=%s", proc.pid, self.bootstrap)
        self._wait_until_answering(proc)
        return self.status()

    def stop(self) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL); returns whether one ran."""
        pid = self._pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            logger.warning("Kafka pid=%s ignored SIGTERM for %ss; killing", pid, STOP_TIMEOUT_S)
            os.kill(pid, signal.SIGKILL)
            while _alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        return True

    def status(self) -> BrokerStatus:
        pid = self._pid()
        answering = pid is not None and _broker_answers(self.bootstrap, timeout_s=5.0)
        return BrokerStatus(pid is not None, pid, self.bootstrap, answering, self.log_file)

    # -- internals ------------------------------------------------------------
    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _alive(pid) and _is_kafka(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)  # stale: the broker died or pid was reused
        return None

    def _write_config(self) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        props = self.dir / "server.properties"
        props.write_text(self._properties())
        (self.dir / "log4j2.properties").write_text(LOG4J2.format(log_file=self.log_file))
        return props

    def _properties(self) -> str:
        """server.properties: one node, broker and controller (a test's cluster node overrides it)."""
        return SERVER_PROPERTIES.format(
            port=self.settings.local_port,
            controller_port=self.settings.local_controller_port,
            data_dir=self.data_dir,
        )

    def _cluster_id(self) -> str:
        """The id its storage is formatted with: a new one (a cluster's nodes share theirs)."""
        return _kafka_uuid()

    def _format_storage(self, java: str, jars: Path, props: Path) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = self._cluster_id()
        # "--cluster-id=..." form: a random id may start with "-", which argparse
        # would take for an option.
        cmd = [java, "-cp", f"{jars}/*", "kafka.tools.StorageTool", "format",
               f"--cluster-id={cluster_id}", "-c", str(props)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
        if proc.returncode != 0:
            raise ConfigError(
                f"formatting Kafka storage in {self.data_dir} failed:\n{proc.stdout}{proc.stderr}"
            )

    def _wait_until_answering(self, proc: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerUnavailable(
                    f"Kafka exited with code {proc.returncode} during start-up; "
                    f"see {self.log_file}:\n{_tail(self.log_file)}"
                )
            if _broker_answers(self.bootstrap, timeout_s=2.0):
                return
            time.sleep(0.3)
        raise BrokerUnavailable(
            f"Kafka did not answer on {self.bootstrap} within {self.settings.start_timeout_s}s; "
            f"see {self.log_file}"
        )


def _require_tool(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConfigError(f"`{name}` not found on PATH. {hint}")
    return path


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return True
    return state != "Z"


def _is_kafka(pid: int) -> bool:
    try:
        return b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (not Linux): trust the pid file


def _kafka_uuid() -> str:
    """A cluster id in Kafka's format: URL-safe base64 of 16 random bytes, no padding."""
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _broker_answers(bootstrap: str, timeout_s: float) -> bool:
    """True when the broker serves metadata (not merely an open port)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    async def probe() -> bool:
        # Refused connections are expected while the broker boots; don't log them.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
        try:
            await asyncio.wait_for(admin.start(), timeout_s)
            await asyncio.wait_for(admin.list_topics(), timeout_s)
            return True
        except (KafkaError, OSError, TimeoutError):
            return False
        finally:
            await admin.close()

    level = logging.getLogger("aiokafka").level
    try:
        return asyncio.run(probe())
    finally:
        logging.getLogger("aiokafka").setLevel(level)
