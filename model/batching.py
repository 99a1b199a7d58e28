"""Tokenisation and length-sorted batches, shared by training and inference.

Texts are tokenised once without padding; batches are cut from texts sorted by
length and each is padded only to its own longest member, so short headlines
never pay for a long summary and no batch is padded to a fixed length.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tokenizers import Tokenizer

from model.errors import RETRAIN, InvalidModel

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"


@dataclass(frozen=True)
class Encoded:
    """Token ids per text (with [CLS]/[SEP]), whether each was cut to fit, and which gave
    no word piece at all (the tokenizer drops zero-width and other format characters)."""

    ids: list[list[int]]
    truncated: list[bool]
    empty: list[bool]


class TextEncoder:
    """Word-piece ids of normalised texts, cut to max_length, in one batched call.

    Runs the tokenizer's Rust core directly (a private copy, without padding or
    truncation): the transformers wrapper costs more than the tokenising itself
    on short texts, and the engine need not import transformers (nor torch) at all.
    """

    def __init__(self, backend: Tokenizer, cls_id: int, sep_id: int, pad_id: int, max_length: int) -> None:
        self.backend = backend
        self.backend.no_truncation()
        self.backend.no_padding()
        self.cls, self.sep, self.pad_id = cls_id, sep_id, pad_id
        self.body = max_length - 2  # room for [CLS] and [SEP]

    @classmethod
    def of(cls, tokenizer: PreTrainedTokenizerBase, max_length: int) -> TextEncoder:
        """From a loaded transformers tokenizer (training)."""
        backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # type: ignore[attr-defined]
        cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        return cls(backend, cls_id, sep_id, tokenizer.pad_token_id or 0, max_length)  # type: ignore[arg-type]

    @classmethod
    def from_dir(cls, model_dir: Path, max_length: int) -> TextEncoder:
        """From the files `save_pretrained` wrote: tokenizer.json and its special tokens (in
        tokenizer_config.json, or special_tokens_map.json from older transformers)."""
        path = model_dir / TOKENIZER_FILE
        config: dict[str, object] = {}
        try:
            backend = Tokenizer.from_file(str(path))
            for name in (SPECIAL_TOKENS_FILE, TOKENIZER_CONFIG_FILE):
                path = model_dir / name
                if path.is_file():
                    config.update(json.loads(path.read_bytes()))
        except Exception as exc:  # tokenizers raises a bare Exception, for a missing file too
            raise InvalidModel.unreadable(
                path, exc, f"the tokenizer comes with the model; {RETRAIN}"
            ) from exc

        def token_id(name: str) -> int | None:
            token = config.get(name)
            token = token.get("content") if isinstance(token, dict) else token  # older files: AddedToken
            return backend.token_to_id(token) if isinstance(token, str) else None

        cls_id, sep_id = token_id("cls_token"), token_id("sep_token")
        if cls_id is None or sep_id is None:
            raise InvalidModel(model_dir, "has tokenizer files that name no [CLS] / [SEP] tokens", RETRAIN)
        return cls(backend, cls_id, sep_id, token_id("pad_token") or 0, max_length)

    def __call__(self, texts: Sequence[str]) -> Encoded:
        raw = [e.ids for e in self.backend.encode_batch(list(texts), add_special_tokens=False)]
        ids = [[self.cls, *r[: self.body], self.sep] for r in raw]
        return Encoded(ids=ids, truncated=[len(r) > self.body for r in raw], empty=[not r for r in raw])


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def costed_batches(lengths: Sequence[int], max_rows: int, call_tokens: int) -> list[list[int]]:
    """Indices cut into length-sorted batches of at most max_rows that cost the least
    in all: each batch costs `call_tokens` (a call's fixed cost, in tokens' worth of
    compute) plus its rows times its longest row. A few long texts get a batch of
    their own rather than stretching the padding of every short one beside them.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    n = len(order)
    # best[j]: least cost of the j longest texts; cut[j]: where the last of their batches starts.
    best, cut = [0] * (n + 1), [0] * (n + 1)
    for j in range(1, n + 1):
        best[j], cut[j] = min(
            (best[i] + call_tokens + (j - i) * lengths[order[i]], i) for i in range(max(0, j - max_rows), j)
        )
    batches = []
    while n > 0:
        batches.append(order[cut[n] : n])
        n = cut[n]
    return batches[::-1]


def shuffled_buckets(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Training batches: random pools of 50 batches, sorted within, batch order shuffled."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def pad(ids: Sequence[Sequence[int]], pad_id: int = 0, multiple: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Input ids and attention mask (int64), padded to the batch's longest row
    (rounded up to `multiple`: fewer distinct shapes for GPU kernels)."""
    width = -(-max(len(row) for row in ids) // multiple) * multiple
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for r, row in enumerate(ids):
        input_ids[r, : len(row)] = row
        mask[r, : len(row)] = 1
    return input_ids, mask
