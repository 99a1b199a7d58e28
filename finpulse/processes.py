"""Child `finpulse` processes (worker, dispatcher, API) for the demo, benches and tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from finpulse.settings import Settings

# prctl(2) option: the signal a child gets when its parent thread dies.
PR_SET_PDEATHSIG = 1
GROUPS = ("kafka", "ingest", "model", "alerts", "stream", "store", "api")


def settings_env(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment that makes a child process load exactly `settings` (secrets included)."""
    env = {
        k: v for k, v in (base if base is not None else os.environ).items() if not k.startswith("FINPULSE_")
    }
    for group in GROUPS:
        data = getattr(settings, group).model_dump(mode="python")
        env[f"FINPULSE_{group.upper()}"] = json.dumps(data, default=_plain)
    env["FINPULSE_DATA_DIR"] = str(settings.data_dir)
    env["FINPULSE_LOG_LEVEL"] = settings.log_level
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot put {type(value).__name__} into the environment")


class CliProcess:
    """`finpulse <args>` in a child process, its output appended to `log`.

    `own_group`: the child gets a process group of its own, so a terminal's Ctrl+C reaches the
    parent alone, which then stops its children in the order it chooses (`finpulse up`). Out of
    the terminal's reach, on Linux the child is sent SIGTERM when the parent dies, even by SIGKILL.
    """

    def __init__(self, args: list[str], env: dict[str, str], log: Path, *, own_group: bool = False) -> None:
        self.args, self.env, self.log, self.own_group = args, env, log, own_group
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> CliProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own CLI
                [sys.executable, "-m", "finpulse.cli", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=self.own_group,
                preexec_fn=_term_with_parent if self.own_group and sys.platform == "linux" else None,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit status once it has exited (negative: killed by that signal); None while running."""
        return self.proc.poll() if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no final commit (crash tests)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after `timeout_s`; idempotent."""
        if not self.running:
            return
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _term_with_parent() -> None:
    """In the child, before exec: SIGTERM it when its parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
