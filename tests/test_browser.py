"""The demo in a real browser: headless Debian Chromium driven by Playwright's Python package.

The page loads, an example pair is clicked, the feed-forward result appears; a screenshot is saved
as a test artifact (test-artifacts/demo.png); picking a style sets the stroke-scale slider to its own.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import playwright.sync_api as playwright_sync

from tests.test_demo import launch

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def app_url():
    from demo import engine
    from demo.app import Settings

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is not installed: apt-get install chromium (.ci/run does it)"
    assert engine.model_status()["fast"].startswith("ready"), engine.model_status()
    app, url = launch(Settings(fast_size=128, warm_up=False))
    yield url
    app.close()


def test_example_click_shows_the_feed_forward_result(app_url):
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--headless", "--disable-gpu",
                                          "--disable-background-networking", "--disable-component-update",
                                          "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(app_url, wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_selector("#run-fast", timeout=60_000)
            assert page.title().startswith("stylekit")
            # the first example pair (content, style)
            example = page.locator("#example-pairs").locator("tbody tr, .gallery-item, button.gallery").first
            example.wait_for(timeout=30_000)
            example.click()
            result = page.locator("#fast-result img")
            result.wait_for(state="visible", timeout=120_000)
            src = result.get_attribute("src") or ""
            assert src, "the feed-forward result has no image"
            info = page.locator("#fast-info").inner_text(timeout=10_000)
            assert " s" in info
            page.screenshot(path=str(ARTIFACTS / "demo.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
    assert (ARTIFACTS / "demo.png").stat().st_size > 10_000


def test_picking_a_style_sets_the_stroke_slider(app_url):
    """The "Stroke scale" slider follows the picked style: each style's own (the catalogue's; a style with
    its own network: that network's)."""
    from stylekit.weights import list_styles, solo_style

    own = {s.name: solo_style(s).stroke_scale for s in list_styles()}
    first = next(iter(own))
    other = next(n for n, v in own.items() if v != own[first])   # a style whose stroke scale differs
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--headless", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.goto(app_url, wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_selector("#fast-style input", timeout=60_000)
            number = page.locator("#fast-stroke input[type=number]")
            page.wait_for_function("v => document.querySelector('#fast-stroke input[type=number]').value == v",
                                   arg=str(own[first]).rstrip("0").rstrip("."), timeout=30_000)
            box = page.locator("#fast-style input")
            box.click()
            box.fill(other)
            page.locator("ul[role=listbox] li", has_text=other).first.click()
            page.wait_for_function("v => Math.abs(document.querySelector('#fast-stroke input[type=number]')"
                                   ".valueAsNumber - v) < 1e-6", arg=own[other], timeout=30_000)
            assert abs(float(number.input_value()) - own[other]) < 1e-6
        finally:
            browser.close()
