"""The purchase form refuses a POSTed form that is not UTF-8 text.

Django read its bytes leniently (U+FFFD in place of each bad byte) and the idempotency key
was stored so. The view answers 400 naming the field and records no purchase
(``maestrano_integration.request_text.form_problem``, the SSO forms' rule).
"""

from __future__ import annotations

import html

import pytest

from maestrano_accounts.billing.models import AdHocCharge
from maestrano_accounts.models import Company
from tests.helpers.users import log_in_to_company

pytestmark = pytest.mark.django_db

BUY = "/billing/buy/sms/"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def company():
    return Company.objects.create(preset="maestrano", group_uid="cld-text", name="Text Ltd")


@pytest.fixture
def as_role(client, company):
    """``as_role("Admin")``: the test client logged in with that role in ``company``."""

    def log_in(role: str):
        log_in_to_company(client, company, role=role, username=f"user-{role.replace(' ', '')}")
        return client

    return log_in


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"idempotency_key=k%FF&next=%2Fbilling%2F", "form field 'idempotency_key' is not valid"),
        (b"idempotency_key=k1&next=%2Fbilling%2F%E9", "form field 'next' is not valid UTF-8"),
        (b"idempotency_key=k\xff1", "the form is not valid UTF-8 (invalid start byte at byte 17)"),
    ],
)
def test_a_purchase_form_that_is_not_utf8_is_refused_and_nothing_bought(as_role, body, reason):
    client = as_role("Admin")

    response = client.generic("POST", BUY, data=body, content_type=FORM)

    assert response.status_code == 400
    assert reason in html.unescape(response.content.decode())  # the 400 page's text
    assert not AdHocCharge.objects.exists()


def test_a_client_that_prefers_json_gets_the_reason_as_json(as_role):
    client = as_role("Admin")

    response = client.generic(
        "POST", BUY, data=b"idempotency_key=%FF", content_type=FORM, HTTP_ACCEPT="application/json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The form is refused: form field 'idempotency_key' is not valid UTF-8 once "
        "percent-decoded (invalid start byte at byte 0)."
    }


def test_a_purchase_form_in_utf8_is_recorded_with_its_key_as_sent(as_role):
    client = as_role("Admin")

    response = client.generic("POST", BUY, data=b"idempotency_key=k-%C3%A9", content_type=FORM)

    assert response.status_code == 302
    assert AdHocCharge.objects.get().idempotency_key == "sms:k-é"


def test_the_role_is_checked_first(as_role):
    client = as_role("Member")

    response = client.generic("POST", BUY, data=b"idempotency_key=%FF", content_type=FORM)

    assert response.status_code == 403
    assert not AdHocCharge.objects.exists()
