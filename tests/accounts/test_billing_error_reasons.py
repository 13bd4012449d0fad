"""What the Account API answered, as our errors, logs and billing rows keep it: the
platform's reason by the one rule of ``maestrano_integration.http.answer_reason`` (one
line, at most 200 characters, our credentials hidden), however huge, multi-line or
indiscreet the answer. Against the sandbox on a live server, its fault injection answering
the error text (``error_detail``) in the Account API's own envelope."""

from __future__ import annotations

import base64
import logging

import pytest

from maestrano_accounts.billing.actions import charge_company
from maestrano_accounts.models import AdHocCharge, Company
from maestrano_integration.account import AccountApiError, AccountClient
from tests.accounts.test_billing import set_faults, sso, tune

#: A reason is at most 200 characters; the message adds the status, method and URL.
MESSAGE_BOUND = 200 + 200


def token(platform) -> str:
    return base64.b64encode(f"{platform.api_id}:{platform.api_key}".encode()).decode()


def huge_detail(platform) -> str:
    """About 100 KB on many lines, the api key on the first and the last."""
    line = "Traceback (most recent call last): frame of the platform's own code " * 2
    return "\n".join(
        [f"api_key={platform.api_key}", *[line] * 700, f"Authorization: Basic {token(platform)}"]
    )


def echoing_detail(platform) -> str:
    return (
        f"credentials {platform.api_id}:{platform.api_key} refused\r\n"
        f"Authorization: Basic {token(platform)}\n\tsee the logs"
    )


def assert_clean(text: str, platform) -> None:
    assert text
    assert "\n" not in text and "\r" not in text and "\t" not in text
    assert len(text) <= MESSAGE_BOUND, len(text)
    assert platform.api_key not in text
    assert token(platform) not in text


@pytest.mark.parametrize("detail", [huge_detail, echoing_detail], ids=["100kB", "echo"])
def test_the_clients_error_says_the_reason_on_one_bounded_line_without_the_key(
    platform, settings, caplog, detail
):
    tune(settings, HTTP_RETRIES=0)
    set_faults(platform, settings, error_rate=1.0, error_status=500, error_detail=detail(platform))
    caplog.set_level(logging.WARNING)

    with pytest.raises(AccountApiError) as caught:
        AccountClient().list_bills(group_id="cld-1")

    assert caught.value.status == 500
    assert_clean(str(caught.value), platform)
    assert str(caught.value).startswith("Account API answered 500")
    logged = [r for r in caplog.records if r.name == "maestrano_integration.account"]
    assert logged
    for record in logged:
        assert_clean(record.getMessage(), platform)


def test_a_short_reason_is_kept_with_the_credentials_hidden(platform, settings):
    tune(settings, HTTP_RETRIES=0)
    set_faults(platform, settings, error_rate=1.0, error_status=503, error_detail="a\nb")
    with pytest.raises(AccountApiError) as caught:
        AccountClient().list_bills(group_id="cld-1")
    assert "base: a b" in str(caught.value)

    set_faults(
        platform, settings, error_rate=1.0, error_status=503, error_detail=echoing_detail(platform)
    )
    with pytest.raises(AccountApiError) as caught:
        AccountClient().list_bills(group_id="cld-1")
    assert "Basic *** see the logs" in str(caught.value)
    assert f"{platform.api_id}:***" in str(caught.value)


@pytest.mark.parametrize("detail", [huge_detail, echoing_detail], ids=["100kB", "echo"])
def test_a_charges_stored_failure_reason_and_the_logs_are_clean(platform, settings, caplog, detail):
    sso(platform, group_uid="cld-indiscreet")
    company = Company.objects.get(group_uid="cld-indiscreet")
    tune(settings, HTTP_RETRIES=0)
    set_faults(platform, settings, error_rate=1.0, error_status=500, error_detail=detail(platform))
    caplog.set_level(logging.INFO)

    charge = charge_company(
        company=company, amount_cents=100, description="SMS", idempotency_key="sms-1"
    )

    assert charge.status == AdHocCharge.Status.PENDING
    assert "500" in charge.last_error
    assert_clean(charge.last_error, platform)
    for record in caplog.records:
        text = record.getMessage()
        assert platform.api_key not in text and token(platform) not in text, record.name
        if record.exc_info:
            assert platform.api_key not in str(record.exc_info[1])


def test_a_refused_charge_is_failed_with_a_clean_reason(platform, settings):
    sso(platform, group_uid="cld-refused")
    company = Company.objects.get(group_uid="cld-refused")
    set_faults(
        platform, settings, error_rate=1.0, error_status=422, error_detail=huge_detail(platform)
    )

    with pytest.raises(AccountApiError) as caught:
        charge_company(company=company, amount_cents=100, description="SMS", idempotency_key="k")

    assert_clean(str(caught.value), platform)
    charge = AdHocCharge.objects.get(company=company, idempotency_key="k")
    assert charge.status == AdHocCharge.Status.FAILED
    assert charge.last_error == str(caught.value)
