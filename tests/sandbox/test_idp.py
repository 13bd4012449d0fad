"""The sandbox IdP (docs/protocol.md, 'Single sign-on') over HTTP: AuthnRequest handling, signed
Response, launch."""

from __future__ import annotations

import base64
import zlib
from urllib.parse import urlencode

import pytest
import requests
from lxml import etree

from maestrano_sandbox.keys import ensure_key_pairs, ensure_sha1_key_pair
from maestrano_sandbox.models import (
    Group,
    GroupMembership,
    PlatformSession,
    PlatformUser,
    RegisteredApp,
)
from tests.helpers import saml

ATTRIBUTES = [
    "mno_uid",
    "mno_session",
    "mno_session_recheck",
    "group_uid",
    "group_name",
    "group_end_free_trial",
    "group_role",
    "group_has_credit_card",
    "group_email",
    "group_currency",
    "group_timezone",
    "group_country",
    "group_city",
    "group_org_uid",
    "uid",
    "virtual_uid",
    "email",
    "virtual_email",
    "name",
    "surname",
    "country",
    "company_name",
    "app_owner",
    "organizations",
]
NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
}


def _encode_request(xml: str) -> str:
    return base64.b64encode(zlib.compress(xml.encode())[2:-4]).decode()


def _sso_get(client, saml_request: str, **params: str):
    query = urlencode({"SAMLRequest": saml_request, **params})
    return client.get(f"/sandbox/api/v1/auth/saml?{query}")


@pytest.fixture
def registered():
    return RegisteredApp.objects.create(
        api_id="app-test", api_key="key", app_host="http://testserver"
    )


@pytest.fixture
def set_up(settings, sandbox_data_dir):
    """The IdP's key pairs made, as the set-up commands make them (the SSO page needs them)."""
    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "DATA_DIR": sandbox_data_dir}
    ensure_key_pairs(directory=sandbox_data_dir)


def _login(platform, http=None, **login):
    http = http or requests.Session()
    url, request_id = saml.authn_request_url(platform, relay_state="/after-login")
    return saml.submit_login(http, url, **login), request_id


def test_login_page_is_shown_for_a_valid_authn_request(platform):
    url, _ = saml.authn_request_url(platform)
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    form = saml.parse_form(response.text, "idp-login")
    assert form["method"] == "post"
    assert {"SAMLRequest", "csrfmiddlewaretoken", "user_uid", "group_uid", "role"} <= set(
        form["fields"]
    )


def test_response_validates_with_python3_saml_configured_from_app_metadata(platform):
    post, request_id = _login(
        platform,
        user_uid="usr-42",
        name="Ada",
        surname="Lovelace",
        email="ada@example.com",
        group_uid="cld-42",
        group_name="Analytical Engines",
        role="Power User",
        currency="EUR",
        free_trial_end="2030-01-31",
        has_credit_card=True,
    )
    assert post.acs_url == platform.app.acs_url
    assert post.relay_state == "/after-login"

    valid, error, attributes = saml.validate_response(platform, post, request_id=request_id)
    assert valid, error
    values = {name: (attributes[name] or [""])[0] for name in attributes}
    assert set(ATTRIBUTES) <= set(values)
    assert values["uid"] == values["mno_uid"] == "usr-42"
    assert values["group_uid"] == "cld-42"
    assert values["group_name"] == "Analytical Engines"
    assert values["group_role"] == "Power User"
    assert values["group_currency"] == "EUR"
    assert values["group_has_credit_card"] == "true"
    assert values["group_end_free_trial"] == "2030-01-31T00:00:00Z"
    assert values["virtual_uid"] == "usr-42.cld-42"
    assert values["virtual_email"] == "usr-42.cld-42@mail.maestrano.com"
    assert values["email"] == "ada@example.com"
    assert (values["name"], values["surname"]) == ("Ada", "Lovelace")
    session = PlatformSession.objects.get(token=values["mno_session"])
    assert (session.user.uid, session.group.uid, session.app_id) == (
        "usr-42",
        "cld-42",
        platform.app.pk,
    )
    assert Group.objects.get(uid="cld-42").apps.filter(pk=platform.app.pk).exists()


def test_response_carries_the_protocol_envelope(platform):
    post, request_id = _login(platform, user_uid="usr-1", group_uid="cld-1")
    root = etree.fromstring(post.xml.encode())
    issuer = f"{platform.url}/sandbox"
    assert root.get("InResponseTo") == request_id
    assert root.get("Destination") == platform.app.acs_url
    assert root.findtext("saml:Issuer", namespaces=NS) == issuer
    assertion = root.find("saml:Assertion", NS)
    assert assertion.findtext("saml:Issuer", namespaces=NS) == issuer
    assert assertion.find("ds:Signature", NS) is not None
    assert root.find("ds:Signature", NS) is not None
    assert assertion.findtext(".//saml:Audience", namespaces=NS) == platform.api_id
    assert assertion.findtext(".//saml:NameID", namespaces=NS) == "usr-1"
    confirmation = assertion.find(".//saml:SubjectConfirmationData", NS)
    assert confirmation.get("Recipient") == platform.app.acs_url
    assert confirmation.get("InResponseTo") == request_id
    conditions = assertion.find("saml:Conditions", NS)
    assert conditions.get("NotBefore") < conditions.get("NotOnOrAfter")
    assert assertion.find("saml:AuthnStatement", NS).get("SessionIndex")
    signature_method = root.find("ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS)
    assert signature_method.get("Algorithm").endswith("rsa-sha256")


def test_response_with_one_changed_attribute_does_not_validate(platform):
    post, request_id = _login(platform, user_uid="usr-7", group_uid="cld-7", role="Member")
    assert saml.validate_response(platform, post, request_id=request_id)[0]

    tampered = saml.change_attribute(post, "group_role", "Super Admin")
    valid, error, _ = saml.validate_response(platform, tampered, request_id=request_id)
    assert not valid
    assert error


def test_response_signed_by_another_key_does_not_validate(platform):
    post, request_id = _login(platform, user_uid="usr-8", group_uid="cld-8")
    forged = saml.sign_with_other_key(post)
    assert forged.xml != post.xml
    valid, error, _ = saml.validate_response(platform, forged, request_id=request_id)
    assert not valid
    assert error


def test_response_for_another_request_id_does_not_validate(platform):
    post, _ = _login(platform, user_uid="usr-9", group_uid="cld-9")
    valid, _, _ = saml.validate_response(platform, post, request_id="_another-request")
    assert not valid


def test_sha1_app_is_signed_with_the_historical_1024_bit_key(platform):
    platform.app.signature_algorithm = "sha1"
    platform.app.save()
    sha1_keys = ensure_sha1_key_pair()
    post, request_id = _login(platform, user_uid="usr-10", group_uid="cld-10")
    root = etree.fromstring(post.xml.encode())
    method = root.find("ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm")
    assert method.endswith("rsa-sha1")

    trusting_sha1 = saml.sp_settings(platform, certificate=sha1_keys.certificate_pem)
    assert saml.validate_response(platform, post, request_id=request_id, settings=trusting_sha1)[0]
    assert not saml.validate_response(platform, post, request_id=request_id)[0]


def test_group_id_parameter_preselects_the_group(platform):
    url, _ = saml.authn_request_url(platform, params={"group_id": "cld-preselected"})
    form = saml.parse_form(requests.get(url, timeout=10).text, "idp-login")
    assert form["fields"]["group_uid"] == "cld-preselected"


def test_existing_user_keeps_their_details_when_fields_are_left_blank(platform):
    _login(platform, user_uid="usr-11", name="Grace", email="grace@example.com", group_uid="cld-11")
    post, _ = _login(platform, user_uid="usr-11", group_uid="cld-11", role="Member")
    attributes = saml.validate_response(platform, post)[2]
    assert attributes["email"] == ["grace@example.com"]
    assert attributes["name"] == ["Grace"]
    assert GroupMembership.objects.get(user__uid="usr-11", group__uid="cld-11").role == "Member"


def test_idp_initiated_launch_posts_an_unsolicited_response(platform):
    _login(platform, user_uid="usr-12", group_uid="cld-12")
    post = saml.idp_initiated_response(platform, user_uid="usr-12", group_uid="cld-12")
    root = etree.fromstring(post.xml.encode())
    assert root.get("InResponseTo") is None
    assert post.acs_url == platform.app.acs_url
    valid, error, attributes = saml.validate_response(platform, post)
    assert valid, error
    assert attributes["group_uid"] == ["cld-12"]


def test_launch_refuses_a_user_who_is_not_a_member(platform):
    PlatformUser.objects.create(uid="usr-13", name="Lone", email="lone@example.com")
    response = requests.get(
        f"{platform.sandbox_url}/apps/{platform.api_id}/launch",
        params={"user": "usr-13", "group": "cld-none"},
        timeout=10,
    )
    assert response.status_code == 404
    assert "not a member" in response.text


@pytest.mark.parametrize(
    ("saml_request", "message"),
    [
        ("", "Missing SAMLRequest"),
        ("%%%not-base64%%%", "not valid base64"),
        (base64.b64encode(b"\x00\x01garbage").decode(), "not deflated XML"),
        (_encode_request("<not-closed"), "not well-formed XML"),
        (_encode_request("<hello/>"), "not a samlp:AuthnRequest"),
        (
            _encode_request(
                '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>'
            ),
            "protocol schema",
        ),
    ],
)
@pytest.mark.django_db(databases="__all__")
def test_malformed_authn_request_is_refused_with_a_message(
    client, registered, saml_request, message
):
    response = _sso_get(client, saml_request)
    assert response.status_code == 400
    assert message in response.content.decode()


def _authn_request_xml(issuer: str, acs_url: str) -> str:
    return (
        '<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_req1" Version="2.0" '
        f'IssueInstant="2026-01-01T00:00:00Z" AssertionConsumerServiceURL="{acs_url}">'
        f"<saml:Issuer>{issuer}</saml:Issuer></samlp:AuthnRequest>"
    )


@pytest.mark.django_db(databases="__all__")
def test_authn_request_from_an_unknown_app_is_refused(client, registered):
    response = _sso_get(
        client, _encode_request(_authn_request_xml("app-unknown", registered.acs_url))
    )
    assert response.status_code == 404
    assert "app-unknown" in response.content.decode()
    assert "is registered" in response.content.decode()


@pytest.mark.django_db(databases="__all__")
def test_authn_request_with_another_acs_url_is_refused(client, registered):
    xml = _authn_request_xml(registered.api_id, "http://evil.example/consume")
    response = _sso_get(client, _encode_request(xml))
    assert response.status_code == 400
    assert "does not match the ACS URL" in response.content.decode()


@pytest.mark.django_db(databases="__all__")
def test_authn_request_without_acs_url_uses_the_registered_one(client, registered, set_up):
    xml = _authn_request_xml(registered.api_id, "").replace(' AssertionConsumerServiceURL=""', "")
    response = _sso_get(client, _encode_request(xml), RelayState="/x")
    assert response.status_code == 200
    assert 'id="idp-login"' in response.content.decode()


def test_login_form_without_csrf_token_is_refused(platform):
    url, _ = saml.authn_request_url(platform)
    form = saml.parse_form(requests.get(url, timeout=10).text, "idp-login")
    fields = {k: v for k, v in form["fields"].items() if k != "csrfmiddlewaretoken"}
    response = requests.post(f"{platform.sandbox_url}/idp/login", data=fields, timeout=10)
    assert response.status_code == 403
    assert not PlatformSession.objects.exists()


def test_login_form_with_invalid_values_shows_the_errors(platform):
    http = requests.Session()
    url, _ = saml.authn_request_url(platform)
    form = saml.parse_form(http.get(url, timeout=10).text, "idp-login")
    fields = {
        **form["fields"],
        "user_uid": "not-a-uid",
        "group_currency": "EURO",
        "group_timezone": "Mars/Olympus",
    }
    response = http.post(f"{platform.sandbox_url}/idp/login", data=fields, timeout=10)
    assert response.status_code == 400
    assert "A user uid looks like usr-1" in response.text
    assert "ISO 4217" in response.text
    assert "Olson timezone" in response.text
    assert not PlatformSession.objects.exists()


def test_login_form_with_a_tampered_saml_request_is_refused(platform):
    http = requests.Session()
    url, _ = saml.authn_request_url(platform)
    form = saml.parse_form(http.get(url, timeout=10).text, "idp-login")
    fields = {**form["fields"], "SAMLRequest": "garbage"}
    response = http.post(f"{platform.sandbox_url}/idp/login", data=fields, timeout=10)
    assert response.status_code == 400
    assert not PlatformSession.objects.exists()


@pytest.mark.parametrize(
    "field", ["user_name", "user_surname", "user_company_name", "group_name", "group_city"]
)
@pytest.mark.parametrize("control", ["\x01", "\x1b", "\x0c"])
@pytest.mark.django_db(databases="__all__")
def test_a_control_character_no_saml_assertion_can_hold_is_a_form_error(
    registered, set_up, settings, field, control
):
    # It was stored, then the assertion could not be built (lxml refuses it): a 500, and
    # every later sign-in of that user or group a 500 too.
    from django.test import Client

    settings.DEBUG = False
    browser = Client(raise_request_exception=False)
    xml = _authn_request_xml(registered.api_id, registered.acs_url)
    page = browser.get(
        "/sandbox/api/v1/auth/saml?" + urlencode({"SAMLRequest": _encode_request(xml)})
    )
    form = saml.parse_form(page.content.decode(), "idp-login")
    fields = {
        **form["fields"],
        "user_uid": "usr-new",
        "group_uid": "cld-new",
        "create_missing": "on",
        field: f"A{control}B",
    }

    response = browser.post("/sandbox/idp/login", fields)

    assert response.status_code == 400
    assert "control characters" in response.content.decode()
    assert not PlatformUser.objects.exists()
    assert not Group.objects.exists()
