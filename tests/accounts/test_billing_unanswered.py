"""Creates whose answer is lost, against the sandbox on a live server: nothing is billed twice.

The Account API has no idempotency key; a create (POST) that timed out may be applied by
the platform later. These tests play that in two ways: the sandbox's latency (our
client gives up, the sandbox writes afterwards), or, where an Admin must act while the
create is on the wire, ``AccountClient.create_recurring_bill`` wrapped so that the
Admin's plan change happens during the call and the answer is then lost. The grace
period is passed by moving the clock (time-machine), never by waiting.
"""

from __future__ import annotations

import datetime as dt
import time
from unittest import mock

import pytest
from django.utils import timezone

from maestrano_accounts.billing.tasks import retry_pending_billing_task
from maestrano_accounts.models import AdHocCharge, Company, CompanySubscription, Plan
from maestrano_integration.account import AccountClient, AccountConnectionError
from tests.accounts.test_billing import (
    after_the_grace_period,
    sandbox_recurring_bills,
    set_faults,
    sso,
    tune,
)
from tests.accounts.test_billing_plans import choose, open_bills, recurring_bills
from tests.helpers.saml import parse_form

TIMEOUT = 10
#: The sandbox's delay before it handles a call: our client (0.5 s timeout) gives up first.
LATENCY = dt.timedelta(milliseconds=2500)


@pytest.fixture
def premium(db):
    return Plan.objects.create(name="Premium", price_cents=9900, currency="USD", offered=False)


def late_write_landed(rows_of, *, sent_at):
    """Poll until the sandbox applied the call sent at ``sent_at`` after its latency (a row
    created after ``sent_at + LATENCY``); no fixed sleep. Returns the rows."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = rows_of()
        if any(row.created_at >= sent_at + LATENCY for row in rows):
            return rows
        time.sleep(0.05)
    raise AssertionError("the sandbox never applied the late write")


def sandbox_bills(group_uid):
    from maestrano_sandbox.models import Bill

    return list(Bill.objects.filter(group__uid=group_uid))


def a_pending_subscription(platform, settings, group_uid):
    """A company on Standard whose first create was refused by a 503 (so still pending),
    with the platform back, and its Admin's browser session."""
    tune(settings, HTTP_RETRIES=0)
    set_faults(platform, settings, error_rate=1.0, error_status=503)
    http = sso(platform, group_uid=group_uid)
    set_faults(platform, settings)
    subscription = CompanySubscription.objects.get(company__group_uid=group_uid)
    assert subscription.status == CompanySubscription.Status.PENDING
    return http, subscription


def plan_change_during_the_create(*, platform, http, plan, lands):
    """``create_recurring_bill`` wrapped: the first call lets the Admin change to ``plan``
    (through the plan pages) while it is on the wire; the platform then applies it at once
    (``lands``) or not yet, and its answer is lost. Returns the patcher and a function that
    plays the platform's late write."""
    real_create = AccountClient.create_recurring_bill
    calls = []

    def create(client, **kwargs):
        if calls:
            return real_create(client, **kwargs)
        calls.append(kwargs)
        choose(platform, http, plan)
        if lands:
            real_create(client, **kwargs)
        raise AccountConnectionError("Account API POST recurring_bills failed: ReadTimeout")

    def late_write():
        return real_create(AccountClient(), **calls[0])

    return mock.patch.object(AccountClient, "create_recurring_bill", create), late_write


# --- a plan change while the first recurring bill is on the wire -----------------------------


def test_a_plan_change_during_a_create_whose_answer_is_lost_leaves_one_live_recurring_bill(
    platform, settings, premium
):
    http, old = a_pending_subscription(platform, settings, "cld-race-plan")
    Plan.objects.filter(pk=premium.pk).update(offered=True)
    patcher, _ = plan_change_during_the_create(
        platform=platform, http=http, plan=premium, lands=True
    )

    with patcher:
        retry_pending_billing_task.delay()  # sends the Standard bill; the Admin changes meanwhile
    retry_pending_billing_task.delay()

    (live,) = open_bills("cld-race-plan")
    assert live.price_cents == 9900
    (cancelled,) = recurring_bills("cld-race-plan", status="cancelled")
    old.refresh_from_db()
    assert old.status == CompanySubscription.Status.CANCELLED
    assert (old.platform_id, old.platform_cancel_pending) == (cancelled.id, False)
    assert old.marker in cancelled.description
    page = http.get(f"{platform.url}/billing/", timeout=TIMEOUT)
    assert 'id="plan-name">Premium<' in page.text


def test_an_old_recurring_bill_written_late_by_the_platform_is_still_cancelled(
    platform, settings, premium
):
    http, old = a_pending_subscription(platform, settings, "cld-race-late")
    Plan.objects.filter(pk=premium.pk).update(offered=True)
    patcher, late_write = plan_change_during_the_create(
        platform=platform, http=http, plan=premium, lands=False
    )
    with patcher:
        retry_pending_billing_task.delay()
    retry_pending_billing_task.delay()  # the old bill is not on the platform yet
    old.refresh_from_db()
    assert old.platform_cancel_pending  # looked for again by the next sweep

    late_write()  # the slow platform applies the lost create now
    retry_pending_billing_task.delay()

    (live,) = open_bills("cld-race-late")
    assert live.price_cents == 9900
    old.refresh_from_db()
    assert old.platform_cancel_pending is False
    assert old.platform_id == recurring_bills("cld-race-late", status="cancelled")[0].id


def test_an_unanswered_create_that_never_landed_stops_being_looked_for_after_the_grace(
    platform, settings, premium
):
    http, old = a_pending_subscription(platform, settings, "cld-race-lost")
    Plan.objects.filter(pk=premium.pk).update(offered=True)
    patcher, _ = plan_change_during_the_create(
        platform=platform, http=http, plan=premium, lands=False
    )
    with patcher:
        retry_pending_billing_task.delay()

    with after_the_grace_period():
        result = retry_pending_billing_task.delay().get()

    assert result["subscriptions_to_cancel"] == 1
    old.refresh_from_db()
    assert (old.platform_id, old.platform_cancel_pending) == ("", False)
    (live,) = recurring_bills("cld-race-lost")
    assert live.price_cents == 9900
    assert retry_pending_billing_task.delay().get()["subscriptions_to_cancel"] == 0


# --- a slow platform: the create is applied after our client gave up -------------------------


def test_a_repeated_purchase_while_the_first_is_unanswered_bills_once(platform, settings):
    http = sso(platform, group_uid="cld-slow-sms")
    page = http.get(f"{platform.url}/billing/", timeout=TIMEOUT)
    form = parse_form(page.text, "buy-sms")
    url = f"{platform.url}{form['action']}"
    headers = {"Referer": f"{platform.url}/billing/"}
    tune(settings, HTTP_TIMEOUT=0.5, HTTP_RETRIES=0)
    set_faults(platform, settings, latency_ms=2500)  # the platform writes after we gave up

    sent_at = timezone.now()
    first = http.post(url, data=form["fields"], headers=headers, timeout=TIMEOUT)
    set_faults(platform, settings)
    tune(settings, HTTP_TIMEOUT=10)
    again = http.post(url, data=form["fields"], headers=headers, timeout=TIMEOUT)  # same form
    retry_pending_billing_task.delay()

    assert len(late_write_landed(lambda: sandbox_bills("cld-slow-sms"), sent_at=sent_at)) == 1
    assert "Sent to the marketplace, waiting for its answer" in first.text
    assert first.url == again.url  # the same purchase
    billing = http.get(f"{platform.url}/billing/", timeout=TIMEOUT)
    # One word for a purchase's state everywhere: its page explains what it waits for.
    assert '<td data-label="Status">Pending</td>' in billing.text
    charge = AdHocCharge.objects.get()
    assert (charge.status, charge.platform_bill_id, charge.attempts) == ("pending", "", 1)
    with after_the_grace_period():
        retry_pending_billing_task.delay()
        http.post(url, data=form["fields"], headers=headers, timeout=TIMEOUT)

    (remote,) = AccountClient().list_bills(group_id="cld-slow-sms")
    charge.refresh_from_db()
    assert charge.platform_bill_id == remote.id
    assert charge.status == AdHocCharge.Status.SUBMITTED
    assert charge.status_label == "Billed"  # as its page says, not the platform's word
    billing = http.get(f"{platform.url}/billing/", timeout=TIMEOUT)
    assert '<td data-label="Status">Billed</td>' in billing.text


def test_an_unanswered_recurring_bill_is_not_sent_again_by_the_sweep_or_a_login(platform, settings):
    tune(settings, HTTP_TIMEOUT=0.5, HTTP_RETRIES=0)
    set_faults(platform, settings, latency_ms=2500)
    sent_at = timezone.now()
    http = sso(platform, group_uid="cld-slow-rbill")
    set_faults(platform, settings)
    tune(settings, HTTP_TIMEOUT=10)

    sso(platform, http, group_uid="cld-slow-rbill")  # the next login sets billing up again
    swept = retry_pending_billing_task.delay().get()
    dashboard = http.get(f"{platform.url}/dashboard/", timeout=TIMEOUT)

    landed = late_write_landed(lambda: sandbox_recurring_bills("cld-slow-rbill"), sent_at=sent_at)
    assert len(landed) == 1
    assert swept["subscriptions_to_submit"] == 0
    assert 'id="plan-status">Being set up<' in dashboard.text  # the admin site says more
    subscription = CompanySubscription.objects.get(company__group_uid="cld-slow-rbill")
    assert subscription.attempts == 1
    assert subscription.awaiting_answer
    with after_the_grace_period():
        assert retry_pending_billing_task.delay().get()["subscriptions_to_submit"] == 1

    (remote,) = recurring_bills("cld-slow-rbill")
    subscription.refresh_from_db()
    assert subscription.platform_id == remote.id
    assert subscription.status == CompanySubscription.Status.SUBMITTED
    assert Company.objects.get(group_uid="cld-slow-rbill").subscriptions.count() == 1
