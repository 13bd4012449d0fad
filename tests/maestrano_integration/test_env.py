"""Presets from environment variables: MAESTRANO_ + dotted path in capitals."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from maestrano_integration.conf import ImproperlyConfiguredPreset, get_preset, get_preset_by_api_id
from maestrano_integration.env import preset_from_environment
from tests.helpers.certificates import make_key_pair


def test_every_variable_lands_in_its_nested_key(tmp_path):
    certificate_file = tmp_path / "idp.pem"
    certificate_file.write_text(make_key_pair().certificate_pem)
    preset = preset_from_environment(
        environ={
            "MAESTRANO_API_ID": "app-9",
            "MAESTRANO_API_KEY": "secret",
            "MAESTRANO_APP_HOST": "https://app.example",
            "MAESTRANO_API_HOST": "https://platform.example",
            "MAESTRANO_SSO_CREATION_MODE": "virtual",
            "MAESTRANO_SSO_SLO_ENABLED": "false",
            "MAESTRANO_SSO_X509_CERTIFICATE": str(certificate_file),
            "MAESTRANO_CONNEC_HOST": "https://connec.example",
            "MAESTRANO_CONNEC_TIMEOUT": "12.5",
            "MAESTRANO_WEBHOOK_CONNEC_SUBSCRIPTIONS": "people, organizations",
            "UNRELATED": "x",
        }
    )
    assert preset == {
        "api": {"id": "app-9", "key": "secret", "host": "https://platform.example"},
        "app": {"host": "https://app.example"},
        "sso": {
            "creation_mode": "virtual",
            "slo_enabled": False,
            "x509_certificate": make_key_pair().certificate_pem,
        },
        "connec": {"host": "https://connec.example", "timeout": 12.5},
        "webhook": {"connec": {"subscriptions": {"people": True, "organizations": True}}},
    }


def test_pem_text_is_taken_as_is():
    pem = make_key_pair().certificate_pem
    preset = preset_from_environment(environ={"MAESTRANO_SSO_X509_CERTIFICATE": pem})
    assert preset["sso"]["x509_certificate"] == pem


def test_bad_boolean_is_a_clear_error():
    with pytest.raises(ImproperlyConfigured, match="MAESTRANO_SSO_ENABLED must be true or false"):
        preset_from_environment(environ={"MAESTRANO_SSO_ENABLED": "maybe"})


@pytest.mark.parametrize(
    ("raw", "expected"), [("yes", True), ("On", True), ("1", True), ("no", False), ("0", False)]
)
def test_boolean_words(raw, expected):
    preset = preset_from_environment(environ={"MAESTRANO_SSO_SLO_ENABLED": raw})
    assert preset["sso"]["slo_enabled"] is expected


@pytest.mark.parametrize("raw", ["soon", "1e3", "12s", "-5"])
def test_bad_timeout_is_a_clear_error(raw):
    with pytest.raises(
        ImproperlyConfigured, match="MAESTRANO_CONNEC_TIMEOUT must be a number of seconds"
    ):
        preset_from_environment(environ={"MAESTRANO_CONNEC_TIMEOUT": raw})


def test_bad_json_subscriptions_are_a_clear_error():
    with pytest.raises(
        ImproperlyConfigured, match="MAESTRANO_WEBHOOK_CONNEC_SUBSCRIPTIONS is not valid JSON"
    ):
        preset_from_environment(environ={"MAESTRANO_WEBHOOK_CONNEC_SUBSCRIPTIONS": "{people"})


@pytest.mark.parametrize("empty", ["", " "])
def test_an_empty_boolean_number_or_list_is_not_set_and_text_is_taken_as_written(empty):
    names = ("SSO_ENABLED", "SSO_SLO_ENABLED", "SSO_ALLOW_SHA1", "CONNEC_TIMEOUT")
    environ = {f"MAESTRANO_{name}": empty for name in names}
    environ["MAESTRANO_WEBHOOK_CONNEC_SUBSCRIPTIONS"] = empty
    environ["MAESTRANO_SSO_IDM"] = empty

    assert preset_from_environment(environ=environ) == {"sso": {"idm": empty}}


def test_text_is_taken_literally():
    """A key starting with ``$`` is not a reference to another variable."""
    preset = preset_from_environment(
        environ={"MAESTRANO_API_KEY": "$ecret", "MAESTRANO_API_ID": " app-1 "}
    )
    assert preset["api"] == {"key": "$ecret", "id": " app-1 "}


def test_json_subscriptions():
    preset = preset_from_environment(
        environ={"MAESTRANO_WEBHOOK_CONNEC_SUBSCRIPTIONS": '{"people": true, "items": false}'}
    )
    assert preset["webhook"]["connec"]["subscriptions"] == {"people": True, "items": False}


def test_lookup_by_name_and_api_id(two_presets):
    assert get_preset().name == "maestrano"
    assert get_preset("acme-market").api_id == "acme-app"
    assert get_preset_by_api_id("acme-app").name == "acme-market"
    with pytest.raises(ImproperlyConfiguredPreset):
        get_preset("nope")
    with pytest.raises(ImproperlyConfiguredPreset):
        get_preset_by_api_id("nope")


def test_derived_urls(two_presets):
    preset = get_preset()
    assert preset.acs_url == "http://testserver/maestrano/auth/saml/consume"
    assert preset.idp_sso_url == "http://127.0.0.1:9/api/v1/auth/saml"
    assert preset.session_check_url("usr-1") == "http://127.0.0.1:9/api/v1/auth/saml/usr-1"
    assert preset.logout_url("usr-1") == "http://127.0.0.1:9/app_logout?user_uid=usr-1"
    assert preset.mask_user(user_uid="usr-1", group_uid="cld-1") == "usr-1"
    assert get_preset("acme-market").mask_user(user_uid="usr-1", group_uid="cld-1") == (
        "usr-1.cld-1"
    )


def test_mask_user_never_masks_an_already_masked_uid(two_presets):
    virtual = get_preset("acme-market")
    assert virtual.mask_user(user_uid="usr-1.cld-1", group_uid="cld-1") == "usr-1.cld-1"
    assert virtual.mask_user(user_uid="usr-1", group_uid="cld-1") == "usr-1.cld-1"
    # Real mode: a masked uid is the real one.
    assert get_preset().mask_user(user_uid="usr-1.cld-1", group_uid="cld-1") == "usr-1"


def test_subscriptions_in_json_take_booleans_and_boolean_words_only():
    variable = "MAESTRANO_WEBHOOK_CONNEC_SUBSCRIPTIONS"

    preset = preset_from_environment(environ={variable: '{"people": "false", "items": true}'})

    assert preset["webhook"]["connec"]["subscriptions"] == {"people": False, "items": True}
    for wrong in ('{"people": "nope"}', '{"people": ""}', '{"people": 1}', '{"people": null}'):
        with pytest.raises(
            ImproperlyConfigured, match=rf"{variable}\['people'\] must be true or false"
        ):
            preset_from_environment(environ={variable: wrong})
