"""Helpers of the browser tests: waiting, signing in through the sandbox's IdP, the
sandbox under the other host name, and the checks every page gets (axe, phone width)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 740}}


def eventually(check: Callable[[], bool], *, timeout: float = 30.0, every: float = 0.25) -> None:
    """Wait until ``check()`` is true: pushes and notifications cross HTTP between threads."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"Still not true after {timeout}s: {check.__doc__ or check}")
        time.sleep(every)


def wait_in_page(
    page, expression: str, *, timeout: float = 30_000, log: Callable[[], str] | None = None
) -> None:
    """Wait until ``expression`` is true in the page; on a timeout, show ``log()`` (a
    worker's log, say)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(expression, timeout=timeout)
    except PlaywrightTimeout:
        shown = f"\nlog:\n{log()}" if log is not None else ""
        raise AssertionError(
            f"Still not true after {timeout / 1000:.0f}s: {expression}{shown}"
        ) from None


def wait_for_sync_state(
    page, state: str, *, timeout: float = 30_000, log: Callable[[], str] | None = None
) -> None:
    """Wait until the record page's sync status shows ``state`` (synced, retrying, parked…)."""
    wait_in_page(
        page,
        f"document.querySelector('#sync-status [data-sync-state]').dataset.syncState === '{state}'",
        timeout=timeout,
        log=log,
    )


def sandbox_on_the_other_host(platform) -> str:
    """The sandbox under the other loopback name, as ``make demo`` serves it; the presets
    point at it.

    The platform is another site than the app, like the real one: separate cookies (the
    SAML POST is cross-site) and the app's session middleware never sees its pages.
    """
    parts = urlsplit(platform.url)
    other = "127.0.0.1" if parts.hostname == "localhost" else "localhost"
    root = f"http://{other}:{parts.port}/sandbox"
    platform.configure(
        maestrano=platform.preset_values(api={"host": root}, connec={"host": f"{root}/connec"})
    )
    return root


def sign_in_at_the_platform(
    page,
    *,
    app: str,
    sandbox: str,
    user: str,
    group: str,
    start: str = "/",
    landing: str = "/dashboard/",
) -> None:
    """From ``start`` in the app through the sandbox's sign-in form, as ``user`` of
    ``group``, until the app shows ``landing``."""
    page.goto(f"{app}{start}")
    page.click("#login-with-maestrano")
    page.wait_for_url(f"{sandbox}/api/v1/auth/saml?*")
    page.fill("#id_user_uid", user)
    page.fill("#id_group_uid", group)
    page.click("#idp-login button[type=submit]")
    page.wait_for_url(f"{app}{landing}")


#: The impacts axe-core gives a violation, and those no page of ours may have at all.
EVERY_IMPACT = ("minor", "moderate", "serious", "critical")
SERIOUS = ("serious", "critical")


def axe_problems(page, *, impacts: tuple[str, ...] = SERIOUS) -> list[str]:
    """The axe-core violations of the page as it is now, of the given impacts (serious
    and critical by default)."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{page.url}: {violation['id']} ({violation['impact']}): "
        + "; ".join(node["target"][0] for node in violation["nodes"][:3])
        for violation in results.response["violations"]
        if violation["impact"] in impacts
    ]


class Pages:
    """Checks every page at both sizes: no sideways scrolling on a phone, axe, screenshots."""

    def __init__(self, page) -> None:
        self.page = page
        self.save = os.environ.get("UPDATE_SCREENSHOTS") == "1"
        self.accessibility: list[str] = []
        self.overflowing: list[str] = []

    def check(self, name: str, *, impacts: tuple[str, ...] = EVERY_IMPACT) -> None:
        """The pages may have no axe violation at all, the sandbox's too: a screen reader
        user meets a minor one as well (a table header with no name, ``empty-table-header``).
        ``impacts=SERIOUS`` checks a page for serious and critical ones only."""
        page = self.page
        for size, viewport in SIZES.items():
            page.set_viewport_size(viewport)
            if size == "phone":
                width = page.evaluate("document.documentElement.scrollWidth")
                if width > viewport["width"] + 1:
                    self.overflowing.append(f"{name}: {width}px wide")
            self.accessibility.extend(axe_problems(page, impacts=impacts))
            if self.save:
                DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(DOCS_IMAGES / f"{name}-{size}.png"), full_page=True)
        page.set_viewport_size(SIZES["desktop"])
