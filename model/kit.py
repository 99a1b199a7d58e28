"""A GPU kit: what `finpulse model bench --device cuda` needs on a GPU host that downloads nothing.

Made for GPU hosts like the remote runners of README, Development: they hold PyTorch,
transformers, onnxruntime, scikit-learn, pandas, typer and rich for Python 3.12, reach no network,
and take the working tree plus the kit up to 64 MiB in all. A model directory is ~200 MB, its
float32 weights 90. The kit holds
- model/: the model's weights in float16 (a GPU runs them in bf16 or fp16 anyway; 45 MB), its
  config, tokenizer and n-gram heads; no ONNX exports or card (the CPU back ends' business);
- data/: the labelled posts the bench samples its texts from;
- wheels/ (optional): the packages such a host lacks, for its Python (pydantic and the settings'
  others), as `pip download` fetches them here;
- run.sh: the command to run there from the repository's root, writing under $OUT.
"""

from __future__ import annotations

import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from finpulse.errors import ConfigError
from model.artifacts import CONFIG_FILE, WEIGHTS_FILE, load_config
from model.batching import SPECIAL_TOKENS_FILE, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE
from model.data import FILES
from model.lexical import LEXICAL_FILES

# Packages `finpulse model bench` imports that such a GPU host's image lacks, and the CLI's own,
# whose versions there are not known.
CARRIED = (
    "pydantic", "pydantic-core", "pydantic-settings", "annotated-types", "typing-inspection",
    "typing-extensions", "python-dotenv", "pytz", "typer", "click", "rich",
)  # fmt: skip
LIMIT_BYTES = 64 * 2**20  # what travels with the working tree

RUN_SH = """\
# `finpulse model bench` on the GPU: `bash <kit>/run.sh` from the repository's root; the figures
# also go to $OUT (default /tmp/out).
set -euo pipefail
KIT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -d "$KIT/wheels" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \\
    --target /tmp/site "$KIT"/wheels/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 COLUMNS=120
OUT="${OUT:-/tmp/out}"; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
bench() { python3 -m finpulse.cli model bench --model "$KIT/model" --data "$KIT/data" "$@"; }
bench --device cuda --texts 1024 2>&1 | tee "$OUT/bench-cuda.txt"
bench --device cpu --backend torch --texts 256 --batch-sizes 1,32 2>&1 | tee "$OUT/bench-cpu-torch.txt"
"""


def build_kit(
    model_dir: Path, data_dir: Path, out: Path, python: str | None = "3.12", beside: int = 0
) -> int:
    """Write the kit to `out` (replacing one there); `python`: the host's version for the
    wheels, None for none. Returns its size in bytes; raises ValueError where it and the `beside`
    bytes that travel with it (the working tree) come to more than LIMIT_BYTES."""
    from safetensors.torch import load_file, save_file

    load_config(model_dir)  # no model there: said before anything is replaced
    if out.is_dir() and any(out.iterdir()) and not (out / "run.sh").is_file():
        raise ConfigError(f"{out} holds files and is no kit (no run.sh): give a new or empty folder")
    shutil.rmtree(out, ignore_errors=True)
    (out / "model").mkdir(parents=True)
    weights = load_file(str(model_dir / WEIGHTS_FILE))
    half = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    save_file(half, str(out / "model" / WEIGHTS_FILE))
    kept = (CONFIG_FILE, TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_FILE, *LEXICAL_FILES)
    for name in kept:
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, out / "model" / name)
    for relative in FILES.values():
        (out / "data" / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(data_dir / relative, out / "data" / relative)
    if python is not None:
        _download_wheels(out / "wheels", python)
    (out / "run.sh").write_text(RUN_SH, encoding="utf-8")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    if size + beside > LIMIT_BYTES:
        raise ValueError(
            f"the kit is {size / 2**20:.1f} MiB and the working tree {beside / 2**20:.1f}: over the "
            f"{LIMIT_BYTES / 2**20:.0f} MiB that travel"
        )
    return size


def working_tree_bytes(root: Path) -> int:
    """The files that travel besides carried folders: those git tracks or would (not ignored);
    0 outside a git checkout."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607
        cwd=root, capture_output=True, check=False,
    )  # fmt: skip
    if listed.returncode != 0:
        return 0
    files = [root / name for name in listed.stdout.decode().split("\0") if name]
    return sum(f.stat().st_size for f in files if f.is_file())


def _download_wheels(into: Path, python: str) -> None:
    """This environment's versions of CARRIED, built for `python` on manylinux x86-64."""
    pins = [f"{name}=={metadata.version(name)}" for name in CARRIED]
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 27, 28)] + [
        "--platform=manylinux2014_x86_64"
    ]
    pip = shutil.which("pip3") or shutil.which("pip")  # uv's environments have none of their own
    if pip is None:
        raise ValueError("the wheels need pip on the PATH (or build the kit without wheels)")
    command = [
        pip, "download", "--quiet", "--no-deps", "--only-binary=:all:",
        f"--python-version={python}", "--implementation=cp", *platforms, "--dest", str(into), *pins,
    ]  # fmt: skip
    subprocess.run(command, check=True)  # noqa: S603 - pip with our own arguments
