"""The training losses: each head's hard loss, and the soft loss on the head a text has no label for."""

from __future__ import annotations

import math

import pytest
import torch

from model.train import batch_loss, soft_loss

NAN = float("nan")


def test_soft_loss_trains_only_the_head_a_row_has_no_label_for() -> None:
    # Row 0 is a topic text, row 1 a sentiment text (TASKS order: topic, sentiment).
    task = torch.tensor([0, 1])
    logits = {
        "topic": torch.tensor([[2.0, 0.0], [0.0, 0.0]]),
        "sentiment": torch.tensor([[0.0, 1.0], [5.0, 0.0]]),
    }
    targets = {
        "topic": torch.tensor([[0.9, 0.1], [0.25, 0.75]]),
        "sentiment": torch.tensor([[0.5, 0.5], [1.0, 0.0]]),
    }
    # Row 0's sentiment target (0.5, 0.5) against softmax(0, 1); row 1's topic target (0.25, 0.75)
    # against softmax(0, 0); row 0's topic and row 1's sentiment are theirs by label, not here.
    p = 1 / (1 + math.e)
    expected = (-(0.5 * math.log(p) + 0.5 * math.log(1 - p)) + math.log(2)) / 2
    assert soft_loss(logits, task, targets).item() == pytest.approx(expected, rel=1e-5)


def test_soft_loss_skips_rows_without_a_target() -> None:
    task = torch.tensor([0, 0])
    logits = {"topic": torch.zeros(2, 2), "sentiment": torch.tensor([[0.0, 0.0], [3.0, -3.0]])}
    targets = {"topic": torch.full((2, 2), NAN), "sentiment": torch.tensor([[NAN, NAN], [0.0, 1.0]])}
    loss = soft_loss(logits, task, targets)
    assert not torch.isnan(loss)
    assert loss.item() == pytest.approx(-torch.log_softmax(torch.tensor([3.0, -3.0]), -1)[1].item() / 2)


def test_batch_loss_takes_each_row_on_its_own_head() -> None:
    task, label = torch.tensor([0, 1]), torch.tensor([1, 0])
    logits = {
        "topic": torch.tensor([[0.0, 0.0], [9.0, -9.0]]),
        "sentiment": torch.tensor([[9.0, -9.0], [0.0, 0.0]]),
    }
    weights = {"topic": torch.ones(2), "sentiment": torch.ones(2)}
    # Only row 0's topic and row 1's sentiment count: both uniform, log 2 each.
    assert batch_loss(logits, task, label, weights, 0.0).item() == pytest.approx(math.log(2))
