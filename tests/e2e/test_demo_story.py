"""The demo story of ``make demo``, clicked through in headless Chromium.

1. Log in with Maestrano: the sandbox's login page, then the dashboard with the
   company, its billing set up and the initial import done.
2. Edit a person in the app: the change reaches the sandbox's Connec! page.
3. Change a person "as another app" in the sandbox: the change arrives in the app.
4. Cancel the group's service in the sandbox: the app refuses the company.

Every page is checked for console errors. With ``UPDATE_SCREENSHOTS=1`` the
screenshots of the docs (``docs/img/``) are taken again at the key steps, at a
desktop and a phone width.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from crm.models import Person
from maestrano_accounts.models import Company
from maestrano_sandbox.connec.seed import seed_group
from maestrano_sandbox.models import ConnecRecord
from maestrano_sync.models import SyncRun, SyncRunEntity
from maestrano_sync.selectors import connec_id_for
from tests.e2e.helpers import eventually, sandbox_on_the_other_host

pytestmark = pytest.mark.browser

DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
DEMO_GROUP = "cld-demo"
DEMO_USER = "usr-demo-admin"
SEEDED_RECORDS = 40


class Screenshots:
    """Keeps the docs' screenshots current when ``UPDATE_SCREENSHOTS=1``; a no-op otherwise."""

    def __init__(self, page) -> None:
        self.page = page
        self.enabled = os.environ.get("UPDATE_SCREENSHOTS") == "1"

    def take(self, name: str, *, phone: bool = True) -> None:
        if not self.enabled:
            return
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(DOCS_IMAGES / f"{name}-desktop.png"), full_page=True)
        if phone:
            self.page.set_viewport_size(PHONE)
            self.page.screenshot(path=str(DOCS_IMAGES / f"{name}-phone.png"), full_page=True)
            self.page.set_viewport_size(DESKTOP)


@pytest.fixture
def sandbox_url(platform) -> str:
    """The sandbox under the other loopback name, as ``make demo`` serves it.

    The platform is another site than the app, like the real one: separate
    cookies (the SAML POST is cross-site) and the app's session middleware
    never sees the platform's pages.
    """
    return sandbox_on_the_other_host(platform)


@pytest.fixture
def demo_group(platform):
    """What ``manage.py demo_setup`` prepares: the demo group, its admin, Connec! data."""
    membership = platform.add_member(
        group_uid=DEMO_GROUP,
        group_name="Demo Company",
        user_uid=DEMO_USER,
        name="Alice",
        surname="Admin",
        email="alice@demo.example",
        role="Admin",
    )
    seed_group(group=membership.group, total=SEEDED_RECORDS)
    return membership.group


@pytest.fixture
def console_errors(browser_page):
    """Console errors and uncaught exceptions of every page the test opens, with the page URL."""
    errors: list[tuple[str, str]] = []
    page = browser_page
    page.on(
        "console",
        lambda message: (
            errors.append((page.url, message.text)) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: errors.append((page.url, str(error))))
    return errors


def unexpected(errors: list[tuple[str, str]], *, refusal_page: str) -> list[tuple[str, str]]:
    """All but the one error the story causes on purpose: the platform's refusal page is a 403."""
    return [
        (url, text)
        for url, text in errors
        if not (url.startswith(refusal_page) and "status of 403" in text)
    ]


def test_the_demo_story(platform, sandbox_url, demo_group, browser_page, console_errors):
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())  # "Cancel service" asks first
    page.set_viewport_size(DESKTOP)
    shots = Screenshots(page)
    app, sandbox, connec = platform.url, sandbox_url, f"{sandbox_url}/connec"

    # 1. Log in with Maestrano, as the demo user of the demo group.
    page.goto(f"{app}/")
    page.click("#login-with-maestrano")
    page.wait_for_url(f"{sandbox}/api/v1/auth/saml?*")
    page.fill("#id_user_uid", DEMO_USER)
    page.fill("#id_group_uid", DEMO_GROUP)
    page.click("#idp-login button[type=submit]")
    page.wait_for_url(f"{app}/dashboard/")

    assert page.text_content("#company-name") == "Demo Company"
    assert page.text_content("#current-user") == "Alice Admin"
    assert page.text_content("#import-status") == "Succeeded"
    assert page.text_content("#plan-name") == "Standard"
    assert page.text_content("#recurring-bill-status") == "Active"
    people_mapped = int(page.text_content('#sync tr[data-entity="people"] .mapped'))
    assert people_mapped == ConnecRecord.objects.filter(group=demo_group, entity="people").count()
    assert people_mapped > 0
    shots.take("dashboard-after-sso")

    # 2. Edit a person in the app: the change reaches Connec! (the sandbox's page).
    company = Company.objects.get(group_uid=DEMO_GROUP)
    person = Person.objects.filter(company=company).order_by("pk").first()
    page.goto(f"{app}/people/{person.pk}/")
    page.fill("#id_first_name", "Edited")
    page.fill("#id_last_name", "In The App")
    page.click("#save-record")
    page.wait_for_url(f"{app}/people/{person.pk}/")
    connec_id = connec_id_for(company=company, obj=person)

    def pushed() -> bool:
        """The sandbox's record carries the name typed in the app."""
        record = ConnecRecord.objects.get(group=demo_group, entity="people", uid=connec_id)
        return record.data.get("last_name") == "In The App"

    eventually(pushed)
    page.click("#sandbox-record")
    page.wait_for_url(f"{connec}/groups/{DEMO_GROUP}/people/{connec_id}/")
    assert '"last_name": "In The App"' in page.text_content("pre")

    # 3. Change another person "as another app" in the sandbox: it arrives in the app.
    other = (
        ConnecRecord.objects.filter(group=demo_group, entity="people")
        .exclude(uid=connec_id)
        .order_by("pk")
        .first()
    )
    page.goto(f"{connec}/groups/{DEMO_GROUP}/people/{other.uid}/")
    page.fill(
        "#connec-edit textarea", json.dumps({"first_name": "Changed", "last_name": "Elsewhere"})
    )
    page.select_option("#connec-edit select", value="")  # the sandbox itself: apps are notified
    page.click("#connec-edit button[type=submit]")
    page.wait_for_url(f"{connec}/groups/{DEMO_GROUP}/people/{other.uid}/")

    def arrived() -> bool:
        """The app's people list shows the name written in the sandbox."""
        page.goto(f"{app}/people/?q=Elsewhere")
        return page.locator("#records tbody a", has_text="Changed Elsewhere").count() == 1

    eventually(arrived)
    page.goto(f"{app}/dashboard/")
    people_row = '#sync tr[data-entity="people"]'
    assert page.text_content(f"{people_row} .last-push") != "—"
    assert page.text_content(f"{people_row} .last-notification") != "—"
    assert page.text_content(f"{people_row} .outbox") == "0"
    shots.take("dashboard-after-sync")

    # 4. The group cancels the service in the sandbox: the app locks the company.
    page.goto(f"{sandbox}/groups/{DEMO_GROUP}")
    page.click(f"form[action$='/apps/{platform.api_id}/cancel'] button")
    page.wait_for_url(f"{sandbox}/groups/{DEMO_GROUP}")
    company.refresh_from_db()
    assert company.status == Company.Status.CANCELLED

    page.goto(f"{app}/dashboard/")
    page.wait_for_url(f"{sandbox}/app_access_unauthorized*")
    page.goto(f"{app}/people/")
    assert page.url.startswith(f"{app}/?next=") or page.url.startswith(sandbox)
    assert page.locator("#records").count() == 0

    assert unexpected(console_errors, refusal_page=f"{sandbox}/app_access_unauthorized") == []


def test_the_dashboard_follows_a_running_import_live(
    platform, sandbox_url, browser_page, console_errors, settings
):
    """While the import runs, the page polls its progress and reloads when it is done."""
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": {"IMPORT_ON_COMPANY_CREATED": False}}
    platform.add_member(group_uid="cld-live", group_name="Live Co", user_uid="usr-live")
    page = browser_page
    page.goto(f"{platform.url}/maestrano/auth/saml/init")
    page.fill("#id_user_uid", "usr-live")
    page.fill("#id_group_uid", "cld-live")
    page.click("#idp-login button[type=submit]")
    page.wait_for_url(f"{platform.url}/dashboard/")
    assert page.text_content("#import-status") == "Not started"

    run = SyncRun.objects.create(company=Company.objects.get(group_uid="cld-live"))
    people = SyncRunEntity.objects.create(run=run, entity="people", position=0, total=40)
    page.reload()
    assert page.text_content("#import-status") == "Running"

    people.created = 30
    people.save()
    page.wait_for_function(
        "document.querySelector('#import-entities [data-entity=people] .count')"
        ".textContent === '30 / 40'"
    )
    assert page.get_attribute("#import-bar", "style") == "width: 75%;"

    SyncRunEntity.objects.filter(pk=people.pk).update(created=40, done=True)
    SyncRun.objects.filter(pk=run.pk).update(status=SyncRun.Status.SUCCEEDED)
    page.wait_for_function("document.querySelector('#import-status').textContent === 'Succeeded'")
    assert console_errors == []
