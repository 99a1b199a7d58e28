"""finpulse.up's restart rules on a fake clock and fake processes (the real ones: test_up.py in
tests/integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from finpulse.up import GaveUp, RestartPolicy, Service, Supervisor


class FakeProcess:
    """What the supervisor uses of a CliProcess; the test decides when it exits."""

    def __init__(self, name: str, stopped: list[str]) -> None:
        self.name, self.stopped = name, stopped
        self.log = Path(f"/logs/{name}.log")
        self.pid: int | None = None
        self.returncode: int | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.pid is not None and self.returncode is None

    def start(self) -> FakeProcess:
        self.starts += 1
        self.pid, self.returncode = 100 + self.starts, None
        return self

    def exit(self, code: int) -> None:
        self.returncode = code

    def stop(self) -> None:
        if self.running:
            self.stopped.append(self.name)
            self.returncode = 0

    def tail(self, lines: int = 60) -> str:
        return f"{self.name}: last words"


@pytest.fixture
def world() -> tuple[Supervisor, dict[str, FakeProcess], list[float], list[str], list[str]]:
    clock, said, stopped = [0.0], [], []
    procs = {name: FakeProcess(name, stopped) for name in ("api", "worker")}
    services = [Service(name, p) for name, p in procs.items()]  # type: ignore[arg-type]
    sup = Supervisor(services, RestartPolicy(), say=said.append, clock=lambda: clock[0])
    return sup, procs, clock, said, stopped


def test_the_pause_doubles_up_to_a_minute() -> None:
    policy = RestartPolicy()
    assert [policy.delay(n) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]


def test_an_exited_process_starts_again_after_a_pause_that_resets_once_it_ran_a_minute(world) -> None:  # type: ignore[no-untyped-def]
    sup, procs, clock, said, _ = world
    sup.start()
    worker = procs["worker"]

    def exits_after(seconds: float, code: int = 1) -> None:
        clock[0] += seconds
        worker.exit(code)
        sup.check()

    exits_after(5)  # a broker hiccup, say
    assert "worker exited (status 1) after 5 s; starting it again in 2 s" in said[-1]
    assert "worker: last words" in said[-1]
    clock[0] += 1.9
    sup.check()
    assert worker.starts == 1, "not before its pause is over"
    clock[0] += 0.2
    sup.check()
    assert worker.starts == 2
    assert said[-1] == "worker started again (pid 102, start 2)"
    exits_after(3)
    assert "starting it again in 4 s" in said[-1]
    clock[0] += 4
    sup.check()
    exits_after(61)  # ran a minute: healthy, so the next pause is the shortest again
    assert "after 61 s; starting it again in 2 s" in said[-1]
    assert procs["api"].starts == 1


def test_an_error_status_at_the_first_start_ends_the_run(world) -> None:  # type: ignore[no-untyped-def]
    sup, procs, clock, _, _ = world
    sup.start()
    clock[0] += 3
    procs["worker"].exit(2)  # e.g. no model, no Slack token
    with pytest.raises(GaveUp, match=r"worker exited \(status 2\) after 3 s; its log /logs/worker.log ends"):
        sup.check()


def test_five_short_runs_in_a_row_end_the_run(world) -> None:  # type: ignore[no-untyped-def]
    sup, procs, clock, _, _ = world
    sup.start()
    for run in range(4):
        clock[0] += 1
        procs["worker"].exit(2 if run else 1)  # 2 after a restart: the broker went away, say
        sup.check()
        clock[0] += 60
        sup.check()
    assert procs["worker"].starts == 5
    clock[0] += 1
    procs["worker"].exit(1)
    with pytest.raises(GaveUp, match="5 times in a row"):
        sup.check()


def test_stop_goes_in_reverse_order(world) -> None:  # type: ignore[no-untyped-def]
    sup, _, _, said, stopped = world
    sup.start()
    sup.stop()
    assert stopped == ["worker", "api"]
    assert said == ["stopping worker (pid 101)", "stopping api (pid 101)"]
