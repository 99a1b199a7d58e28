"""The detector's statistics: a one-sided binomial test and multiple-testing adjustment.

scipy.stats loads on the first test, not with the package: it took 2 of the 3 s of every
`finpulse` command's start (the CLI imports `alerts`, whose package exports the detector).
A stream worker, which tests in its event loop, loads it as it starts (`preload`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Correction = Literal["bh", "holm", "none"]


def preload() -> None:
    """Import scipy.stats now. A worker calls it at start: loaded at its first test, the import
    (2.5 s on a 2-core VM) stalled the event loop, scoring and the first alert with it."""
    import scipy.stats  # noqa: F401


def binomial_p(negative: int, count: int, rate: float) -> float:
    """P(X >= negative) for X ~ Binomial(count, rate): more negatives than the baseline explains."""
    from scipy.stats import binomtest

    return float(binomtest(negative, count, rate, alternative="greater").pvalue)


def adjust(p_values: Sequence[float], method: Correction) -> list[float]:
    """Adjusted p-values, in input order, for the tests of one family.

    `bh`: Benjamini-Hochberg (controls the false discovery rate);
    `holm`: Holm-Bonferroni (controls the family-wise error rate); `none`: unchanged.
    Reject test i at level alpha when adjusted[i] <= alpha.
    """
    ps = [min(1.0, max(0.0, p)) for p in p_values]
    if method == "none" or len(ps) <= 1:
        return ps
    if method == "bh":
        from scipy.stats import false_discovery_control

        return [float(q) for q in false_discovery_control(ps, method="bh")]
    order = sorted(range(len(ps)), key=lambda i: ps[i])
    m = len(ps)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        adjusted[i] = running
    return adjusted
