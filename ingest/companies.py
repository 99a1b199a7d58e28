"""Company names that stand for tickers, for headlines without a cashtag ("Tesla recalls ..." -> TSLA).

Only 27% of the 26,533 labelled posts in ../shared/data carry a cashtag or an
exchange symbol; the 210 names (176 companies) of config/companies.toml give another 8% a
ticker (35% in all). Names match as whole words with their case as written
("Apple", "Apple's"; not "apple", not "Pineapple"). The names of banks and
brokers listed as `analysts` are more often the analyst than the news ("Morgan
Stanley cuts PT on Aptiv", "Hasbro gains after UBS upgrade", "initiated at buy
at Truist"): they do not count when analyst words follow them or "at", "by",
"from", "after" precede them. On the 1,046 posts with both a cashtag and a
name, 87% of the names' tickers are among the post's cashtags; most of the rest
are other companies the story names (Boeing in Delta's jet order).
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
    """The file's shape: `[tickers]` TICKER = [names], `[analysts]` tickers = [...]."""

    model_config = ConfigDict(extra="forbid")
    tickers: dict[Ticker, list[Name]] = Field(default_factory=dict)
    analysts: _Analysts = _Analysts()

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
        return self


@dataclass(frozen=True)
class CompanyNames:
    """Finds the tickers whose company names a text holds."""

    by_name: Mapping[str, str] = field(default_factory=dict)
    analysts: frozenset[str] = frozenset()
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        # Longest names first, so "Bank of America" wins over a shorter name inside it.
        names = sorted(self.by_name, key=len, reverse=True)
        alternatives = "|".join(re.escape(n) for n in names)
        pattern = re.compile(rf"(?<![\w$&.-])({alternatives})(?:'s|’s)?(?![\w&])") if names else None
        object.__setattr__(self, "_pattern", pattern)

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
        return cls(by_name, frozenset(parsed.analysts.tickers))

    def tickers(self, text: str) -> tuple[str, ...]:
        """The tickers of the companies `text` names, in order of first mention."""
        return tuple(dict.fromkeys(ticker for ticker, _ in self.mentions(text)))

    def mentions(self, text: str) -> Iterator[tuple[str, re.Match[str]]]:
        """Each name in `text` that stands for its company's ticker (not a bank as the analyst),
        with that ticker; the match's group 1 is the name as written."""
        if self._pattern is None:
            return
        for match in self._pattern.finditer(text):
            ticker = self.by_name[match.group(1)]
            if not (ticker in self.analysts and self._as_analyst(text, match)):
                yield ticker, match

    @staticmethod
    def _as_analyst(text: str, match: re.Match[str]) -> bool:
        before = text[max(0, match.start() - _BEFORE_CHARS) : match.start()]
        return bool(_ANALYST_AFTER.match(text, match.end()) or _ANALYST_BEFORE.search(before))
