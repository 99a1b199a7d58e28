"""Company names -> tickers: the matching rules, the analysts' exception, the file's errors, and the
shipped file measured on the labelled posts of ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from finpulse.errors import ConfigError
from finpulse.settings import REPO_ROOT, ModelSettings
from ingest.companies import CompaniesFile, CompanyNames
from ingest.normalize import extract_tickers

SHIPPED = CompanyNames.load(REPO_ROOT / "config" / "companies.toml")


def _names(**tickers: list[str]) -> CompanyNames:
    return CompanyNames.of(CompaniesFile.model_validate({"tickers": tickers}))


def test_names_match_whole_words_as_written_in_order_of_first_mention() -> None:
    n = _names(AAPL=["Apple"], BAC=["Bank of America", "BofA"], KO=["Coca-Cola"], T=["AT&T"])
    assert n.tickers("Apple's iPhone sales beat; an Apple-backed fund; Apple again") == ("AAPL",)
    assert n.tickers("apple harvest, Pineapple, Applesauce, $Apple, AT&Tx") == ()
    assert n.tickers("BofA and Coca-Cola, then AT&T and Apple’s suppliers") == ("BAC", "KO", "T", "AAPL")
    assert n.tickers("Bank of America") == ("BAC",)  # the longer name, not a part of it
    assert _names().tickers("Apple") == ()  # an empty file: no names


@pytest.mark.parametrize(
    ("title", "tickers"),
    [
        ("Morgan Stanley cuts PT on Aptiv, American Axle", ()),
        ("Hasbro gains after UBS upgrade", ()),
        ("Scholar Rock initiated at buy at Truist", ()),
        ("Barclays: risk of a protracted shutdown looks remote", ()),
        ("JPMorgan's analysts see a recession", ()),
        ("Goldman Sachs (GS) raises target on Apple", ("AAPL",)),
        ("Goldman Sachs raises target on Tesla; Goldman profit falls", ("TSLA", "GS")),
        ("Morgan Stanley to cut 2,000 jobs", ("MS",)),
        ("Bank of America earnings beat estimates", ("BAC",)),
        ("Bank of America up 3%, Wells Fargo lower after results", ("BAC", "WFC")),  # its own shares
        ("Barclays ups Hasbro to Overweight; Citi lowers PT on Nu Skin", ()),
        ("Tesla cuts prices again in China", ("TSLA",)),  # analyst words matter for analysts only
    ],
)
def test_a_bank_as_the_analyst_is_not_the_news(title: str, tickers: tuple[str, ...]) -> None:
    assert SHIPPED.tickers(title) == tickers


@pytest.mark.parametrize(
    ("title", "tickers"),
    [
        # A name inside a phrase of [exclude] is not the company...
        ("Buffett, the Oracle of Omaha, sells more shares", ()),
        ("Harrison Ford joins Marvel cast", ()),
        ("Gerald Ford's economic legacy", ()),
        ("Amazon rainforest deforestation hits record high", ()),
        ("Amazon Rainforest Deforestation Hits Record High", ()),  # phrases match in any case
        ("Big Apple office rents slump", ()),
        ("Senate Intel Committee warns on China", ()),
        # ... elsewhere it is, in the same title too.
        ("Oracle shares fall", ("ORCL",)),
        ("Ford recalls 1 million trucks", ("F",)),
        ("Amazon cuts jobs", ("AMZN",)),
        ("Apple misses estimates", ("AAPL",)),
        ("Intel delays chip", ("INTC",)),
        ("Harrison Ford drives a Ford; Amazon funds Amazon rainforest fund", ("F", "AMZN")),
        ("Big Apple landlords court Apple", ("AAPL",)),
    ],
)
def test_a_name_inside_an_excluded_phrase_is_not_the_company(title: str, tickers: tuple[str, ...]) -> None:
    assert SHIPPED.tickers(title) == tickers


def test_an_excluded_phrase_counts_for_its_own_ticker_only() -> None:
    n = CompanyNames.of(
        CompaniesFile.model_validate(
            {"tickers": {"F": ["Ford"], "HAR": ["Harrison"]}, "exclude": {"F": ["Harrison Ford"]}}
        )
    )
    assert n.tickers("Harrison Ford joins cast") == ("HAR",)
    assert n.tickers("HARRISON FORD; Ford's trucks") == ("F",)
    assert n.tickers("Harrison Fordham") == ("HAR",)  # whole words: no phrase here
    assert [m.group(1) for _, m in n.mentions("Harrison Ford and Ford")] == ["Harrison", "Ford"]


def test_the_shipped_names_on_the_labelled_posts() -> None:
    """27% of the posts carry a cashtag; with the names 34%+. Where a post has both, the names'
    tickers are mostly among its cashtags (the rest: other companies the story names)."""
    data = ModelSettings().train_data_dir
    texts = pd.concat(pd.read_csv(data / task / "train.csv") for task in ("topic", "sentiment"))["text"]
    cashtags = [extract_tickers(str(t)) for t in texts]
    named = [SHIPPED.tickers(str(t)) for t in texts]
    before = sum(bool(c) for c in cashtags) / len(texts)
    after = sum(bool(c) or bool(n) for c, n in zip(cashtags, named, strict=True)) / len(texts)
    assert 0.25 < before < 0.29
    assert after > 0.34
    both = [(c, n) for c, n in zip(cashtags, named, strict=True) if c and n]
    agree = sum(set(n) <= set(c) for c, n in both) / len(both)
    assert len(both) > 900
    assert agree > 0.85


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tickers = [", "is not valid TOML"),
        ('[tickers]\naapl = ["Apple"]', "tickers.aapl"),
        ('[tickers]\nAAPL = ["A"]', "at least 2 characters"),
        ('[tickers]\nAAPL = ["Apple"]\nAPLE = ["Apple"]', "'Apple' is listed under both AAPL and APLE"),
        ('[tickers]\nAAPL = ["Apple"]\n[analysts]\ntickers = ["GS"]', "analysts GS have no names"),
        ('[companies]\nAAPL = ["Apple"]', "companies: Extra inputs are not permitted"),
        ('[tickers]\nAAPL = ["Apple"]\n[exclude]\nF = ["Harrison Ford"]', "exclude F has no names"),
        (
            '[tickers]\nAAPL = ["Apple"]\n[exclude]\nAAPL = ["big apple"]',
            "exclude AAPL: 'big apple' holds none of its names (Apple)",
        ),
    ],
)
def test_a_bad_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "companies.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="companies file") as caught:
        CompanyNames.load(path)
    assert message in str(caught.value)
    assert "Value error" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"not found .*FINPULSE_INGEST_COMPANIES_FILE"):
        CompanyNames.load(tmp_path / "missing.toml")
