"""maestrano_integration.saml: settings from a preset only, request data, attributes, decoding."""

from __future__ import annotations

import base64
import datetime as dt
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import RequestFactory
from lxml import etree

from maestrano_integration.conf import get_preset
from maestrano_integration.saml import (
    SamlConfigurationError,
    SamlValidationError,
    SsoAttributes,
    build_authn_request,
    build_saml_settings,
    decode_saml_response,
    request_data,
    saml_settings,
)


def test_settings_come_from_the_preset_only(two_presets):
    preset = get_preset("acme-market")

    settings = build_saml_settings(preset)

    assert settings["strict"] is True
    assert settings["sp"]["entityId"] == "acme-app"
    assert (
        settings["sp"]["assertionConsumerService"]["url"]
        == "https://acme.example/maestrano/acme-market/auth/saml/consume"
    )
    assert settings["idp"]["entityId"] == "http://127.0.0.1:9"
    assert settings["idp"]["singleSignOnService"]["url"] == "http://127.0.0.1:9/api/v1/auth/saml"
    assert settings["idp"]["x509cert"] == preset.x509_certificate
    security = settings["security"]
    # SHA-1 accepted by default, as the historical platform signs (sso.allow_sha1).
    assert security["rejectDeprecatedAlgorithm"] is False
    assert security["requestedAuthnContext"] is False
    assert security["wantAssertionsEncrypted"] is False


def test_a_preset_without_certificate_cannot_do_sso(settings):
    settings.MAESTRANO = {
        "PRESETS": {"maestrano": {"api": {"id": "a", "key": "k"}, "sso": {"x509_certificate": ""}}}
    }
    with pytest.raises(SamlConfigurationError):
        saml_settings(get_preset())


def test_https_is_detected_through_the_proxy_header(settings):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    request = RequestFactory().post(
        "/maestrano/auth/saml/consume", HTTP_X_FORWARDED_PROTO="https", HTTP_HOST="app.example"
    )
    settings.ALLOWED_HOSTS = ["app.example"]

    data = request_data(request)

    assert data["https"] == "on"
    assert data["http_host"] == "app.example"
    assert data["script_name"] == "/maestrano/auth/saml/consume"


def test_the_proxy_header_is_ignored_unless_configured(settings):
    settings.SECURE_PROXY_SSL_HEADER = None
    request = RequestFactory().post("/x", HTTP_X_FORWARDED_PROTO="https")

    assert request_data(request)["https"] == "off"


def test_authn_request_forwards_group_id_and_names_our_app(two_presets):
    preset = get_preset()

    redirect = build_authn_request(
        preset, forward_params={"group_id": "cld-9", "SAMLRequest": "smuggled"}
    )

    parts = urlsplit(redirect.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == preset.idp_sso_url
    query = parse_qs(parts.query)
    assert query["group_id"] == ["cld-9"]
    assert len(query["SAMLRequest"]) == 1 and query["SAMLRequest"] != ["smuggled"]
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    request = etree.fromstring(xml)
    assert request.get("ID") == redirect.request_id
    assert request.get("AssertionConsumerServiceURL") == preset.acs_url
    issuer = request.find("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer")
    assert issuer.text == preset.api_id


def test_attributes_need_only_uid_and_group_uid():
    attributes = SsoAttributes.from_saml({"uid": ["usr-1"], "group_uid": ["cld-1"]})

    assert (attributes.uid, attributes.group_uid) == ("usr-1", "cld-1")
    assert attributes.group_name == "" and attributes.group_end_free_trial is None
    assert attributes.group_has_credit_card is None and attributes.organizations is None
    assert attributes.user_uid("virtual") == "usr-1.cld-1"
    assert attributes.user_uid("real") == "usr-1"


@pytest.mark.parametrize("missing", ["uid", "group_uid"])
def test_a_missing_required_attribute_is_refused(missing):
    values = {"uid": ["usr-1"], "group_uid": ["cld-1"]}
    values[missing] = []

    with pytest.raises(SamlValidationError) as error:
        SsoAttributes.from_saml(values)

    assert error.value.reason == "missing_attribute"


def test_attributes_are_typed_and_bad_optional_values_tolerated():
    attributes = SsoAttributes.from_saml(
        {
            "uid": ["usr-1"],
            "group_uid": ["cld-1"],
            "mno_session_recheck": ["2030-01-02T03:04:05Z"],
            "group_end_free_trial": ["not a date"],
            "group_has_credit_card": ["true"],
            "group_currency": ["aud"],
            "organizations": ["{broken json"],
            "virtual_uid": ["usr-1.cld-1"],
            "virtual_email": ["usr-1.cld-1@mail.maestrano.com"],
            "email": ["jane@example.com"],
        }
    )

    assert attributes.session_recheck == dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert attributes.group_end_free_trial is None
    assert attributes.group_has_credit_card is True
    assert attributes.group_currency == "AUD"
    assert attributes.organizations is None
    assert attributes.user_email("virtual") == "usr-1.cld-1@mail.maestrano.com"
    assert attributes.user_email("real") == "jane@example.com"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "missing_response"),
        ("   ", "missing_response"),
        ("@@@", "not_base64"),
        ("YWJj=ZGVm", "not_base64"),
        (base64.b64encode(b"   ").decode(), "missing_response"),
        ("A" * 400_000, "response_too_large"),
    ],
)
def test_saml_response_decoding_is_strict(value, reason):
    with pytest.raises(SamlValidationError) as error:
        decode_saml_response(value)
    assert error.value.reason == reason


def test_line_wrapped_base64_is_accepted():
    encoded = base64.encodebytes(b"<samlp:Response/>" * 10).decode()
    assert "\n" in encoded
    assert decode_saml_response(encoded) == b"<samlp:Response/>" * 10


def test_python3_saml_refuses_doctypes_and_entities_on_its_own():
    # Our explicit refusal comes first; this proves the library is a second line.
    from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

    hostile = b'<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'
    with pytest.raises(Exception, match=r"(?i)dtd|entit"):
        OneLogin_Saml2_XML.to_etree(hostile)
