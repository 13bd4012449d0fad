"""MAESTRANO["BILLING"] is billing's own section: typed, merged over its defaults."""

from __future__ import annotations

from django.core.checks import run_checks

from maestrano_accounts.billing.conf import BillingSettings, billing_settings


def test_the_project_values_are_read_typed_over_the_defaults(settings):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "BILLING": {"DEFAULT_PLAN": {"price_cents": 4900}, "TASK_MAX_RETRIES": "3"},
    }

    config = billing_settings()

    assert isinstance(config, BillingSettings)
    assert config.default_plan["price_cents"] == 4900
    assert config.default_plan["name"] == "Standard"  # the rest of the default plan kept
    assert config.task_max_retries == 3
    assert config.enabled is True


def test_a_change_of_the_setting_is_seen_at_once(settings):
    settings.MAESTRANO = {**settings.MAESTRANO, "BILLING": {"ENABLED": False}}
    assert billing_settings().enabled is False

    settings.MAESTRANO = {**settings.MAESTRANO, "BILLING": {"ENABLED": True}}
    assert billing_settings().enabled is True


def test_the_section_is_known_to_the_settings_check(settings):
    settings.MAESTRANO = {**settings.MAESTRANO, "BILLING": {"FREE_TRIAL_SOURCE": "plan"}}

    assert not [m for m in run_checks() if "BILLING" in str(m.msg)]
