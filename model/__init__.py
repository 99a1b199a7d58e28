"""The topic + sentiment classifier: training, evaluation, inference engine, benchmark.

`model.Classifier` and `model.Prediction` load lazily, so importing the package
(or its CLI) does not import torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Classifier", "Prediction"]


def __getattr__(name: str) -> Any:
    if name == "Classifier":
        from model.engine import Classifier

        return Classifier
    if name == "Prediction":
        from model.prediction import Prediction

        return Prediction
    raise AttributeError(f"module 'model' has no attribute {name!r}")
