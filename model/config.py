"""Training configuration: the defaults finish on a 2-core CPU in under 25 minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from model.labels import Task

Precision = Literal["auto", "fp32", "bf16", "fp16"]


class TrainConfig(BaseModel):
    """Every knob of one training run; saved in the model's config.json."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = 13
    val_fraction: float = Field(default=0.1, gt=0.0, lt=0.5)
    epochs: int = Field(default=4, ge=1)
    # Stop after this many evaluations without a better validation macro-F1.
    patience: int = Field(default=2, ge=1)
    evals_per_epoch: int = Field(default=1, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=1e-4, gt=0)
    head_lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_fraction: float = Field(default=0.06, ge=0, lt=1)
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    # Class imbalance: loss weight per class ~ count^-1/2 ("sqrt"), count^-1 ("inverse").
    class_weighting: Literal["none", "sqrt", "inverse"] = "sqrt"
    dropout: float = Field(default=0.1, ge=0, lt=1)
    max_length: int = Field(default=128, ge=8, le=512)
    # Train the word embeddings (12M of the 22M weights) too. Same seed, 2-core EPYC, with the
    # n-gram heads: topic 0.909 -> 0.911 (macro-F1 0.892 -> 0.902), sentiment 0.876 -> 0.881
    # (0.833 -> 0.842); with AdamW fused the 4 epochs took 17.4 minutes instead of 18.7 frozen.
    freeze_embeddings: bool = False
    precision: Precision = "auto"
    device: str = "auto"
    threads: int | None = None
    # Stop (and keep the best model so far) once training has run this long. The n-gram heads'
    # fit and the save take another 2.5 minutes on a 2-core Xeon: 21 + 2.5 + start-up < 25.
    time_budget_s: float | None = Field(default=21 * 60, gt=0)
    # Weight of the n-gram heads in the engine's mixture (model/lexical.py); 0: encoder alone.
    lexical_weight: float = Field(default=0.4, ge=0, lt=1)
    # Weight of the cross-task soft loss: from the second epoch each text also trains the head
    # it has no label for, towards the encoder's last pass mixed with the n-gram heads (0: off;
    # needs the n-gram heads, lexical_weight > 0).
    # Same seed, 2-core EPYC: topic 0.900 -> 0.909 with the n-gram heads (encoder alone 0.887 ->
    # 0.901), sentiment 0.877 -> 0.876; at 0.5: 0.908 / 0.871. Free: the passes are training's own.
    cross_distill: float = Field(default=1.0, ge=0)
    # More training rows in the same format (e.g. `finpulse feedback export`'s): they join the
    # training split only, so the validation split and its figures stay the data dir's.
    extra_data_dirs: tuple[Path, ...] = ()
    train_subset: dict[Task, int] | None = None
    val_subset: dict[Task, int] | None = None

    @classmethod
    def quick(cls, **overrides: Any) -> TrainConfig:
        """A small stratified subset, two epochs, at most 3 minutes of training on a 2-core CPU."""
        values: dict[str, Any] = {
            "epochs": 2,
            "lr": 2e-4,
            "max_length": 64,
            "time_budget_s": 180.0,
            "train_subset": {"topic": 1500, "sentiment": 900},
            "val_subset": {"topic": 400, "sentiment": 300},
        }
        return cls(**(values | overrides))
