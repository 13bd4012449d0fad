"""A MAESTRANO value of a wrong type is a configuration error (maestrano.E039), never a
value converted into what it might have meant: "false" is not read as true."""

from __future__ import annotations

import logging

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from maestrano_integration.conf import get_preset, maestrano_settings
from maestrano_sync.conf import sync_settings
from tests.conftest import preset_values

BOOLEAN = "a boolean (True or False)"
INTEGER = "an integer (an int, not a bool or a string)"
NUMBER = "a number (an int or a float, not a bool or a string)"


def preset(**overrides) -> dict:
    return preset_values(api_id="app-1", api_key="key-1", **overrides)


def maestrano(**values) -> dict:
    return {"DEFAULT_PRESET": "maestrano", "PRESETS": {"maestrano": preset()}, **values}


def type_errors() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks(tags=["maestrano"]) if m.id == "maestrano.E039"]


@pytest.mark.parametrize(
    ("values", "path", "value", "expected"),
    [
        (
            {"PRESETS": {"maestrano": preset(sso={"allow_sha1": "false"})}},
            'MAESTRANO["PRESETS"]["maestrano"]["sso"]["allow_sha1"]',
            "'false'",
            BOOLEAN,
        ),
        (
            {"PRESETS": {"maestrano": preset(sso={"enabled": 0})}},
            'MAESTRANO["PRESETS"]["maestrano"]["sso"]["enabled"]',
            "0",
            BOOLEAN,
        ),
        (
            {"PRESETS": {"maestrano": preset(connec={"timeout": "30"})}},
            'MAESTRANO["PRESETS"]["maestrano"]["connec"]["timeout"]',
            "'30'",
            NUMBER,
        ),
        (
            {
                "PRESETS": {
                    "maestrano": preset(webhook={"connec": {"subscriptions": {"people": "false"}}})
                }
            },
            'MAESTRANO["PRESETS"]["maestrano"]["webhook"]["connec"]["subscriptions"]',
            "{'people': 'false'}",
            "a dict of entity names to True or False",
        ),
        (
            {"PRESETS": {"maestrano": preset(sso="off")}},
            'MAESTRANO["PRESETS"]["maestrano"]["sso"]',
            "'off'",
            "a dict",
        ),
        (
            {"SSO_ALLOW_IDP_INITIATED": "false"},
            'MAESTRANO["SSO_ALLOW_IDP_INITIATED"]',
            "'false'",
            BOOLEAN,
        ),
        ({"HTTP_RETRIES": True}, 'MAESTRANO["HTTP_RETRIES"]', "True", INTEGER),
        ({"SYNC": {"ENABLED": "false"}}, 'MAESTRANO["SYNC"]["ENABLED"]', "'false'", BOOLEAN),
        ({"SYNC": {"BATCH_SIZE": "50"}}, 'MAESTRANO["SYNC"]["BATCH_SIZE"]', "'50'", INTEGER),
        ({"SYNC": {"BATCH_SIZE": 50.0}}, 'MAESTRANO["SYNC"]["BATCH_SIZE"]', "50.0", INTEGER),
        (
            {"SYNC": {"EXTRA_ENTITIES": "projects"}},
            'MAESTRANO["SYNC"]["EXTRA_ENTITIES"]',
            "'projects'",
            "a list or tuple of strings",
        ),
        # A key that moved to CONNEC, still read at its old place: named there.
        ({"SYNC": {"PAGE_SIZE": "7"}}, 'MAESTRANO["SYNC"]["PAGE_SIZE"]', "'7'", INTEGER),
        ({"CONNEC": {"BACKOFF_MAX": True}}, 'MAESTRANO["CONNEC"]["BACKOFF_MAX"]', "True", NUMBER),
        ({"BILLING": {"ENABLED": "no"}}, 'MAESTRANO["BILLING"]["ENABLED"]', "'no'", BOOLEAN),
        ({"METRICS": {"ENABLED": "false"}}, 'MAESTRANO["METRICS"]["ENABLED"]', "'false'", BOOLEAN),
        (
            {"HEALTH": {"BROKER_TIMEOUT": "2"}},
            'MAESTRANO["HEALTH"]["BROKER_TIMEOUT"]',
            "'2'",
            NUMBER,
        ),
        ({"SYNC": "on"}, 'MAESTRANO["SYNC"]', "'on'", "a dict"),
    ],
)
def test_a_value_of_a_wrong_type_fails_the_check_naming_it(values, path, value, expected):
    with override_settings(MAESTRANO=maestrano(**values)):
        with pytest.raises(SystemCheckError) as caught:
            call_command("check", "--tag", "maestrano")
        [error] = type_errors()

    report = str(caught.value)
    assert "maestrano.E039" in report
    assert f"{path} is {value}" in report
    assert error.level == checks.ERROR
    assert path in error.hint
    assert value in error.hint
    assert expected in error.hint


def test_values_of_the_right_type_pass_ints_for_seconds_and_lists_for_tuples_included():
    values = maestrano(
        PRESETS={
            "maestrano": preset(sso={"allow_sha1": False, "enabled": True}, connec={"timeout": 12})
        },
        SYNC={"ENABLED": False, "BATCH_SIZE": 50, "EXTRA_ENTITIES": ["projects"]},
        CONNEC={"BACKOFF_MAX": 30},
        METRICS={"ENABLED": True, "ALLOWED_ADDRESSES": ("10.0.0.0/8",)},
    )
    with override_settings(MAESTRANO=values):
        assert type_errors() == []
        assert sync_settings().extra_entities == ("projects",)
        assert maestrano_settings.connec().backoff_max == 30.0
        assert get_preset().connec_timeout == 12.0


def test_every_check_still_runs_and_the_wrong_value_is_reported_once():
    # sso.enabled is read by many checks (credentials, SameSite, subscriptions...): none of
    # them fails the whole run, and the one error says what is wrong.
    with override_settings(
        MAESTRANO=maestrano(PRESETS={"maestrano": preset(sso={"enabled": "yes"})})
    ):
        messages = checks.run_checks()

    errors = [m for m in messages if m.id == "maestrano.E039"]
    assert len(errors) == 1
    assert 'MAESTRANO["PRESETS"]["maestrano"]["sso"]["enabled"] is \'yes\'' in errors[0].msg


def test_the_default_presets_hint_names_its_environment_variable():
    with override_settings(
        MAESTRANO=maestrano(PRESETS={"maestrano": preset(sso={"allow_sha1": "false"})})
    ):
        [error] = type_errors()

    assert "MAESTRANO_SSO_ALLOW_SHA1" in error.hint


@pytest.mark.parametrize(
    ("values", "read", "message"),
    [
        (
            {"PRESETS": {"maestrano": preset(sso={"allow_sha1": "false"})}},
            lambda: get_preset().allow_sha1,
            'MAESTRANO["PRESETS"]["maestrano"]["sso"]["allow_sha1"] is \'false\' (str)',
        ),
        (
            {"SYNC": {"ENABLED": "false"}},
            lambda: sync_settings().enabled,
            'MAESTRANO["SYNC"]["ENABLED"] is \'false\' (str)',
        ),
        (
            {"SSO_CLOCK_SKEW_SECONDS": "120"},
            lambda: maestrano_settings.SSO_CLOCK_SKEW_SECONDS,
            "MAESTRANO[\"SSO_CLOCK_SKEW_SECONDS\"] is '120' (str)",
        ),
    ],
)
def test_read_at_run_time_a_wrong_value_is_improperly_configured(values, read, message):
    with override_settings(MAESTRANO=maestrano(**values)):
        with pytest.raises(ImproperlyConfigured) as caught:
            read()
        [error] = type_errors()

    assert str(caught.value) == error.msg
    assert message in str(caught.value)


def test_the_metadata_endpoint_answers_503_not_500(client, caplog):
    caplog.set_level(logging.ERROR)
    values = maestrano(PRESETS={"maestrano": preset(sso={"slo_enabled": "false"})})
    with override_settings(MAESTRANO=values):
        answer = client.get("/maestrano/metadata", HTTP_AUTHORIZATION=_basic("app-1", "key-1"))

    assert answer.status_code == 503
    assert answer.json() == {"error": "The application is misconfigured"}
    assert any(
        'MAESTRANO["PRESETS"]["maestrano"]["sso"]["slo_enabled"]' in r.getMessage()
        for r in caplog.records
    )


def test_readiness_fails_on_a_wrong_value_without_a_500(client, caplog):
    caplog.set_level(logging.ERROR)
    with override_settings(MAESTRANO=maestrano(HEALTH={"CHECK_PLATFORM": "false"})):
        answer = client.get("/health/ready")

    assert answer.status_code == 503
    assert answer.json()["checks"]["settings"] == "a MAESTRANO setting has a wrong type"
    assert any('MAESTRANO["HEALTH"]["CHECK_PLATFORM"]' in r.getMessage() for r in caplog.records)


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
