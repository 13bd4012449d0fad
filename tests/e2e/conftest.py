"""Headless Chromium for browser tests: a ``browser_page`` fixture (Playwright, sync API).

Debian's ``/usr/bin/chromium`` is driven by Playwright (no browser download:
the machine has no internet). Each test gets its own browser with a fresh
profile, and a screenshot (plus the page's HTML) under ``test-artifacts/`` when
it fails. Use it with the live ``platform`` fixture::

    @pytest.mark.browser
    def test_something(platform, browser_page):
        browser_page.goto(platform.url + "/")
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
#: MACHINE.md: without the background-networking flags Chromium keeps calling the internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def browser_page(request, monkeypatch):
    """A Playwright page in a fresh headless Chromium; screenshot in test-artifacts/ on failure.

    Playwright's sync API keeps an event loop in the test thread, so Django's
    "async unsafe" guard is lifted while the browser runs (the live server
    answers from its own threads). The browser is started after, and stopped
    before, the database fixtures' own set-up and teardown.
    """
    if not CHROMIUM.exists():
        pytest.skip(
            "/usr/bin/chromium is missing: install it with `bash scripts/install-chromium.sh` "
            "(as root) or `make browser`"
        )
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        # launch() gives every browser a new temporary profile (user-data dir).
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context()
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            yield page
        finally:
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:
                _save_artifacts(page, request.node.nodeid)
            context.close()
            browser.close()
            # While Playwright's loop runs, Django keeps the test's ORM connections in
            # context-local storage: close them here or PostgreSQL cannot drop the test
            # database at the end ("being accessed by other users").
            _close_context_local_connections()


def _close_context_local_connections() -> None:
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close()


def _save_artifacts(page, nodeid: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", nodeid)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        (ARTIFACTS / f"{name}.html").write_text(page.content())
    except Exception as error:  # a crashed page must not hide the test's own failure
        print(f"Could not save the browser screenshot: {error}")
