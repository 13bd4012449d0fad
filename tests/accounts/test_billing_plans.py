"""Plans against the sandbox on a live server: choice at creation, plan change, per-user
pricing, and statuses read back from the Account API (docs/billing.md).

What is on the platform is read through the Account API (``AccountClient``) as our app
would. The sandbox's tables are written only to play the platform's own moves (it
invoices a bill); the sandbox's webhook command plays a member leaving the group.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from maestrano_accounts.billing.services import add_periods
from maestrano_accounts.billing.tasks import refresh_billing_status_task, retry_pending_billing_task
from maestrano_accounts.models import AdHocCharge, Company, CompanySubscription, Plan
from maestrano_integration.account import AccountClient
from tests.accounts.test_billing import sso
from tests.helpers.saml import parse_form

TIMEOUT = 10


def recurring_bills(group_uid, **filters):
    return AccountClient().list_recurring_bills(group_id=group_uid, **filters)


def open_bills(group_uid):
    return recurring_bills(group_uid, status_in="submitted,active")


def tune_billing(settings, **values):
    billing = settings.MAESTRANO.get("BILLING", {})
    settings.MAESTRANO = {**settings.MAESTRANO, "BILLING": {**billing, **values}}


def choose(platform, http, plan):
    """The Admin's path: plan page → "choose"/"change" link → confirmation → confirm."""
    page = http.get(f"{platform.url}/billing/plans/", timeout=TIMEOUT)
    assert page.status_code == 200
    assert f'id="choose-{plan.pk}"' in page.text, page.text[:3000]
    confirm_url = f"{platform.url}/billing/plans/{plan.pk}/"
    confirmation = http.get(confirm_url, timeout=TIMEOUT)
    assert confirmation.status_code == 200
    form = parse_form(confirmation.text, "confirm-plan")
    done = http.post(
        confirm_url, data=form["fields"], headers={"Referer": confirm_url}, timeout=TIMEOUT
    )
    assert done.status_code == 200, done.text[:2000]
    return confirmation, done


@pytest.fixture
def premium(db):
    return Plan.objects.create(name="Premium", price_cents=9900, currency="USD", free_trial_days=14)


# --- plan choice when a company is created ------------------------------------------------


def test_with_several_plans_the_admin_chooses_and_nothing_is_billed_before(platform, premium):
    trial_end = (timezone.now() + dt.timedelta(days=30)).replace(microsecond=0)
    http = sso(platform, group_uid="cld-choose", free_trial_end=trial_end)

    assert recurring_bills("cld-choose") == []
    assert not CompanySubscription.objects.exists()
    billing = http.get(f"{platform.url}/billing/", timeout=TIMEOUT)
    assert "No plan chosen yet." in billing.text
    assert "Choose a plan" in billing.text
    dashboard = http.get(f"{platform.url}/dashboard/", timeout=TIMEOUT)
    assert 'id="dashboard-choose-plan"' in dashboard.text

    confirmation, done = choose(platform, http, premium)

    assert "Choose the Premium plan for" in confirmation.text
    (remote,) = recurring_bills("cld-choose")
    assert (remote.price_cents, remote.currency) == (9900, "USD")
    assert remote.start_date >= trial_end  # the group's free trial is respected
    assert "is now on the Premium plan" in done.text
    assert 'id="plan-name">Premium<' in done.text


def test_a_member_sees_the_plans_but_cannot_choose(platform, premium):
    http = sso(platform, group_uid="cld-member-plan", role="Member")

    page = http.get(f"{platform.url}/billing/plans/", timeout=TIMEOUT)
    confirm_url = f"{platform.url}/billing/plans/{premium.pk}/"
    token = http.cookies.get("csrftoken", "")
    refused_get = http.get(confirm_url, timeout=TIMEOUT)
    refused_post = http.post(
        confirm_url,
        data={"csrfmiddlewaretoken": token},
        headers={"Referer": confirm_url},
        timeout=TIMEOUT,
    )

    assert page.status_code == 200 and "Premium" in page.text
    assert 'id="plans-admins-only"' in page.text and "choose-" not in page.text
    assert refused_get.status_code == refused_post.status_code == 403
    assert recurring_bills("cld-member-plan") == []


def test_the_adapter_chooses_the_plan_from_the_login_attributes(platform, settings, premium):
    Plan.objects.create(name="Euro", price_cents=2500, currency="EUR")
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "ADAPTER": "tests.accounts.adapters.PlanByCurrencyAdapter",
    }

    sso(platform, group_uid="cld-euro", currency="EUR")

    (remote,) = recurring_bills("cld-euro")
    assert (remote.price_cents, remote.currency) == (2500, "EUR")
    assert CompanySubscription.objects.get().plan.name == "Euro"


def test_with_one_plan_the_company_starts_on_it_at_once(platform):
    sso(platform, group_uid="cld-one-plan")

    (remote,) = recurring_bills("cld-one-plan")
    assert remote.price_cents == 2900  # MAESTRANO["BILLING"]["DEFAULT_PLAN"]


# --- plan change -------------------------------------------------------------------------


def test_plan_change_replaces_the_recurring_bill_and_keeps_the_free_trial(platform, premium):
    trial_end = (timezone.now() + dt.timedelta(days=40)).replace(microsecond=0)
    premium.offered = False
    premium.save()
    http = sso(platform, group_uid="cld-change", free_trial_end=trial_end)
    (first,) = recurring_bills("cld-change")
    premium.offered = True
    premium.save()

    confirmation, done = choose(platform, http, premium)

    assert (
        "Change" in confirmation.text and "cancelled and a new one is created" in confirmation.text
    )
    (old,) = recurring_bills("cld-change", status="cancelled")
    assert old.id == first.id
    (new,) = open_bills("cld-change")
    assert new.price_cents == 9900
    assert new.start_date == first.start_date  # still the end of the trial
    subscriptions = list(CompanySubscription.objects.order_by("pk"))
    assert [s.status for s in subscriptions] == ["cancelled", "submitted"]
    assert subscriptions[1].replaces_id == subscriptions[0].pk
    assert subscriptions[1].platform_id == new.id
    assert "is now on the Premium plan" in done.text


def test_plan_change_after_the_trial_starts_at_the_next_cycle(platform, settings, premium):
    tune_billing(settings, FREE_TRIAL_SOURCE="group")
    premium.free_trial_days = 0
    premium.save()
    Plan.objects.filter(pk=premium.pk).update(offered=False)
    http = sso(
        platform, group_uid="cld-next-cycle", free_trial_end=timezone.now() - dt.timedelta(days=5)
    )
    (first,) = recurring_bills("cld-next-cycle")
    Plan.objects.filter(pk=premium.pk).update(offered=True)

    choose(platform, http, premium)

    (new,) = open_bills("cld-next-cycle")
    # The current month was charged on the old plan: the new bill starts a month later.
    assert abs(new.start_date - add_periods(first.start_date, "Month", 1)) < dt.timedelta(seconds=2)


def test_plan_change_during_an_outage_is_kept_and_done_when_the_platform_is_back(
    platform, settings, premium
):
    Plan.objects.filter(pk=premium.pk).update(offered=False)
    http = sso(platform, group_uid="cld-change-outage")
    Plan.objects.filter(pk=premium.pk).update(offered=True)
    settings.MAESTRANO = {**settings.MAESTRANO, "HTTP_RETRIES": 0}
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "FAULTS": {platform.api_id: {"scope": "account", "error_rate": 1.0, "error_status": 503}},
    }

    _, done = choose(platform, http, premium)

    assert "as soon as it is reachable" in done.text
    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "FAULTS": {}}
    retry_pending_billing_task.delay()
    retry_pending_billing_task.delay()

    (new,) = open_bills("cld-change-outage")
    assert new.price_cents == 9900
    assert len(recurring_bills("cld-change-outage", status="cancelled")) == 1


# --- per-user pricing ---------------------------------------------------------------------


def test_per_user_pricing_follows_members_joining_and_leaving(platform, settings):
    tune_billing(
        settings,
        DEFAULT_PLAN={"name": "Per seat", "price_cents": 1000, "currency": "USD", "per_user": True},
    )

    sso(platform, group_uid="cld-seats", user_uid="usr-seat-1")
    assert [b.price_cents for b in open_bills("cld-seats")] == [1000]

    sso(platform, group_uid="cld-seats", user_uid="usr-seat-2")
    sso(platform, group_uid="cld-seats", user_uid="usr-seat-3", role="Member")
    sso(platform, group_uid="cld-seats", user_uid="usr-seat-3", role="Member")  # no change
    (three,) = open_bills("cld-seats")
    assert three.price_cents == 3000

    call_command(
        "sandbox_send_account_webhook", app=platform.api_id, group="cld-seats", user="usr-seat-2"
    )

    (two,) = open_bills("cld-seats")
    assert two.price_cents == 2000
    assert len(recurring_bills("cld-seats", status="cancelled")) == 3
    current = CompanySubscription.objects.exclude(status="cancelled").get()
    assert (current.units, current.price_cents, current.platform_id) == (2, 2000, two.id)


def test_a_flat_plan_ignores_the_headcount(platform):
    sso(platform, group_uid="cld-flat", user_uid="usr-flat-1")
    sso(platform, group_uid="cld-flat", user_uid="usr-flat-2")

    (remote,) = recurring_bills("cld-flat")
    assert remote.price_cents == 2900


# --- statuses read back from the platform --------------------------------------------------


def start_on_the_platform(subscription):
    """Play the platform's clock: the recurring bill's first charge date has come."""
    from maestrano_sandbox.models import RecurringBill

    RecurringBill.objects.filter(uid=subscription.platform_id).update(
        start_date=timezone.now() - dt.timedelta(hours=1)
    )


def test_the_beat_task_reads_bill_and_recurring_bill_statuses_and_the_page_shows_them(platform):
    from maestrano_sandbox.models import Bill

    http = sso(platform, group_uid="cld-status")
    page = http.get(f"{platform.url}/billing/", timeout=TIMEOUT)
    assert "Status not read from the marketplace yet." in page.text
    form = parse_form(page.text, "buy-sms")
    http.post(
        f"{platform.url}{form['action']}",
        data=form["fields"],
        headers={"Referer": f"{platform.url}/billing/"},
        timeout=TIMEOUT,
    )
    charge = AdHocCharge.objects.get()
    subscription = CompanySubscription.objects.get()
    assert (subscription.status, charge.status) == ("submitted", "submitted")
    start_on_the_platform(subscription)
    Bill.objects.filter(uid=charge.platform_bill_id).update(status=Bill.INVOICED)  # invoiced

    result = refresh_billing_status_task.delay().get()

    assert result == {"companies": 1, "changed": 2, "failed": 0}
    subscription.refresh_from_db()
    charge.refresh_from_db()
    assert subscription.status == CompanySubscription.Status.ACTIVE
    assert charge.status == AdHocCharge.Status.INVOICED
    assert subscription.status_checked_at is not None
    page = http.get(f"{platform.url}/billing/", timeout=TIMEOUT)
    assert 'id="recurring-bill-status">Active<' in page.text
    assert "Invoiced" in page.text
    assert "Status read from the marketplace" in page.text


def test_a_recurring_bill_cancelled_on_the_platform_lets_the_admin_choose_again(platform):
    http = sso(platform, group_uid="cld-remote-cancel")
    subscription = CompanySubscription.objects.get()
    AccountClient().cancel_recurring_bill(subscription.platform_id)  # the platform cancels it

    refresh_billing_status_task.delay()

    subscription.refresh_from_db()
    assert subscription.status == CompanySubscription.Status.CANCELLED
    assert not subscription.platform_cancel_pending
    page = http.get(f"{platform.url}/billing/", timeout=TIMEOUT)
    assert "Choose a plan" in page.text
    assert refresh_billing_status_task.delay().get()["companies"] == 0  # nothing left to read


def test_a_status_refresh_during_an_outage_changes_nothing_and_catches_up_later(platform, settings):
    sso(platform, group_uid="cld-status-outage")
    subscription = CompanySubscription.objects.get()
    start_on_the_platform(subscription)
    settings.MAESTRANO = {**settings.MAESTRANO, "HTTP_RETRIES": 0}
    settings.MAESTRANO_SANDBOX = {
        **settings.MAESTRANO_SANDBOX,
        "FAULTS": {platform.api_id: {"scope": "account", "error_rate": 1.0}},
    }

    assert refresh_billing_status_task.delay().get() == {"companies": 0, "changed": 0, "failed": 1}
    subscription.refresh_from_db()
    assert subscription.status == CompanySubscription.Status.SUBMITTED

    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "FAULTS": {}}
    assert refresh_billing_status_task.delay().get()["changed"] == 1
    subscription.refresh_from_db()
    assert subscription.status == CompanySubscription.Status.ACTIVE


def test_the_status_refresh_is_scheduled_with_a_configurable_interval(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["maestrano-refresh-billing-status"]

    assert entry["task"] == "maestrano_accounts.billing.tasks.refresh_billing_status_task"
    assert entry["schedule"] > 0


# --- cancellation: billing reacts to the company's cancellation ---------------------------------


def test_the_sweep_cancels_the_billing_of_a_company_cancelled_without_it(platform):
    sso(platform, group_uid="cld-crashed")
    # The company's cancellation committed but billing's reaction never ran (a crash).
    Company.objects.filter(group_uid="cld-crashed").update(
        status=Company.Status.CANCELLED, cancelled_at=timezone.now()
    )

    assert retry_pending_billing_task.delay().get()["cancelled_companies"] == 1

    assert open_bills("cld-crashed") == []
    assert CompanySubscription.objects.get().status == CompanySubscription.Status.CANCELLED
    assert retry_pending_billing_task.delay().get()["cancelled_companies"] == 0
