"""Every `finpulse` command starts by registering all stages' commands: that must stay light."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("scipy", "torch", "transformers", "sklearn", "faust", "duckdb", "pandas", "numpy", "fastapi")


def test_registering_the_commands_imports_no_heavy_library() -> None:
    # scipy.stats alone, pulled in by the `alerts` package, took 2 of the 3 s of each start.
    script = (
        "import sys\nfrom finpulse.cli import _register_stages\n_register_stages()\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
