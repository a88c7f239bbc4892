"""Playwright on the system Chromium against pytest-django's live server."""

import os
from pathlib import Path

import pytest

BROWSER_PATH = os.environ.get("PORTAL_BROWSER", "/usr/bin/chromium")
BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
ROOT = Path(__file__).resolve().parents[3]
# Every run takes the screenshots; PORTAL_UPDATE_SCREENSHOTS=1 writes them over the README's
# copies in docs/screenshots, otherwise they go to test-results/ (not tracked).
SCREENSHOTS = ROOT / (
    "docs/screenshots" if os.environ.get("PORTAL_UPDATE_SCREENSHOTS") else "test-results/screenshots"
)
PASSWORD = "pw-for-tests-1"  # the factories' password


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(BROWSER_PATH):
        pytest.skip(f"No Chromium at {BROWSER_PATH}: install it (apt-get install chromium) or set PORTAL_BROWSER.")
    from playwright.sync_api import sync_playwright

    # The sync Playwright API runs an event loop in this thread; the tests' own ORM calls
    # are still synchronous. Only the browser tests (run last) need this.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=BROWSER_PATH, headless=True, args=BROWSER_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server, file_store):
    context = browser.new_context(viewport={"width": 1366, "height": 860}, accept_downloads=True,
                                  base_url=live_server.url)
    context.set_default_timeout(15000)
    tab = context.new_page()
    yield tab
    context.close()


def log_in(page, username: str, password: str = PASSWORD):
    page.goto("/accounts/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")


def log_out(page):
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")


def screenshot(page, name: str, full_page: bool = False):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)
