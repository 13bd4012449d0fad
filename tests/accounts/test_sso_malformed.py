"""Posts to the ACS that are not SAML at all: refused with 400, a logged reason, nothing created.

No IdP is needed to produce these, so they use the Django test client (fast,
rolled-back transactions) rather than the live platform.
"""

from __future__ import annotations

import base64
import logging

import pytest
from django.contrib.auth import get_user_model

from maestrano_accounts.models import Company, Membership, SsoLoginTicket, UsedAssertion
from maestrano_accounts.sso_state import PENDING_REQUESTS_KEY

User = get_user_model()

pytestmark = pytest.mark.django_db

CONSUME = "/maestrano/auth/saml/consume"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0">
&lol2;</samlp:Response>
"""


@pytest.fixture
def refused(two_presets, caplog):
    caplog.set_level(logging.INFO)

    def check(answer, reason: str, *, preset: str = "maestrano") -> None:
        assert answer.status_code == 400
        assert b"We could not log you in" in answer.content
        refusals = [
            r for r in caplog.records if r.name == "maestrano_accounts.views" and "refused" in r.msg
        ]
        assert [(r.reason, r.preset) for r in refusals] == [(reason, preset)]
        assert not (
            User.objects.exists()
            or Company.objects.exists()
            or Membership.objects.exists()
            or UsedAssertion.objects.exists()
            or SsoLoginTicket.objects.exists()
        )

    return check


def test_xml_with_a_doctype_and_entities_is_refused(client, refused):
    hostile = base64.b64encode(BILLION_LAUGHS).decode()
    refused(client.post(CONSUME, {"SAMLResponse": hostile}), "doctype_forbidden")


def test_response_that_is_not_base64_is_refused(client, refused):
    refused(client.post(CONSUME, {"SAMLResponse": "this is *not* base64!"}), "not_base64")


def test_base64_that_is_not_xml_is_refused(client, refused):
    junk = base64.b64encode(b"hello, not xml").decode()
    refused(client.post(CONSUME, {"SAMLResponse": junk}), "malformed_xml")


def test_xml_that_is_not_a_saml_response_is_refused(client, refused):
    other = base64.b64encode(b"<html><body>hi</body></html>").decode()
    refused(client.post(CONSUME, {"SAMLResponse": other}), "malformed_xml")


def test_empty_response_is_refused(client, refused):
    refused(client.post(CONSUME, {"SAMLResponse": ""}), "missing_response")


def test_missing_response_field_is_refused(client, refused):
    refused(client.post(CONSUME, {"other": "x"}), "missing_response")


def test_forged_completion_ticket_is_refused(client, refused):
    # No ticket, no preset: the refusal is logged without one.
    refused(client.get("/maestrano/auth/saml/complete?ticket=forged"), "invalid_ticket", preset="")


SCHEMA_INVALID = (
    b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
    b'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" Version="2.0" '
    b'IssueInstant="2026-01-01T00:00:00Z"><samlp:Status><samlp:StatusCode '
    b'Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
    # An Assertion without its required Issuer, with an element the schema does not know.
    b'<saml:Assertion ID="_a" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">'
    b"<saml:Bogus/></saml:Assertion></samlp:Response>"
)


def test_response_against_the_protocol_schema_is_refused_every_time(client, two_presets, caplog):
    # python3-saml's compiled schema is kept between Responses (maestrano_integration.saml):
    # the second Response is checked against the kept one, and refused as well.
    caplog.set_level(logging.INFO)
    posted = base64.b64encode(SCHEMA_INVALID).decode()
    for _ in range(2):
        answer = client.post(CONSUME, {"SAMLResponse": posted})
        assert answer.status_code == 400
    refusals = [
        r for r in caplog.records if r.name == "maestrano_accounts.views" and "refused" in r.msg
    ]
    assert [(r.reason, "saml-schema-protocol" in r.getMessage()) for r in refusals] == [
        ("invalid_response", True),
        ("invalid_response", True),
    ]
    assert not (UsedAssertion.objects.exists() or SsoLoginTicket.objects.exists())


def test_an_init_whose_parameters_make_the_idp_url_too_long_is_refused(client, refused):
    answer = client.get("/maestrano/auth/saml/init", {"group_id": "g" * 20_000})

    refused(answer, "request_too_long")
    assert PENDING_REQUESTS_KEY not in client.session


def test_a_project_namespace_accounts_lives_beside_ours(settings):
    from django.urls import reverse

    from maestrano_accounts.checks import check_url_namespace

    settings.ROOT_URLCONF = "tests.accounts.urls_namespace_clash"

    assert check_url_namespace() == []
    assert reverse("accounts:profile") == "/users/profile/"
    assert reverse("maestrano_accounts:sso-complete") == "/maestrano/auth/saml/complete"


def test_billing_pages_served_by_a_project_pattern_first_are_a_check_error(settings, client):
    from django.urls import reverse

    from maestrano_accounts.checks import check_url_namespace

    settings.ROOT_URLCONF = "tests.accounts.urls_billing_shadowed"

    assert [message.id for message in check_url_namespace()] == ["maestrano.E025"]

    # A pattern that takes only some of the pages (the plans: buy/<product>/ is deeper) counts too.
    settings.ROOT_URLCONF = "tests.accounts.urls_billing_plans_shadowed"

    (message,) = check_url_namespace()
    assert message.id == "maestrano.E025" and "URLs (plans) are" in message.msg

    # Under a prefix of their own, both apps' pages are served.
    settings.ROOT_URLCONF = "tests.accounts.urls_billing_prefixed"

    assert check_url_namespace() == []
    assert reverse("maestrano_billing:plans") == "/maestrano/billing/plans/"
    assert client.get("/billing/").content == b"their billing"


def test_an_app_that_hides_the_sso_views_is_a_check_error(settings):
    from maestrano_accounts.checks import check_url_namespace

    assert check_url_namespace() == []

    settings.ROOT_URLCONF = "tests.accounts.urls_namespace_hidden"

    assert [message.id for message in check_url_namespace()] == ["maestrano.E024"]

    # A URLconf that serves none of these views (the sandbox alone) has nothing to check.
    settings.ROOT_URLCONF = "config.urls.sandbox"

    assert check_url_namespace() == []


@pytest.mark.parametrize(
    ("num_proxies", "logged"), [(None, "10.0.0.2"), (1, "203.0.113.7")], ids=["direct", "proxy"]
)
def test_a_refusal_logs_the_client_address(client, refused, caplog, settings, num_proxies, logged):
    # The address rule of the platform endpoints (maestrano_integration.auth.request_address):
    # REMOTE_ADDR, or behind REST_FRAMEWORK["NUM_PROXIES"] proxies the forwarded client's.
    if num_proxies is not None:
        settings.REST_FRAMEWORK = {"NUM_PROXIES": num_proxies}
    answer = client.post(
        CONSUME,
        {"SAMLResponse": "this is *not* base64!"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.7",
    )
    refused(answer, "not_base64")
    [record] = [r for r in caplog.records if getattr(r, "reason", "") == "not_base64"]
    assert record.remote_addr == logged
