"""`finpulse ingest try`: one real feed fetched from the loopback server and shown as finpulse
would publish it; nothing is published and no state is kept."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from finpulse.settings import IngestSettings
from tests.conftest import FINPULSE
from tests.fixtures.feeds import FeedServer, rss_document


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FINPULSE_INGEST_ALLOW_PRIVATE_HOSTS": "true",  # the test server is on loopback
        "FINPULSE_INGEST_STATE_DIR": str(tmp_path / "state"),
        "FINPULSE_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # no broker: nothing may be published
        "COLUMNS": "220",
        **extra,
    }


def _try(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FINPULSE), "ingest", "try", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_a_real_feed_is_listed_newest_first(tmp_path: Path, feed_server: FeedServer) -> None:
    url = feed_server.url("f/real-world/guardian.rss")
    done = _try(_env(tmp_path), url, "--limit", "3")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{urlsplit(url).netloc.replace(':', '-')}: newest 3 of" in done.stdout  # named by its host
    times = [line.split("│")[1].strip() for line in done.stdout.splitlines() if line.startswith("│ 20")]
    assert len(times) == 3
    assert times == sorted(times, reverse=True)
    assert " items (en " in done.stdout
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir())  # no state kept


def test_a_feed_saved_to_a_file_and_a_name_that_is_neither(tmp_path: Path) -> None:
    saved = IngestSettings().feeds_dir / "real-world" / "guardian.rss"
    for given in (str(saved), saved.resolve().as_uri()):  # a path, or a file:// URL
        done = _try(_env(tmp_path), given, "--limit", "2")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "guardian.rss: newest 2 of 55 items" in done.stdout
        assert "55 entries: 55 items (en 55), 0 invalid" in done.stdout
    # A file that is no feed: named, with the parser's line; stories to publish are a replay.
    junk = tmp_path / "junk.rss"
    junk.write_text("<rss><channel></channel></rss>\n<p>trailing</p>\n", encoding="utf-8")
    bad = " ".join(_try(_env(tmp_path), str(junk)).stdout.split())
    assert "source=junk.rss: " in bad, bad
    assert re.search(r"\(SAXParseException: <unknown>:\d+:\d+: junk after document element\)", bad), bad
    stories = tmp_path / "stories.jsonl"
    stories.write_text('{"title": "ACME shares fall"}\n', encoding="utf-8")
    replay = " ".join(_try(_env(tmp_path), str(stories)).stdout.split())
    assert f"a file of stories to publish is a replay: `finpulse ingest replay {stories}`" in replay, replay
    gone = _try(_env(tmp_path), str(tmp_path / "missing.rss"))
    assert gone.returncode == 2
    assert "is neither a file here nor a URL" in " ".join(gone.stderr.replace("│", " ").split())


def test_a_time_that_is_the_fetch_time_is_marked(tmp_path: Path) -> None:
    saved = tmp_path / "undated.rss"
    saved.write_bytes(
        rss_document(
            [
                b"<item><title>ACME shares fall after profit warning</title><link>https://n.example/1</link>"
                b"<pubDate>Mon, 02 Mar 2026 09:00:00 GMT</pubDate></item>",
                b"<item><title>ACME chief resigns</title><link>https://n.example/2</link></item>",
                b"<item><title>ACME sells a unit</title><link>https://n.example/3</link>"
                b"<pubDate>sometime last week</pubDate></item>",
            ]
        )
    )
    done = _try(_env(tmp_path), str(saved))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {
        cells[2].strip(): cells[1].strip()
        for cells in (line.split("│") for line in done.stdout.splitlines())
        if len(cells) > 2 and "ACME" in cells[2]
    }
    assert rows["ACME shares fall after profit warning"] == "2026-03-02 09:00"
    # No date, or one that cannot be read: the fetch time, marked as such and explained.
    assert re.fullmatch(r"~20\d\d-\d\d-\d\d \d\d:\d\d", rows["ACME chief resigns"]), rows
    assert rows["ACME sells a unit"].startswith("~"), rows
    assert "~ = fetch time: 2 of 3 items have no published date, or one that cannot be read" in done.stdout
    dated = _try(_env(tmp_path), str(IngestSettings().feeds_dir / "real-world" / "guardian.rss"))
    assert "~" not in dated.stdout  # where every item has its date: no mark, no line


def test_bad_entries_a_foreign_language_and_a_sources_entry(tmp_path: Path, feed_server: FeedServer) -> None:
    body = rss_document(
        [
            b"<item><title>ACME shares fall after profit warning</title><link>https://n.example/1</link>"
            b"<pubDate>Mon, 02 Mar 2026 09:00:00 GMT</pubDate></item>",
            b"<item><title>Die Aktien von ACME fallen nach einer Gewinnwarnung deutlich und stark</title>"
            b"<link>https://n.example/2</link><pubDate>Mon, 02 Mar 2026 10:00:00 GMT</pubDate></item>",
            b"<item><link>https://n.example/3</link></item>",  # no title: not a story
            # Brackets in a title are news text, not rich markup (dropped, or a MarkupError at "[/").
            b"<item><title>[VIDEO] ACME chief explains the weak outlook [/transcript]</title>"
            b"<link>https://n.example/4</link><pubDate>Mon, 02 Mar 2026 08:00:00 GMT</pubDate></item>",
        ]
    )
    url = feed_server.put("mixed.rss", body)
    sources = tmp_path / "sources.toml"
    sources.write_text(f'[[feeds]]\nname = "mixed"\nurl = "{url}"\ntickers = ["ACME"]\n', encoding="utf-8")
    done = _try(_env(tmp_path), "--source", "mixed", "--sources", str(sources))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 entries: 3 items" in done.stdout
    assert "[VIDEO] ACME chief explains the weak outlook [/transcript]" in done.stdout
    assert "1 invalid" in done.stdout
    assert "invalid: " in done.stdout
    assert "de (not scored)" in done.stdout  # the model reads English only by default
    assert "ACME" in done.stdout.split("│ 2026-03-02 09:00")[1].splitlines()[0]  # the source's tickers

    sources.write_text(
        sources.read_text() + f'[[replays]]\nname = "history"\npath = "{tmp_path / "h.jsonl"}"\n',
        encoding="utf-8",
    )
    replayed = _try(_env(tmp_path), "--source", "history", "--sources", str(sources))
    assert replayed.returncode == 2
    assert "'history' is a replay of" in replayed.stdout
    assert "`finpulse ingest check` checks it" in " ".join(replayed.stdout.split())
    missing = _try(_env(tmp_path), "--source", "nope", "--sources", str(sources))
    assert missing.returncode == 2
    assert "no feed or API named 'nope' in the sources file; there are: mixed" in missing.stdout
    both = _try(_env(tmp_path), url, "--source", "mixed")
    assert both.returncode == 2
    down = _try(_env(tmp_path), feed_server.url("doc/absent.rss"))
    assert down.returncode == 2
    assert "404" in down.stdout + down.stderr


def test_a_json_api_response_is_named_as_one_not_sent_to_replay(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    response = json.dumps({"data": [{"id": "a1", "title": "ACME beats", "url": "https://n.example/a1"}]})
    url = feed_server.put("news", response.encode(), "application/json")
    saved = tmp_path / "news.json"
    saved.write_text(response, encoding="utf-8")
    for given in (url, str(saved)):  # fetched, or saved to a file
        done = _try(_env(tmp_path), given)
        said = " ".join(done.stdout.split())
        assert done.returncode == 2, said
        assert (
            "a JSON API response, not a feed: add an [[apis]] entry for it to the sources file and run "
            in said
        )
        assert "`finpulse ingest try --source NAME`" in said
        assert "replay" not in said
    # A replay's JSON lines, one of them: a story object, flat (its tickers a list of text).
    row = {
        "title": "ACME beats",
        "source": "wire",
        "published_at": "2026-03-02T09:00:00Z",
        "tickers": ["ACME"],
    }
    stories = tmp_path / "stories.json"
    stories.write_text(json.dumps(row) + "\n", encoding="utf-8")
    replay = " ".join(_try(_env(tmp_path), str(stories)).stdout.split())
    assert f"a file of stories to publish is a replay: `finpulse ingest replay {stories}`" in replay, replay
