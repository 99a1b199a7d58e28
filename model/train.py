"""Joint fine-tuning of the two-headed classifier on the topic and sentiment sets.

Each batch mixes examples of both sets; each example contributes the loss of
the head it has a label for (class-weighted against imbalance) and, from the
second epoch, a soft loss on the other head: the two sets are posts of one kind,
so the 15k topic posts teach sentiment and the 9k sentiment posts teach topic,
towards targets made of the encoder's own last pass over them mixed with the
n-gram heads' probabilities (which never saw those texts). AdamW with
linear warm-up and decay, length-bucketed batches, mixed precision (bf16 on
CUDA and on CPUs where it is faster, fp16 + loss scaling on older GPUs), and
early stopping on the mean validation macro-F1 of the two heads; the best
weights are the ones saved.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from tqdm import tqdm
from transformers import AutoTokenizer, get_linear_schedule_with_warmup

from model.artifacts import ModelConfig, save_model
from model.batching import Encoded, TextEncoder, pad, shuffled_buckets, sorted_batches
from model.config import TrainConfig
from model.data import (
    Example,
    Split,
    class_counts,
    load_examples,
    read_extra,
    split_examples,
    split_fingerprint,
    subsample,
)  # fmt: skip
from model.labels import TASKS, Task, labels_for
from model.lexical import LexicalModel, mix
from model.metrics import TaskMetrics, task_metrics
from model.network import TwoHeadNet, base_model_dir, base_model_name
from model.precision import autocast, resolve_device, resolve_precision

logger = logging.getLogger(__name__)


class EvalRecord(BaseModel):
    """Validation after some training steps."""

    model_config = ConfigDict(frozen=True)

    epoch: float
    step: int
    train_loss: float
    topic_accuracy: float
    topic_macro_f1: float
    sentiment_accuracy: float
    sentiment_macro_f1: float
    score: float
    elapsed_s: float


class TrainResult(BaseModel):
    """What a training run produced and how it went."""

    model_config = ConfigDict(frozen=True)

    model_dir: str
    version: str
    device: str
    precision: str
    seconds: float
    steps: int
    stopped: str
    best: EvalRecord
    history: tuple[EvalRecord, ...]
    # Mean training loss on the labels (the cross-task soft loss left out) over each tenth of the steps run.
    loss_curve: tuple[float, ...]
    split: dict[str, int]
    val: dict[Task, TaskMetrics]


class _Batches:
    """One task's tokenised examples as tensors-to-be."""

    def __init__(self, examples: list[Example], enc: Encoded) -> None:
        self.ids = enc.ids
        self.task = np.array([TASKS.index(ex.task) for ex in examples], dtype=np.int64)
        self.label = np.array([ex.label for ex in examples], dtype=np.int64)

    def tensors(self, idx: list[int], device: torch.device) -> tuple[torch.Tensor, ...]:
        ids, mask = pad([self.ids[i] for i in idx])
        arrays = (ids, mask, self.task[idx], self.label[idx])
        return tuple(torch.from_numpy(a).to(device, non_blocking=True) for a in arrays)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_split(config: TrainConfig, data_dir: Path) -> Split:
    """The seeded validation split, cut down to the configured subsets, plus the extra rows
    (never a near-duplicate of a validation text) in the training part."""
    split = split_examples(load_examples(data_dir), config.val_fraction, config.seed)
    train = subsample(split.train, config.train_subset, config.seed) if config.train_subset else split.train
    val = subsample(split.val, config.val_subset, config.seed) if config.val_subset else split.val
    held_out = {ex.group for ex in split.val}
    extra = [ex for d in config.extra_data_dirs for ex in read_extra(d) if ex.group not in held_out]
    return Split(train=train + extra, val=val)


def class_weights(examples: list[Example], task: Task, mode: str) -> torch.Tensor:
    """Loss weight per class, scaled so the average training example weighs 1."""
    counts = np.maximum(np.array(class_counts(examples, task, len(labels_for(task))), dtype=np.float64), 1.0)
    power = {"none": 0.0, "sqrt": 0.5, "inverse": 1.0}[mode]
    w = counts**-power
    w /= (w * counts).sum() / counts.sum()
    return torch.tensor(w, dtype=torch.float32)


def batch_loss(
    logits: dict[Task, torch.Tensor],
    task: torch.Tensor,
    label: torch.Tensor,
    weights: dict[Task, torch.Tensor],
    smoothing: float,
) -> torch.Tensor:
    """Mean over the batch of each example's loss on the head it is labelled for."""
    total = torch.zeros((), device=task.device)
    for t_index, name in enumerate(TASKS):
        rows = task == t_index
        if rows.any():
            total = total + F.cross_entropy(
                logits[name][rows].float(),
                label[rows],
                weight=weights[name],
                label_smoothing=smoothing,
                reduction="sum",
            )
    return total / len(task)


def soft_loss(
    logits: dict[Task, torch.Tensor], task: torch.Tensor, targets: dict[Task, torch.Tensor]
) -> torch.Tensor:
    """Mean over the batch of each example's cross-entropy, on the head it has no label for,
    against that head's soft target (rows whose target is unknown, NaN, count nothing)."""
    total = torch.zeros((), device=task.device)
    for t_index, name in enumerate(TASKS):
        rows = (task != t_index) & ~targets[name].isnan().any(-1)
        if rows.any():
            logp = logits[name][rows].float().log_softmax(-1)
            total = total - (targets[name][rows] * logp).sum()
    return total / len(task)


def build_optimizer(
    net: TwoHeadNet, config: TrainConfig, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW: encoder at lr, heads at head_lr; no decay on biases and LayerNorms."""
    if config.freeze_embeddings:
        net.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, param in net.named_parameters():
        if not param.requires_grad:
            continue
        lr = config.head_lr if name.endswith(("head.weight", "head.bias")) else config.lr
        decay = 0.0 if param.ndim < 2 else config.weight_decay
        groups.setdefault((lr, decay), []).append(param)
    # Fused on CPU too: one pass over each weight instead of several. With the word embeddings
    # trained, a step over their 30522x384 and forty 384x384 weights took 57 ms unfused, 12 fused.
    optimizer = torch.optim.AdamW(
        [{"params": p, "lr": lr, "weight_decay": wd} for (lr, wd), p in groups.items()], fused=True
    )
    warmup = int(config.warmup_fraction * total_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)


@torch.inference_mode()
def predict_probs(
    net: TwoHeadNet, data: _Batches, device: torch.device, precision: str, batch_size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Topic and sentiment probabilities of every example (eval mode, sorted batches)."""
    net.eval()
    topic = np.zeros((len(data.ids), len(labels_for("topic"))), dtype=np.float32)
    sentiment = np.zeros((len(data.ids), len(labels_for("sentiment"))), dtype=np.float32)
    for idx in sorted_batches([len(x) for x in data.ids], batch_size):
        ids, mask = data.tensors(idx, device)[:2]
        with autocast(device, precision):
            t_logits, s_logits = net(ids, mask)
        topic[idx] = t_logits.float().softmax(-1).cpu().numpy()
        sentiment[idx] = s_logits.float().softmax(-1).cpu().numpy()
    net.train()
    return topic, sentiment


def validate(net: TwoHeadNet, val: _Batches, device: torch.device, precision: str) -> dict[Task, TaskMetrics]:
    """Metrics of both heads on the validation examples labelled for them."""
    probs = predict_probs(net, val, device, precision)
    predicted = {task: p.argmax(-1) for task, p in zip(TASKS, probs, strict=True)}
    out = {}
    for t_index, task in enumerate(TASKS):
        rows = val.task == t_index
        out[task] = task_metrics(val.label[rows], predicted[task][rows], labels_for(task))
    return out


class _Trainer:
    """The state of one run: network, optimiser, data, history, best weights."""

    def __init__(self, config: TrainConfig, split: Split, progress: bool, base: str) -> None:
        self.config, self.progress = config, progress
        self.device = resolve_device(config.device)
        self.tokenizer = AutoTokenizer.from_pretrained(base)
        self.net = TwoHeadNet.from_pretrained_encoder(base, config.dropout).to(self.device)
        texts = {part: [e.text for e in getattr(split, part)] for part in ("train", "val")}
        encoder = TextEncoder.of(self.tokenizer, config.max_length)
        self.train_data = _Batches(split.train, encoder(texts["train"]))
        self.val_data = _Batches(split.val, encoder(texts["val"]))
        self.weights = {
            t: class_weights(split.train, t, config.class_weighting).to(self.device) for t in TASKS
        }
        # The n-gram heads, fitted first: their probabilities on the other set's texts (which
        # they never saw) are half of the soft targets for the head those texts lack.
        self.lexical: LexicalModel | None = None
        self.lexical_probs: dict[Task, np.ndarray] = {}
        if config.lexical_weight > 0:
            n_classes: dict[Task, int] = {t: len(labels_for(t)) for t in TASKS}
            self.lexical = LexicalModel.fit(split.train, n_classes, config.seed)
            if config.cross_distill > 0:
                self.lexical_probs = self.lexical.probabilities(texts["train"])
        # Each head's last training-pass probabilities of every training text, and the soft
        # targets made of them for the next epoch (None until one epoch has run).
        n = len(split.train)
        self.seen = {t: np.full((n, len(labels_for(t))), np.nan, dtype=np.float32) for t in TASKS}
        self.targets: dict[Task, np.ndarray] | None = None
        self.precision = resolve_precision(config.precision, self.device, self.trial_step)
        self.steps_per_epoch = -(-len(split.train) // config.batch_size)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.precision == "fp16")
        self.rng = random.Random(config.seed)
        self.losses: list[float] = []
        self.history: list[EvalRecord] = []
        self.best: EvalRecord | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_metrics: dict[Task, TaskMetrics] = {}
        self.started = time.monotonic()

    def forward_loss(
        self, idx: list[int], precision: str
    ) -> tuple[torch.Tensor, torch.Tensor, dict[Task, torch.Tensor]]:
        """Training examples `idx` forward in `precision`: the loss to minimise, its labelled part
        (what the loss curve and the evaluations report) and both heads' logits."""
        ids, mask, task, label = self.train_data.tensors(idx, self.device)
        with autocast(self.device, precision):
            logits = dict(zip(TASKS, self.net(ids, mask), strict=True))
            labelled = batch_loss(logits, task, label, self.weights, self.config.label_smoothing)
            loss = labelled
            if self.targets is not None:
                soft = {t: torch.from_numpy(self.targets[t][idx]).to(self.device) for t in TASKS}
                loss = loss + self.config.cross_distill * soft_loss(logits, task, soft)
        return loss, labelled, logits

    def new_targets(self) -> None:
        """Soft targets for the coming epoch: the encoder's last pass mixed with the n-gram heads."""
        if not self.lexical_probs:  # no cross-task loss: cross_distill 0, or no n-gram heads
            return
        w = self.config.lexical_weight
        self.targets = {t: mix(self.seen[t], self.lexical_probs[t], w) for t in TASKS}

    def trial_step(self, precision: str) -> None:
        """Forward and backward on the first batch's worth of training examples, to time
        `precision`; the weights, the optimiser and the random streams are left as they were."""
        first = list(range(min(self.config.batch_size, len(self.train_data.ids))))
        with torch.random.fork_rng(devices=[]):
            self.forward_loss(first, precision)[0].backward()
        self.net.zero_grad(set_to_none=True)

    def step(self, idx: list[int]) -> float:
        loss, labelled, logits = self.forward_loss(idx, self.precision)
        if self.lexical_probs:  # only the cross-task loss reads these passes
            for t in TASKS:
                self.seen[t][idx] = logits[t].detach().float().softmax(-1).cpu().numpy()
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(labelled.detach())

    def evaluate(self, epoch: float, recent_loss: float) -> bool:
        """Validate, keep the best weights; True when this evaluation is the best so far."""
        metrics = validate(self.net, self.val_data, self.device, self.precision)
        score = (metrics["topic"].macro_f1 + metrics["sentiment"].macro_f1) / 2
        record = EvalRecord(
            epoch=round(epoch, 3),
            step=len(self.losses),
            train_loss=round(recent_loss, 5),
            topic_accuracy=metrics["topic"].accuracy,
            topic_macro_f1=metrics["topic"].macro_f1,
            sentiment_accuracy=metrics["sentiment"].accuracy,
            sentiment_macro_f1=metrics["sentiment"].macro_f1,
            score=score,
            elapsed_s=round(time.monotonic() - self.started, 1),
        )
        self.history.append(record)
        logger.info(
            "eval epoch=%.2f loss=%.4f topic_acc=%.4f topic_f1=%.4f sent_acc=%.4f sent_f1=%.4f",
            record.epoch, record.train_loss, record.topic_accuracy, record.topic_macro_f1,
            record.sentiment_accuracy, record.sentiment_macro_f1,
        )  # fmt: skip
        if self.best is not None and score <= self.best.score:
            return False
        self.best, self.best_metrics = record, metrics
        self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in self.net.state_dict().items()})
        return True

    def over_budget(self) -> bool:
        budget = self.config.time_budget_s
        return budget is not None and time.monotonic() - self.started > budget

    def run(self) -> str:
        """Train until the epochs, the patience or the time budget run out; returns why it stopped."""
        config, stale = self.config, 0
        self.optimizer, self.scheduler = build_optimizer(
            self.net, config, self.steps_per_epoch * config.epochs
        )
        segment = -(-self.steps_per_epoch // config.evals_per_epoch)
        self.net.train()
        for epoch in range(config.epochs):
            if epoch:
                self.new_targets()
            batches = shuffled_buckets([len(x) for x in self.train_data.ids], config.batch_size, self.rng)
            desc = f"epoch {epoch + 1}/{config.epochs}"
            # disable=None: no bar where stderr is not a terminal (a log gets the eval lines).
            bar = tqdm(batches, desc=desc, disable=None if self.progress else True, leave=False)
            for n, idx in enumerate(bar, start=1):
                self.losses.append(self.step(idx))
                if n % 20 == 0:
                    bar.set_postfix(loss=f"{np.mean(self.losses[-20:]):.4f}")
                if n % segment and n != len(batches) and not self.over_budget():
                    continue
                improved = self.evaluate(epoch + n / len(batches), float(np.mean(self.losses[-segment:])))
                stale = 0 if improved else stale + 1
                if stale >= config.patience:
                    return "early stopping"
                if self.over_budget():
                    return "time budget"
        return "epochs done"


def loss_curve(losses: list[float], points: int = 10) -> tuple[float, ...]:
    chunks = np.array_split(np.asarray(losses, dtype=np.float64), min(points, len(losses)))
    return tuple(round(float(c.mean()), 5) for c in chunks)


def train(
    config: TrainConfig,
    data_dir: Path,
    out_dir: Path,
    progress: bool = True,
    base_model: Path | None = None,
    final_dir: Path | None = None,
) -> TrainResult:
    """Fine-tune on data_dir, save the best model to out_dir, return the run's record.

    base_model: a BERT-style checkpoint directory; None is the packaged MiniLM-L6.
    final_dir: where the model will live once moved from out_dir (the record names it).
    """
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    split = make_split(config, data_dir)
    logger.info("training data dir=%s %s", data_dir, split.describe())
    trainer = _Trainer(config, split, progress, str(base_model or base_model_dir()))
    stopped = trainer.run()
    assert trainer.best is not None
    assert trainer.best_state is not None
    trainer.net.load_state_dict(trainer.best_state)
    model_config = ModelConfig(
        base_model=str(base_model) if base_model else base_model_name(),
        encoder=trainer.net.encoder.config.to_diff_dict(),
        max_length=config.max_length,
        train=config.model_dump(mode="json")
        | {"data_dir": str(data_dir), "validation": split_fingerprint(split.val)},
    )
    version = save_model(trainer.net.cpu(), trainer.tokenizer, model_config, out_dir, trainer.lexical)
    result = TrainResult(
        model_dir=str(final_dir or out_dir),
        version=version,
        device=str(trainer.device),
        precision=trainer.precision,
        seconds=round(time.monotonic() - trainer.started, 1),
        steps=len(trainer.losses),
        stopped=stopped,
        best=trainer.best,
        history=tuple(trainer.history),
        loss_curve=loss_curve(trainer.losses),
        split={
            f"{part}_{t}": sum(1 for e in getattr(split, part) if e.task == t)
            for part in ("train", "val")
            for t in TASKS
        },
        val=trainer.best_metrics,
    )
    (out_dir / "training.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    logger.info(
        "trained version=%s in %.0fs (%s), best epoch %.2f",
        version,
        result.seconds,
        stopped,
        result.best.epoch,
    )
    return result
