"""Subscriptions: who gets which alerts, and with which detector parameters.

A subscription is a frozen pydantic model. The history store holds the live
set (the API and dashboard edit it); this TOML file seeds it (alerts/live.py).
Example::

    [[subscription]]
    id = "energy-desk"
    channel = "C0123ENERGY"          # Slack channel id or name
    [subscription.filter]
    topics = ["Energy | Oil"]         # "*" matches every entity of that kind
    tickers = ["XOM", "CVX"]
    [subscription.detector]
    window = "tumbling"
    min_volume = 8
    min_rise = 0.15
    significance = 0.01
    [[subscription.mute]]
    until = 2025-01-01T00:00:00Z      # or weekdays / start / end / timezone

    [subscription.digest]             # optional: a daily summary in the channel
    at = "08:00:00"
    timezone = "Europe/London"

`load_subscriptions(path)` validates the whole file and raises ConfigError
naming the file, the subscription and the field.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from finpulse.errors import ConfigError
from finpulse.schema import (
    TOPICS,
    EntityKind,
    WindowKind,
    describe_validation_error,
    normalise_entity,
    parse_entity,
    ticker_symbol,
)

WILDCARD = "*"
# The filter's lists by entity kind, in the order everything shows them.
FILTER_FIELDS: tuple[tuple[EntityKind, str], ...] = (
    ("topic", "topics"),
    ("ticker", "tickers"),
    ("source", "sources"),
)
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GroupField = Literal["subscription", "entity_kind", "entity"]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {value!r} (use an IANA name such as Europe/London)") from exc
    return value


def same_entity(kind: EntityKind, a: str, b: str) -> bool:
    """Whether two names are one entity: tickers without '$', every kind without case."""
    return normalise_entity(kind, a).casefold() == normalise_entity(kind, b).casefold()


def _entity_refs(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        parse_entity(value)  # ValueError naming the form
    return values


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SubscriptionFilter(_Model):
    """Which entities a subscription watches; an empty list watches none of that kind."""

    topics: tuple[str, ...] = ()
    tickers: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not (self.topics or self.tickers or self.sources):
            raise ValueError("filter watches nothing: list topics, tickers or sources (or '*')")
        return self

    def summary(self) -> str:
        """`topics Energy | Oil; tickers XOM, CVX` or `every topic`: the filter in a few words."""
        return "; ".join(
            f"every {kind}" if WILDCARD in names else f"{field} {', '.join(names)}"
            for kind, field in FILTER_FIELDS
            if (names := getattr(self, field))
        )

    def doubts(self) -> tuple[str, ...]:
        """Names that never match what the pipeline produces: a topic none of the classifier's
        (a typo: the closest one suggested), a ticker not a symbol ingestion finds ($AAPL)."""
        said = []
        for topic in (t for t in self.topics if t != WILDCARD):
            if not any(same_entity("topic", topic, known) for known in TOPICS):
                part = [known for known in TOPICS if topic.casefold() in known.casefold()]  # "Fed"
                close = part or difflib.get_close_matches(topic, TOPICS, n=1, cutoff=0.5)
                hint = f"; did you mean {close[0]!r}?" if close else f" ({', '.join(TOPICS)})"
                said.append(f"topic {topic!r} is none of the classifier's topics and never matches{hint}")
        for ticker in (t for t in self.tickers if t != WILDCARD):
            if ticker_symbol(ticker) is None:
                said.append(
                    f"ticker {ticker!r} is not a symbol as news writes it ($AAPL, $BRK.B) and never matches"
                )
        return tuple(said)

    def matches(self, kind: EntityKind, entity: str) -> bool:
        """True when the entity is listed under its kind, or that kind lists '*'."""
        names = getattr(self, dict(FILTER_FIELDS)[kind])
        return WILDCARD in names or any(same_entity(kind, entity, n) for n in names)


class DetectorParams(_Model):
    """The spike detector's parameters for one subscription (README: Detector)."""

    window: WindowKind = "tumbling"
    # Fewer stories than this in a window: not tested, cannot fire.
    min_volume: int = Field(default=10, ge=1)
    # Negative share must exceed the baseline share by at least this (absolute, 0.15 = 15 points).
    min_rise: float = Field(default=0.15, gt=0, lt=1)
    # Level of the one-sided binomial test after multiple-testing adjustment.
    # Default 0.001: the test repeats every window, so this bounds false alarms to about
    # 0.001 x windows per day per subscription when nothing happens (0.3/day at 5 min).
    significance: float = Field(default=0.001, gt=0, lt=1)
    correction: Literal["bh", "holm", "none"] = "bh"
    # Lower bound on the baseline rate the test uses (a quiet entity's 0 % would make any
    # negative story "significant").
    baseline_floor: float = Field(default=0.02, ge=0, lt=1)
    # Hysteresis: a firing alert resolves after `resolve_windows` consecutive windows whose
    # share is at most the baseline it fired against + resolve_rise (or whose volume fell
    # under min_volume).
    resolve_rise: float = Field(default=0.05, ge=0, lt=1)
    resolve_windows: int = Field(default=2, ge=1)
    # After an alert resolves, the same entity does not fire again for this long (event time).
    cooldown_s: float = Field(default=3600.0, ge=0)

    @field_validator("min_rise", "resolve_rise", "baseline_floor", "significance", mode="before")
    @classmethod
    def _not_a_percentage(cls, v: object, info: ValidationInfo) -> object:
        """15 written for 0.15: said as the fraction meant."""
        if isinstance(v, int | float) and not isinstance(v, bool) and v >= 1:
            what = "a probability" if info.field_name == "significance" else "a fraction of the stories"
            unit = "%" if info.field_name == "significance" else " points"
            raise ValueError(f"is {what}: {v / 100:g} for {v:g}{unit}, not {v:g}")
        return v

    @model_validator(mode="after")
    def _hysteresis(self) -> Self:
        if self.resolve_rise >= self.min_rise:
            raise ValueError(
                f"resolve_rise ({self.resolve_rise}) must be below min_rise ({self.min_rise}) "
                "so a firing alert does not flap"
            )
        return self

    def summary(self) -> str:
        """`window=tumbling min_volume=10 min_rise=0.2 significance=0.01 (bh)`: what decides firing."""
        return (
            f"window={self.window} min_volume={self.min_volume} min_rise={self.min_rise} "
            f"significance={self.significance} ({self.correction})"
        )


class MuteWindow(_Model):
    """A time during which the subscription does not fire (resolves still go out).

    Either absolute (`from` / `until`, either may be open) or recurring (`weekdays`
    and/or daily `start`-`end` in `timezone`; `end` before `start` spans midnight).
    `entities` ("ticker:ACME", ...) mutes only those; empty, the whole subscription.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    # Without an offset, read in `timezone` when the mute gives one (else refused: UTC or local?).
    from_: datetime | None = Field(default=None, alias="from")
    until: datetime | None = None
    weekdays: tuple[Weekday, ...] = ()
    start: time | None = None
    end: time | None = None
    timezone: Annotated[str, AfterValidator(_zone)] = "UTC"
    entities: Annotated[tuple[str, ...], AfterValidator(_entity_refs)] = ()
    reason: str = ""

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        absolute = self.from_ is not None or self.until is not None
        recurring = bool(self.weekdays) or self.start is not None or self.end is not None
        if absolute == recurring:
            raise ValueError("a mute is either absolute (from/until) or recurring (weekdays/start/end)")
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end for a daily mute")
        if self.start is not None and self.start == self.end:
            raise ValueError("start and end are the same time: a daily mute of no time")
        naive = {k: v for k, v in (("from_", self.from_), ("until", self.until)) if v and v.tzinfo is None}
        if naive and "timezone" not in self.model_fields_set:
            words = " and ".join(k.rstrip("_") for k in naive)
            raise ValueError(
                f"{words}: give an offset (2030-01-01T09:00:00Z) or the mute's timezone "
                "(timezone = 'Europe/London') to read it in"
            )
        zone = ZoneInfo(self.timezone)
        mute = (
            self.model_copy(update={k: v.replace(tzinfo=zone) for k, v in naive.items()}) if naive else self
        )
        if mute.from_ is not None and mute.until is not None and mute.from_ >= mute.until:
            raise ValueError("from is not before until: the mute would never apply")
        return mute

    def doubts(self, now: datetime) -> list[str]:
        """What may not be what was meant: over already, without an end, or in UTC because no
        timezone was given."""
        said = []
        if self.until is not None and self.until <= now:
            said.append(f"ended {self.until.astimezone(UTC):%Y-%m-%d %H:%M} UTC: remove it")
        if self.from_ is not None and self.until is None:
            said.append("has no until: it mutes from its start for good")
        if self.from_ is None and self.until is None and "timezone" not in self.model_fields_set:
            said.append("gives no timezone: its days and times are UTC (timezone = 'Europe/London')")
        return said

    def covers(self, kind: EntityKind, entity: str) -> bool:
        """True when this mute applies to that entity (it names it, or names none)."""
        if not self.entities:
            return True
        return any(k == kind and same_entity(kind, entity, n) for k, n in map(parse_entity, self.entities))

    def active(self, at: datetime) -> bool:
        """True when `at` (timezone-aware) falls inside this mute."""
        if self.from_ is not None or self.until is not None:
            return (self.from_ is None or at >= self.from_) and (self.until is None or at < self.until)
        local = at.astimezone(ZoneInfo(self.timezone))
        now = local.time().replace(tzinfo=None)
        if self.start is None or self.end is None:
            inside, day = True, local
        elif self.start <= self.end:
            inside, day = self.start <= now < self.end, local
        else:  # over midnight: its hours after midnight belong to the night that began the day before
            inside, day = now >= self.start or now < self.end, local - timedelta(days=int(now < self.end))
        return inside and (not self.weekdays or WEEKDAYS[day.weekday()] in self.weekdays)


class DigestParams(_Model):
    """A daily summary in the subscription's channel at `at` (`timezone`) on `weekdays`: its
    entities' last 24 hours, the alerts fired, the most negative headlines (alerts/digest.py)."""

    at: time = time(8, 0)
    timezone: Annotated[str, AfterValidator(_zone)] = "UTC"
    weekdays: tuple[Weekday, ...] = WEEKDAYS

    @model_validator(mode="after")
    def _some_day(self) -> Self:
        if not self.weekdays:
            raise ValueError("a digest needs at least one weekday (or remove [subscription.digest])")
        return self

    def label(self) -> str:
        """`08:00 Europe/London`: when it goes out."""
        return f"{self.at:%H:%M} {self.timezone}"


class Subscription(_Model):
    """Who gets what: a channel, a filter, detector parameters, mutes, grouping."""

    # The API docs' example body (tests validate it).
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "megacaps",
                    "name": "Megacap tickers",
                    "channel": "#equities",
                    "filter": {"tickers": ["AAPL", "MSFT", "NVDA"]},
                    "detector": {"window": "tumbling", "min_volume": 10, "min_rise": 0.2},
                    "mute": [
                        {"weekdays": ["sat", "sun"], "timezone": "America/New_York", "reason": "weekend"}
                    ],
                }
            ]
        }
    )

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str = ""
    channel: str = Field(min_length=1)
    enabled: bool = True
    filter: SubscriptionFilter
    detector: DetectorParams = DetectorParams()
    mute: tuple[MuteWindow, ...] = ()
    digest: DigestParams | None = None
    # Dispatcher grouping (Alertmanager): events with equal values of these fields that
    # arrive together go out as one message; None: the settings' defaults.
    group_by: tuple[GroupField, ...] = ("subscription",)
    group_wait_s: float | None = Field(default=None, ge=0)
    group_interval_s: float | None = Field(default=None, ge=0)

    def matches(self, kind: EntityKind, entity: str, window: WindowKind) -> bool:
        """True when this (enabled) subscription evaluates that entity's windows of that kind."""
        return self.enabled and window == self.detector.window and self.filter.matches(kind, entity)

    def doubts(self, now: datetime) -> list[str]:
        """What may not do what was meant (`finpulse alerts check` and the services' logs say it):
        names that never match, mutes over, without an end, in UTC by default, or on entities
        the subscription does not watch."""
        said = list(self.filter.doubts())
        for i, mute in enumerate(self.mute, 1):
            said += [f"mute #{i} {doubt}" for doubt in mute.doubts(now)]
            said += [
                f"mute #{i}: {ref} is not one the subscription watches (filter), so it mutes nothing"
                for ref in mute.entities
                if not self.filter.matches(*parse_entity(ref))
            ]
        return said

    def muted(self, at: datetime, kind: EntityKind | None = None, entity: str | None = None) -> bool:
        """Whether a mute is active at `at`: for that entity (kind and entity given), or for the
        whole subscription (only mutes that name no entity)."""
        return any(
            m.active(at) and (m.covers(kind, entity) if kind and entity is not None else not m.entities)
            for m in self.mute
        )

    def muting(
        self, kind: EntityKind, entity: str, start: datetime, until: datetime, reason: str, *,
        replacing: str | None = None,
    ) -> Subscription:  # fmt: skip
        """This subscription with one more mute: that entity alone, from `start` to `until`.
        A mute of the entity still in force whose reason holds `replacing` (the same alert's mute
        link, used again) is extended instead, its start kept: a link posted over and over adds
        one mute. One that has ended stays as it was (the backtest replays past mutes)."""
        ref = f"{kind}:{entity}"
        earlier = [
            m for m in self.mute
            if replacing and replacing in m.reason and m.entities == (ref,) and m.until and m.until > start
        ]  # fmt: skip
        starts = [m.from_ for m in earlier if m.from_ is not None]
        ends = [m.until for m in earlier if m.until is not None]
        mute = MuteWindow.model_validate(
            {"from": min([start, *starts]), "until": max([until, *ends]), "entities": [ref], "reason": reason}
        )
        return self.model_copy(update={"mute": (*(m for m in self.mute if m not in earlier), mute)})

    def stored_body(self) -> dict[str, Any]:
        """The JSON body the history store keeps as the live copy (validated back by this model)."""
        return self.model_dump(mode="json", by_alias=True)


def pick(subscriptions: Sequence[Subscription], ids: Sequence[str]) -> tuple[Subscription, ...]:
    """The subscriptions with these ids, in the order given (none given: all); ConfigError names
    the unknown ids and the known ones."""
    by_id = {sub.id: sub for sub in subscriptions}
    unknown = [i for i in dict.fromkeys(ids) if i not in by_id]
    if unknown:
        known = ", ".join(by_id) or "none"
        raise ConfigError(f"no subscription {', '.join(map(repr, unknown))}; known: {known}")
    return tuple(by_id[i] for i in dict.fromkeys(ids)) if ids else tuple(subscriptions)


def _meant(exc: ValidationError) -> str:
    """For a key no subscription has (a typo), the closest one that is: ` (did you mean min_volume?)`."""
    known = {
        field.alias or name
        for model in (Subscription, SubscriptionFilter, DetectorParams, MuteWindow, DigestParams)
        for name, field in model.model_fields.items()
    }
    typos = [str(e["loc"][-1]) for e in exc.errors() if e["type"] == "extra_forbidden" and e["loc"]]
    close = [m[0] for typo in typos if (m := difflib.get_close_matches(typo, known, n=1, cutoff=0.7))]
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _place(loc: tuple[int | str, ...]) -> str:
    """A field's place as the file shows it: `mute #1.timezone` (the first [[subscription.mute]]),
    `filter.tickers #3`, not pydantic's 0-based `mute.0.timezone`."""
    out = ""
    for part in loc:
        out += f" #{part + 1}" if isinstance(part, int) else f"{'.' if out else ''}{part}"
    return out


def parse_subscriptions(data: object, origin: str = "subscriptions") -> tuple[Subscription, ...]:
    """Validate a parsed TOML document ({"subscription": [...]}); raises ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a table with [[subscription]] entries")
    unknown = set(data) - {"subscription"}
    if unknown:
        raise ConfigError(f"{origin}: unknown top-level keys {sorted(unknown)}; use [[subscription]]")
    entries = data.get("subscription", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{origin}: 'subscription' must be an array of tables ([[subscription]])")
    subs: list[Subscription] = []
    for i, entry in enumerate(entries):
        label = entry.get("id", f"#{i + 1}") if isinstance(entry, dict) else f"#{i + 1}"
        try:
            subs.append(Subscription.model_validate(entry))
        except ValidationError as exc:
            why = describe_validation_error(exc, where=_place)
            raise ConfigError(
                f"{origin}: subscription {label}: {why}{_meant(exc)}; "
                "fix the file (running services keep their last valid subscriptions meanwhile)"
            ) from exc
    _check_unique([s.id for s in subs], origin)
    return tuple(subs)


def _check_unique(ids: Sequence[str], origin: str) -> None:
    seen: set[str] = set()
    for sid in ids:
        if sid in seen:
            raise ConfigError(f"{origin}: subscription id {sid!r} appears twice; ids must be unique")
        seen.add(sid)


def load_subscriptions(path: Path) -> tuple[Subscription, ...]:
    """Read and validate the subscriptions TOML file; raises ConfigError with the cause."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read subscriptions file {path}: {exc.strerror}; "
            "set FINPULSE_ALERTS_SUBSCRIPTIONS_FILE or create it"
        ) from exc
    return loads_subscriptions(text, str(path))


def loads_subscriptions(text: str, origin: str) -> tuple[Subscription, ...]:
    """Parse and validate the text of a subscriptions file; raises ConfigError with the cause."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from exc
    return parse_subscriptions(data, origin)
