"""Process starts stay light: every `finpulse` command registers all stages' commands first,
and the API process imports its routes before it answers anything."""

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


def test_the_api_loads_pandas_and_matplotlib_when_first_used() -> None:
    # `finpulse api` took 5.1 s to import, 3 of them for charts and frames no request had asked for.
    script = (
        "import sys\nimport api.app\n"
        "print(','.join(m for m in ('pandas', 'matplotlib', 'scipy', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
