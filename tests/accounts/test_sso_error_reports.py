"""What an SSO failure the code did not expect (a 500) tells the site's admins: never the
bearer secrets of the request.

Django reports a 500 at ERROR on ``django.request``, and with ``DEBUG`` off its
``AdminEmailHandler`` mails the request to ``ADMINS`` (the example project's ``LOGGING``
does, ``maestrano_integration.logs.logging_config``), POST fields included: the ACS's
``SAMLResponse`` (a signed login, good for minutes, with the platform session's token) and
the confirmation form's ``ticket``. Both views mark them sensitive, so the report stars them
as it stars a password; the nonce cookie of an IdP-initiated login is hidden by its name.
The outage here is real: the SSO state lives in a Redis that does not answer.
"""

from __future__ import annotations

import secrets

import django
import pytest
from django.contrib.auth.signals import user_logged_in
from django.core import mail
from django.test import Client

from maestrano_accounts.sso_state import BROWSER_NONCE_COOKIE
from maestrano_integration.conf import get_preset
from tests.accounts.test_sso_queries import ATTRIBUTES, signed_response
from tests.conftest import preset_values

pytestmark = pytest.mark.django_db

STARS = "********************"


@pytest.fixture(autouse=True)
def _state_store_down(settings):
    """Admins to tell, and the SSO replay cache and tickets in a Redis nobody serves."""
    if django.VERSION >= (6, 1):
        # Django 6.1 takes addresses alone, and mail goes through MAILERS (Django's test
        # run keeps the memory backend either way; named here so that no default is used).
        settings.ADMINS = ["ops@example.com"]
        settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    else:
        settings.ADMINS = [("Ops", "ops@example.com")]
    settings.CACHES = {
        **settings.CACHES,
        "sso-state": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        },
    }
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {"maestrano": preset_values(api_id="app-e", api_key="key-e")},
        "SSO_STATE_CACHE": "sso-state",
    }


def report() -> str:
    (message,) = mail.outbox
    assert "Internal Server Error" in message.subject
    return message.body


def test_a_failing_acs_reports_no_saml_response():
    saml_response = signed_response(get_preset("maestrano"), ATTRIBUTES)

    answer = Client(raise_request_exception=False).post(
        "/maestrano/auth/saml/consume", {"SAMLResponse": saml_response}
    )

    assert answer.status_code == 500
    body = report()
    assert f"SAMLResponse = '{STARS}'" in body
    assert saml_response[:40] not in body
    assert "key-e" not in body  # the settings it lists hide the preset's api key (Django's rule)


def test_a_failing_confirmation_reports_no_ticket():
    ticket = secrets.token_urlsafe(32)

    answer = Client(raise_request_exception=False).post(
        "/maestrano/auth/saml/complete", {"ticket": ticket}
    )

    assert answer.status_code == 500
    body = report()
    assert f"ticket = '{STARS}'" in body
    assert ticket not in body


def test_a_failing_completion_reports_no_browser_nonce(settings):
    """An IdP-initiated login's link travels in the URL, bound to its browser by a cookie:
    the report lists the cookie by name only (Django hides a cookie whose name says AUTH,
    as it hides the session's), so it never holds both halves of a login."""
    settings.MAESTRANO = {**settings.MAESTRANO, "SSO_STATE_CACHE": None}  # a working store
    browser = Client(raise_request_exception=False)
    answer = browser.post(
        "/maestrano/auth/saml/consume",
        {"SAMLResponse": signed_response(get_preset("maestrano"), ATTRIBUTES)},
    )
    assert answer.status_code == 303
    nonce = answer.cookies[BROWSER_NONCE_COOKIE].value

    def fail(**kwargs):
        raise RuntimeError("a receiver of user_logged_in failed")

    user_logged_in.connect(fail, dispatch_uid="test-report-fail")
    try:
        assert browser.get(answer["Location"]).status_code == 500
    finally:
        user_logged_in.disconnect(dispatch_uid="test-report-fail")

    body = report()
    assert BROWSER_NONCE_COOKIE in body
    assert nonce not in body
