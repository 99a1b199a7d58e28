"""Per-entity baseline: an EWMA of volume and negative count over closed windows.

Keep one `Baseline` per (entity kind, entity, window kind). The negative-share
baseline is the ratio of two averages of its own (a volume-weighted mean, so a
two-story window does not swing it). Windows in which the entity had no story
never close; `update_baseline` counts them as zero-volume windows from the gap
between window starts, so volume decays; the share's averages age only with the
windows that have stories, so after a quiet night the first thin window weighs as
little as it would have the evening before (aged by the gap too, it outweighed
the day before it and alone could make or hide a spike).

Order of use per closed window: `close_window(acc, baseline)` (the aggregate
carries the baseline *before* the window), detect, then
`baseline = update_baseline(baseline, aggregate, params, spec)`.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from finpulse.schema import WindowAggregate
from finpulse.settings import AlertsSettings

from .windows import WindowSpec, windows_between

# Below this remaining weight the old history is gone (e.g. after weeks of silence): restart.
_FORGOTTEN = 1e-9


class BaselineParams(BaseModel):
    """EWMA weight of each window and the warm-up before a baseline is trusted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = Field(default=0.05, gt=0, lt=1)
    min_windows: int = Field(default=4, ge=1)

    @classmethod
    def from_settings(cls, settings: AlertsSettings) -> BaselineParams:
        return cls(alpha=settings.baseline_alpha, min_windows=settings.baseline_min_windows)


class Baseline(BaseModel):
    """Bias-corrected EWMA sums; JSON-serialisable table state.

    `volume = count_sum / weight`, `negative_share = share_negative_sum / share_count_sum`.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")  # a newer worker's fields (rolling upgrade)

    count_sum: float = Field(default=0.0, ge=0)
    negative_sum: float = Field(default=0.0, ge=0)
    weight: float = Field(default=0.0, ge=0, le=1)
    windows_seen: int = Field(default=0, ge=0)
    last_window_start: datetime | None = None
    # The share's sums, aged once per window with stories; None: a baseline kept before they were
    # (its share is then count_sum's and negative_sum's, which a gap aged).
    share_count_sum: float | None = Field(default=None, ge=0)
    share_negative_sum: float | None = Field(default=None, ge=0)

    def _share_sums(self) -> tuple[float, float]:
        if self.share_count_sum is None or self.share_negative_sum is None:
            return self.count_sum, self.negative_sum
        return self.share_count_sum, self.share_negative_sum

    @property
    def negative_share(self) -> float | None:
        count, negative = self._share_sums()
        return min(1.0, negative / count) if count > 0 else None

    @property
    def volume(self) -> float | None:
        return self.count_sum / self.weight if self.weight > 0 else None

    def trusted(self, params: BaselineParams) -> tuple[float | None, float | None]:
        """(negative share, volume), or (None, None) before `params.min_windows` windows."""
        if self.windows_seen < params.min_windows or self.negative_share is None:
            return None, None
        return self.negative_share, self.volume


def update_baseline(
    baseline: Baseline | None, window: WindowAggregate, params: BaselineParams, spec: WindowSpec
) -> Baseline:
    """The baseline with one more closed window folded in.

    Idempotent: a window not newer than the last one folded in (a redelivery, or
    a late revision of an older window) leaves the baseline unchanged.
    """
    base = baseline or Baseline()
    last = base.last_window_start
    if last is not None and window.window_start <= last:
        return base
    keep = 1.0 - params.alpha
    # Steps since the last window: the windows in between had no stories (count 0).
    steps = windows_between(spec, last, window.window_start) if last is not None else 1
    decay = keep ** max(steps, 1)
    if decay * base.weight < _FORGOTTEN:
        base, decay = Baseline(), keep
    share_count, share_negative = base._share_sums()
    return Baseline(
        count_sum=base.count_sum * decay + params.alpha * window.count,
        negative_sum=base.negative_sum * decay + params.alpha * window.negative_count,
        weight=min(1.0, 1.0 - decay * (1.0 - base.weight)),
        windows_seen=base.windows_seen + 1,
        last_window_start=window.window_start,
        share_count_sum=share_count * keep + params.alpha * window.count,
        share_negative_sum=share_negative * keep + params.alpha * window.negative_count,
    )
