"""MAESTRANO["BILLING"] is billing's own section: typed, merged over its defaults."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from maestrano_accounts.billing.conf import BillingSettings, billing_settings


def test_the_project_values_are_read_typed_over_the_defaults(settings):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "BILLING": {"DEFAULT_PLAN": {"price_cents": 4900}, "TASK_MAX_RETRIES": 3},
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


# --- DEFAULT_PLAN within a plan's limits (maestrano.E032) ---------------------------------


def default_plan(settings, **values):
    settings.MAESTRANO = {**settings.MAESTRANO, "BILLING": {"DEFAULT_PLAN": values}}


@pytest.mark.parametrize(
    ("values", "limit"),
    [
        ({"free_trial_days": 40_000}, "free_trial_days: A free trial is at most 36500 days"),
        ({"free_trial_days": -1}, "free_trial_days: Ensure this value is greater than"),
        ({"free_trial_days": "two weeks"}, "free_trial_days: “two weeks” value must be an integer"),
        ({"frequency": 0}, "frequency: A plan charges every 1 or more periods."),
        ({"frequency": -3}, "frequency: A plan charges every 1 or more periods."),
        ({"price_cents": "29.99"}, "price_cents: “29.99” value must be an integer"),
        ({"price_cents": 29.99}, "price_cents: Enter a whole number."),
        ({"price_cents": -100}, "price_cents: Ensure this value is greater than or equal to 0"),
        ({"period": "Fortnight"}, "period: Value 'Fortnight' is not a valid choice."),
    ],
)
def test_a_default_plan_outside_a_plans_limits_fails_the_check(settings, values, limit):
    default_plan(settings, **values)

    with pytest.raises(SystemCheckError) as failure:
        call_command("check")

    message = str(failure.value)
    assert "maestrano.E032" in message
    assert "MAESTRANO['BILLING']['DEFAULT_PLAN'] is outside a plan's limits, so the plan" in message
    assert limit in message


def test_the_default_plan_and_its_values_as_text_pass_the_check(settings):
    assert not [m for m in run_checks() if m.id == "maestrano.E032"]

    default_plan(settings, free_trial_days="36500", frequency="3", price_cents="4900")

    assert not [m for m in run_checks() if m.id == "maestrano.E032"]


# --- DEFAULT_PLAN's keys (maestrano.E033) -------------------------------------------------


def test_unknown_keys_of_the_default_plan_fail_the_check_naming_them_and_the_accepted_ones(
    settings,
):
    every_key = {
        "name": "Team",
        "price_cents": 900,
        "period": "Year",
        "frequency": 1,
        "currency": "EUR",
        "free_trial_days": 0,
        "per_user": True,
    }
    default_plan(settings, **every_key)
    assert not [m for m in run_checks() if m.id in ("maestrano.E032", "maestrano.E033")]

    default_plan(settings, free_trail_days=30, price=4900, price_cents=4900, colour="blue")

    with pytest.raises(SystemCheckError) as failure:
        call_command("check")

    message = str(failure.value)
    assert "maestrano.E033" in message
    assert (
        "MAESTRANO['BILLING']['DEFAULT_PLAN'] has keys that are not a plan's: 'colour', "
        "'free_trail_days' (did you mean 'free_trial_days'?), 'price' (did you mean "
        "'price_cents'?)." in message
    )
    assert (
        "Its accepted keys are name, price_cents, period, frequency, currency, "
        "free_trial_days, per_user" in message
    )
    assert "maestrano.E032" not in message  # the known keys are within a plan's limits
