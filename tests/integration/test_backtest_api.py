"""`POST /api/v1/backtest` and `GET /api/v1/backtest/plot.png` over a real DuckDB store."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from matplotlib.image import imread
from pydantic import SecretStr

from api.app import create_app
from finpulse.schema import ScoredItem
from finpulse.settings import AlertsSettings, ApiSettings, Settings, StoreSettings
from tests.integration.test_backtest_cli import SPIKE, T0, WINDOWS, History, build_history

TOKEN = "backtest-token"
END = T0 + timedelta(minutes=5 * WINDOWS)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, History]]:
    history = build_history(tmp_path_factory.mktemp("backtest-api"))
    settings = Settings(
        store=StoreSettings(url=f"duckdb:///{history.path}"),
        alerts=AlertsSettings(subscriptions_file=history.subscriptions),
        api=ApiSettings(token=SecretStr(TOKEN)),
    )
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c, history


def body(**changes: Any) -> dict[str, Any]:
    start, end = (T0 + timedelta(minutes=5 * i) for i in SPIKE)
    base: dict[str, Any] = {
        "entity": "ticker:ACME",
        "start": T0.isoformat(),
        "end": END.isoformat(),
        "grid": {"min_rise": [0.2, 0.75], "min_volume": [5]},
        "labels": [
            {"entity_kind": "ticker", "entity": "ACME", "start": start.isoformat(), "end": end.isoformat()}
        ],
        "max_alerts_per_day": 24,
    }
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def _index(iso: str) -> int:
    """Which 5-minute window of the history an ISO start time is."""
    return int((datetime.fromisoformat(iso) - T0) / timedelta(minutes=5))


def test_post_backtest_returns_report_and_plot_url(client: tuple[TestClient, History]) -> None:
    c, _ = client
    response = c.post("/api/v1/backtest", json=body())
    assert response.status_code == 200, response.text
    data = response.json()
    report = data["report"]
    names = [r["setting"]["name"] for r in report["results"]]
    assert names == ["min_rise=0.2 min_volume=5", "min_rise=0.75 min_volume=5"]
    sensitive, deaf = report["results"]
    assert (sensitive["recall"], sensitive["precision"]) == (1.0, 1.0)
    assert deaf["alerts_fired"] == 0
    assert report["recommended"] == "min_rise=0.2 min_volume=5"
    assert report["windows"] == WINDOWS
    trend = data["trend"]  # what the dashboard draws: the focus entity's replayed windows
    assert (trend["entity_kind"], trend["entity"]) == ("ticker", "ACME")
    points = trend["points"]
    assert len(points) == WINDOWS
    assert {p["window_kind"] for p in points} == {"tumbling"}
    assert [p["window_end"] for p in points] == sorted(p["window_end"] for p in points)
    spiking = [p for p in points if SPIKE[0] <= _index(p["window_start"]) < SPIKE[1]]
    calm = [p for p in points if _index(p["window_start"]) < SPIKE[0]]
    assert min(p["negative_share"] for p in spiking) > max(p["negative_share"] for p in calm)
    assert points[-1]["baseline_negative_share"] is not None
    plot = c.get(data["plot_url"])
    assert plot.status_code == 200, plot.text
    assert plot.headers["content-type"] == "image/png"
    pixels = imread(io.BytesIO(plot.content))[..., :3]
    red = (pixels[..., 0] > 0.7) & (pixels[..., 1] < 0.35) & (pixels[..., 2] < 0.35)
    assert red.sum() > 20


def test_subscription_replay_matches_the_live_alerts(client: tuple[TestClient, History]) -> None:
    c, history = client
    response = c.post(
        "/api/v1/backtest",
        json={"subscription_id": "desk", "start": T0.isoformat(), "end": END.isoformat(), "grid": ""},
    )
    assert response.status_code == 200, response.text
    events = response.json()["report"]["results"][0]["events"]
    assert [e["alert_id"] for e in events] == [a.alert_id for a in history.alerts]
    assert response.json()["report"]["labels"] == {"events": [], "complete": False}  # no feedback yet


@pytest.mark.parametrize(
    ("changes", "status", "needle"),
    [
        ({"entity": "stock:ACME"}, 422, "KIND:NAME"),
        ({"entity": None}, 422, "give an entity"),
        ({"grid": {"threshold": [1]}}, 422, "unknown detector parameter"),
        ({"grid": "min_rise=0.04"}, 422, "must be below min_rise"),
        ({"grid": {"min_volume": list(range(1, 400))}}, 422, "399 settings"),
        ({"grid": {"min_rise": ["steep"]}}, 422, "min_rise: Input should be a valid number"),
        ({"start": END.isoformat(), "end": T0.isoformat()}, 422, "must be before"),
        ({"max_alerts_per_day": -1}, 422, "greater than 0"),
        (
            {
                "labels": [
                    {
                        "entity_kind": "ticker",
                        "entity": "ACME",
                        "start": END.isoformat(),
                        "end": T0.isoformat(),
                    }
                ]
            },
            422,
            "must be after start",
        ),
        ({"surprise": 1}, 422, "Extra inputs"),
        ({"entity": "ticker:NOPE"}, 404, "no stored windows"),
        (  # one the subscription does not watch: not a clean run with a recommendation
            {"subscription_id": "desk", "entity": "ticker:NOPE"},
            422,
            "subscription 'desk' does not watch ticker NOPE: it watches tickers ACME, BOLT, CRUX",
        ),
        (  # the range holds nothing: the answer says what the store holds
            {"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"},
            404,
            f"in the range; the store holds stories from {T0:%Y-%m-%d %H:%M} to",
        ),
    ],
)
def test_bad_input_is_a_clean_4xx(
    client: tuple[TestClient, History], changes: dict[str, Any], status: int, needle: str
) -> None:
    c, _ = client
    response = c.post("/api/v1/backtest", json=body(**changes))
    assert response.status_code == status, response.text
    assert needle in json.dumps(response.json())


def test_the_plot_url_of_a_range_ending_now_is_pinned_to_the_run(client: tuple[TestClient, History]) -> None:
    c, _ = client
    data = c.post("/api/v1/backtest", json=body(end=None)).json()
    pinned = json.loads(parse_qs(urlsplit(data["plot_url"]).query)["request"][0])
    # The plot's own request, later, would otherwise end at its own now: another range.
    assert datetime.fromisoformat(pinned["end"]) >= datetime.fromisoformat(data["report"]["end"])
    assert c.get(data["plot_url"]).status_code == 200


def test_plot_with_bad_request_is_422_and_auth_is_required(client: tuple[TestClient, History]) -> None:
    c, _ = client
    assert c.get("/api/v1/backtest/plot.png", params={"request": "{not json"}).status_code == 422
    bad = json.dumps({"entity": "ticker:ACME", "grid": {"nope": [1]}})
    response = c.get("/api/v1/backtest/plot.png", params={"request": bad})
    assert response.status_code == 422
    assert "unknown detector parameter" in response.text
    assert c.get("/api/v1/backtest/plot.png").status_code == 422
    anonymous = c.post("/api/v1/backtest", json=body(), headers={"Authorization": ""})
    assert anonymous.status_code == 401


def test_openapi_documents_the_endpoints(client: tuple[TestClient, History], tmp_path: Path) -> None:
    c, _ = client
    paths = c.get("/openapi.json").json()["paths"]
    assert "post" in paths["/api/v1/backtest"]
    assert "image/png" in paths["/api/v1/backtest/plot.png"]["get"]["responses"]["200"]["content"]


def test_alerts_per_day_are_taken_over_the_history_the_range_holds(
    client: tuple[TestClient, History],
) -> None:
    c, _ = client
    week = body(start=(END - timedelta(days=7)).isoformat())  # a week asked of six hours of history
    reports = [c.post("/api/v1/backtest", json=asked).json()["report"] for asked in (week, body())]
    spans = {(datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"])) for r in reports}
    assert spans == {(T0, END)}
    assert {r["days"] for r in reports} == {0.25}
    fired, rates = (
        {tuple(s[key] for s in r["results"]) for r in reports} for key in ("alerts_fired", "alerts_per_day")
    )
    assert len(rates) == 1  # the week's rates are those of the six hours it holds
    assert rates.pop() == tuple(4 * n for n in fired.pop())


def test_a_rebuild_from_the_middle_starts_with_the_baselines_the_history_before_gives(
    client: tuple[TestClient, History],
) -> None:
    """Its first windows are not untested (too few windows behind them) nor judged on a short past."""
    c, _ = client
    middle = T0 + timedelta(hours=3)

    def trend(start: datetime) -> dict[str, Any]:
        asked = body(start=start.isoformat(), rebuild=True, labels=None, grid="")
        response = c.post("/api/v1/backtest", json=asked)
        assert response.status_code == 200, response.text
        points = response.json()["trend"]["points"]
        return {p["window_start"]: p["baseline_negative_share"] for p in points}

    whole, late = trend(T0), trend(middle)
    assert min(datetime.fromisoformat(t) for t in late) == middle
    assert late == {t: share for t, share in whole.items() if datetime.fromisoformat(t) >= middle}


def test_windows_stored_before_they_carried_their_step_get_their_kinds(tmp_path: Path) -> None:
    from alerts.subscriptions import SubscriptionFilter
    from alerts.windows import window_specs
    from api.backtest import BacktestRequest, stored_windows
    from store import DuckDBStore
    from tests.unit.alerts.synth import HOPPING, subscription, window

    old = window("ACME", 1, 20, 3, kind="ticker", spec=HOPPING).model_copy(update={"step_s": None})
    with DuckDBStore(tmp_path / "h.duckdb") as db:
        db.upsert_windows([old])
        request = BacktestRequest(subscription_id="desk", start=old.window_start, end=old.window_end)
        sub = subscription(window="hopping").model_copy(update={"filter": SubscriptionFilter(tickers=("*",))})
        [read] = stored_windows(db, request, sub, {"hopping"}, window_specs(AlertsSettings()))
    assert read.step_s == HOPPING.step_s  # the quiet rule counts hopping steps, as live does


def test_the_live_check_finds_the_focus_entitys_alerts_named_in_another_case(tmp_path: Path) -> None:
    """`--subscription desk --entity topic:t1`, stored as "T1": the alerts it sent are found."""
    from alerts.backtest import Labels
    from api.backtest import BacktestRequest, live_check, run_windows
    from store import DuckDBStore
    from tests.unit.alerts.synth import NOW
    from tests.unit.alerts.test_backtest import live_run

    windows, live, (sub,) = live_run(1)
    sent = [e for e in live if e.entity == "T1" and e.state == "fired"]
    assert sent, "the series must make T1 fire"
    request = BacktestRequest(subscription_id=sub.id, entity="topic:t1", grid="min_rise=0.3,0.4")
    outcome = run_windows(request, windows, sub, Labels(), NOW)
    everyone = BacktestRequest(subscription_id=sub.id, grid="min_rise=0.3,0.4")  # no focus: all entities
    whole = run_windows(everyone, windows, sub, Labels(), NOW)
    with DuckDBStore(tmp_path / "h.duckdb") as db:
        db.upsert_alerts(live)
        check, all_of_them = live_check(db, outcome, sub, NOW), live_check(db, whole, sub, NOW)
    assert check is not None
    assert (check.sent, check.reproduced, check.extra) == (len(sent), len(sent), ())
    fired = [e for e in live if e.state == "fired"]
    assert len({e.entity for e in fired}) > 1
    assert all_of_them is not None
    assert (all_of_them.sent, all_of_them.reproduced, all_of_them.extra) == (len(fired), len(fired), ())


@pytest.mark.parametrize("rebuild", [False, True])
def test_a_subscription_replay_reads_the_windows_and_stories_of_its_entities_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rebuild: bool
) -> None:
    """Not every entity's of the range, to filter them after: the store is asked for its own
    (named in another case in the filter than in the store)."""
    from api.backtest import BacktestRequest, run_from_store
    from store import DuckDBStore
    from tests.integration.test_backtest_cli import LIVE_NOW, SUBSCRIPTIONS

    history = build_history(tmp_path)  # ACME's, BOLT's and CRUX's windows and stories
    history.subscriptions.write_text(SUBSCRIPTIONS.replace('["ACME", "BOLT", "CRUX"]', '["acme"]'))
    settings = Settings(
        store=StoreSettings(url=f"duckdb:///{history.path}"),
        alerts=AlertsSettings(subscriptions_file=history.subscriptions),
    )
    read: list[Any] = []

    def spying(real: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
        def reading(*args: Any, **kwargs: Any) -> list[Any]:
            out = real(*args, **kwargs)
            read.extend(out)
            return out

        return reading

    with DuckDBStore(history.path) as db:
        for name in ("window_series", "scored_series"):
            monkeypatch.setattr(db, name, spying(getattr(db, name)))
        request = BacktestRequest(subscription_id="desk", start=T0, end=END, rebuild=rebuild)
        outcome = run_from_store(request, settings, db, now=LIVE_NOW)
    assert read
    assert all(
        "ACME" in r.item.tickers
        if isinstance(r, ScoredItem)
        else (r.entity_kind, r.entity) == ("ticker", "ACME")
        for r in read
    )
    assert {(w.entity_kind, w.entity) for w in outcome.windows} == {("ticker", "ACME")}
    acme = [a.alert_id for a in history.alerts if a.entity == "ACME" and a.state == "fired"]
    assert [e.alert_id for e in outcome.report.results[0].fired] == acme  # as live, which read the same
