"""Labelled replay files with a planted negative spike, built from the training data.

The demo, the stream's end-to-end tests and the backtest need news whose
truth is known: a calm stretch for one ticker, then a burst of bearish
headlines (a labelled event), then calm again, among unrelated background
news. Texts come from the labelled sentiment set (../shared/data), so the
classifier sees real headlines; times are synthetic, `step_s` apart.
"""

from __future__ import annotations

import csv
import json
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ingest.companies import CompanyNames

# Label ids of the sentiment set (../shared/data/README.md): 0 bearish, 1 bullish, 2 neutral.
BEARISH, BULLISH, NEUTRAL = 0, 1, 2
# Words that make a bearish headline plain to see. Over the labelled bearish headlines the
# quick-trained model calls 56% negative, 74% of those holding one of these words.
_PLAIN_BEARISH = re.compile(
    r"\b(?:falls?|fell|drops?|dropped|plunge[sd]?|slumps?|tumble[sd]?|sinks?|sank|slides?|slid|"
    r"decline[sd]?|cuts?|miss(?:es|ed)?|lower(?:s|ed)?|down|loss(?:es)?|warn(?:s|ed)?|weak(?:er)?|worst|"
    r"crash(?:es)?|downgrade[sd]?|slowdown|recession|layoffs|bankruptcy|lawsuit|probe|plummets?|sell-?off)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PlantedSpike:
    """What was written: the file, its items, and the labelled event."""

    path: Path
    items: int
    ticker: str
    spike_start: datetime
    spike_end: datetime
    end: datetime


def _renamed(text: str, names: CompanyNames, company: str) -> str | None:
    """`text` with the one company it names called `company` ("Netflix downgraded at Needham" ->
    "Acme downgraded at Needham"); None when it names none or several."""
    mentions = list(names.mentions(text))
    if len({ticker for ticker, _ in mentions}) != 1:
        return None
    for _, match in reversed(mentions):
        text = text[: match.start(1)] + company + text[match.end(1) :]
    return text


def _about(texts: dict[int, list[str]], names: CompanyNames, company: str) -> dict[int, list[str]]:
    renamed = {label: [_renamed(t, names, company) for t in pool] for label, pool in texts.items()}
    return {label: [t for t in pool if t is not None] for label, pool in renamed.items()}


def _texts(data_dir: Path) -> dict[int, list[str]]:
    by_label: dict[int, list[str]] = {BEARISH: [], BULLISH: [], NEUTRAL: []}
    with (data_dir / "sentiment" / "train.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            # Keep short, single-line headlines without cashtags, so tickers come only from us.
            text = row["text"].split("http")[0].strip()
            if text and "$" not in text and "\n" not in text and len(text) < 160:
                by_label[int(row["label"])].append(text)
    return by_label


def write_planted_spike(
    data_dir: Path,
    out: Path,
    *,
    start: datetime,
    ticker: str = "ACME",
    calm_minutes: int = 60,
    spike_minutes: int = 10,
    after_minutes: int = 20,
    calm_per_5min: int = 8,
    spike_per_5min: int = 16,
    background_per_5min: int = 6,
    spike: bool = True,
    plain: bool = False,
    names: CompanyNames | None = None,
    company: str = "Acme",
    seed: int = 7,
) -> PlantedSpike:
    """Write a JSONL replay (fields of `finpulse ingest replay`) and return its truth.

    Calm stretches give `ticker` neutral and bullish headlines with one bearish
    in ten; the spike gives it only bearish ones. Background items carry no ticker (a replay
    finds some by company name). With `spike=False` the spike stretch is calm too. `plain`: the
    spike's headlines each hold a plainly bearish word ("falls", "misses", "cuts"), so a
    quick-trained model sees the burst too (the demo: its alert must fire on every run). With
    `names`, the ticker's headlines are about it: headlines that name one company of `names`,
    renamed `company` (the demo's "Acme misses on revenue" instead of other companies' news under
    ACME), and each pool is dealt without repeats; without, headlines are drawn with replacement.
    """
    rng = random.Random(seed)
    background = _texts(data_dir)
    texts = background if names is None else _about(background, names, company)
    spike_texts = [t for t in texts[BEARISH] if _PLAIN_BEARISH.search(t)] if plain else texts[BEARISH]
    rows: list[dict[str, object]] = []
    spike_start = start + timedelta(minutes=calm_minutes)
    spike_end = spike_start + timedelta(minutes=spike_minutes)
    end = spike_end + timedelta(minutes=after_minutes)

    decks: dict[int, list[str]] = {}

    def add(when: datetime, label: int, tickers: list[str], source: str, pool: list[str]) -> None:
        if names is None:  # drawn with replacement: the stream tests' files stay as they were
            title = rng.choice(pool)
        else:
            # Dealt from a shuffled deck per pool: the demo's small pools would repeat headlines,
            # and an alert's evidence listing the same story twice reads as a bug.
            deck = decks.get(id(pool))
            if not deck:
                deck = decks[id(pool)] = rng.sample(pool, len(pool))
            title = deck.pop()
        n = len(rows)
        rows.append(
            {
                "story_id": f"sample-{seed}-{n}",
                "title": title,
                "summary": "",
                "url": f"https://news.example.com/{seed}/{n}",
                "source": source,
                "published_at": when.isoformat(),
                "tickers": tickers,
                # The labelled headlines are English; most are too short for a confident guess.
                "language": "en",
                "label": label,
            }
        )

    t = start
    while t < end:
        in_spike = spike and spike_start <= t < spike_end
        block = [t + timedelta(seconds=rng.uniform(0, 300)) for _ in range(calm_per_5min)]
        if in_spike:
            block = [t + timedelta(seconds=rng.uniform(0, 300)) for _ in range(spike_per_5min)]
        for when in block:
            label = BEARISH if in_spike else rng.choices([NEUTRAL, BULLISH, BEARISH], [6, 3, 1])[0]
            add(when, label, [ticker], "wire-a", spike_texts if in_spike else texts[label])
        for _ in range(background_per_5min):
            when = t + timedelta(seconds=rng.uniform(0, 300))
            label = rng.choice([NEUTRAL, BULLISH])
            add(when, label, [], "wire-b", background[label])
        t += timedelta(minutes=5)
    rows.sort(key=lambda r: str(r["published_at"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return PlantedSpike(out, len(rows), ticker, spike_start, spike_end, end)
