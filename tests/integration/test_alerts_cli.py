"""`finpulse alerts test`, `check` and `list` through the real CLI, the history store's live
subscriptions and the local Slack-API server."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.render import TEST_HEADER
from alerts.slack import METADATA_TEST_EVENT
from alerts.subscriptions import Subscription
from store import DuckDBStore
from tests.conftest import FINPULSE, free_port
from tests.fixtures.slack import VALID_TOKEN, FakeSlack
from tests.fixtures.store import alert

API_TOKEN = "api-token-DONOTLOG-19"


def _env(tmp_path: Path, slack: FakeSlack) -> dict[str, str]:
    token_file = tmp_path / "slack-token"
    token_file.write_text(VALID_TOKEN, encoding="utf-8")
    subs = tmp_path / "subs.toml"
    subs.write_text(
        '[[subscription]]\nid = "desk"\nchannel = "#alerts"\n[subscription.filter]\ntickers = ["ACME"]\n\n'
        '[[subscription]]\nid = "gone"\nchannel = "#deleted"\n[subscription.filter]\ntopics = ["*"]\n',
        encoding="utf-8",
    )
    return {
        **os.environ,
        "FINPULSE_DATA_DIR": str(tmp_path / "data"),
        "FINPULSE_STORE_URL": f"duckdb:///{tmp_path / 'history.duckdb'}",
        "FINPULSE_ALERTS_SUBSCRIPTIONS_FILE": str(subs),
        "FINPULSE_ALERTS_SLACK_TOKEN_FILE": str(token_file),
        "FINPULSE_ALERTS_SLACK_BASE_URL": slack.base_url,
        "FINPULSE_ALERTS_WEBHOOK_URL": slack.hook_url(),
        "FINPULSE_ALERTS_REQUEST_TIMEOUT_S": "5",
        "FINPULSE_API_TOKEN": API_TOKEN,
        "FINPULSE_API_PUBLIC_URL": "https://finpulse.example",
        "COLUMNS": "250",
    }


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FINPULSE), "alerts", "test", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_every_live_subscription_gets_a_marked_test_message(tmp_path: Path, slack_api: FakeSlack) -> None:
    env = _env(tmp_path, slack_api)
    # A subscription made in the dashboard lives only in the store: it is tested too.
    with DuckDBStore(f"duckdb:///{tmp_path / 'history.duckdb'}") as db:
        made = Subscription.model_validate(
            {"id": "markets", "channel": "#markets", "filter": {"topics": ["Markets"]}}
        )
        db.put_subscription(made.id, made.stored_body())

    done = _run(env, "--sink", "slack", "--sink", "webhook")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output  # one channel does not exist
    assert "channel_not_found" in output
    assert "1 of 6 not sent" in output
    assert "/invite" in output
    assert output.count("sent (message ") == 2  # Slack answered with the messages' ts
    assert VALID_TOKEN not in output
    assert API_TOKEN not in output

    posted = {p.channel: p for p in slack_api.posts}
    assert sorted(posted) == ["C0ALERTS", "C0MARKETS"]
    desk = posted["C0ALERTS"]
    assert desk.blocks[0]["text"]["text"] == TEST_HEADER
    assert "Alerts of subscription desk come to this channel" in desk.blocks[1]["text"]["text"]
    assert "ticker *ACME*" in json.dumps(desk.blocks)
    assert (desk.metadata or {})["event_type"] == METADATA_TEST_EVENT
    assert "finpulse.example" not in json.dumps(desk.blocks), "no verdict links on an example"
    assert "topic *Markets*" in json.dumps(posted["C0MARKETS"].blocks)

    # The webhook takes every channel's message, marked by its test note.
    bodies = [body for _, body in slack_api.webhooks]
    assert sorted(b["channel"] for b in bodies) == ["#alerts", "#deleted", "#markets"]
    assert all(b["test_note"].startswith("Alerts of subscription") and "feedback" not in b for b in bodies)


def test_one_subscription_and_an_unknown_one(tmp_path: Path, slack_api: FakeSlack) -> None:
    env = _env(tmp_path, slack_api)
    done = _run(env, "-s", "desk", "--sink", "slack")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.channel for p in slack_api.posts] == ["C0ALERTS"]

    done = _run(env, "-s", "nope", "--sink", "slack")
    assert done.returncode == 2
    assert "no subscription 'nope'; known: desk, gone" in done.stdout + done.stderr
    assert len(slack_api.posts) == 1


def test_a_slack_it_cannot_reach_is_named_and_the_other_sinks_still_send(
    tmp_path: Path, slack_api: FakeSlack
) -> None:
    away = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens there
    env = {**_env(tmp_path, slack_api), "FINPULSE_ALERTS_SLACK_BASE_URL": away}
    done = _run(env, "--sink", "slack", "--sink", "webhook")
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1, output
    assert f"slack auth.test: cannot reach {away} (" in output
    assert "check the network or proxy" in output
    # The footer's advice is for the cause the rows name, not a channel's.
    assert "2 of 4 not sent, each result says why (Slack did not answer: check the network" in output
    assert "/invite" not in output
    assert sorted(body["channel"] for _, body in slack_api.webhooks) == ["#alerts", "#deleted"]
    assert VALID_TOKEN not in output


def test_a_refused_token_fails_its_sinks_messages_not_the_run(tmp_path: Path, slack_api: FakeSlack) -> None:
    env = _env(tmp_path, slack_api)
    (tmp_path / "slack-token").write_text("xoxb-revoked")  # its token file
    done = _run(env, "--sink", "webhook", "--sink", "slack")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert output.count("invalid_auth") == 2, output
    footer = output[output.index("2 of 4 not sent") :]
    assert "Slack refused the token: set FINPULSE_ALERTS_SLACK_TOKEN" in footer, output
    assert "/invite" not in output
    assert len(slack_api.webhooks) == 2
    assert not slack_api.posts
    assert "xoxb-revoked" not in output


def test_check_lists_the_example_subscriptions(tmp_path: Path, slack_api: FakeSlack) -> None:
    env = _env(tmp_path, slack_api)
    done = subprocess.run(
        [str(FINPULSE), "alerts", "check", "config/subscriptions.toml"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    megacaps = next(line for line in done.stdout.splitlines() if line.startswith("megacaps:"))
    assert "mutes=3 digest=07:30 America/New_York" in megacaps
    assert done.stdout.rstrip().endswith("2 subscriptions OK")  # and no warning


def test_check_warns_of_what_never_alerts(tmp_path: Path, slack_api: FakeSlack) -> None:
    env = _env(tmp_path, slack_api)
    (tmp_path / "odd.toml").write_text(
        '[[subscription]]\nid = "desk"\nchannel = "#desk"\n[subscription.filter]\ntopics = ["Enrgy"]\n'
        "[[subscription.mute]]\nfrom = 2025-01-01T00:00:00Z\nuntil = 2025-01-02T00:00:00Z\n"
    )
    (tmp_path / "empty.toml").write_text("")
    said = {}
    for name in ("odd.toml", "empty.toml"):
        done = subprocess.run(
            [str(FINPULSE), "alerts", "check", str(tmp_path / name)], env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        said[name] = " ".join(done.stdout.split())
    assert "warning: desk: topic 'Enrgy' is none of the classifier's topics" in said["odd.toml"]
    assert "warning: desk: mute #1 ended 2025-01-02 00:00 UTC: remove it" in said["odd.toml"]
    assert said["odd.toml"].endswith("1 subscription OK, 2 warnings")
    assert "warning: the file holds no subscriptions: nothing will alert" in said["empty.toml"]
    strict = subprocess.run(
        [str(FINPULSE), "alerts", "check", "--strict", str(tmp_path / "odd.toml")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert strict.returncode == 1, strict.stdout + strict.stderr  # a deploy's check stops on warnings


def test_a_bad_file_is_an_error_with_its_toml_names_whole(tmp_path: Path, slack_api: FakeSlack) -> None:
    """Config errors name TOML tables in brackets, which rich markup took for styles and dropped."""
    env = _env(tmp_path, slack_api)
    files = {
        "flat.toml": 'subscription = "desk"\n',
        "digest.toml": (
            '[[subscription]]\nid = "desk"\nchannel = "#desk"\n[subscription.digest]\nweekdays = []\n'
        ),
    }
    said = []
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        done = subprocess.run(
            [str(FINPULSE), "alerts", "check", str(tmp_path / name)], env=env, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stdout + done.stderr
        said.append(" ".join((done.stdout + done.stderr).split()))
    assert "must be an array of tables ([[subscription]])" in said[0], said[0]
    assert "(or remove [subscription.digest])" in said[1], said[1]


def test_list_shows_each_live_subscription_and_its_alerts(tmp_path: Path, slack_api: FakeSlack) -> None:
    env = _env(tmp_path, slack_api)
    now = datetime.now(UTC)
    with DuckDBStore(tmp_path / "history.duckdb") as db:
        made = Subscription.model_validate(
            {
                "id": "markets",
                "channel": "#markets",
                "filter": {"tickers": ["ACME", "BOLT"]},
                "mute": [{"from": now - timedelta(hours=1), "until": now + timedelta(hours=5),
                          "entities": ["ticker:ACME"]}],
                "digest": {"at": "07:30:00", "timezone": "Europe/London"},
            }
        )  # fmt: skip
        db.put_subscription(made.id, made.stored_body())
        odd = Subscription.model_validate({"id": "odd", "channel": "#odd", "filter": {"topics": ["Enrgy"]}})
        db.put_subscription(odd.id, odd.stored_body())  # made in the dashboard: no `alerts check` saw it
        old, recent = now - timedelta(days=10), now - timedelta(hours=2)
        db.upsert_alerts(
            [
                alert("m1", "BOLT", recent, subscription_id="markets", entity_kind="ticker"),
                alert(
                    "m2", "ACME", recent - timedelta(hours=1), subscription_id="markets", entity_kind="ticker"
                ),
                alert("m0", "ACME", old, subscription_id="markets", entity_kind="ticker"),  # outside 7 days
            ]
        )
        db.put_feedback("m1", "tp")
        db.put_feedback("m2", "fp")
    done = subprocess.run(
        [str(FINPULSE), "alerts", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 live subscriptions" in done.stdout  # the file's two and the dashboard's two
    assert "warning: odd: topic 'Enrgy' is none of the classifier's topics" in " ".join(done.stdout.split())
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in done.stdout.splitlines()]
    rows = {row[0]: row for row in cells if row and row[0]}
    markets = rows["markets"]
    assert markets[2] == "tickers ACME, BOLT"
    assert markets[3] == "on"
    assert markets[4] == "07:30 Europe/London"
    assert markets[5:] == ["2", f"{recent + timedelta(minutes=5):%m-%d %H:%M} ticker BOLT", "1 / 1"]
    assert "muted ticker:ACME until" in done.stdout  # the entity mute, on the row's next line
    assert rows["gone"][2:4] == ["every topic", "on"]
    # At 80 columns (the table cut its cells to three letters), a paragraph each: the id and channel
    # whole (they are what commands take), then the rest, nothing cut.
    narrow = subprocess.run(
        [str(FINPULSE), "alerts", "list"], env=env | {"COLUMNS": "80"}, capture_output=True, text=True,
        timeout=60,
    ).stdout  # fmt: skip
    lines = narrow.splitlines()
    assert {"markets → #markets", "desk → #alerts", "gone → #deleted"} <= set(lines), narrow
    assert "…" not in narrow
    assert max(map(len, lines)) <= 80
    markets = " ".join(lines[lines.index("markets → #markets") + 1 :][:3])
    assert (
        "on · tickers ACME, BOLT · digest 07:30 Europe/London · 2 alerts in 7 days (1 tp / 1 fp)"
        in " ".join(markets.split())
    ), narrow


def test_list_prints_names_as_written(tmp_path: Path, slack_api: FakeSlack) -> None:
    """Names made in the dashboard or the API: not rich markup ("[/]" was a MarkupError), and no
    control characters reach the terminal."""
    env = _env(tmp_path, slack_api)
    with DuckDBStore(tmp_path / "history.duckdb") as db:
        odd = Subscription.model_validate(
            {"id": "odd", "channel": "#[b]desk\x1b[2J", "filter": {"sources": ["[/]wire[red]"]}}
        )
        db.put_subscription(odd.id, odd.stored_body())
    for columns in ("250", "80"):  # the table, and a paragraph each
        done = subprocess.run(
            [str(FINPULSE), "alerts", "list"], env=env | {"COLUMNS": columns}, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert "sources [/]wire[red]" in done.stdout, done.stdout
        assert "#[b]desk[2J" in done.stdout, done.stdout
        assert "\x1b" not in done.stdout
