"""The purchase page stops following its purchase once the purchase is no longer the
visitor's to see (headless Chromium): its ``status.json`` answers 404 (the purchase is not
the current company's) or 403 (logged out), the page stops polling and reloads once, and
shows what the server says now: the app's 404 page, or the way to log in."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from maestrano_accounts.billing.models import AdHocCharge
from maestrano_accounts.models import Company
from tests.e2e.helpers import sandbox_on_the_other_host, sign_in_at_the_platform

pytestmark = pytest.mark.browser

GROUP, ADMIN = "cld-purchase", "usr-purchase-admin"
#: Longer than two polls of the page (every 2 s), so that a poll after the stop would show.
QUIET_MS = 5_000


@pytest.fixture
def signed_in(platform, browser_page):
    """An Admin of ``GROUP`` signed in to the app through the sandbox (its own host)."""
    sandbox = sandbox_on_the_other_host(platform)
    platform.add_member(
        group_uid=GROUP,
        group_name="Purchase Pty Ltd",
        user_uid=ADMIN,
        name="Ada",
        surname="Admin",
        email="ada@purchase.example",
        role="Admin",
        currency="AUD",
        country="AU",
        timezone="Australia/Sydney",
    )
    sign_in_at_the_platform(
        browser_page, app=platform.url, sandbox=sandbox, user=ADMIN, group=GROUP
    )
    return platform.url, Company.objects.get(group_uid=GROUP)


def pending_purchase(company: Company, key: str) -> AdHocCharge:
    """A purchase that stays pending: sent, its answer awaited (nothing sends it again)."""
    return AdHocCharge.objects.create(
        company=company,
        idempotency_key=key,
        amount_cents=500,
        currency="AUD",
        description="100 SMS",
        units="100",
        sending_until=timezone.now() + dt.timedelta(hours=1),
    )


class StatusPolls:
    """The page's requests of ``status.json`` and the answers it got."""

    def __init__(self, page) -> None:
        self.answers: list[int] = []
        page.on(
            "response",
            lambda response: (
                self.answers.append(response.status)
                if response.url.endswith("/status.json")
                else None
            ),
        )


def open_following(page, app: str, charge: AdHocCharge) -> StatusPolls:
    """The purchase's page, once it has polled its status at least once."""
    polls = StatusPolls(page)
    with page.expect_response(lambda response: response.url.endswith("/status.json")):
        page.goto(f"{app}/billing/purchases/{charge.pk}/")
    assert page.get_attribute("#purchase", "data-state") == "pending"
    assert polls.answers == [200]
    return polls


def test_a_purchase_moved_out_of_the_company_stops_the_polling_and_shows_the_404_page(
    signed_in, browser_page
):
    app, company = signed_in
    page = browser_page
    charge = pending_purchase(company, "sms:e2e-404")
    polls = open_following(page, app, charge)
    other = Company.objects.create(preset="maestrano", group_uid="cld-other", name="Other")

    AdHocCharge.objects.filter(pk=charge.pk).update(company=other)
    with page.expect_navigation() as navigation:
        pass  # the next poll answers 404: the page reloads itself
    answered = list(polls.answers)
    page.wait_for_timeout(QUIET_MS)

    assert navigation.value.status == 404
    assert page.url == f"{app}/billing/purchases/{charge.pk}/"
    assert "This page does not exist" in page.content()
    assert answered[-1] == 404 and answered.count(404) == 1
    assert polls.answers == answered, "the page kept polling after the 404"


def test_a_logged_out_visitor_stops_the_polling_and_is_sent_to_log_in(signed_in, browser_page):
    app, company = signed_in
    page = browser_page
    charge = pending_purchase(company, "sms:e2e-403")
    polls = open_following(page, app, charge)

    page.context.clear_cookies()  # logged out (another tab, an expired session)
    with page.expect_navigation():
        pass  # the next poll answers 403: the page reloads itself, and is sent to log in
    page.wait_for_load_state()
    answered = list(polls.answers)
    page.wait_for_timeout(QUIET_MS)

    assert answered[-1] == 403 and answered.count(403) == 1
    assert polls.answers == answered, "the page kept polling after the 403"
    assert page.url == f"{app}/?next=/billing/purchases/{charge.pk}/"  # the log-in page
    assert page.locator("#login-with-maestrano").count() == 1
    assert page.locator("#purchase").count() == 0
