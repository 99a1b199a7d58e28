"""The dashboard in headless Chromium (Debian's) against uvicorn on loopback: charts render."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from pydantic import SecretStr

from api.app import create_app
from finpulse.settings import ApiSettings, Settings, StoreSettings
from store import DuckDBStore
from tests.fixtures.store import seed_busy, serve_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
TOKEN = "dash-secret"

# Counts canvas pixels: drawn at all, in the negative-share red, in the alert-marker magenta.
PIXELS_JS = """(canvas) => {
  const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let drawn = 0, red = 0, magenta = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (d[i + 3] === 0) continue;
    drawn++;
    const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
    if (r > 190 && g < 70 && b < 70) red++;
    if (r > 230 && g < 40 && b > 130 && b < 190) magenta++;
  }
  return {drawn, red, magenta, total: d.length / 4};
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def dashboard(tmp_path: Path, browser: Browser) -> Iterator[tuple[Page, DuckDBStore]]:
    path = tmp_path / "history.duckdb"
    with DuckDBStore(path) as db:
        seed_busy(db, end=datetime.now(UTC))
    settings = Settings(store=StoreSettings(url=f"duckdb:///{path}"), api=ApiSettings(token=SecretStr(TOKEN)))
    with serve_app(create_app(settings)) as base, DuckDBStore(path) as db:
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(f"{base}/?token={TOKEN}")
        page.wait_for_selector("body[data-ready=true]", timeout=20_000)
        yield page, db
        page.close()


def test_trend_charts_render_with_alert_markers(dashboard: tuple[Page, DuckDBStore], tmp_path: Path) -> None:
    page, _ = dashboard
    charts = page.locator(".chart")
    assert charts.count() == 3  # the seed has three topics: earnings, macro, m&a
    pixels = {}
    for i in range(charts.count()):
        chart = charts.nth(i)
        canvas = chart.locator("canvas").first
        pixels[chart.get_attribute("data-entity")] = canvas.evaluate(PIXELS_JS)
    for entity, px in pixels.items():
        assert px["drawn"] > 0.02 * px["total"], entity  # axes, grid, bars and lines drawn
        assert px["red"] > 200, entity  # the negative-share line
    assert pixels["earnings"]["magenta"] > 100  # the alert fired on earnings is marked
    assert pixels["macro"]["magenta"] == 0  # and no other topic has a marker
    shot = page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    assert len(shot) > 20_000


def test_ticker_view_and_alert_feedback(dashboard: tuple[Page, DuckDBStore]) -> None:
    page, db = dashboard
    page.select_option("#kind", "ticker")
    page.wait_for_function("document.querySelectorAll('.chart[data-entity=TSLA]').length === 1")
    assert page.locator(".chart[data-entity=TSLA]").get_attribute("data-alerts") == "1"
    row = page.locator("tr[data-alert-id=busy-1]")
    row.get_by_role("button", name="true +").click()
    page.wait_for_selector("tr[data-alert-id=busy-1] >> text=tp by dashboard")
    feedback = db.get_feedback("busy-1")
    assert feedback is not None
    assert (feedback.verdict, feedback.author) == ("tp", "dashboard")


def test_subscription_editor_shows_errors_and_saves(dashboard: tuple[Page, DuckDBStore]) -> None:
    page, db = dashboard
    page.click("#sub-new")
    text = page.input_value("#sub-json").replace('"min_rise": 0.15', '"min_rise": 2')
    page.fill("#sub-json", text)
    page.click("#sub-save")
    page.wait_for_selector("#sub-message.error")
    assert "min_rise" in page.text_content("#sub-message")  # type: ignore[operator]
    assert db.list_subscriptions() == []
    page.fill("#sub-json", text.replace('"min_rise": 2', '"min_rise": 0.2'))
    page.click("#sub-save")
    page.wait_for_selector("#sub-message:not(.error) >> text=saved new-subscription")
    (stored,) = db.list_subscriptions()
    assert stored.body["detector"]["min_rise"] == 0.2
    assert page.locator("#sub-list option").count() == 1
