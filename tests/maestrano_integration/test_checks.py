"""System checks fire on each misconfiguration with a message that says how to fix it."""

from __future__ import annotations

import pytest

from maestrano_integration.checks import check_presets
from tests.conftest import preset_values


def ids(messages) -> set[str]:
    return {message.id for message in messages}


def configure(settings, **preset) -> None:
    settings.MAESTRANO = {"PRESETS": {"maestrano": preset}}


def test_a_complete_preset_passes(settings):
    configure(settings, **preset_values(api_id="a", api_key="k"))
    assert check_presets() == []


def test_missing_api_id_and_key_are_reported_with_the_env_var_to_set(settings):
    configure(settings, **preset_values(api_id="", api_key=""))
    messages = check_presets()
    assert ids(messages) == {"maestrano.E001", "maestrano.E002"}
    hints = " ".join(message.hint for message in messages)
    assert "MAESTRANO_API_ID" in hints
    assert "MAESTRANO_API_KEY" in hints


def test_unknown_creation_mode_is_reported(settings):
    configure(settings, **preset_values(api_id="a", api_key="k", sso={"creation_mode": "magic"}))
    messages = check_presets()
    assert ids(messages) == {"maestrano.E003"}
    assert "'real' or 'virtual'" in messages[0].hint


def test_missing_certificate_is_reported_when_sso_is_enabled(settings):
    configure(settings, **preset_values(api_id="a", api_key="k", sso={"x509_certificate": ""}))
    messages = check_presets()
    assert ids(messages) == {"maestrano.E004"}
    assert "MAESTRANO_SSO_X509_CERTIFICATE" in messages[0].hint


def test_missing_certificate_is_fine_when_sso_is_disabled(settings):
    configure(
        settings,
        **preset_values(api_id="a", api_key="k", sso={"x509_certificate": "", "enabled": False}),
    )
    assert check_presets() == []


@pytest.mark.parametrize(
    "certificate",
    [
        "not a certificate",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
    ],
)
def test_unparsable_certificate_is_reported(settings, certificate):
    configure(
        settings, **preset_values(api_id="a", api_key="k", sso={"x509_certificate": certificate})
    )
    messages = check_presets()
    assert ids(messages) == {"maestrano.E005"}
    assert "PEM" in messages[0].hint


def test_second_preset_hint_names_the_setting_not_the_env_var(settings):
    settings.MAESTRANO = {
        "PRESETS": {
            "maestrano": preset_values(api_id="a", api_key="k"),
            "other": preset_values(api_id="", api_key="k"),
        }
    }
    messages = check_presets()
    assert ids(messages) == {"maestrano.E001"}
    assert "MAESTRANO['PRESETS']['other']['api']['id']" in messages[0].hint


def test_default_preset_name_must_exist(settings):
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "missing",
        "PRESETS": {"maestrano": preset_values(api_id="a", api_key="k")},
    }
    assert "maestrano.E006" in ids(check_presets())


def test_checks_run_through_manage_py_check(settings):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    configure(settings, **preset_values(api_id="", api_key="k"))
    with pytest.raises(SystemCheckError, match=r"maestrano\.E001"):
        call_command("check")
