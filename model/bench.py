"""Engine against a plain transformers `pipeline("text-classification")`, side by side.

Both get the same raw news posts (links and entities as posted) in the same
process on the same machine, batch size by batch size, taking turns every 32 texts
(a shared machine's load hits both alike); the pipeline runs the
same fine-tuned weights (both heads, float32) wrapped as a transformers model,
with its own tokenisation and padding. Reported per batch size: docs/s and
per-batch latency (p50, p95) of each, and the throughput ratio.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict
from transformers import BertConfig, BertModel, BertPreTrainedModel, pipeline
from transformers.modeling_outputs import SequenceClassifierOutput

from model.artifacts import load_net, load_tokenizer
from model.data import FILES
from model.engine import Classifier, cuda_device
from model.network import TwoHeadNet, quiet_transformers

logger = logging.getLogger(__name__)

BATCH_SIZES = (1, 8, 32, 128)
# Texts a side runs before the other's turn. Turns batch by batch, at batch 1, had each
# side's next call start with a cache the other had just filled with its own weights (the
# pipeline's 90 MB of float32): the engine ran 158 docs/s there and 230 alone (2-core EPYC).
ROUND_TEXTS = 32


class BenchRow(BaseModel):
    model_config = ConfigDict(frozen=True)

    batch_size: int
    engine_docs_s: float
    engine_p50_ms: float
    engine_p95_ms: float
    pipeline_docs_s: float
    pipeline_p50_ms: float
    pipeline_p95_ms: float

    @property
    def ratio(self) -> float:
        return self.engine_docs_s / self.pipeline_docs_s


class BenchResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    device: str
    backend: str
    threads: int
    n_texts: int
    rows: tuple[BenchRow, ...]


class _PlainTwoHead(BertPreTrainedModel):
    """The fine-tuned network as a transformers model: logits of both heads, concatenated."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.net = TwoHeadNet(BertModel(config, add_pooling_layer=False))
        self.post_init()

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: object
    ) -> SequenceClassifierOutput:
        topic, sentiment = self.net(input_ids, attention_mask)
        return SequenceClassifierOutput(logits=torch.cat([topic, sentiment], dim=-1))


def plain_pipeline(model_dir: Path, device: str) -> Callable[..., object]:
    """transformers' text-classification pipeline over the same weights, float32."""
    net, config = load_net(model_dir)
    labels = [f"topic:{t}" for t in config.topics] + [f"sentiment:{s}" for s in config.sentiments]
    bert_config = BertConfig(
        **config.encoder, id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}
    )
    model = _PlainTwoHead(bert_config)
    model.net.load_state_dict(net.state_dict())
    # The pipeline logs an error naming ~130 model classes when the model's class is not one of
    # them; it only compares names, and runs this wrapper like any other.
    with quiet_transformers(logging.CRITICAL):
        return pipeline(  # type: ignore[no-any-return]
            "text-classification", model=model.eval(), tokenizer=load_tokenizer(model_dir), device=device
        )


def bench_texts(data_dir: Path, n: int, seed: int = 0) -> list[str]:
    """n raw posts from the training files (both sets), as posted, in random order."""
    texts: list[str] = []
    for rel in FILES.values():
        texts += pd.read_csv(data_dir / rel, dtype={"text": "string"})["text"].dropna().tolist()
    return random.Random(seed).sample(texts, min(n, len(texts)))


def _interleaved(
    runs: Sequence[Callable[[list[str]], object]], texts: Sequence[str], batch_size: int
) -> list[list[float]]:
    """Per-batch latencies of each run, taking turns every ROUND_TEXTS texts (rounded up to
    whole batches), so both see the same moments of a shared machine's load."""
    for run in runs:
        run(list(texts[:batch_size]))  # warm-up: allocators, kernels, lazy init
    latencies: list[list[float]] = [[] for _ in runs]
    step = -(-ROUND_TEXTS // batch_size) * batch_size  # whole batches a turn
    for start in range(0, len(texts), step):
        for run, out in zip(runs, latencies, strict=True):
            for at in range(start, min(start + step, len(texts)), batch_size):
                chunk = list(texts[at : at + batch_size])
                began = time.perf_counter()
                run(chunk)
                out.append(time.perf_counter() - began)
    return latencies


def run_bench(
    model_dir: Path,
    texts: Sequence[str],
    device: str = "cpu",
    backend: str | None = None,
    threads: int | None = None,
    batch_sizes: Sequence[int] = BATCH_SIZES,
) -> BenchResult:
    """Time the engine and the plain pipeline on the same texts at each batch size."""
    if threads:
        torch.set_num_threads(threads)
    # Classifier.load refuses a device and back end at odds (check_placement); the pipeline then
    # runs where the engine does, so the two compare on one device.
    engine = Classifier.load(
        model_dir, device=device, backend=backend, threads=threads, max_batch=max(batch_sizes)
    )
    pipe = plain_pipeline(model_dir, cuda_device(device) if engine.on_gpu else "cpu")
    rows = []
    for bs in batch_sizes:
        eng_lat, pipe_lat = _interleaved(
            [engine.predict, lambda chunk, bs=bs: pipe(chunk, batch_size=bs, top_k=1)], texts, bs
        )
        eng_rate, pipe_rate = len(texts) / sum(eng_lat), len(texts) / sum(pipe_lat)
        rows.append(
            BenchRow(
                batch_size=bs,
                engine_docs_s=round(eng_rate, 1),
                engine_p50_ms=round(float(np.percentile(eng_lat, 50)) * 1e3, 2),
                engine_p95_ms=round(float(np.percentile(eng_lat, 95)) * 1e3, 2),
                pipeline_docs_s=round(pipe_rate, 1),
                pipeline_p50_ms=round(float(np.percentile(pipe_lat, 50)) * 1e3, 2),
                pipeline_p95_ms=round(float(np.percentile(pipe_lat, 95)) * 1e3, 2),
            )
        )
        logger.info("bench batch=%d engine=%.0f docs/s pipeline=%.0f docs/s", bs, eng_rate, pipe_rate)
    return BenchResult(
        device=device,
        backend=engine.backend,
        threads=torch.get_num_threads(),
        n_texts=len(texts),
        rows=tuple(rows),
    )
