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
ScoredItem.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from finpulse.settings import MODEL_CONFIG_FILE
from model.errors import ModelNotFound
from model.labels import SENTIMENT_LABELS, TOPICS
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
    config = ModelConfig.model_validate_json(path.read_text(encoding="utf-8"))
    if config.format != FORMAT:
        raise ModelNotFound(f"{path}: format {config.format!r} is not {FORMAT!r}; retrain the model")
    return config


def load_net(model_dir: Path) -> tuple[TwoHeadNet, ModelConfig]:
    """The float32 network in eval mode, on CPU."""
    from safetensors.torch import load_file

    from model.network import TwoHeadNet

    config = load_config(model_dir)
    net = TwoHeadNet.from_config(config.encoder)
    net.load_state_dict(load_file(str(model_dir / WEIGHTS_FILE)))
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
