"""Company names that stand for tickers, for headlines without a cashtag ("Tesla recalls ..." -> TSLA).

Only 27% of the 26,533 labelled posts in ../shared/data carry a cashtag or an
exchange symbol; the 210 names (176 companies) of config/companies.toml give another 8% a
ticker (35% in all). Names match as whole words with their case as written
("Apple", "Apple's"; not "apple", not "Pineapple"). The names of banks and
brokers listed as `analysts` are more often the analyst than the news ("Morgan
Stanley cuts PT on Aptiv", "Hasbro gains after UBS upgrade", "initiated at buy
at Truist"): they do not count when analyst words follow them or "at", "by",
"from", "after" precede them. A name inside a phrase listed under `[exclude]`
for its ticker is not the company either ("Oracle of Omaha", "Harrison Ford",
"Amazon rainforest", "Big Apple"; phrases match whole words in any case). On the
1,046 posts with both a cashtag and a name, 87% of the names' tickers are among
the post's cashtags; most of the rest are other companies the story names
(Boeing in Delta's jet order).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from finpulse.errors import ConfigError
from finpulse.schema import describe_validation_error

Ticker = Annotated[str, StringConstraints(pattern=r"^[A-Z]{1,5}(?:\.[A-Z]{1,2})?$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]

# After an analyst's name: its view or action on another company ("cuts PT", "upgrade", "says").
_ANALYST_AFTER = re.compile(
    r"\s*(?:\([A-Z.]+\)\s*)?(?:analysts?|upgrade|downgrade|cut|raise|ups\b|lift|lowers\b|lowered\b|boost|"
    r"trim|hike|initiate|start|reiterate|resume|rate|rating|sees|says|expects|PT|price target|turns|"
    r"names|adds|remove|bull|"
    r"bear|constructive|overweight|underweight|equal|outperform|underperform|neutral|likes|prefers|picks|"
    r"warn|believe|think|predict|forecast|recommend|reel|strategist|economist|research|"
    r"is (?:bullish|bearish)|:)",
    re.IGNORECASE,
)
# Before it: where a rating came from ("at buy at Truist", "after BofA downgrade").
_ANALYST_BEFORE = re.compile(r"\b(?:at|by|from|per|says|said|via|after)\s*$", re.IGNORECASE)
# How far back the words before a name are looked at.
_BEFORE_CHARS = 12


class _Analysts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tickers: list[Ticker] = []


class CompaniesFile(BaseModel):
    """The file's shape: `[tickers]` TICKER = [names], `[analysts]` tickers = [...], `[exclude]`
    TICKER = [phrases in which its names are not the company]."""

    model_config = ConfigDict(extra="forbid")
    tickers: dict[Ticker, list[Name]] = Field(default_factory=dict)
    analysts: _Analysts = _Analysts()
    exclude: dict[Ticker, list[Name]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> CompaniesFile:
        owner: dict[str, str] = {}
        for ticker, names in self.tickers.items():
            for name in names:
                if owner.setdefault(name, ticker) != ticker:
                    raise ValueError(f"{name!r} is listed under both {owner[name]} and {ticker}")
        unknown = sorted(set(self.analysts.tickers) - set(self.tickers))
        if unknown:
            raise ValueError(f"analysts {', '.join(unknown)} have no names under [tickers]")
        for ticker, phrases in self.exclude.items():
            names = self.tickers.get(ticker)
            if not names:
                raise ValueError(f"exclude {ticker} has no names under [tickers]")
            pattern = _name_pattern(names)
            for phrase in phrases:
                if not pattern.search(phrase):
                    raise ValueError(
                        f"exclude {ticker}: {phrase!r} holds none of its names ({', '.join(names)})"
                    )
        return self


def _name_pattern(names: list[str] | tuple[str, ...]) -> re.Pattern[str]:
    """Any of `names` as whole words, case as written, longest first (group 1: the name)."""
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![\w$&.-])({alternatives})(?:'s|’s)?(?![\w&])")


@dataclass(frozen=True)
class CompanyNames:
    """Finds the tickers whose company names a text holds."""

    by_name: Mapping[str, str] = field(default_factory=dict)
    analysts: frozenset[str] = frozenset()
    # Ticker -> phrases that hold its names but do not stand for it ("Harrison Ford").
    excluded: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    _excluded: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    _excluded_tickers: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        # Longest names first, so "Bank of America" wins over a shorter name inside it.
        pattern = _name_pattern(tuple(self.by_name)) if self.by_name else None
        object.__setattr__(self, "_pattern", pattern)
        # One group per ticker, in order: a match's lastindex finds the ticker (names are any case).
        groups = [
            "(" + "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True)) + ")"
            for phrases in self.excluded.values()
        ]
        excluded = re.compile(rf"(?<!\w)(?:{'|'.join(groups)})(?!\w)", re.IGNORECASE) if groups else None
        object.__setattr__(self, "_excluded", excluded)
        object.__setattr__(self, "_excluded_tickers", tuple(self.excluded))

    @classmethod
    def load(cls, path: Path) -> CompanyNames:
        """From a TOML file (config/companies.toml); a missing or malformed file is a ConfigError."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            parsed = CompaniesFile.model_validate(data)
        except FileNotFoundError:
            raise ConfigError(
                f"companies file {path} not found (FINPULSE_INGEST_COMPANIES_FILE; an empty file turns "
                "company names off)"
            ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read companies file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"companies file {path} is not valid TOML: {exc}") from exc
        except ValidationError as exc:
            raise ConfigError(f"companies file {path}: {describe_validation_error(exc)}") from exc
        return cls.of(parsed)

    @classmethod
    def of(cls, parsed: CompaniesFile) -> CompanyNames:
        by_name = {name: ticker for ticker, names in parsed.tickers.items() for name in names}
        excluded = {ticker: tuple(phrases) for ticker, phrases in parsed.exclude.items() if phrases}
        return cls(by_name, frozenset(parsed.analysts.tickers), excluded)

    def tickers(self, text: str) -> tuple[str, ...]:
        """The tickers of the companies `text` names, in order of first mention."""
        return tuple(dict.fromkeys(ticker for ticker, _ in self.mentions(text)))

    def mentions(self, text: str) -> Iterator[tuple[str, re.Match[str]]]:
        """Each name in `text` that stands for its company's ticker (not a bank as the analyst, not
        inside an excluded phrase), with that ticker; the match's group 1 is the name as written."""
        if self._pattern is None:
            return
        # (start, end, ticker) of each excluded phrase: "Harrison Ford" is no Ford.
        spans = [
            (m.start(), m.end(), self._excluded_tickers[(m.lastindex or 1) - 1])
            for m in (self._excluded.finditer(text) if self._excluded is not None else ())
        ]
        for match in self._pattern.finditer(text):
            ticker = self.by_name[match.group(1)]
            if ticker in self.analysts and self._as_analyst(text, match):
                continue
            if any(t == ticker and s <= match.start(1) and match.end(1) <= e for s, e, t in spans):
                continue
            yield ticker, match

    @staticmethod
    def _as_analyst(text: str, match: re.Match[str]) -> bool:
        before = text[max(0, match.start() - _BEFORE_CHARS) : match.start()]
        return bool(_ANALYST_AFTER.match(text, match.end()) or _ANALYST_BEFORE.search(before))
