"""The cookie that binds an IdP-initiated login to the browser that posted it, over HTTPS:
a ``__Host-`` cookie (Secure, path ``/``, no ``Domain``), which a sibling subdomain cannot
plant in a victim's browser; a nonce under any other name is not ours there."""

from __future__ import annotations

import pytest
from django.test import Client

from maestrano_accounts.models import Company
from maestrano_accounts.sso_state import BROWSER_NONCE_COOKIE, SECURE_BROWSER_NONCE_COOKIE
from maestrano_integration.conf import get_preset
from tests.accounts.test_sso_queries import ATTRIBUTES, signed_response
from tests.conftest import preset_values

pytestmark = pytest.mark.django_db

CONSUME = "/maestrano/auth/saml/consume"


@pytest.fixture(autouse=True)
def _https_preset(settings):
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(
                api_id="app-n", api_key="key-n", app_host="https://testserver"
            )
        },
        "SYNC": {"IMPORT_ON_COMPANY_CREATED": False},
    }


def consume(browser: Client):
    answer = browser.post(
        CONSUME,
        {"SAMLResponse": signed_response(get_preset("maestrano"), ATTRIBUTES)},
        secure=True,
    )
    assert answer.status_code == 303, answer.content[:300]
    return answer


def test_over_https_the_nonce_is_a_host_prefixed_cookie_and_completes_the_login():
    browser = Client()
    answer = consume(browser)

    assert BROWSER_NONCE_COOKIE not in answer.cookies
    cookie = answer.cookies[SECURE_BROWSER_NONCE_COOKIE]
    assert cookie["secure"] is True
    assert cookie["path"] == "/"
    assert cookie["domain"] == ""
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"

    done = browser.get(answer["Location"], secure=True)

    assert done.status_code == 302
    assert Company.objects.filter(group_uid=ATTRIBUTES["group_uid"]).exists()
    removed = done.cookies[SECURE_BROWSER_NONCE_COOKIE]
    assert removed["max-age"] == 0
    assert removed["path"] == "/"
    assert removed["secure"] is True


def test_over_https_a_nonce_under_the_plain_name_is_refused():
    # What a sibling subdomain could set: the attacker's nonce, without the prefix.
    browser = Client()
    answer = consume(browser)
    nonce = browser.cookies.pop(SECURE_BROWSER_NONCE_COOKIE).value
    browser.cookies[BROWSER_NONCE_COOKIE] = nonce

    refused = browser.get(answer["Location"], secure=True)

    assert refused.status_code == 403
    assert not Company.objects.filter(group_uid=ATTRIBUTES["group_uid"]).exists()
