"""Billing against the sandbox on a live server: set-up on first SSO, ad-hoc bills, outages.

The platform's side is read through the Account API (``AccountClient``) as our
app would; the sandbox's own tables are only read while faults are injected
(the API itself is failing then).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.utils import timezone

from maestrano_accounts.billing.actions import charge_company
from maestrano_accounts.billing.services import InvalidBill, answer_grace, set_up_billing
from maestrano_accounts.billing.tasks import retry_pending_billing_task
from maestrano_accounts.models import AdHocCharge, Company, CompanySubscription
from maestrano_integration.account import AccountClient
from tests.helpers.saml import parse_form
from tests.helpers.sso_flow import login

User = get_user_model()

TIMEOUT = 10


def sso(platform, http=None, *, group_uid, user_uid="usr-billing", **kwargs):
    http = http or platform.session()
    answer = login(platform, http, user_uid=user_uid, group_uid=group_uid, **kwargs)
    assert answer.status_code == 302, answer.text[:500]
    return http


def recurring_bills(group_uid):
    return AccountClient().list_recurring_bills(group_id=group_uid)


def bills(group_uid):
    return AccountClient().list_bills(group_id=group_uid)


def sandbox_recurring_bills(group_uid):
    from maestrano_sandbox.models import RecurringBill

    return list(RecurringBill.objects.filter(group__uid=group_uid))


def set_faults(platform, settings, **plan):
    faults = {platform.api_id: {"scope": "account", **plan}} if plan else {}
    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "FAULTS": faults}


def tune(settings, **values):
    settings.MAESTRANO = {**settings.MAESTRANO, **values}


def after_the_grace_period():
    """The clock moved past the grace period of every create sent until now (a create that
    got no answer is not sent again before, docs/billing.md)."""
    return time_machine.travel(timezone.now() + answer_grace() + dt.timedelta(seconds=1))


# --- set-up on company creation ---------------------------------------------------------


def test_first_sso_of_a_new_group_creates_one_recurring_bill_after_the_group_trial(platform):
    trial_end = (timezone.now() + dt.timedelta(days=40)).replace(microsecond=0)

    sso(platform, group_uid="cld-bill1", free_trial_end=trial_end, currency="USD")
    sso(platform, group_uid="cld-bill1", user_uid="usr-teammate")  # same group again

    remote = recurring_bills("cld-bill1")
    assert len(remote) == 1
    assert remote[0].start_date >= trial_end
    assert remote[0].start_date < trial_end + dt.timedelta(days=1)
    assert remote[0].status == "submitted"
    assert (remote[0].price_cents, remote[0].currency, remote[0].period) == (2900, "USD", "Month")
    subscription = CompanySubscription.objects.get(company__group_uid="cld-bill1")
    assert subscription.platform_id == remote[0].id
    assert subscription.status == CompanySubscription.Status.SUBMITTED
    assert subscription.marker in remote[0].description


def test_the_plan_trial_applies_when_it_ends_later_than_the_group_trial(platform):
    group_trial_end = timezone.now() + dt.timedelta(days=2)

    sso(platform, group_uid="cld-bill2", free_trial_end=group_trial_end)

    (remote,) = recurring_bills("cld-bill2")
    company = Company.objects.get(group_uid="cld-bill2")
    plan_trial_end = company.created_at + dt.timedelta(days=14)  # default plan: 14 days
    assert abs(remote.start_date - plan_trial_end) < dt.timedelta(seconds=5)


def test_free_trial_source_group_ignores_the_plan_trial(platform, settings):
    tune(settings, BILLING={"FREE_TRIAL_SOURCE": "group"})
    group_trial_end = (timezone.now() + dt.timedelta(days=3)).replace(microsecond=0)

    sso(platform, group_uid="cld-bill3", free_trial_end=group_trial_end)

    (remote,) = recurring_bills("cld-bill3")
    assert remote.start_date == group_trial_end


def test_billing_never_starts_in_the_past_when_the_trial_is_over(platform, settings):
    tune(settings, BILLING={"FREE_TRIAL_SOURCE": "group"})
    before = timezone.now()

    sso(platform, group_uid="cld-bill4", free_trial_end=timezone.now() - dt.timedelta(days=30))

    (remote,) = recurring_bills("cld-bill4")
    assert remote.start_date >= before - dt.timedelta(seconds=1)


def test_set_up_billing_again_never_creates_a_second_recurring_bill(platform):
    sso(platform, group_uid="cld-bill5")
    company = Company.objects.get(group_uid="cld-bill5")

    set_up_billing(company=company)
    set_up_billing(company=company)

    assert len(recurring_bills("cld-bill5")) == 1


# --- outages during SSO -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "answer_lost"),
    [
        ({"error_rate": 1.0, "error_status": 503}, False),
        # A gateway's answer: the platform behind it may have applied the create.
        ({"error_rate": 1.0, "error_status": 502}, True),
        ({"drop_rate": 1.0}, True),
    ],
    ids=["all-503", "all-502", "dropped-connections"],
)
def test_an_outage_during_sso_logs_in_and_bills_once_when_the_platform_is_back(
    platform, settings, fault, answer_lost
):
    tune(settings, HTTP_RETRIES=0)
    set_faults(platform, settings, **fault)

    http = sso(platform, group_uid="cld-outage")

    assert http.get(f"{platform.url}/dashboard/", timeout=TIMEOUT).status_code == 200
    subscription = CompanySubscription.objects.get(company__group_uid="cld-outage")
    assert subscription.status == CompanySubscription.Status.PENDING
    assert subscription.platform_id == ""
    assert subscription.last_error
    assert sandbox_recurring_bills("cld-outage") == []

    assert subscription.awaiting_answer is answer_lost
    set_faults(platform, settings)  # the platform is back
    if answer_lost:
        # A connection dropped after sending: the create may have been applied, so it is
        # not sent again within the grace period, then looked up first.
        assert retry_pending_billing_task.delay().get()["subscriptions_to_submit"] == 0
        with after_the_grace_period():
            retry_pending_billing_task.delay()
    else:
        retry_pending_billing_task.delay()
    retry_pending_billing_task.delay()

    remote = recurring_bills("cld-outage")
    assert len(remote) == 1
    subscription.refresh_from_db()
    assert subscription.platform_id == remote[0].id
    assert subscription.last_error == ""


def test_a_create_applied_by_the_platform_whose_answer_was_lost_is_adopted_not_repeated(
    platform, settings
):
    # The sandbox waits before handling each call; our client gives up first, but
    # the platform still creates the recurring bill afterwards: the answer is lost.
    tune(settings, HTTP_TIMEOUT=0.3, HTTP_RETRIES=0)
    set_faults(platform, settings, latency_ms=900)

    sso(platform, group_uid="cld-lost")

    subscription = CompanySubscription.objects.get(company__group_uid="cld-lost")
    assert subscription.platform_id == ""
    assert "Timeout" in subscription.last_error or "timed out" in subscription.last_error
    deadline = time.monotonic() + 10
    while not sandbox_recurring_bills("cld-lost") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(sandbox_recurring_bills("cld-lost")) == 1  # applied on the platform

    set_faults(platform, settings)
    tune(settings, HTTP_TIMEOUT=10)
    with after_the_grace_period():
        retry_pending_billing_task.delay()

    remote = recurring_bills("cld-lost")
    assert len(remote) == 1
    subscription.refresh_from_db()
    assert subscription.platform_id == remote[0].id
    assert subscription.status == CompanySubscription.Status.SUBMITTED


# --- ad-hoc bills ---------------------------------------------------------------------------


def test_a_create_applied_but_answered_504_by_a_gateway_is_adopted_not_repeated(platform, settings):
    # The platform creates the recurring bill, then a gateway in front of it answers 504.
    tune(settings, HTTP_RETRIES=0)
    set_faults(platform, settings, gateway_timeout_rate=1.0)

    sso(platform, group_uid="cld-gateway")

    subscription = CompanySubscription.objects.get(company__group_uid="cld-gateway")
    assert (subscription.platform_id, subscription.awaiting_answer) == ("", True)
    assert "504" in subscription.last_error
    assert len(sandbox_recurring_bills("cld-gateway")) == 1  # applied on the platform
    set_faults(platform, settings)
    assert retry_pending_billing_task.delay().get()["subscriptions_to_submit"] == 0
    with after_the_grace_period():
        retry_pending_billing_task.delay()

    (remote,) = recurring_bills("cld-gateway")
    subscription.refresh_from_db()
    assert subscription.platform_id == remote.id
    assert subscription.status == CompanySubscription.Status.SUBMITTED


def test_a_charge_answered_504_by_a_gateway_is_billed_once(platform, settings):
    sso(platform, group_uid="cld-charge-gateway")
    company = Company.objects.get(group_uid="cld-charge-gateway")
    tune(settings, HTTP_RETRIES=0)
    set_faults(platform, settings, gateway_timeout_rate=1.0)

    charge = charge_company(
        company=company, amount_cents=100, description="SMS", idempotency_key="sms-gw"
    )

    assert (charge.status, charge.awaiting_answer) == (AdHocCharge.Status.PENDING, True)
    set_faults(platform, settings)
    retry_pending_billing_task.delay()
    charge_company(company=company, amount_cents=100, description="SMS", idempotency_key="sms-gw")
    assert len(bills("cld-charge-gateway")) == 1  # not sent again within the grace period
    with after_the_grace_period():
        retry_pending_billing_task.delay()

    (remote,) = bills("cld-charge-gateway")
    charge.refresh_from_db()
    assert charge.platform_bill_id == remote.id


def test_buying_sms_in_the_app_sends_one_bill_even_when_the_form_is_submitted_twice(platform):
    http = sso(platform, group_uid="cld-sms", currency="EUR")
    page = http.get(f"{platform.url}/billing/", timeout=TIMEOUT)
    assert page.status_code == 200
    form = parse_form(page.text, "buy-sms")
    url = f"{platform.url}{form['action']}"
    headers = {"Referer": f"{platform.url}/billing/"}

    first = http.post(url, data=form["fields"], headers=headers, timeout=TIMEOUT)
    second = http.post(url, data=form["fields"], headers=headers, timeout=TIMEOUT)

    assert first.status_code == second.status_code == 200  # redirected to the purchase
    assert first.url == second.url
    assert "100 SMS" in second.text
    (remote,) = bills("cld-sms")
    assert remote.price_cents == 500
    assert remote.currency == "EUR"
    assert remote.units == 100
    assert remote.description.startswith("100 SMS")
    charge = AdHocCharge.objects.get()
    assert charge.platform_bill_id == remote.id
    assert charge.status == AdHocCharge.Status.SUBMITTED


def test_with_billing_off_no_purchase_is_offered_and_a_posted_one_bills_nothing(platform, settings):
    """``MAESTRANO["BILLING"]["ENABLED"] = False`` bills nothing: the billing page offers
    no purchase, and the form posted all the same (shown before billing was turned off)
    is a 404, as choosing a plan is. It was a real bill on the platform."""
    http = sso(platform, group_uid="cld-sms-off")
    form = parse_form(http.get(f"{platform.url}/billing/", timeout=TIMEOUT).text, "buy-sms")
    settings.MAESTRANO = {**settings.MAESTRANO, "BILLING": {"ENABLED": False}}

    page = http.get(f"{platform.url}/billing/", timeout=TIMEOUT)
    posted = http.post(
        f"{platform.url}{form['action']}",
        data=form["fields"],
        headers={"Referer": f"{platform.url}/billing/"},
        timeout=TIMEOUT,
    )

    assert page.status_code == 200
    assert 'id="buy-sms"' not in page.text
    assert posted.status_code == 404
    assert not AdHocCharge.objects.exists()
    assert bills("cld-sms-off") == []


def test_buying_from_the_dashboard_links_back_to_it_and_a_foreign_next_is_ignored(platform):
    http = sso(platform, group_uid="cld-sms-back")
    page = http.get(f"{platform.url}/dashboard/", timeout=TIMEOUT)
    form = parse_form(page.text, "buy-sms")
    url = f"{platform.url}{form['action']}"
    headers = {"Referer": f"{platform.url}/dashboard/"}

    back = http.post(url, data=form["fields"], headers=headers, timeout=TIMEOUT)
    foreign = {**form["fields"], "idempotency_key": "k2", "next": "http://evil.example/"}
    elsewhere = http.post(url, data=foreign, headers=headers, timeout=TIMEOUT)
    # A word, not a path: no URL name either.
    word = {**form["fields"], "idempotency_key": "k3", "next": "people"}
    nowhere = http.post(url, data=word, headers=headers, timeout=TIMEOUT)

    # Each purchase's page, with a link back to a local page only.
    assert back.history[0].headers["Location"].endswith("/?next=%2Fdashboard%2F%23billing")
    assert '<a href="/dashboard/#billing" id="purchase-back">' in back.text
    assert 'id="purchase-back"' not in elsewhere.text and "evil.example" not in elsewhere.text
    assert 'id="purchase-back"' not in nowhere.text
    assert "?" not in elsewhere.history[0].headers["Location"]
    assert "?" not in nowhere.history[0].headers["Location"]
    assert len(bills("cld-sms-back")) == 3


def test_a_purchase_form_with_a_nul_in_its_key_is_refused_without_a_charge(platform):
    http = sso(platform, group_uid="cld-nul")
    page = http.get(f"{platform.url}/billing/", timeout=TIMEOUT)
    form = parse_form(page.text, "buy-sms")

    answer = http.post(
        f"{platform.url}{form['action']}",
        data={**form["fields"], "idempotency_key": "k\x00"},
        headers={"Referer": f"{platform.url}/billing/"},
        timeout=TIMEOUT,
    )

    assert answer.status_code == 200
    assert "Purchase refused" in answer.text
    assert not AdHocCharge.objects.exists()
    assert bills("cld-nul") == []


def test_buying_without_the_csrf_token_is_refused(platform):
    http = sso(platform, group_uid="cld-csrf")

    response = http.post(
        f"{platform.url}/billing/buy/sms/", data={"idempotency_key": "k1"}, timeout=TIMEOUT
    )

    assert response.status_code == 403
    assert bills("cld-csrf") == []


def test_charge_company_sends_period_and_units_and_is_idempotent_per_key(platform):
    sso(platform, group_uid="cld-charge", currency="AUD")
    company = Company.objects.get(group_uid="cld-charge")
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(2030, 1, 31, tzinfo=dt.UTC)

    first = charge_company(
        company=company,
        amount_cents=1999,
        description="Extra storage",
        idempotency_key="storage-2030-01",
        units="2.5",
        period_started_at=start,
        period_ended_at=end,
        currency="NZD",
    )
    again = charge_company(
        company=company,
        amount_cents=1999,
        description="Extra storage",
        idempotency_key="storage-2030-01",
        units="2.5",
        period_started_at=start,
        period_ended_at=end,
        currency="NZD",
    )

    assert again.pk == first.pk
    (remote,) = bills("cld-charge")
    assert remote.id == first.platform_bill_id
    assert (remote.price_cents, remote.currency, str(remote.units)) == (1999, "NZD", "2.50")
    assert (remote.period_started_at, remote.period_ended_at) == (start, end)


def test_a_charge_during_an_outage_is_sent_once_when_the_platform_is_back(platform, settings):
    sso(platform, group_uid="cld-charge-outage")
    company = Company.objects.get(group_uid="cld-charge-outage")
    tune(settings, HTTP_RETRIES=0)
    set_faults(platform, settings, error_rate=1.0, error_status=503)

    charge = charge_company(
        company=company, amount_cents=100, description="SMS", idempotency_key="sms-1"
    )

    assert charge.status == AdHocCharge.Status.PENDING
    assert "503" in charge.last_error or "50" in charge.last_error
    set_faults(platform, settings)
    retry_pending_billing_task.delay()
    charge_company(company=company, amount_cents=100, description="SMS", idempotency_key="sms-1")

    (remote,) = bills("cld-charge-outage")
    charge.refresh_from_db()
    assert charge.platform_bill_id == remote.id


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"amount_cents": -100}, "price_cents"),
        ({"amount_cents": 10.5}, "price_cents"),
        ({"amount_cents": "100"}, "price_cents"),
        ({"currency": "ZZZ"}, "currency"),
        ({"currency": "dollars"}, "currency"),
        ({"description": ""}, "description"),
        ({"description": "   "}, "description"),
        ({"idempotency_key": ""}, "idempotency_key"),
        # Text no database stores (PostgreSQL refused the NUL: 500 from the SMS form).
        ({"idempotency_key": "k\x00"}, "idempotency_key"),
        ({"description": "SMS \ud800"}, "description"),
        ({"units": "0"}, "units"),
        ({"units": "1.234"}, "units"),
        (
            {
                "period_started_at": dt.datetime(2030, 2, 1, tzinfo=dt.UTC),
                "period_ended_at": dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
            },
            "period_ended_at",
        ),
    ],
)
def test_an_invalid_bill_is_refused_locally_before_any_http_call(platform, settings, values, field):
    sso(platform, group_uid="cld-invalid")
    company = Company.objects.get(group_uid="cld-invalid")
    arguments = {
        "amount_cents": 100,
        "description": "SMS",
        "idempotency_key": "k-1",
        **values,
    }

    with pytest.raises(InvalidBill) as caught:
        charge_company(company=company, **arguments)

    assert field in caught.value.errors
    assert not AdHocCharge.objects.exists()
    assert bills("cld-invalid") == []


def test_reusing_a_key_for_a_different_charge_is_refused(platform):
    sso(platform, group_uid="cld-reuse")
    company = Company.objects.get(group_uid="cld-reuse")
    charge_company(company=company, amount_cents=100, description="SMS", idempotency_key="k")

    with pytest.raises(InvalidBill, match="idempotency_key"):
        charge_company(company=company, amount_cents=900, description="SMS", idempotency_key="k")

    assert len(bills("cld-reuse")) == 1


def test_the_admin_retry_action_creates_the_pending_recurring_bill_once(platform, settings):
    from django.contrib.auth import get_user_model

    User = get_user_model()

    tune(settings, HTTP_RETRIES=0)
    set_faults(platform, settings, error_rate=1.0, error_status=503)
    sso(platform, group_uid="cld-admin")
    set_faults(platform, settings)
    subscription = CompanySubscription.objects.get(company__group_uid="cld-admin")
    User.objects.create_superuser("root", "root@example.com", "pw-root-123")
    admin = platform.session()
    admin_page = f"{platform.url}/admin/maestrano_accounts/companysubscription/"
    login_page = admin.get(f"{platform.url}/admin/login/", timeout=TIMEOUT)
    admin.post(
        f"{platform.url}/admin/login/?next=/admin/",
        data={
            "username": "root",
            "password": "pw-root-123",
            "csrfmiddlewaretoken": login_page.cookies.get("csrftoken")
            or admin.cookies["csrftoken"],
        },
        headers={"Referer": f"{platform.url}/admin/login/"},
        timeout=TIMEOUT,
    )
    listing = admin.get(admin_page, timeout=TIMEOUT)
    assert "Injected fault" in listing.text  # the last error is shown

    for _ in range(2):
        admin.post(
            admin_page,
            data={
                "action": "retry",
                "_selected_action": [subscription.pk],
                "csrfmiddlewaretoken": admin.cookies["csrftoken"],
            },
            headers={"Referer": admin_page},
            timeout=TIMEOUT,
        )

    (remote,) = recurring_bills("cld-admin")
    subscription.refresh_from_db()
    assert subscription.platform_id == remote.id


# Celery's Django fixup runs the system checks, which Django 6 runs against every database.
@pytest.mark.django_db(databases="__all__")
def test_the_beat_schedule_sweeps_pending_billing_and_names_only_registered_tasks(settings):
    from config.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert "maestrano_accounts.billing.tasks.retry_pending_billing_task" in scheduled
    assert scheduled <= set(app.tasks), scheduled - set(app.tasks)
