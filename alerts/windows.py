"""Event-time window bounds: tumbling and hopping windows aligned to the Unix epoch.

Pure arithmetic, no state: the stream and the backtest compute the same bounds
for the same event time. A window is half-open, `[start, end)`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from finpulse.schema import WindowKind
from finpulse.settings import AlertsSettings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class WindowSpec(BaseModel):
    """Size and step of one window kind; tumbling windows have step == size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: WindowKind
    size_s: int = Field(gt=0)
    step_s: int = Field(gt=0)

    @model_validator(mode="after")
    def _valid(self) -> WindowSpec:
        if self.kind == "tumbling" and self.step_s != self.size_s:
            raise ValueError("a tumbling window's step equals its size")
        if self.size_s % self.step_s:
            raise ValueError("a hopping window's size must be a multiple of its step")
        return self

    @property
    def size(self) -> timedelta:
        return timedelta(seconds=self.size_s)

    @property
    def step(self) -> timedelta:
        return timedelta(seconds=self.step_s)


def window_specs(settings: AlertsSettings) -> dict[WindowKind, WindowSpec]:
    """The two window kinds configured in settings (defaults: 5 min; 1 h every 5 min)."""
    size = settings.tumbling_window_s
    return {
        "tumbling": WindowSpec(kind="tumbling", size_s=size, step_s=size),
        "hopping": WindowSpec(
            kind="hopping", size_s=settings.hopping_window_s, step_s=settings.hopping_step_s
        ),
    }


def window_sizes(settings: AlertsSettings) -> dict[WindowKind, timedelta]:
    """How long a window of each kind is (an example alert's window, say)."""
    return {kind: spec.size for kind, spec in window_specs(settings).items()}


def window_starts(spec: WindowSpec, event_time: datetime) -> list[datetime]:
    """Starts of every window of `spec` that contains `event_time`, oldest first.

    One for tumbling windows, size/step for hopping ones.
    """
    seconds = (event_time - EPOCH) // timedelta(seconds=1)  # floor, exact for negatives too
    last = seconds // spec.step_s * spec.step_s
    first = last - spec.size_s + spec.step_s
    return [EPOCH + timedelta(seconds=s) for s in range(first, last + 1, spec.step_s)]


def window_bounds(spec: WindowSpec, event_time: datetime) -> list[tuple[datetime, datetime]]:
    """`(start, end)` of every window of `spec` containing `event_time`, oldest first."""
    return [(start, start + spec.size) for start in window_starts(spec, event_time)]


def window_end(spec: WindowSpec, start: datetime) -> datetime:
    return start + spec.size


def windows_between(spec: WindowSpec, earlier_start: datetime, later_start: datetime) -> int:
    """How many steps lie between two window starts (1 for consecutive windows)."""
    return int((later_start - earlier_start) // spec.step)
