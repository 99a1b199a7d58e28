"""Alerts: subscriptions, window aggregation, the spike detector, and delivery.

The pure part (no I/O, time passed in), shared by the stream and the backtest:

    subscriptions  Subscription, DetectorParams, MuteWindow, load_subscriptions()
    windows        WindowSpec, window_specs(), window_starts(), window_bounds()
    aggregate      entities_of(), story_key(), WindowAccumulator, open_window(),
                   add_item() / add_items(), close_window() -> WindowAggregate
    baseline       Baseline, BaselineParams, update_baseline()
    detector       DetectorState, state_key(), parse_state_key(), detect() -> Detection(events, states)

Delivery (`finpulse alerts`): dispatcher.AlertDispatcher, slack.SlackNotifier,
sinks (console, webhook), render (Block Kit), ledger (alert_id -> Slack ts).
Live subscriptions (the store's, seeded from the file): live.live_subscriptions(),
live.LiveSubscriptions. Import delivery and live modules directly; this
package imports only the pure part.
"""

from __future__ import annotations

from .aggregate import (
    WindowAccumulator,
    add_item,
    add_items,
    close_window,
    entities_of,
    open_window,
    story_key,
)
from .baseline import Baseline, BaselineParams, update_baseline
from .detector import Detection, DetectorState, alert_id, detect, parse_state_key, state_key
from .subscriptions import DetectorParams, MuteWindow, Subscription, SubscriptionFilter, load_subscriptions
from .windows import WindowSpec, window_bounds, window_specs, window_starts

__all__ = [
    "Baseline",
    "BaselineParams",
    "Detection",
    "DetectorParams",
    "DetectorState",
    "MuteWindow",
    "Subscription",
    "SubscriptionFilter",
    "WindowAccumulator",
    "WindowSpec",
    "add_item",
    "add_items",
    "alert_id",
    "close_window",
    "detect",
    "entities_of",
    "load_subscriptions",
    "open_window",
    "parse_state_key",
    "state_key",
    "story_key",
    "update_baseline",
    "window_bounds",
    "window_specs",
    "window_starts",
]
