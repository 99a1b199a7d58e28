"""`finpulse up`: the whole service on this machine in one command, kept running.

Starts the local Kafka broker when the settings point at it, creates the topics,
then runs the API, the alert dispatcher, the stream worker and the ingestor as
child `finpulse` processes (each in its own process group, logs in
`<data_dir>/logs/<name>.log`), and watches them:

- a process that exits is started again after a pause that doubles each time
  (2 s up to 60 s), back to the shortest once it has stayed up a minute;
- one that fails its first start with the CLI's error status (2: a bad setting,
  no model, no Slack token) or fails five times in a row without staying up a
  minute ends the run, with its log's last lines: restarting would not help;
- Ctrl+C or SIGTERM stops the ingestor first, then the worker, the dispatcher
  and the API, each with SIGTERM (their clean shutdowns commit what they did).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from finpulse.errors import ERROR_EXIT, ConfigError
from finpulse.kafka_local import LocalKafka
from finpulse.ports import listen_socket
from finpulse.processes import CliProcess, settings_env
from finpulse.settings import Settings
from finpulse.topics import ensure_topics

# Start order; they stop in the reverse order (news stops coming in first).
SERVICES = ("api", "alerts", "worker", "ingest")


@dataclass(frozen=True)
class RestartPolicy:
    """When to start an exited process again, and when to stop trying."""

    first_delay_s: float = 2.0
    max_delay_s: float = 60.0
    # A run this long counts as healthy: the next failure starts the backoff again.
    healthy_s: float = 60.0
    max_failures: int = 5

    def delay(self, failures: int) -> float:
        """The pause before the next start after `failures` short runs in a row."""
        return float(min(self.first_delay_s * 2 ** max(failures - 1, 0), self.max_delay_s))

    def give_up(self, failures: int, starts: int, code: int | None) -> bool:
        """True when restarting would not help: the first start ended with the CLI's error
        status, or too many short runs in a row."""
        return (starts == 1 and code == ERROR_EXIT) or failures >= self.max_failures


@dataclass
class Service:
    """One supervised `finpulse` process."""

    name: str
    proc: CliProcess
    starts: int = 0
    failures: int = 0  # short runs in a row
    started_at: float = 0.0
    restart_at: float | None = None

    def start(self, now: float) -> None:
        self.proc.start()
        self.starts += 1
        self.started_at, self.restart_at = now, None


class GaveUp(Exception):
    """A service cannot be kept running; the message says which, and its log's tail."""


@dataclass
class Supervisor:
    """Starts the services, restarts the ones that exit (RestartPolicy), stops them in reverse."""

    services: list[Service]
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    say: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic

    def start(self) -> None:
        for service in self.services:
            service.start(self.clock())

    def check(self) -> None:
        """One look at every service: note exits, start again those whose pause is over.
        Raises GaveUp when one should not be started again."""
        now = self.clock()
        for s in self.services:
            if s.proc.running:
                continue
            if s.restart_at is None:  # it has just exited
                code, ran = s.proc.returncode, now - s.started_at
                s.failures = 1 if ran >= self.policy.healthy_s else s.failures + 1
                if self.policy.give_up(s.failures, s.starts, code):
                    raise GaveUp(
                        f"{s.name} {_ended(code)} after {ran:.0f} s"
                        + (f", {s.failures} times in a row" if s.failures > 1 else "")
                        + f"; its log {s.proc.log} ends:\n{s.proc.tail(12)}"
                    )
                s.restart_at = now + self.policy.delay(s.failures)
                self.say(
                    f"{s.name} {_ended(code)} after {ran:.0f} s; starting it again in "
                    f"{s.restart_at - now:.0f} s. Its log {s.proc.log} ends:\n{s.proc.tail(5)}"
                )
            elif now >= s.restart_at:
                s.start(now)
                self.say(f"{s.name} started again (pid {s.proc.pid}, start {s.starts})")

    def stop(self) -> None:
        for s in reversed(self.services):
            if s.proc.running:
                self.say(f"stopping {s.name} (pid {s.proc.pid})")
            s.proc.stop()


def _ended(code: int | None) -> str:
    """How a process ended: `exited (status 1)`, `was killed (SIGKILL)`."""
    if code is not None and code < 0:
        return f"was killed ({signal.Signals(-code).name})"
    return f"exited (status {code})"


def plan(settings: Settings, sinks: Sequence[str] | None, without: Sequence[str]) -> list[Service]:
    """The services to run with these settings, in start order."""
    unknown = sorted(set(without) - set(SERVICES))
    if unknown:
        raise ConfigError(f"unknown service(s) {', '.join(unknown)}: choose from {', '.join(SERVICES)}")
    env = settings_env(settings)
    logs = settings.data_dir / "logs"
    args: dict[str, list[str]] = {name: [name] for name in SERVICES}
    args["alerts"] += [a for name in sinks or () for a in ("--sink", name)]
    return [
        Service(name, CliProcess(args[name], env, logs / f"{name}.log", own_group=True))
        for name in SERVICES
        if name not in without
    ]


def run_up(
    settings: Settings,
    console: Console,
    *,
    sinks: Sequence[str] | None = None,
    without: Sequence[str] = (),
    stop: threading.Event | None = None,
) -> None:
    """Run the services until Ctrl+C / SIGTERM (or `stop` is set). Raises GaveUp."""
    services = plan(settings, sinks, without)  # an unknown --without: said before anything starts
    if "api" not in without:  # taken (another `up`, an API, a demo): say so before anything starts
        listen_socket(settings.api.host, settings.api.port, "FINPULSE_API_PORT").close()
    if "alerts" not in without:  # a sink's missing setting (the Slack token), likewise
        from alerts.sinks.build import build_sinks

        build_sinks(sinks, settings)
    kafka = settings.kafka
    if kafka.local:
        console.print(f"kafka: {LocalKafka(kafka).start().describe()}")
    asyncio.run(ensure_topics(kafka))
    if "worker" not in without and not settings.model.trained:
        console.print(
            f"[yellow]no model in {settings.model.model_dir}[/yellow]: the worker will stop at once. "
            "Train one first: `finpulse model train` (about 21 minutes on 2 CPU cores), "
            "or `--quick` (a few minutes, to try it)"
        )
    stop = stop or threading.Event()
    supervisor = Supervisor(services, say=console.print)
    previous = _on_sigterm(stop)
    try:
        supervisor.start()
        console.print(_table(supervisor.services, settings, sinks))
        console.print("Ctrl+C stops them all.")
        while not stop.wait(0.5):
            supervisor.check()
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()
        signal.signal(signal.SIGTERM, previous)
        console.print("stopped")


def _on_sigterm(stop: threading.Event) -> Any:
    """SIGTERM sets `stop` (as Ctrl+C does); returns the handler it replaced."""
    return signal.signal(signal.SIGTERM, lambda *_: stop.set())


def _table(services: Sequence[Service], settings: Settings, sinks: Sequence[str] | None) -> Table:
    api = settings.api
    what = {
        "api": f"dashboard and API: http://{api.host}:{api.port}/",
        "alerts": f"alert dispatcher: {', '.join(sinks or settings.alerts.sinks)}",
        "worker": f"stream worker: model {settings.model.model_dir}",
        "ingest": f"ingestor: sources in {settings.ingest.sources_file}",
    }
    table = Table(title="finpulse up")
    for column in ("service", "pid", "what", "log"):
        table.add_column(column)
    for s in services:
        table.add_row(s.name, str(s.proc.pid), what[s.name], str(_short(s.proc.log)))
    return table


def _short(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
