"""What a person sees around the story, in headless Chromium at desktop and phone size:

- a Member cannot buy: no buy button, and a forged purchase is answered with our 403
  page; an Admin can;
- after the login, the browser's Back button never shows a sign-in form again (neither
  the platform's nor the app's "Log in" prompt) as if the user were logged out;
- logging out ends on the app's home page, which says so; maestrano_accounts' own
  "You are signed out" page passes axe in the example's layout and in its own;
- the sandbox's delivery tables follow their deliveries live;
- the dashboard follows an initial import that failed until the worker's retry succeeds.

With ``UPDATE_SCREENSHOTS=1`` the pages are saved in ``docs/img/`` at both sizes.
"""

from __future__ import annotations

import pytest

from crm.models import Person
from maestrano_accounts.billing.models import AdHocCharge
from maestrano_accounts.models import Company
from maestrano_sandbox.connec.api import Operation, run_and_notify
from maestrano_sandbox.connec.notifications import deliver_pending
from maestrano_sandbox.connec.seed import seed_group
from maestrano_sandbox.models import Group
from tests.e2e.helpers import (
    SERIOUS,
    SIZES,
    Pages,
    sandbox_on_the_other_host,
    sign_in_at_the_platform,
)
from tests.e2e.test_ui_story import FAST_CONNEC, FAST_SYNC

pytestmark = pytest.mark.browser

GROUP = "cld-flow"
ADMIN, MEMBER = "usr-flow-admin", "usr-flow-member"


@pytest.fixture
def sites(platform):
    """The sandbox under the other host name (app and platform keep their own cookies)."""
    sandbox = sandbox_on_the_other_host(platform)
    for uid, name, role in ((ADMIN, "Ada", "Admin"), (MEMBER, "Max", "Member")):
        platform.add_member(
            group_uid=GROUP,
            group_name="Flow Pty Ltd",
            user_uid=uid,
            name=name,
            surname=role,
            email=f"{uid}@flow.example",
            role=role,
            currency="AUD",
            country="AU",
            timezone="Australia/Sydney",
        )
    return {"app": platform.url, "sandbox": sandbox}


def no_sign_in_form(page) -> bool:
    return page.locator("#idp-login, #login-with-maestrano").count() == 0


def test_a_member_cannot_buy_and_an_admin_can(sites, browser_page):
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())
    pages = Pages(page)
    page.set_viewport_size(SIZES["desktop"])
    sign_in_at_the_platform(
        page, app=sites["app"], sandbox=sites["sandbox"], user=MEMBER, group=GROUP
    )

    assert page.locator("#buy-sms").count() == 0
    assert page.is_visible("#purchases-admins-only")
    pages.check("dashboard-member")
    page.goto(f"{sites['app']}/billing/")
    assert page.locator("#buy-sms").count() == 0
    assert page.is_visible("#purchases-admins-only")
    pages.check("billing-member")

    # A purchase forged in the page (the form an Admin has, with the Member's CSRF token).
    with page.expect_navigation() as navigation:
        page.evaluate(
            """() => {
              const form = document.createElement("form");
              form.method = "post";
              form.action = "/billing/buy/sms/";
              const token = document.querySelector("input[name=csrfmiddlewaretoken]").cloneNode();
              form.appendChild(token);
              document.body.appendChild(form);
              form.submit();
            }"""
        )
    assert navigation.value.status == 403
    assert page.text_content("#permission-denied h1") == "You cannot do this here"
    assert page.text_content("#your-role") == "Member"
    assert AdHocCharge.objects.count() == 0
    pages.check("forbidden")

    page.context.clear_cookies()
    sign_in_at_the_platform(
        page, app=sites["app"], sandbox=sites["sandbox"], user=ADMIN, group=GROUP
    )
    page.click("#buy-sms button[type=submit]")
    # The purchase's page, which follows the bill sent in the background.
    page.wait_for_function("document.getElementById('purchase-status').textContent === 'Billed'")
    assert AdHocCharge.objects.count() == 1
    page.click("#purchase-back")
    page.wait_for_selector("#charges li:not(.muted)")
    assert pages.accessibility == [], "\n".join(pages.accessibility)
    assert pages.overflowing == [], "\n".join(pages.overflowing)


def test_back_after_the_login_never_shows_a_sign_in_form(sites, browser_page):
    page = browser_page
    sign_in_at_the_platform(
        page,
        app=sites["app"],
        sandbox=sites["sandbox"],
        user=ADMIN,
        group=GROUP,
        start="/?next=/dashboard/",
    )
    dashboard = f"{sites['app']}/dashboard/"

    # History: the app's home page, the platform's sign-in form, the dashboard.
    page.go_back()
    page.wait_for_url(dashboard)
    assert no_sign_in_form(page), page.url
    page.go_back()
    page.wait_for_url(dashboard)
    assert no_sign_in_form(page), page.url
    assert page.text_content("#company-name") == "Flow Pty Ltd"


def test_logout_ends_on_the_apps_home_page_with_a_message(sites, browser_page):
    page = browser_page
    pages = Pages(page)
    page.set_viewport_size(SIZES["desktop"])
    sign_in_at_the_platform(
        page, app=sites["app"], sandbox=sites["sandbox"], user=ADMIN, group=GROUP
    )

    page.click("#logout")
    page.wait_for_url(f"{sites['app']}/")
    assert page.text_content("[role=status] .messages").strip() == "You are signed out."
    assert page.is_visible("#login-with-maestrano")
    pages.check("landing-signed-out")
    # Signed out here and at the platform: the dashboard asks for a login again.
    page.goto(f"{sites['app']}/dashboard/")
    page.wait_for_url(f"{sites['app']}/?next=/dashboard/")
    assert pages.accessibility == [], "\n".join(pages.accessibility)


def test_the_signed_out_page_is_accessible_in_either_layout(platform, browser_page, settings):
    """maestrano_accounts' own page, where a logout lands without ``LOGOUT_REDIRECT_URL``:
    in the example project's layout, and in the app's own (a project that overrides no
    template)."""
    page = browser_page
    pages = Pages(page)
    page.set_viewport_size(SIZES["desktop"])
    page.goto(f"{platform.url}/maestrano/signed-out")
    assert page.text_content("#signed-out h1") == "You are signed out"
    assert page.is_visible("#login-again")
    pages.check("signed-out")

    engine = settings.TEMPLATES[0]
    settings.TEMPLATES = [{**engine, "DIRS": []}]  # maestrano_accounts/base.html itself
    page.goto(f"{platform.url}/maestrano/signed-out")
    assert page.locator("link[rel=stylesheet]").count() == 0  # not the example's layout
    assert page.text_content("#signed-out h1") == "You are signed out"
    pages.check("signed-out-own-layout")
    assert pages.accessibility == [], "\n".join(pages.accessibility)
    assert pages.overflowing == [], "\n".join(pages.overflowing)


def test_the_sandbox_deliveries_update_live(sites, browser_page, settings):
    """A notification shows "pending", then "delivered" without a reload."""
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "NOTIFICATIONS": {"BACKGROUND": False},
    }
    Company.objects.create(preset="maestrano", group_uid=GROUP, name="Flow Pty Ltd")
    operation = Operation(
        method="POST",
        group_uid=GROUP,
        entity="people",
        record_id=None,
        body={"people": {"first_name": "Live", "last_name": "Update"}},
    )
    run_and_notify(operation, app=None)  # as the sandbox: our app is notified
    page = browser_page
    page.goto(f"{sites['sandbox']}/connec/deliveries/")
    assert page.text_content("#connec-deliveries tbody td:nth-child(6) .badge") == "pending"
    page.evaluate("window.sameDocument = true")

    assert deliver_pending(timeout=30) == 0
    page.wait_for_function(
        "document.querySelector('#connec-deliveries tbody td:nth-child(6) .badge')"
        ".textContent === 'delivered'"
    )
    assert page.evaluate("window.sameDocument") is True
    assert Person.objects.filter(last_name="Update").exists()
    pages = Pages(page)
    pages.check("sandbox-deliveries", impacts=SERIOUS)
    assert pages.accessibility == [], "\n".join(pages.accessibility)
    assert pages.overflowing == [], "\n".join(pages.overflowing)


@pytest.mark.worker
def test_the_dashboard_follows_an_import_retried_after_a_failure(
    sites, platform, settings, browser_page, request
):
    """Connec! fails: the import shows "Interrupted, retrying" (the worker tries again, not
    "Failed"); once the worker's retry succeeds the page says "Succeeded" by itself."""
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "SYNC": {**FAST_SYNC, "TASK_RETRY_BACKOFF": 2, "TASK_RETRY_BACKOFF_MAX": 2},
        "CONNEC": FAST_CONNEC,
    }
    seed_group(group=Group.objects.get(uid=GROUP), total=6)
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "FAULTS": {platform.api_id: {"error_rate": 1.0, "scope": "connec"}},
    }
    request.getfixturevalue("demo_worker")  # after the settings above: it copies them
    page = browser_page
    sign_in_at_the_platform(
        page, app=sites["app"], sandbox=sites["sandbox"], user=ADMIN, group=GROUP
    )
    page.wait_for_function(
        "document.querySelector('#import-status').textContent === 'Interrupted, retrying'",
        timeout=30_000,
    )
    assert "goes on by itself" in page.text_content("#import-advice")
    assert "transient" in page.text_content("#import-error-text")

    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "FAULTS": {}}
    page.wait_for_function(
        "document.querySelector('#import-status').textContent === 'Succeeded'", timeout=60_000
    )
