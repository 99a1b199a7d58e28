"""Every command's help reads as written: typer's rich mode prints a docstring's paragraphs with
their line breaks kept (`finpulse --help` and each group's list the first, a command's --help all)
and wraps them to the terminal too, so the CLI makes each paragraph one line before typer sees it;
and rich markup takes a bracketed word (`[subscription.digest]`) for a style and drops it."""

from __future__ import annotations

import json
import subprocess
import sys

# In a child process: registering the stages twice in one process would list each command twice.
SCRIPT = """
import json
import typer
from rich.text import Text
from finpulse.cli import _register_stages, app

_register_stages()
problems, seen = [], 0

def walk(command, path):
    global seen
    seen += 1
    text = command.help or ""
    if any("\\n" in paragraph for paragraph in text.strip().split("\\n\\n")):
        problems.append(f"{path}: a paragraph over several lines")
    helps = [(path, text)] + [(f"{path} {p.name}", getattr(p, "help", None) or "") for p in command.params]
    problems.extend(f"{where}: markup eats part of {help!r}" for where, help in helps
                    if Text.from_markup(help).plain != help)
    for name, sub in getattr(command, "commands", {}).items():
        walk(sub, f"{path} {name}")

walk(typer.main.get_command(app), "finpulse")
print(json.dumps({"problems": problems, "seen": seen}))
"""


def test_every_paragraph_is_one_line_and_no_help_loses_words_to_markup() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["seen"] > 40  # every command and group was walked
    assert found["problems"] == []


# Every command's --help at 80 columns, each in the same child process.
AT_80 = """
import json
import typer
from typer.testing import CliRunner
from finpulse.cli import _register_stages, app

_register_stages()
runner, cut = CliRunner(), {}

def walk(command, path):
    for name, sub in getattr(command, "commands", {}).items():
        walk(sub, [*path, name])
    out = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}).output
    lines = [line for line in out.splitlines() if "\u2026" in line or len(line) > 80 or "<bool>" in line]
    if lines:
        cut[" ".join(path)] = lines

walk(typer.main.get_command(app), [])
print(json.dumps(cut))
"""


def test_every_help_reads_whole_at_80_columns() -> None:
    """No option name or example cut short ("--max-alerts-per-\u2026" was), and no flag typed as if
    it took a value ("--help <bool>" was)."""
    done = subprocess.run([sys.executable, "-c", AT_80], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {}
