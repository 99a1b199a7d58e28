"""The inference engine: `Classifier.load(path).predict(texts)`.

Inside one `predict` call: inputs are checked (a list of str, else
InvalidInput), normalised like the training texts (entities decoded, links
shortened, megabytes cut to what the model can read), tokenised in one batch
call, sorted by length and cut into buckets padded only to their own longest text
(on CPU: at most 32, cut where padding would cost more than another call; on GPU:
`max_batch`), run on the chosen back end, and put back in
the caller's order. Empty texts get a defined result without a model call.

Device `auto`: CUDA in bf16 (fp16 on GPUs before Ampere, which only emulate bf16)
when a GPU is visible; otherwise the CPU back end that `finpulse model eval` measured
fastest within one accuracy point of float32 (recorded in the model card), else
onnx-int8-checked. `cuda:N` runs on GPU N, `cuda` on torch's current one.

A checked back end (onnx-int8-checked) runs every text in int8, then runs again in
float32 the texts whose final probabilities leave either head near a tie (top two
within CHECK_MARGIN, times 1 - the n-gram heads' weight, whose share damps int8's
noise), where int8's rounding can flip the label. On the validation texts of the
default config's model with frozen word embeddings (n-gram heads mixed in) int8 alone
agreed with float32 on 98.3% of them (both labels); checked with a margin of 0.02 on
99.15%, running 1.7% of them twice; 0.05: 99.73%, 4.6%; 0.1: 99.92%, 8.6%. The current
default model: int8 alone 98.8%, checked (0.05) 99.77%.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from finpulse.errors import ConfigError
from finpulse.schema import NewsItem, ScoredItem, utcnow
from finpulse.settings import BACKENDS, CUDA_BACKENDS, ModelSettings, check_backend, check_device
from model.artifacts import (
    ONNX_INT8_FILE,
    ModelConfig,
    check_head_sizes,
    load_config,
    model_version,
    read_card,
)
from model.batching import TextEncoder, costed_batches, pad, sorted_batches
from model.errors import InvalidInput, ModelNotFound
from model.labels import FALLBACK_TOPIC, Task
from model.lexical import LEXICAL_FILE, LexicalModel, mix
from model.prediction import Prediction
from model.runtime import Runtime, make_runtime
from model.text import cut_raw, normalize_text

logger = logging.getLogger(__name__)
# Loads of a directory another model is swapped into meanwhile, before giving up.
LOAD_ATTEMPTS = 3

# Characters kept before normalising (a megabyte costs no more than this) and
# after it: 128 word pieces are rarely more than ~1,000 characters of news text.
RAW_CHARS_PER_TOKEN = 64
CHARS_PER_TOKEN = 16
# Largest bucket on CPU: beyond ~32 texts the activations leave the core's cache
# and docs/s falls (measured on a 2-core AVX-512 EPYC: bf16 714 docs/s at 32,
# 624 at 64, 119 at 128). GPUs take the whole max_batch at once.
CPU_BUCKET = 32
# A CPU call's fixed cost in tokens' worth of compute (float32 torch on 2 cores: ~5 ms a
# call, ~0.1 ms a token). Cutting buckets where padding would cost more took a batch of
# 32 random posts (padded to 1.7x their tokens) from 127 to 226 docs/s (`finpulse model bench`).
CPU_CALL_TOKENS = 48
# Top-two probability gap under which a checked back end asks float32 (see the module):
# each text run again costs a float32 pass, ~1.8x an int8 one (5.7 ms vs 3.1 for one text).
CHECK_MARGIN = 0.05
# What a Linux host (or a container given a GPU) shows when an NVIDIA driver is loaded.
NVIDIA_DRIVER_PATHS = ("/proc/driver/nvidia", "/dev/nvidiactl")


def choose_backend(model_dir: Path, device: str) -> str:
    """The back end `device` means for this model (see the module docstring)."""
    check_device(device)
    if device.startswith("cuda") or (device == "auto" and _cuda_available()):
        if not _cuda_available():
            raise ConfigError(
                f"device {device}: no CUDA GPU is visible here (no NVIDIA driver, or torch finds none); "
                "use device auto or cpu"
            )
        from model.precision import cuda_has_bf16  # torch: only where a GPU will run it

        return "cuda-bf16" if cuda_has_bf16(cuda_device(device)) else "cuda-fp16"
    card = read_card(model_dir)
    chosen = card.get("engine", {}).get("cpu_backend") if card else None
    if chosen in BACKENDS:
        return str(chosen)
    return "onnx-int8-checked" if (model_dir / ONNX_INT8_FILE).is_file() else "torch"


def check_placement(device: str, backend: str) -> None:
    """Refuse a device and a back end that contradict each other: the back end would win silently
    (device cuda with FINPULSE_MODEL_BACKEND=onnx ran on the CPU)."""
    if device.startswith("cuda") and backend not in CUDA_BACKENDS:
        raise ConfigError(
            f"device {device} with back end {backend}, which runs on the CPU: name a CUDA back end "
            f"({', '.join(CUDA_BACKENDS)}) or none (--backend, FINPULSE_MODEL_BACKEND), or use device cpu"
        )
    if device == "cpu" and backend in CUDA_BACKENDS:
        raise ConfigError(
            f"device cpu with back end {backend}, which runs on a GPU: name a CPU back end or none "
            "(--backend, FINPULSE_MODEL_BACKEND), or use device cuda"
        )


def _identity(model_dir: Path) -> tuple[int, int, int] | None:
    """The directory itself (device, inode: a model swapped in is another directory) and when its
    entries last changed (files replaced in place)."""
    try:
        st = model_dir.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


def cuda_device(device: str) -> str:
    """The GPU `device` names: cuda:N as given, else `cuda` (torch's current device)."""
    return device if device.startswith("cuda:") else "cuda"


def _cuda_available() -> bool:
    # No NVIDIA driver, no CUDA: skip importing torch (seconds) for a question it would answer no.
    if sys.platform == "linux" and not any(Path(p).exists() for p in NVIDIA_DRIVER_PATHS):
        return False
    import torch

    return bool(torch.cuda.is_available())


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def margin(probs: np.ndarray) -> np.ndarray:
    """Per row, the gap between the two most likely classes."""
    top = np.partition(probs, -2, axis=-1)
    return np.asarray(top[:, -1] - top[:, -2])


class Classifier:
    """Topic and sentiment of news texts; thread-compatible, not thread-safe."""

    def __init__(
        self,
        runtime: Runtime,
        encoder: TextEncoder,
        config: ModelConfig,
        version: str,
        max_batch: int = 64,
        lexical: LexicalModel | None = None,
    ) -> None:
        self.runtime, self.encoder, self.config = runtime, encoder, config
        # A checked back end's float32 runtime, for the texts left near a tie.
        self.reference: Runtime | None = getattr(runtime, "reference", None)
        self.version, self.max_batch = version, max_batch
        # The n-gram heads mixed into the encoder's probabilities (model/lexical.py).
        self.lexical = lexical
        self.lexical_weight = float(config.train.get("lexical_weight", 0.0)) if lexical else 0.0
        self.max_length = config.max_length
        self.on_gpu = runtime.name.startswith("cuda")
        # Tensor cores like multiples of 8, and fewer shapes mean fewer kernel choices.
        self.pad_multiple = 8 if self.on_gpu else 1
        self.bucket = max_batch if self.on_gpu else min(max_batch, CPU_BUCKET)
        self.topics, self.sentiments = config.topics, config.sentiments

    @property
    def backend(self) -> str:
        return self.runtime.name

    @classmethod
    def load(
        cls,
        path: Path | str,
        device: str = "auto",
        *,
        backend: str | None = None,
        threads: int | None = None,
        max_batch: int = 64,
        lexical: bool = True,
    ) -> Classifier:
        """Load a trained model directory; raises ModelNotFound when there is none, InvalidModel (one)
        naming a file that is damaged, stale or of another model, ConfigError for a device and back
        end at odds.

        lexical=False: the encoder's heads alone, without the n-gram heads.
        """
        model_dir = Path(path)
        for attempt in range(1, LOAD_ATTEMPTS + 1):
            before = _identity(model_dir)
            try:
                loaded = cls._load(model_dir, device, backend, threads, max_batch, lexical)
            except Exception:
                if _identity(model_dir) == before or attempt == LOAD_ATTEMPTS:
                    raise  # not a swap mid-read: the model's own error
                continue
            if _identity(model_dir) == before:
                return loaded
            # `finpulse model train` swapped a new model in while this one read its files.
            logger.warning("model dir=%s was replaced while loading; loading it again", model_dir)
        raise ModelNotFound(f"{model_dir} kept changing while loading ({LOAD_ATTEMPTS} tries); try again")

    @classmethod
    def _load(
        cls, model_dir: Path, device: str, backend: str | None, threads: int | None, max_batch: int,
        lexical: bool,
    ) -> Classifier:  # fmt: skip
        config = load_config(model_dir)
        backend = check_backend(backend) if backend else choose_backend(model_dir, device)
        check_placement(device, backend)
        if backend in CUDA_BACKENDS and not _cuda_available():
            raise ConfigError(f"back end {backend} needs a CUDA GPU, and none is visible here; use a CPU one")
        heads = LexicalModel.load(model_dir)
        if heads is not None:
            check_head_sizes(model_dir / LEXICAL_FILE, heads.n_classes, config)
        version = model_version(model_dir, heads)
        # The model's own max_length, never a setting's: the network was trained on texts cut there.
        encoder = TextEncoder.from_dir(model_dir, config.max_length)
        runtime = make_runtime(backend, model_dir, version, threads, cuda_device(device))
        logger.info("classifier loaded dir=%s version=%s backend=%s", model_dir, version, backend)
        return cls(runtime, encoder, config, version, max_batch, heads if lexical else None)

    @classmethod
    def from_settings(cls, settings: ModelSettings, *, threads: int | None = None) -> Classifier:
        """The model of `settings` on its device and back end; `threads` overrides settings.threads."""
        return cls.load(
            settings.model_dir, device=settings.device, backend=settings.backend,
            threads=threads or settings.threads, max_batch=settings.max_batch,
        )  # fmt: skip

    def probabilities(self, texts: Sequence[object]) -> tuple[np.ndarray, np.ndarray, list[bool], list[bool]]:
        """Topic and sentiment probabilities of each text, and which were truncated / empty."""
        clean, cut = self._normalise(texts)
        enc = self.encoder(clean)
        truncated = [c or t for c, t in zip(cut, enc.truncated, strict=True)]
        topic = np.zeros((len(clean), len(self.topics)), dtype=np.float32)
        sentiment = np.zeros((len(clean), len(self.sentiments)), dtype=np.float32)
        rows = [i for i, e in enumerate(enc.empty) if not e]
        if rows:
            ids = [enc.ids[i] for i in rows]
            ngrams = (
                self.lexical.probabilities([clean[i] for i in rows]) if self.lexical is not None else None
            )
            mixed_t, mixed_s = self._mixed(*self._encoder_probabilities(self.runtime, ids), ngrams)
            if self.reference is not None:
                # The n-gram heads' share damps int8's noise in the mixture by (1 - weight).
                near = CHECK_MARGIN * (1.0 - self.lexical_weight)
                unsure = np.flatnonzero((margin(mixed_t) < near) | (margin(mixed_s) < near))
                if unsure.size:  # only those rows run, and are mixed, again
                    again = self._encoder_probabilities(self.reference, [ids[u] for u in unsure])
                    some = {task: p[unsure] for task, p in ngrams.items()} if ngrams is not None else None
                    mixed_t[unsure], mixed_s[unsure] = self._mixed(*again, some)
            topic[rows], sentiment[rows] = mixed_t, mixed_s
        return topic, sentiment, truncated, enc.empty

    def _encoder_probabilities(self, runtime: Runtime, ids: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """The encoder heads' probabilities of token-id rows, in their order."""
        topic = np.zeros((len(ids), len(self.topics)), dtype=np.float32)
        sentiment = np.zeros((len(ids), len(self.sentiments)), dtype=np.float32)
        for batch in self._buckets([len(x) for x in ids]):
            padded, mask = pad([ids[b] for b in batch], self.encoder.pad_id, self.pad_multiple)
            t_logits, s_logits = runtime(padded, mask)
            topic[batch], sentiment[batch] = softmax(t_logits), softmax(s_logits)
        return topic, sentiment

    def _mixed(
        self, topic: np.ndarray, sentiment: np.ndarray, ngrams: dict[Task, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The encoder's probabilities with the n-gram heads' mixed in (when there are any)."""
        if ngrams is None:
            return topic, sentiment
        w = self.lexical_weight
        return mix(topic, ngrams["topic"], w), mix(sentiment, ngrams["sentiment"], w)

    def _buckets(self, lengths: list[int]) -> list[list[int]]:
        if self.on_gpu:  # the fewest calls
            return sorted_batches(lengths, self.bucket)
        return costed_batches(lengths, self.bucket, CPU_CALL_TOKENS)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One Prediction per text, in order. Raises InvalidInput for non-text input."""
        topic, sentiment, truncated, empty = self.probabilities(texts)
        return [
            self._empty(truncated[i]) if empty[i] else self._prediction(topic[i], sentiment[i], truncated[i])
            for i in range(len(empty))
        ]

    def score(self, items: Sequence[NewsItem], now: datetime | None = None) -> list[ScoredItem]:
        """Classify NewsItems (title + summary) into ScoredItems stamped with this model's version."""
        scored_at = now or utcnow()
        return [
            ScoredItem(
                item=item,
                topic=p.topic,
                topic_probs=p.topic_probs,
                sentiment=p.sentiment,
                sentiment_probs=p.sentiment_probs,
                sentiment_score=p.sentiment_score,
                model_version=self.version,
                scored_at=scored_at,
            )
            for item, p in zip(items, self.predict([it.text for it in items]), strict=True)
        ]

    def _normalise(self, texts: Sequence[object]) -> tuple[list[str], list[bool]]:
        """Texts as the model reads them, and which lost visible text to a character cap."""
        if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
            raise InvalidInput(
                f"predict() takes a list of str, got {type(texts).__name__}; wrap one text in a list"
            )
        raw_cap, cap = self.max_length * RAW_CHARS_PER_TOKEN, self.max_length * CHARS_PER_TOKEN
        clean, cut = [], []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InvalidInput(f"texts[{i}] is {type(text).__name__}, not str: pass decoded text")
            raw, raw_cut = cut_raw(text, raw_cap)
            normalised = normalize_text(raw)
            clean.append(normalised[:cap])
            cut.append(raw_cut or len(normalised) > cap)
        return clean, cut

    def _prediction(self, topic: np.ndarray, sentiment: np.ndarray, truncated: bool) -> Prediction:
        s_probs = dict(zip(self.sentiments, sentiment.tolist(), strict=True))
        score = s_probs["positive"] - s_probs["negative"]
        return Prediction.model_construct(
            topic=self.topics[int(topic.argmax())],
            topic_probs=dict(zip(self.topics, topic.tolist(), strict=True)),
            sentiment=self.sentiments[int(sentiment.argmax())],
            sentiment_probs=s_probs,
            sentiment_score=min(1.0, max(-1.0, score)),
            truncated=truncated,
            empty=False,
        )

    def _empty(self, truncated: bool) -> Prediction:
        """The defined result of a text with nothing to read (truncated: in the part it kept)."""
        return Prediction.model_construct(
            topic=FALLBACK_TOPIC,
            topic_probs={t: float(t == FALLBACK_TOPIC) for t in self.topics},
            sentiment="neutral",
            sentiment_probs={s: float(s == "neutral") for s in self.sentiments},
            sentiment_score=0.0,
            truncated=truncated,
            empty=True,
        )
