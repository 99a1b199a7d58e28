"""`finpulse backtest` and `finpulse feedback export` over a real DuckDB store.

The store holds a history as the stream writes it: scored items, the windows
of both kinds, and the alerts the live loop fired (detect once per window end,
states carried over). The backtest must reproduce those alerts exactly.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
import types
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from matplotlib.image import imread
from typer.testing import CliRunner

from alerts import BaselineParams, DetectorState, detect, load_subscriptions, window_specs
from alerts.backtest import group_by_end, rebuild_windows
from api.backtest_cli import register
from finpulse.schema import AlertEvent, NewsItem, ScoredItem
from finpulse.settings import AlertsSettings
from store import DuckDBStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
LIVE_NOW = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
WINDOWS = 72  # six hours of 5-minute windows
SPIKE = (40, 43)  # ACME's bearish burst: windows 40, 41, 42
SUBSCRIPTIONS = """
[[subscription]]
id = "desk"
channel = "#desk"
filter = { tickers = ["ACME", "BOLT", "CRUX"] }
[subscription.detector]
min_volume = 5
min_rise = 0.2
significance = 0.01
cooldown_s = 1800
"""
runner = CliRunner()
app = typer.Typer()
register(app)  # `finpulse backtest` and `finpulse feedback export`, as the root CLI registers them


def _scored(story_id: str, at: datetime, ticker: str, negative: bool) -> ScoredItem:
    sentiment = "negative" if negative else "neutral"
    title = (
        f"{ticker} shares slump as regulator opens probe #{story_id}"
        if negative
        else f"{ticker} update {story_id}"
    )
    item = NewsItem(
        story_id=story_id, source="wire", title=title, url=f"https://news.example/{story_id}",
        published_at=at, fetched_at=at, tickers=(ticker,),
    )  # fmt: skip
    return ScoredItem(
        item=item, topic="Markets", topic_probs={"Markets": 1.0}, sentiment=sentiment,
        sentiment_probs={sentiment: 1.0}, sentiment_score=-0.8 if negative else 0.0,
        model_version="test", scored_at=at,
    )  # fmt: skip


def history_items(seed: int = 11) -> list[ScoredItem]:
    rng = random.Random(seed)
    items = []
    for i in range(WINDOWS):
        for ticker in ("ACME", "BOLT", "CRUX"):
            spiking = ticker == "ACME" and SPIKE[0] <= i < SPIKE[1]
            for k in range(rng.randint(8, 16)):
                at = T0 + timedelta(minutes=5 * i, seconds=11 * k + 3)
                negative = rng.random() < (0.8 if spiking else 0.12)
                items.append(_scored(f"{ticker}-{i}-{k}", at, ticker, negative))
    return items


@dataclass
class History:
    path: Path
    subscriptions: Path
    alerts: list[AlertEvent]
    env: dict[str, str]


def live_alerts(windows: Sequence, subscriptions: Sequence) -> list[AlertEvent]:  # type: ignore[type-arg]
    """The stream's detect agent: each batch of windows closing together, states carried over."""
    by_end = defaultdict(list)
    for w in windows:
        by_end[w.window_end].append(w)
    states: dict[str, DetectorState] = {}
    events: list[AlertEvent] = []
    for end in sorted(by_end):
        batch = by_end[end][:]
        random.Random(end.minute).shuffle(batch)  # arrival order within a batch does not matter
        result = detect(batch, subscriptions, states, LIVE_NOW)
        states.update(result.states)
        events += result.events
    return events


def build_history(tmp: Path) -> History:
    subs_path = tmp / "subscriptions.toml"
    subs_path.write_text(SUBSCRIPTIONS)
    subs = load_subscriptions(subs_path)
    alerts_settings = AlertsSettings(subscriptions_file=subs_path)
    items = history_items()
    windows = rebuild_windows(
        items, list(window_specs(alerts_settings).values()), BaselineParams.from_settings(alerts_settings)
    )
    assert len(group_by_end(windows)) >= WINDOWS
    alerts = live_alerts(windows, subs)
    path = tmp / "history.duckdb"
    with DuckDBStore(path) as db:
        db.upsert_scored(items)
        db.upsert_windows(windows)
        db.upsert_alerts(alerts)
    env = {
        "FINPULSE_STORE_URL": f"duckdb:///{path}",
        "FINPULSE_ALERTS_SUBSCRIPTIONS_FILE": str(subs_path),
        "FINPULSE_DATA_DIR": str(tmp / "data"),
        "FINPULSE_LOG_LEVEL": "WARNING",
        "FINPULSE_CONFIG": str(tmp / "empty.toml"),
    }
    (tmp / "empty.toml").write_text("")
    return History(path, subs_path, alerts, env)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    return build_history(tmp_path_factory.mktemp("backtest"))


def invoke(history: History, *args: str) -> object:
    result = runner.invoke(app, list(args), env=history.env)
    return result


def _strip(events: Sequence[AlertEvent | dict]) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for e in events:
        data = e.model_dump(mode="json") if isinstance(e, AlertEvent) else dict(e)
        data.pop("created_at")
        out.append(data)
    return out


RANGE = ("--since", T0.isoformat(), "--until", (T0 + timedelta(minutes=5 * WINDOWS)).isoformat())


def test_backtest_of_the_live_subscription_reproduces_its_alerts(history: History, tmp_path: Path) -> None:
    fired = [a for a in history.alerts if a.state == "fired"]
    assert any(a.entity == "ACME" for a in fired), "the live loop must catch the planted spike"
    out = tmp_path / "report"
    result = invoke(history, "backtest", "--from-store", "--subscription", "desk", *RANGE, "--out", str(out))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    report = json.loads((out / "report.json").read_text())
    (current,) = report["results"]
    assert current["setting"]["name"] == "current"
    assert _strip(current["events"]) == _strip(history.alerts)
    assert current["alerts_fired"] == len(fired)
    # ... and says so: its own check against the alerts the store holds as sent.
    live = {"sent": len(fired), "reproduced": len(fired), "missing": [], "extra": []}
    assert {k: report["live"][k] for k in live} == live
    said = " ".join(result.output.split())  # type: ignore[attr-defined]
    assert f"live check: the setting in use fires the {len(fired)} alerts live sent, same ids" in said
    # An alert live sent that this detector would not (say, a version's before): named.
    copy = tmp_path / "history.duckdb"  # the module's history stays as it is
    copy.write_bytes(history.path.read_bytes())
    with DuckDBStore(copy) as db:
        old = fired[0].model_copy(update={"alert_id": "0ld5en7a1e47c0de", "entity": "ACME"})
        db.upsert_alerts([old, old.model_copy(update={"alert_id": "b0157a1e47c0de00", "entity": "BOLT"})])
    args = ["backtest", "--subscription", "desk", "--grid", "min_rise=0.3", *RANGE, "--out", str(out)]
    result = runner.invoke(app, args, env={**history.env, "FINPULSE_STORE_URL": f"duckdb:///{copy}"})
    said = " ".join(result.output.split())
    n = len(fired)
    assert f"fires {n} of the {n + 2} alerts live sent; not 0ld5en7a1e47, b0157a1e47c0" in said, said
    # One entity of the subscription: checked against that entity's alerts only (not BOLT's).
    acme = [a for a in fired if a.entity == "ACME"]
    args = ["backtest", "--subscription", "desk", "--entity", "ticker:ACME", *RANGE, "--out", str(out)]
    result = runner.invoke(app, args, env={**history.env, "FINPULSE_STORE_URL": f"duckdb:///{copy}"})
    said = " ".join(result.output.split())
    assert f"fires {len(acme)} of the {len(acme) + 1} alerts live sent; not 0ld5en7a1e47" in said, said
    # The same with a grid that leaves out the setting in use (replayed for the check alone): BOLT's
    # check holds no ACME alert.
    args = ["backtest", "--subscription", "desk", "--entity", "ticker:bolt", "--grid", "min_rise=0.3,0.4"]
    result = runner.invoke(
        app,
        [*args, *RANGE, "--out", str(out)],
        env={**history.env, "FINPULSE_STORE_URL": f"duckdb:///{copy}"},
    )
    said = " ".join(result.output.split())
    assert "fires 0 of the 1 alerts live sent; not b0157a1e47c0 (" in said, said
    # Rebuilding the windows from the stored scored items gives the same alerts too.
    again = tmp_path / "rebuilt"
    result = invoke(history, "backtest", "--subscription", "desk", "--rebuild", *RANGE, "--out", str(again))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert _strip(json.loads((again / "report.json").read_text())["results"][0]["events"]) == _strip(
        history.alerts
    )


def test_grid_with_labels_file_writes_report_table_and_png(history: History, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    start, end = (T0 + timedelta(minutes=5 * i) for i in SPIKE)
    # Times without an offset are UTC, as --since's.
    labels.write_text(f"entity_kind,entity,start,end\nticker,ACME,{start:%Y-%m-%d %H:%M},{end.isoformat()}\n")
    grid = tmp_path / "grid.toml"
    grid.write_text("[grid]\nmin_rise = [0.2, 0.75]\nsignificance = 0.01\n")
    out = tmp_path / "out"
    args = [
        "backtest", "--entity", "ticker:acme", *RANGE, "--grid", str(grid), "--labels", str(labels),
        "--max-alerts-per-day", "24", "--out", str(out),
    ]  # fmt: skip
    result = runner.invoke(app, args, env={**history.env, "COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    # The console's table, at 80 columns: titled as the report, each setting's parameters whole.
    assert "Backtest: ticker ACME" in result.output
    # and the subscription watching it, to replay with its own detector
    hint = f"subscriptions watching ticker ACME in {history.subscriptions}: desk;"
    assert "".join(hint.split()) in "".join(result.output.split())  # wrapped anywhere at 80 columns
    # ... replayed with the default detector, as it says; the grid's values override it.
    assert (
        "current detector (the defaults: --subscription ID replays a live one's): window=tumbling"
        in " ".join(result.output.split())
    )
    shown = result.output.split()
    assert {"min_rise=0.2", "min_rise=0.75", "significance=0.01"} <= set(shown), result.output
    report = json.loads((out / "report.json").read_text())
    by_name = {r["setting"]["name"]: r for r in report["results"]}
    sensitive, deaf = by_name["min_rise=0.2 significance=0.01"], by_name["min_rise=0.75 significance=0.01"]
    assert sensitive["recall"] == 1.0
    assert sensitive["delays_s"] == [300.0]  # caught in the burst's first window
    assert sensitive["true_positives"] >= 1
    assert deaf["alerts_fired"] == 0
    assert deaf["recall"] == 0.0
    assert report["recommended"] == "min_rise=0.2 significance=0.01"
    assert report["focus"] == ["ticker", "ACME"]
    markdown = (out / "report.md").read_text()
    assert "| * min_rise=0.2 significance=0.01 |" in markdown
    assert "- range: 2026-03-02 09:00 .. 2026-03-02 15:00 UTC (6 hours of history, 72 windows)" in markdown
    assert "- asked: 2026-03-02 09:00 .. 2026-03-02 15:00 UTC of stored windows" in markdown
    asked = json.loads((out / "report.json").read_text())["asked"]  # to run it again as it was
    assert (asked["entity"], asked["max_alerts_per_day"], asked["history"]) == (
        "ticker:acme",
        24,
        "stored windows",
    )
    assert asked["grid"] == {"min_rise": [0.2, 0.75], "significance": [0.01]}
    assert "- labels: 1 event, 0 false alarms (complete list)" in markdown
    assert "- target: at most 24 alerts/day" in markdown
    assert "recommended" in result.output
    png = (out / "trend.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    pixels = imread(io.BytesIO(png))[..., :3]
    assert pixels.shape[1] >= 1000
    red = (pixels[..., 0] > 0.7) & (pixels[..., 1] < 0.35) & (pixels[..., 2] < 0.35)
    assert red.sum() > 20, "the fired alert's marker is drawn"
    assert (pixels.min(axis=2) < 0.5).mean() > 0.01, "the trend line, axes and labels are drawn"


def test_a_grid_pair_the_detector_refuses_is_left_out_and_said(history: History, tmp_path: Path) -> None:
    grid = "min_rise=0.03,0.2 resolve_rise=0.02,0.08"  # 0.03 with 0.08: resolve_rise must be below
    result = invoke(
        history, "backtest", "--entity", "ticker:ACME", *RANGE, "--grid", grid, "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["results"]) == 3
    [skipped] = report["skipped"]
    assert skipped.startswith("min_rise=0.03 resolve_rise=0.08: ")
    said = " ".join(result.output.split())  # type: ignore[attr-defined]
    assert "left out (the detector refuses them): min_rise=0.03 resolve_rise=0.08" in said


def test_feedback_labels_and_training_export(history: History, tmp_path: Path) -> None:
    acme = next(a for a in history.alerts if a.state == "fired" and a.entity == "ACME")
    fake_fp = acme.model_copy(
        update={
            "alert_id": "fp-1",
            "entity": "BOLT",
            "window_start": T0,
            "window_end": T0 + timedelta(minutes=5),
        }
    )
    path = tmp_path / "history.duckdb"
    path.write_bytes(history.path.read_bytes())
    with DuckDBStore(path) as db:
        db.upsert_alerts([fake_fp])
        db.put_feedback(acme.alert_id, "tp", author="ana")
        db.put_feedback("fp-1", "fp", author="ana")
    env = {**history.env, "FINPULSE_STORE_URL": f"duckdb:///{path}"}
    out = tmp_path / "report"
    args = ["backtest", "--entity", "ticker:ACME", *RANGE, "--grid", "min_rise=0.2,0.75", "--out", str(out)]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["labels"]["complete"] is False
    assert [e["alert_id"] for e in report["labels"]["events"]] == [acme.alert_id]
    first = report["results"][0]
    assert (first["recall"], first["true_positives"]) == (1.0, 1)
    assert report["results"][1]["recall"] == 0.0

    existing = tmp_path / "train.csv"
    known = acme.top_headlines[0].title
    existing.write_text(f'text,label\n"{known.upper()}",0\n')
    export = tmp_path / "feedback.csv"
    result = runner.invoke(
        app, ["feedback", "export", "--out", str(export), "--exclude", str(existing)], env=env
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(export.open(newline="")))
    expected = [h.title for h in acme.top_headlines if h.title != known]
    assert expected
    assert rows == [{"text": t, "label": "0"} for t in expected]
    assert export.read_text().splitlines()[0] == "text,label"
    # A mistyped --exclude left nothing out and said it had.
    typo = ["feedback", "export", "--out", str(export), "--exclude", str(tmp_path / "trian.csv")]
    result = runner.invoke(app, typo, env=env)
    assert result.exit_code == 2, result.output
    assert "--exclude" in result.output
    # The default training set missing: it says nothing was left out.
    env["FINPULSE_MODEL_TRAIN_DATA_DIR"] = str(tmp_path / "no-data")
    result = runner.invoke(app, ["feedback", "export", "--out", str(export)], env=env)
    assert result.exit_code == 0, result.output
    missing = tmp_path / "no-data" / "sentiment" / "train.csv"
    assert f"no{missing}toleaveout" in "".join(result.output.split()), result.output  # lines wrap anywhere


def test_a_subscription_switched_off_is_replayed_as_if_on(history: History, tmp_path: Path) -> None:
    """Switched off to be retuned: its backtest replays it, and says it is off."""
    subs, store = tmp_path / "subscriptions.toml", tmp_path / "history.duckdb"
    subs.write_text(SUBSCRIPTIONS.replace('channel = "#desk"', 'channel = "#desk"\nenabled = false'))
    store.write_bytes(history.path.read_bytes())
    env = {
        **history.env,
        "FINPULSE_ALERTS_SUBSCRIPTIONS_FILE": str(subs),
        "FINPULSE_STORE_URL": f"duckdb:///{store}",
    }
    out = tmp_path / "report"
    args = ["backtest", "--subscription", "desk", *RANGE, "--out", str(out)]
    result = runner.invoke(app, args, env=env)
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert "note: subscription 'desk' is off (enabled = false): replayed as if on" in said
    report = json.loads((out / "report.json").read_text())
    assert _strip(report["results"][0]["events"]) == _strip(history.alerts)


def test_a_backtest_bigger_than_minutes_is_refused_naming_its_size(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("api.backtest.MAX_REPLAYED", 100)
    result = invoke(history, "backtest", "--entity", "ticker:ACME", "--grid", "min_rise=0.2,0.3", *RANGE)
    said = " ".join(result.output.split())  # type: ignore[attr-defined]
    assert result.exit_code == 2, said  # type: ignore[attr-defined]
    assert f"{WINDOWS} windows x 2 settings is {2 * WINDOWS} window replays (at most 100" in said


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--entity", "stock:ACME"], "KIND:NAME"),
        (["--entity", "ticker:ACME", "--grid", "min_rise=0.1 threshold=2"], "unknown detector parameter"),
        (
            ["--entity", "ticker:ACME", "--grid", "min_volume=" + ",".join(map(str, range(1, 300)))],
            "299 settings",
        ),
        (["--entity", "ticker:ACME", "--since", "yesterday"], "ISO 8601"),
        (
            ["--entity", "ticker:ACME", "--since", "2026-03-03", "--until", "2026-03-02"],
            "the range would be empty",
        ),
        (["--entity", "ticker:NOPE", *RANGE], "no stored windows"),
        (  # not a clean run: it could never alert on it
            ["--subscription", "desk", "--entity", "ticker:NOPE", *RANGE],
            "subscription 'desk' does not watch ticker NOPE: it watches tickers ACME, BOLT, CRUX",
        ),
        (["--subscription", "nobody", *RANGE], "no subscription 'nobody'"),
        (["--entity", "ticker:ACME", "--labels", "/nonexistent/labels.json"], "cannot read labels file"),
        (["--entity", "ticker:ACME", "--from-store", "--replay", "x.jsonl"], "not both"),
        ([], "give an entity"),
        (
            ["--entity", "ticker:ACME", *RANGE, "--max-alerts-per-day", "0"],
            "greater than 0",
        ),  # was: no target
    ],
)
def test_bad_input_is_a_clear_error(history: History, tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke(history, "backtest", *args, "--out", str(tmp_path / "out"))
    output = " ".join(result.output.split())  # type: ignore[attr-defined]
    assert result.exit_code == 2, output  # type: ignore[attr-defined]
    assert message in output
    assert "Traceback" not in output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--entity", "ticker:ACME", "--grid", "window=hopping"],
        ["--subscription", "desk", "--grid", "window=hopping min_rise=0.1"],
        ["--subscription", "desk", "--rebuild", "--grid", "window=hopping min_rise=0.1"],
        ["--subscription", "desk", "--grid", "window=tumbling,hopping min_rise=0.1"],
    ],
)
def test_a_grid_over_the_window_kind_replays_the_kinds_it_names(
    history: History, tmp_path: Path, args: list[str]
) -> None:
    """Not the detector's own kind alone (tumbling here): each setting replays its own kind's windows."""
    result = invoke(history, "backtest", *args, *RANGE, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    report = json.loads((tmp_path / "report.json").read_text())
    for r in report["results"]:
        fired = [e for e in r["events"] if e["state"] == "fired" and e["entity"] == "ACME"]
        assert fired, f"{r['setting']['name']} catches the planted spike"
        hours = {
            datetime.fromisoformat(e["window_end"]) - datetime.fromisoformat(e["window_start"]) for e in fired
        }
        assert hours == {timedelta(hours=1) if r["setting"]["params"]["window"] == "hopping" else 5 * MINUTE}


def test_a_labels_file_without_a_start_or_an_end_says_which_row(history: History, tmp_path: Path) -> None:
    spike = f"{T0 + 5 * SPIKE[0] * MINUTE:%Y-%m-%d %H:%M}"
    for text, row, said in [
        (f"entity_kind,entity,start,end\nticker,ACME,{spike},{spike}:30\nticker,ACME,,{spike}:30\n", 3,
         "start: Field required"),
        (f"entity_kind;entity;start;end\nticker;ACME;{spike};{spike}:30\n", 2, "entity_kind: Field required"),
        (f"kind,name,from,to\nticker,ACME,{spike},{spike}:30\n", 2, "entity_kind: Field required"),
    ]:  # fmt: skip
        labels = tmp_path / "labels.csv"
        labels.write_text(text)
        result = invoke(history, "backtest", "--entity", "ticker:ACME", *RANGE, "--labels", str(labels))
        output = " ".join(result.output.split())  # type: ignore[attr-defined]
        assert result.exit_code == 2, output  # type: ignore[attr-defined]
        assert output.startswith("error: labels file")
        assert f"csv, row {row}: {said}" in output  # (a long path may wrap anywhere)
        assert "Traceback" not in output


def test_a_grid_of_many_settings_gives_each_its_own_legible_row(history: History, tmp_path: Path) -> None:
    rises = ",".join(f"{0.1 + 0.05 * i:.2f}" for i in range(10))
    grid = f"min_rise={rises} min_volume=1,2,3,4,5,6,7,8,9,10"  # 100 settings
    result = invoke(
        history, "backtest", "--entity", "ticker:ACME", *RANGE, "--grid", grid, "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    height = imread(str(tmp_path / "trend.png")).shape[0]
    # A row's "small" label is about 12 px high at the plot's 100 dpi: 20 px keeps them apart.
    assert height >= 100 * 20, height


def test_a_rebuild_from_the_first_year_is_the_whole_history(history: History, tmp_path: Path) -> None:
    """No history before year 1 to warm the baselines up with: the range's own is all."""
    until = T0 + 5 * WINDOWS * MINUTE
    args = ["--entity", "ticker:ACME", "--rebuild", "--since", "0001-01-01", "--until", until.isoformat()]
    result = invoke(history, "backtest", *args, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["start"], report["windows"]) == (T0.isoformat().replace("+00:00", "Z"), WINDOWS)


@pytest.mark.parametrize("rebuild", [[], ["--rebuild"]])
def test_an_entity_named_in_another_case_replays_its_windows(
    history: History, tmp_path: Path, rebuild: list[str]
) -> None:
    """Topics are stored as the model names them ("Markets"): `topic:markets` is the same one."""
    reports = []
    for name in ("Markets", "markets"):
        out = tmp_path / name
        result = invoke(history, "backtest", "--entity", f"topic:{name}", *rebuild, *RANGE, "--out", str(out))
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        reports.append(json.loads((out / "report.json").read_text()))
    assert reports[0]["windows"] >= WINDOWS
    assert reports[1]["windows"] == reports[0]["windows"]


def _spaced(title: str) -> str:
    return " ".join(title.split())  # as ingestion normalises a title's white space


class FakeClassifier:
    """Labels as the replay file says (its `label` column), via the title: a deterministic model."""

    version = "fake-1"

    def __init__(self, replay: Path) -> None:
        self.labels = {}
        for line in replay.read_text().splitlines():
            row = json.loads(line)
            self.labels[_spaced(row["title"])] = {0: "negative", 1: "positive", 2: "neutral"}[row["label"]]

    @classmethod
    def from_settings(cls, *_: object, **__: object) -> FakeClassifier:
        return cls(FakeClassifier.replay)  # type: ignore[attr-defined]

    def predict(self, texts: list[str]) -> list[types.SimpleNamespace]:
        out = []
        for text in texts:
            sentiment = self.labels[_spaced(text)]
            score = {"negative": -0.9, "neutral": 0.0, "positive": 0.9}[sentiment]
            out.append(
                types.SimpleNamespace(
                    topic="Markets",
                    topic_probs={"Markets": 1.0},
                    sentiment=sentiment,
                    sentiment_probs={sentiment: 1.0},
                    sentiment_score=score,
                )
            )
        return out


def test_replay_file_is_classified_and_backtested(
    history: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from finpulse.settings import Settings
    from ingest.sample import write_planted_spike

    data_dir = Settings().model.train_data_dir
    planted = write_planted_spike(data_dir, tmp_path / "replay.jsonl", start=T0)
    # A German story: skipped, as the worker dead-letters it (the model reads English).
    german = {"source": "wire", "title": "Wipro erhält mehrjährigen strategischen IT-Auftrag von Marelli",
              "published_at": T0.isoformat(), "tickers": ["ACME"], "label": 0}  # fmt: skip
    with planted.path.open("a") as fh:
        fh.write(json.dumps(german) + "\n")
    rows = len(planted.path.read_text().splitlines())
    FakeClassifier.replay = planted.path  # type: ignore[attr-defined]
    engine = types.ModuleType("model.engine")
    engine.Classifier = FakeClassifier  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "model.engine", engine)  # the CLI loads model.engine.Classifier
    labels = tmp_path / "labels.json"
    event = {"entity_kind": "ticker", "entity": "ACME", "start": planted.spike_start.isoformat(),
             "end": planted.spike_end.isoformat()}  # fmt: skip
    labels.write_text(json.dumps({"events": [event]}))
    out = tmp_path / "out"
    result = invoke(
        history, "backtest", "--replay", str(planted.path), "--entity", "ticker:ACME",
        "--labels", str(labels), "--grid", "min_volume=5 min_rise=0.2,0.95", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert f"1 of {rows} stories skipped: their language is not one the model reads (en)" in " ".join(
        result.output.split()  # type: ignore[attr-defined]
    )
    report = json.loads((out / "report.json").read_text())
    caught, missed = report["results"]
    assert (caught["recall"], caught["precision"]) == (1.0, 1.0)
    assert caught["alerts_fired"] == 1
    assert missed["alerts_fired"] == 0
    assert report["start"].startswith(T0.date().isoformat())
    assert (out / "trend.png").stat().st_size > 10_000


def test_apply_puts_the_recommended_setting_live(history: History, tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    path.write_bytes(history.path.read_bytes())
    env = {**history.env, "FINPULSE_STORE_URL": f"duckdb:///{path}"}
    labels = tmp_path / "labels.csv"
    start, end = (T0 + timedelta(minutes=5 * i) for i in SPIKE)
    labels.write_text(f"entity_kind,entity,start,end\nticker,ACME,{start.isoformat()},{end.isoformat()}\n")
    args = [
        "backtest", "--subscription", "desk", *RANGE, "--grid", "min_rise=0.3,0.75", "--labels", str(labels),
        "--out", str(tmp_path / "report"), "--apply",
    ]  # fmt: skip
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "report" / "report.json").read_text())["recommended"] == "min_rise=0.3"
    output = " ".join(result.output.split())
    assert "applied to subscription 'desk': min_rise 0.2 -> 0.3" in output
    assert "[subscription.detector] min_rise = 0.3" in output
    with DuckDBStore(path, read_only=True) as db:
        record = db.get_subscription("desk")
    assert record is not None
    assert record.body["detector"]["min_rise"] == 0.3
    assert record.body["detector"]["significance"] == 0.01  # the rest as it was
    assert record.body["filter"]["tickers"] == ["ACME", "BOLT", "CRUX"]
    # Applied again: the live subscription already has it.
    again = runner.invoke(app, args, env=env)
    assert again.exit_code == 0, again.output
    assert "already uses the recommended setting" in again.output
    # Without a labelled real event, nothing moves unless asked to.
    unlabelled = [a for a in args if a not in ("--labels", str(labels))]
    unlabelled[unlabelled.index("min_rise=0.3,0.75")] = "min_rise=0.2,0.75"
    refused = runner.invoke(app, unlabelled, env=env)
    assert refused.exit_code == 2, refused.output
    assert "no labelled real event" in " ".join(refused.output.split())
    with DuckDBStore(path, read_only=True) as db:
        assert db.get_subscription("desk").body["detector"]["min_rise"] == 0.3  # type: ignore[union-attr]
    forced = runner.invoke(app, [*unlabelled, "--force"], env=env)
    assert forced.exit_code == 0, forced.output
    # An entity's backtest has no live subscription to change.
    entity = runner.invoke(app, ["backtest", "--entity", "ticker:ACME", *RANGE, "--apply"], env=env)
    assert entity.exit_code == 2
    assert "give --subscription ID" in " ".join(entity.output.replace("│", " ").split())
