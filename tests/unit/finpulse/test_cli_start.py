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


def test_a_worker_loads_the_detectors_statistics_before_it_consumes() -> None:
    # Loaded at the first test instead, scipy.stats (2.5 s) stalled the worker's event loop:
    # scoring stopped and the bench's score p95 at 50 items/s was 1.4-1.9 s (p50 0.27).
    script = (
        "import sys\nfrom finpulse.settings import Settings\nfrom stream.app import create_app\n"
        "stream, model = {'history': False, 'classifier_processes': 0}, {'model_dir': '/nonexistent'}\n"
        "create_app(Settings(stream=stream, model=model))\n"
        "print('scipy.stats' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "True"
