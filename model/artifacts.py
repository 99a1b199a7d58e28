"""A trained model on disk: weights, config, tokenizer, exports, card; and its version.

    <model_dir>/config.json          ModelConfig (labels, encoder shape, training config)
    <model_dir>/model.safetensors    all weights (encoder + heads), float32
    <model_dir>/tokenizer.json ...   the encoder's tokenizer
    <model_dir>/lexical.json, .npz   the n-gram heads mixed with the encoder's (`model.lexical`)
    <model_dir>/model.onnx           ONNX export (`model.export`)
    <model_dir>/model.int8.onnx      the same, int8 dynamic quantisation
    <model_dir>/card.json, card.md   evaluation (`model.evaluate`)

The version is a hash of the weights files and the config, so any retraining,
config change or edited weights gives a new version; it travels on every
ScoredItem. Each ONNX export records the version it was exported from, and is
refused under other weights (`check_export`): it would run the old network
stamped with the new version.

A file that is missing, unreadable or does not fit the others is an InvalidModel
naming it and what to do, never a traceback of the library that read it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from finpulse.settings import MODEL_CONFIG_FILE
from model.errors import REEVALUATE, REEXPORT, RETRAIN, InvalidModel, ModelNotFound
from model.labels import SENTIMENT_LABELS, TASKS, TOPICS, Task
from model.lexical import LEXICAL_FILES, LexicalModel
from model.text import NORMALISATION_VERSION

if TYPE_CHECKING:  # torch and transformers load only where the network does: the ONNX engine needs neither
    from model.network import TwoHeadNet

logger = logging.getLogger(__name__)

CONFIG_FILE = MODEL_CONFIG_FILE
WEIGHTS_FILE = "model.safetensors"
ONNX_FILE = "model.onnx"
ONNX_INT8_FILE = "model.int8.onnx"
CARD_JSON = "card.json"
CARD_MD = "card.md"
# Written from the weights later (export, eval) or beside them: stale once the weights change.
DERIVED_FILES = (ONNX_FILE, ONNX_INT8_FILE, CARD_JSON, CARD_MD, *LEXICAL_FILES)
# Every file of a model directory finpulse writes at the top level (the tokenizer's aside).
MODEL_FILES = (CONFIG_FILE, WEIGHTS_FILE, "training.json", *DERIVED_FILES)
FORMAT = "finpulse-two-head/1"
# The ONNX metadata key under which an export records the model version it was made from.
EXPORTED_FROM = "finpulse_model_version"


class ModelConfig(BaseModel):
    """Everything besides the weights that defines the model's behaviour."""

    model_config = ConfigDict(frozen=True)

    format: str = FORMAT
    base_model: str
    encoder: dict[str, Any]
    topics: tuple[str, ...] = TOPICS
    sentiments: tuple[str, ...] = SENTIMENT_LABELS
    max_length: int
    normalisation_version: int = NORMALISATION_VERSION
    train: dict[str, Any] = {}


def save_model(
    net: TwoHeadNet, tokenizer: Any, config: ModelConfig, out_dir: Path, lexical: LexicalModel | None = None
) -> str:
    """Write weights, config, tokenizer and n-gram heads; returns the model version."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in DERIVED_FILES:
        (out_dir / stale).unlink(missing_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(out_dir / WEIGHTS_FILE))
    if lexical is not None:
        lexical.save(out_dir)
    (out_dir / CONFIG_FILE).write_text(config.model_dump_json(indent=2), encoding="utf-8")
    tokenizer.save_pretrained(str(out_dir))
    version = model_version(out_dir)
    logger.info("saved model dir=%s version=%s", out_dir, version)
    return version


def load_config(model_dir: Path) -> ModelConfig:
    """Read config.json; raises ModelNotFound with what to do when absent."""
    path = model_dir / CONFIG_FILE
    if not path.is_file() or not (model_dir / WEIGHTS_FILE).is_file():
        raise ModelNotFound(
            f"no trained model in {model_dir}: run `finpulse model train` (or `--quick`), "
            "or set FINPULSE_MODEL_MODEL_DIR"
        )
    try:
        config = ModelConfig.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise InvalidModel.unreadable(path, exc, RETRAIN) from exc
    if config.format != FORMAT:
        raise ModelNotFound(f"{path}: format {config.format!r} is not {FORMAT!r}; retrain the model")
    _check_weights(model_dir / WEIGHTS_FILE, config)
    return config


def _check_weights(path: Path, config: ModelConfig) -> None:
    """The weights file whole (its header covers the file: a cut copy fails here, not at its first
    prediction), its heads as wide as the config's labels. Reads the header only."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as weights:
            sizes = {task: weights.get_slice(f"{task}_head.weight").get_shape()[0] for task in TASKS}
    except Exception as exc:  # safetensors raises its own error (an Exception) for every defect
        raise InvalidModel.unreadable(path, exc, RETRAIN) from exc
    check_head_sizes(path, sizes, config)


def check_head_sizes(path: Path, sizes: dict[Task, int], config: ModelConfig) -> None:
    """Refuse heads (of the weights or the n-gram heads) that are not as wide as the labels config.json
    names: they would load and then fail on every prediction."""
    labels: dict[Task, int] = {"topic": len(config.topics), "sentiment": len(config.sentiments)}
    if sizes != labels:
        problem = f"has {_classes(sizes)} where {CONFIG_FILE} names {_classes(labels)} (files of two models)"
        raise InvalidModel(path, problem, RETRAIN)


def _classes(sizes: Mapping[Task, int]) -> str:
    return " and ".join(f"{sizes.get(task, 0)} {task}" for task in TASKS) + " classes"


def check_export(path: Path, exported_from: str | None, version: str) -> None:
    """Refuse an ONNX export of other weights than the directory's (`exported_from`: the version
    the file records): it would run the old network stamped with the new version."""
    if exported_from != version:
        source = f"model {exported_from}" if exported_from else "a model it does not record (an older export)"
        raise InvalidModel(path, f"was exported from {source}, the weights are {version}", REEXPORT)


def read_card(model_dir: Path) -> dict[str, Any] | None:
    """card.json's content, None when there is none."""
    path = model_dir / CARD_JSON
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidModel.unreadable(path, exc, REEVALUATE) from exc
    if not isinstance(card, dict):
        raise InvalidModel(path, f"is unusable (a JSON {type(card).__name__}, not an object)", REEVALUATE)
    return card


def load_net(model_dir: Path) -> tuple[TwoHeadNet, ModelConfig]:
    """The float32 network in eval mode, on CPU."""
    from safetensors.torch import load_file

    from model.network import TwoHeadNet

    config = load_config(model_dir)
    try:
        net = TwoHeadNet.from_config(config.encoder)
        net.load_state_dict(load_file(str(model_dir / WEIGHTS_FILE)))
    except (TypeError, ValueError, RuntimeError) as exc:  # an encoder shape the weights do not fit
        remedy = f"its shapes are not {CONFIG_FILE}'s; {RETRAIN}"
        raise InvalidModel.unreadable(model_dir / WEIGHTS_FILE, exc, remedy) from exc
    return net.eval(), config


def load_tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


def model_version(model_dir: Path, lexical: LexicalModel | None = None) -> str:
    """`ft-` + 12 hex digits of SHA-256 over the weights, the n-gram heads and the config
    (`lexical`: the directory's n-gram heads when the caller loaded them already)."""
    digest = hashlib.sha256()
    with (model_dir / WEIGHTS_FILE).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    lexical = lexical or LexicalModel.load(model_dir)
    if lexical is not None:
        digest.update(lexical.fingerprint())
    config = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    digest.update(json.dumps(config, sort_keys=True).encode("utf-8"))
    return f"ft-{digest.hexdigest()[:12]}"
