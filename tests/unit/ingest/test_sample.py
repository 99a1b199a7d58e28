"""The planted-spike replay files: the burst is bearish, `plain` makes it plainly so, and `names`
makes the ticker's headlines about it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from finpulse.settings import IngestSettings, ModelSettings
from ingest.companies import CompaniesFile, CompanyNames
from ingest.sample import _PLAIN_BEARISH, BEARISH, _renamed, _texts, write_planted_spike

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _spike_rows(path: Path, start: datetime, end: datetime) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [
        r
        for r in rows
        if r["tickers"] == ["ACME"] and start <= datetime.fromisoformat(str(r["published_at"])) < end
    ]


def test_the_spike_is_bearish_and_plain_when_asked(tmp_path: Path) -> None:
    data = ModelSettings().train_data_dir
    usual = write_planted_spike(data, tmp_path / "usual.jsonl", start=T0, seed=3)
    plain = write_planted_spike(data, tmp_path / "plain.jsonl", start=T0, seed=3, plain=True)
    assert usual.items == plain.items  # the same shape of file, the same truth
    assert (usual.spike_start, usual.spike_end) == (plain.spike_start, plain.spike_end)
    for truth, only_plain in ((usual, False), (plain, True)):
        spike = _spike_rows(truth.path, truth.spike_start, truth.spike_end)
        assert len(spike) == 2 * 16  # two 5-minute blocks of 16
        assert {r["label"] for r in spike} == {BEARISH}
        held = [bool(_PLAIN_BEARISH.search(str(r["title"]))) for r in spike]
        assert all(held) if only_plain else not all(held)


def test_with_names_the_tickers_headlines_are_about_it(tmp_path: Path) -> None:
    names = CompanyNames.load(IngestSettings().companies_file)
    data = ModelSettings().train_data_dir
    truth = write_planted_spike(data, tmp_path / "acme.jsonl", start=T0, seed=3, plain=True, names=names)
    rows = [json.loads(line) for line in truth.path.read_text().splitlines()]
    ours = [str(r["title"]) for r in rows if r["tickers"] == ["ACME"]]
    others = [str(r["title"]) for r in rows if r["tickers"] == []]
    assert len(ours) > 100
    assert len(others) > 50
    # Each names Acme and no other company of the file (its one company was renamed) ...
    assert all("Acme" in t and names.tickers(t) == () for t in ours)
    # ... and is a labelled headline with that name put back.
    labelled = {t for pool in _texts(data).values() for t in pool}
    assert all(any(t.replace("Acme", n) in labelled for n in names.by_name) for t in ours[:40])
    # The background is left as it was: real headlines, some naming companies.
    assert not any("Acme" in t for t in others)
    assert any(names.tickers(t) for t in others)
    spike = _spike_rows(truth.path, truth.spike_start, truth.spike_end)
    assert all(_PLAIN_BEARISH.search(str(r["title"])) for r in spike)


def test_a_headline_is_renamed_only_when_it_names_one_company() -> None:
    names = CompanyNames.of(CompaniesFile(tickers={"NFLX": ["Netflix"], "DIS": ["Disney", "Walt Disney"]}))
    assert _renamed("Netflix downgraded at Needham", names, "Acme") == "Acme downgraded at Needham"
    assert _renamed("Disney's parks: Walt Disney warns", names, "Acme") == "Acme's parks: Acme warns"
    assert _renamed("Netflix and Disney fall", names, "Acme") is None
    assert _renamed("Stocks fall", names, "Acme") is None
    # The whole name as the file lists it, longest first: not "Acme Chase CEO".
    listed = CompanyNames.load(IngestSettings().companies_file)
    assert _renamed("JPMorgan Chase CEO Jamie Dimon warns", listed, "Acme") == "Acme CEO Jamie Dimon warns"
