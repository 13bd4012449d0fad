"""What a person sees, at desktop and phone size, with the demo's real background worker.

- the story: a deep link through SSO, the import moving live, lists and record pages
  with one sync status each, money and time in the company's conventions, a purchase
  confirmed first;
- an outage: Connec! fails → the saved record says "retrying"; Connec! is back →
  "synced", with no other save;
- a bad record: Connec! refuses it → "parked" with the reason → fixed → "synced";
- every page of the story, the sandbox's included, passes axe-core without any violation
  (a table header with no name, a minor one, included).

With ``UPDATE_SCREENSHOTS=1`` the pages are saved in ``docs/img/`` at both sizes.
"""

from __future__ import annotations

import re

import pytest

from crm.models import Person
from maestrano_accounts.models import Company, Plan
from maestrano_sandbox.connec.seed import seed_group
from maestrano_sandbox.models import ConnecRecord
from maestrano_sync.selectors import connec_id_for
from tests.e2e.helpers import (
    SIZES,
    Pages,
    eventually,
    sandbox_on_the_other_host,
    sign_in_at_the_platform,
    wait_for_sync_state,
    wait_in_page,
)

pytestmark = [pytest.mark.browser, pytest.mark.worker]

GROUP, ADMIN = "cld-story", "usr-story-admin"
#: Pushes retried quickly, without the client's own retries, so an outage shows at once.
FAST_CONNEC = {"HTTP_RETRIES": 0}
FAST_SYNC = {
    "PUSH_RETRY_BACKOFF": 0.5,
    "PUSH_RETRY_BACKOFF_MAX": 1.0,
    "MAX_ATTEMPTS": 1000,
}


@pytest.fixture
def story(platform, settings, request):
    """The sandbox under the other host name, a group with Connec! data, a started worker."""
    sandbox = sandbox_on_the_other_host(platform)
    settings.MAESTRANO = {**settings.MAESTRANO, "SYNC": FAST_SYNC, "CONNEC": FAST_CONNEC}
    membership = platform.add_member(
        group_uid=GROUP,
        group_name="Story Pty Ltd",
        user_uid=ADMIN,
        name="Ada",
        surname="Admin",
        email="ada@story.example",
        role="Admin",
        currency="AUD",
        country="AU",
        timezone="Australia/Sydney",
    )
    seed_group(group=membership.group, total=24)
    worker = request.getfixturevalue("demo_worker")  # after the settings above: it copies them
    return {"sandbox": sandbox, "group": membership.group, "worker": worker}


def signed_in_with_a_person(page, *, platform, story) -> tuple[Company, Person]:
    """The admin signed in from the platform; the company and its first imported person."""
    sign_in_at_the_platform(
        page,
        app=platform.url,
        sandbox=story["sandbox"],
        user=ADMIN,
        group=GROUP,
        start="/dashboard/",
    )
    company = Company.objects.get(group_uid=GROUP)
    eventually(lambda: Person.objects.filter(company=company).count() > 0)
    return company, Person.objects.filter(company=company).order_by("pk").first()


def test_the_story_at_desktop_and_phone_size(platform, story, browser_page):
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())
    pages = Pages(page)
    page.set_viewport_size(SIZES["desktop"])
    # A deep link survives the login.
    page.goto(f"{platform.url}/people/")
    page.wait_for_url(f"{platform.url}/?next=/people/")
    assert page.is_visible("#login-to-continue")
    pages.check("landing")
    page.click("#login-with-maestrano")
    page.wait_for_url(f"{story['sandbox']}/api/v1/auth/saml?*")
    pages.check("sandbox-sign-in")
    page.fill("#id_user_uid", ADMIN)
    page.fill("#id_group_uid", GROUP)
    page.click("#idp-login button[type=submit]")
    page.wait_for_url(f"{platform.url}/people/")

    # The import runs in the worker and the dashboard follows it live.
    page.goto(f"{platform.url}/dashboard/")
    wait_in_page(
        page,
        "document.querySelector('#import-status').textContent === 'Succeeded'",
        timeout=60_000,
        log=story["worker"].tail,
    )
    assert page.text_content("#company-name") == "Story Pty Ltd"
    assert "AEDT" in page.text_content("#import-times") or "AEST" in page.text_content(
        "#import-times"
    )
    assert page.text_content("#no-problems")
    pages.check("dashboard")

    company = Company.objects.get(group_uid=GROUP)
    person = Person.objects.filter(company=company).order_by("pk").first()
    page.goto(f"{platform.url}/people/")
    assert page.locator('#records [data-sync-state="synced"]').count() > 0
    assert page.get_attribute('nav a[href="/people/"]', "aria-current") == "page"
    pages.check("people-list")

    # Saving: "queued" until Connec! acknowledged it, then "synced" without a reload by hand.
    page.goto(f"{platform.url}/people/{person.pk}/")
    page.fill("#id_last_name", "Édith Müller-Lüdenscheidt")
    page.click("#save-record")
    wait_for_sync_state(
        page,
        "synced",
        log=story["worker"].tail,
    )
    connec_id = connec_id_for(company=company, obj=person)
    record = ConnecRecord.objects.get(group=story["group"], entity="people", uid=connec_id)
    assert record.data["last_name"] == "Édith Müller-Lüdenscheidt"
    pages.check("person")

    page.goto(f"{platform.url}/organizations/")
    pages.check("organization-list")
    page.goto(f"{platform.url}/invoices/")
    pages.check("invoice-list")
    page.click("#records tbody td.primary a")
    total = page.text_content("#invoice-total")
    assert total.startswith("AUD\u00a0") and "$" not in total  # the company's currency
    pages.check("invoice")
    page.goto(f"{platform.url}/items/")
    prices = page.text_content("#records tbody")
    assert re.search(r"[A-Z]{3}\u00a0\d", prices) and "$" not in prices  # ISO codes
    pages.check("item-list")

    # Billing: money in the company's currency, a purchase is confirmed first.
    page.goto(f"{platform.url}/billing/")
    assert "cents" not in page.text_content("main")
    assert page.text_content("#first-charge").startswith("First charge on ")
    page.click("#buy-sms button[type=submit]")
    page.wait_for_selector("#purchase-status")
    assert page.text_content("#purchase-summary").startswith("AUD\u00a05.00, ordered ")
    pages.check("purchase")
    page.goto(f"{platform.url}/billing/")
    page.wait_for_selector("#charges td[data-label=Amount]")
    assert page.text_content("#charges td[data-label=Amount]") == "AUD\u00a05.00"
    pages.check("billing")
    bigger = Plan.objects.create(name="Bigger", price_cents=4900, currency="AUD")
    page.goto(f"{platform.url}/billing/plans/")
    assert "AUD\u00a049.00" in page.text_content("main")
    pages.check("plans")
    page.goto(f"{platform.url}/billing/plans/{bigger.pk}/")
    assert "AUD\u00a049.00" in page.text_content("#plan-confirm-price")
    pages.check("plan-confirm")

    page.goto(f"{platform.url}/people/{person.pk}/delete/")
    pages.check("person-delete")
    page.goto(f"{platform.url}/no-such-page/")
    assert page.text_content("h1") == "This page does not exist"
    pages.check("not-found")

    # The sandbox's pages, each of its tables with a button column among them (the app's
    # members to launch, the group's to remove, the deliveries to send again or retry).
    page.goto(f"{story['sandbox']}/")
    pages.check("sandbox-home")
    page.goto(f"{story['sandbox']}/apps/{platform.api_id}")
    assert page.is_visible("#webhook-deliveries")
    pages.check("sandbox-app")
    page.goto(f"{story['sandbox']}/groups/{GROUP}")
    assert page.get_attribute("#app-home", "href") == f"{platform.url}/"
    pages.check("sandbox-group")
    page.goto(f"{story['sandbox']}/connec/")
    assert page.is_visible("#connec-deliveries")
    pages.check("sandbox-connec-home")
    page.goto(f"{story['sandbox']}/connec/groups/{GROUP}/people/{connec_id}/")
    assert "Édith Müller-Lüdenscheidt" in page.text_content("pre")
    pages.check("sandbox-connec-record")

    assert pages.accessibility == [], "\n".join(pages.accessibility)
    assert pages.overflowing == [], "\n".join(pages.overflowing)


def test_an_outage_then_recovery_needs_no_other_save(platform, story, browser_page, settings):
    page = browser_page
    company, person = signed_in_with_a_person(page, platform=platform, story=story)
    eventually(lambda: connec_id_for(company=company, obj=person) is not None)

    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "FAULTS": {platform.api_id: {"error_rate": 1.0, "scope": "connec"}},
    }
    page.goto(f"{platform.url}/people/{person.pk}/")
    page.fill("#id_first_name", "During")
    page.click("#save-record")
    wait_for_sync_state(
        page,
        "retrying",
        log=story["worker"].tail,
    )
    assert "next attempt" in page.text_content("#sync-detail")
    assert "answered 5" in page.text_content("#sync-technical")  # a random 5xx
    Pages(page).check("person-retrying")

    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "FAULTS": {}}
    wait_for_sync_state(
        page,
        "synced",
        timeout=30_000,
        log=story["worker"].tail,
    )
    connec_id = connec_id_for(company=company, obj=person)
    assert ConnecRecord.objects.get(uid=connec_id).data["first_name"] == "During"


def test_what_a_person_types_survives_a_sync_status_change(platform, story, browser_page, settings):
    """The record page follows its status by reloading, unless the person has typed in its
    form meanwhile: then it says the status changed and keeps what they typed."""
    page = browser_page
    company, person = signed_in_with_a_person(page, platform=platform, story=story)
    eventually(lambda: connec_id_for(company=company, obj=person) is not None)
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "FAULTS": {platform.api_id: {"error_rate": 1.0, "scope": "connec"}},
    }
    page.goto(f"{platform.url}/people/{person.pk}/")
    page.fill("#id_first_name", "Saved")
    page.click("#save-record")
    wait_for_sync_state(page, "retrying", log=story["worker"].tail)

    page.fill("#id_last_name", "Typed, not saved")
    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "FAULTS": {}}
    page.wait_for_selector("#sync-changed:not([hidden])", timeout=30_000)

    assert "Synced" in page.text_content("#sync-changed")
    assert page.input_value("#id_last_name") == "Typed, not saved"
    assert page.get_attribute("#sync-info", "data-state") == "retrying"  # not reloaded


def test_a_refused_record_is_parked_with_its_reason_then_fixed(platform, story, browser_page):
    page = browser_page
    _company, person = signed_in_with_a_person(page, platform=platform, story=story)

    page.goto(f"{platform.url}/people/{person.pk}/")
    page.fill("#id_email", "pat@localhost")  # valid here, refused by Connec! (no dot)
    page.click("#save-record")
    wait_for_sync_state(
        page,
        "parked",
        log=story["worker"].tail,
    )
    assert "is not an email address" in page.text_content("#sync-technical")
    assert page.locator("#sync-retry button").count() == 1
    pages = Pages(page)
    pages.check("person-parked")
    page.goto(f"{platform.url}/dashboard/")
    assert "is not an email address" in page.text_content("#problems")
    pages.check("dashboard-problems")

    page.goto(f"{platform.url}/people/{person.pk}/")
    page.fill("#id_email", "pat@story.example")
    page.click("#save-record")
    wait_for_sync_state(
        page,
        "synced",
        log=story["worker"].tail,
    )
    page.goto(f"{platform.url}/dashboard/")
    assert page.text_content("#no-problems")
    assert pages.accessibility == [], "\n".join(pages.accessibility)
