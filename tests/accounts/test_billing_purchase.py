"""Buying SMS: the form's POST records the purchase and answers at once; the bill is sent in
the background and the purchase page follows it (docs/billing.md, 'Ad-hoc bills').

Against the sandbox on a live server, through the app's pages and the purchase's JSON. What
the platform received is read from the sandbox's own tables (the Account API may be
failing on purpose then). Tasks run eagerly (the billing tests' way), except where the
request must not wait: there the demo's worker (its filesystem broker, as ``make demo``
runs it) sends the bill.
"""

from __future__ import annotations

import re
import time

import pytest
import requests

from crm.models import SmsCredit
from maestrano_accounts.billing.tasks import retry_pending_billing_task, submit_charge_task
from maestrano_accounts.models import AdHocCharge, Company
from maestrano_integration.account import AccountClient
from maestrano_sandbox import faults
from tests.accounts.test_billing import after_the_grace_period, set_faults, sso, tune
from tests.accounts.test_billing_unanswered import sandbox_bills
from tests.helpers.saml import parse_form

TIMEOUT = 10


def purchase_form(platform, http, page="/billing/"):
    """The "Buy 100 SMS" form of ``page``: its URL, fields and the headers of a browser."""
    text = http.get(f"{platform.url}{page}", timeout=TIMEOUT).text
    form = parse_form(text, "buy-sms")
    return f"{platform.url}{form['action']}", form["fields"], {"Referer": f"{platform.url}{page}"}


def buy(platform, http, form):
    url, fields, headers = form
    return http.post(url, data=fields, headers=headers, timeout=TIMEOUT, allow_redirects=False)


def status_of(platform, http, answer):
    """The purchase's JSON, from the page the POST redirected to."""
    page = answer.headers["Location"].split("?")[0]
    response = http.get(f"{platform.url}{page}status.json", timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["Cache-Control"].startswith("max-age=0")
    return response.json()


# --- the request does not wait for the platform -------------------------------------------


@pytest.mark.worker
def test_the_purchase_answers_before_the_account_api_is_called_then_its_page_shows_it_billed(
    platform, request
):
    http = sso(platform, group_uid="cld-buy-async")
    form = purchase_form(platform, http)
    worker = request.getfixturevalue("demo_worker")  # tasks go to the worker from now on

    # The sandbox holds every Account API call of the app until the block ends: a request
    # that called it would not answer, and the worker's bill cannot arrive early, however
    # slow the machine (a delay only made both likely).
    with faults.holding(platform.api_id, area="account") as gate:
        try:
            answer = buy(platform, http, form)
        except requests.Timeout:
            pytest.fail(f"The purchase's POST waited for the Account API: {gate.calls}")
        received = sandbox_bills("cld-buy-async")  # what the platform holds as the POST returns
        page = http.get(f"{platform.url}{answer.headers['Location']}", timeout=TIMEOUT)
        try:
            held = gate.wait_for_call(timeout=60)  # the worker's, sent after the POST answered
        except TimeoutError:
            pytest.fail(worker.tail())

    assert answer.status_code == 302
    assert received == []
    assert held == "POST /sandbox/api/v1/account/bills"
    charge = AdHocCharge.objects.get(company__group_uid="cld-buy-async")
    assert answer.headers["Location"] == f"/billing/purchases/{charge.pk}/"
    assert page.status_code == 200
    assert 'id="purchase-status">Pending<' in page.text
    assert "this page follows it" in page.text
    assert 'data-status-url="/billing/purchases/' in page.text  # the page polls its JSON

    deadline = time.monotonic() + 60
    while (status := status_of(platform, http, answer))["state"] == "pending":
        assert time.monotonic() < deadline, worker.tail()
        time.sleep(0.2)

    (remote,) = sandbox_bills("cld-buy-async")
    assert status == {
        "state": "billed",
        "label": "Billed",
        "detail": "The marketplace has the bill: it is charged to Company cld-buy-async on "
        "its next invoice.",
        "bill_id": remote.uid,
        "final": True,
    }
    page = http.get(f"{platform.url}{answer.headers['Location']}", timeout=TIMEOUT)
    assert 'id="purchase-status">Billed<' in page.text and remote.uid in page.text
    assert [credit.quantity for credit in SmsCredit.objects.all()] == [100]


# --- one purchase, one bill ------------------------------------------------------------------


def test_a_double_submit_is_one_purchase_one_bill_and_one_credit(platform):
    http = sso(platform, group_uid="cld-buy-twice", currency="EUR")
    form = purchase_form(platform, http)

    first = buy(platform, http, form)
    second = buy(platform, http, form)
    submit_charge_task.delay(AdHocCharge.objects.get().pk)  # a task run again changes nothing

    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    (remote,) = AccountClient().list_bills(group_id="cld-buy-twice")
    assert (remote.price_cents, remote.currency, remote.units) == (500, "EUR", 100)
    charge = AdHocCharge.objects.get()
    assert (charge.platform_bill_id, charge.attempts) == (remote.id, 1)
    assert status_of(platform, http, second)["state"] == "billed"
    assert [credit.quantity for credit in SmsCredit.objects.all()] == [100]
    # The repeat is told: the purchase the form already made, nothing bought twice.
    page = http.get(f"{platform.url}{second.headers['Location']}", timeout=TIMEOUT)
    assert "This form had already been sent" in page.text
    dashboard = http.get(f"{platform.url}/dashboard/", timeout=TIMEOUT)
    assert 'id="sms-bought">SMS bought: <strong>100<' in dashboard.text
    assert "This form had already been sent" not in dashboard.text  # shown once


def test_pages_with_a_buy_form_are_never_kept_for_the_back_button(platform):
    """A page brought back by Back would send its used one-time key again (a purchase
    that silently reopens the earlier one): those pages are never cached."""
    http = sso(platform, group_uid="cld-buy-back")

    for path in ("/dashboard/", "/billing/"):
        page = http.get(f"{platform.url}{path}", timeout=TIMEOUT)
        assert 'name="idempotency_key"' in page.text, path
        assert "no-store" in page.headers["Cache-Control"], path


def test_a_gateway_timeout_ends_in_one_bill_and_the_page_says_pending_until_it_is_found(
    platform, settings
):
    http = sso(platform, group_uid="cld-buy-504")
    form = purchase_form(platform, http, page="/dashboard/")
    tune(settings, HTTP_RETRIES=0)
    set_faults(platform, settings, gateway_timeout_rate=1.0)  # applied, answered 504

    answer = buy(platform, http, form)
    set_faults(platform, settings)
    again = buy(platform, http, form)  # the same form, while the outcome is unknown
    retry_pending_billing_task.delay()  # within the grace period: nothing is sent

    assert answer.headers["Location"].endswith("?next=%2Fdashboard%2F%23billing")
    page = http.get(f"{platform.url}{again.headers['Location']}", timeout=TIMEOUT)
    assert 'id="purchase-status">Pending<' in page.text
    assert "waiting for its answer" in page.text and "never billed twice" in page.text
    assert re.search(r"the marketplace is asked (in about \d+ minutes|within a minute)", page.text)
    assert 'id="purchase-back"' in page.text and 'href="/dashboard/#billing"' in page.text
    assert len(sandbox_bills("cld-buy-504")) == 1
    assert not SmsCredit.objects.exists()  # not granted before the bill is confirmed

    with after_the_grace_period():
        retry_pending_billing_task.delay()  # finds the bill by its reference
        retry_pending_billing_task.delay()

    (remote,) = sandbox_bills("cld-buy-504")
    status = status_of(platform, http, answer)
    assert (status["state"], status["bill_id"]) == ("billed", remote.uid)
    assert AdHocCharge.objects.get().attempts == 2  # the create, then the lookup
    assert [credit.quantity for credit in SmsCredit.objects.all()] == [100]


def test_a_server_error_leaves_the_purchase_pending_and_the_sweep_bills_it_once(platform, settings):
    http = sso(platform, group_uid="cld-buy-503")
    form = purchase_form(platform, http)
    tune(settings, HTTP_RETRIES=0)
    set_faults(platform, settings, error_rate=1.0, error_status=503)

    answer = buy(platform, http, form)
    pending = status_of(platform, http, answer)
    set_faults(platform, settings)
    retry_pending_billing_task.delay()
    retry_pending_billing_task.delay()

    assert (pending["state"], pending["final"]) == ("pending", False)
    assert "could not be reached" in pending["detail"]
    assert status_of(platform, http, answer)["state"] == "billed"
    assert len(sandbox_bills("cld-buy-503")) == 1
    assert [credit.quantity for credit in SmsCredit.objects.all()] == [100]


def test_a_refused_purchase_says_nothing_was_charged_and_what_to_do(platform, settings):
    http = sso(platform, group_uid="cld-buy-422")
    form = purchase_form(platform, http)
    tune(settings, HTTP_RETRIES=0)
    set_faults(platform, settings, error_rate=1.0, error_status=422)

    answer = buy(platform, http, form)
    set_faults(platform, settings)
    retry_pending_billing_task.delay()  # a refusal is not sent again

    status = status_of(platform, http, answer)
    assert (status["state"], status["label"], status["final"]) == ("failed", "Failed", True)
    assert "Nothing was charged. Buy again from the billing page" in status["detail"]
    page = http.get(f"{platform.url}{answer.headers['Location']}", timeout=TIMEOUT)
    assert 'id="purchase-status">Failed<' in page.text
    # The Account API's answer (method, URL, status) stays for the admin site and the logs.
    charge = AdHocCharge.objects.get()
    assert "422" in charge.last_error
    assert "422" not in status["detail"] and "/api/" not in page.text
    assert sandbox_bills("cld-buy-422") == []
    assert not SmsCredit.objects.exists()


# --- who sees a purchase ---------------------------------------------------------------------


def test_a_purchase_is_seen_by_its_company_only(platform):
    http = sso(platform, group_uid="cld-buy-own")
    answer = buy(platform, http, purchase_form(platform, http))
    other = sso(platform, group_uid="cld-buy-other", user_uid="usr-other")
    anonymous = platform.session()
    url = f"{platform.url}{answer.headers['Location']}"

    assert http.get(url, timeout=TIMEOUT).status_code == 200
    assert other.get(url, timeout=TIMEOUT).status_code == 404
    hidden = other.get(f"{url}status.json", timeout=TIMEOUT)
    assert hidden.status_code == 404 and hidden.json() == {"error": "No such purchase"}
    refused = anonymous.get(f"{url}status.json", timeout=TIMEOUT, allow_redirects=False)
    assert refused.status_code == 403 and refused.json() == {"error": "Log in first."}
    assert Company.objects.count() == 2


def test_a_grant_that_fails_is_made_with_the_bill_found_again_never_twice(platform):
    from maestrano_accounts.signals import charge_billed

    failures = []

    def fails_once(sender, **kwargs):
        if not failures:
            failures.append(kwargs["charge"].pk)
            raise RuntimeError("the project's grant failed")

    http = sso(platform, group_uid="cld-buy-grant")
    form = purchase_form(platform, http)
    charge_billed.connect(fails_once, dispatch_uid="test-fails-once")
    try:
        answer = buy(platform, http, form)
        pending = status_of(platform, http, answer)
        retry_pending_billing_task.delay()  # within the grace period: left alone
        with after_the_grace_period():
            retry_pending_billing_task.delay()  # finds the bill by its reference
            retry_pending_billing_task.delay()
    finally:
        charge_billed.disconnect(dispatch_uid="test-fails-once")

    assert len(failures) == 1
    assert pending["state"] == "pending"  # the bill's id was not kept without its grant
    (remote,) = sandbox_bills("cld-buy-grant")
    assert status_of(platform, http, answer)["bill_id"] == remote.uid
    assert [credit.quantity for credit in SmsCredit.objects.all()] == [100]


# --- a bill the marketplace cancels ----------------------------------------------------------


def test_the_sms_of_a_bill_the_marketplace_cancels_no_longer_count(platform):
    from maestrano_accounts.billing.tasks import refresh_billing_status_task

    http = sso(platform, group_uid="cld-buy-cancelled")
    answer = buy(platform, http, purchase_form(platform, http))
    assert status_of(platform, http, answer)["state"] == "billed"
    dashboard = http.get(f"{platform.url}/dashboard/", timeout=TIMEOUT)
    assert 'id="sms-bought">SMS bought: <strong>100<' in dashboard.text

    AccountClient().cancel_bill(AdHocCharge.objects.get().platform_bill_id)  # the platform's
    refresh_billing_status_task.delay()

    assert AdHocCharge.objects.get().status == AdHocCharge.Status.CANCELLED
    dashboard = http.get(f"{platform.url}/dashboard/", timeout=TIMEOUT)
    assert 'id="sms-bought">SMS bought: <strong>0<' in dashboard.text
    # Bought again: a new purchase, credited once.
    again = buy(platform, http, purchase_form(platform, http))
    assert status_of(platform, http, again)["state"] == "billed"
    dashboard = http.get(f"{platform.url}/dashboard/", timeout=TIMEOUT)
    assert 'id="sms-bought">SMS bought: <strong>100<' in dashboard.text


def test_a_bill_found_already_cancelled_grants_nothing(platform, settings):
    """An earlier attempt's bill, found by its reference but cancelled meanwhile on the
    marketplace: recorded as cancelled, and no SMS credited."""
    http = sso(platform, group_uid="cld-buy-found-cancelled")
    form = purchase_form(platform, http)
    tune(settings, HTTP_RETRIES=0)
    set_faults(platform, settings, gateway_timeout_rate=1.0)  # applied, answered 504
    answer = buy(platform, http, form)
    set_faults(platform, settings)
    (remote,) = sandbox_bills("cld-buy-found-cancelled")
    AccountClient().cancel_bill(remote.uid)

    with after_the_grace_period():
        retry_pending_billing_task.delay()  # finds the bill by its reference

    charge = AdHocCharge.objects.get()
    assert (charge.platform_bill_id, charge.status) == (remote.uid, AdHocCharge.Status.CANCELLED)
    assert not SmsCredit.objects.exists()
    assert status_of(platform, http, answer)["state"] != "billed"
