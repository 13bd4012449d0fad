"""``kept_resolve_url`` answers as Django's ``resolve_url``, after any change of URL
configuration or script prefix (maestrano_integration.routes)."""

from __future__ import annotations

import pytest
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, set_script_prefix

from maestrano_integration.routes import kept_resolve_url

COMPLETE = "maestrano_accounts:sso-complete"


@pytest.mark.parametrize(
    "to",
    [COMPLETE, "maestrano_accounts:dashboard", "/welcome/", "https://app.example.com/home", "./x"],
)
def test_it_answers_as_resolve_url(to):
    assert kept_resolve_url(to) == resolve_url(to)
    assert kept_resolve_url(to) == resolve_url(to)  # kept, the same


def test_a_new_url_configuration_is_followed(settings):
    before, project = kept_resolve_url(COMPLETE), settings.ROOT_URLCONF

    settings.ROOT_URLCONF = "tests.maestrano_integration.urls_prefixed"

    assert kept_resolve_url(COMPLETE) == "/platform" + before
    settings.ROOT_URLCONF = project
    assert kept_resolve_url(COMPLETE) == before


def test_a_new_script_prefix_is_followed():
    before = kept_resolve_url(COMPLETE)
    set_script_prefix("/crm/")
    try:
        assert kept_resolve_url(COMPLETE) == "/crm" + before
    finally:
        set_script_prefix("/")
    assert kept_resolve_url(COMPLETE) == before


def test_a_name_that_reverses_to_nothing_is_refused_every_time():
    for _ in range(2):
        with pytest.raises(NoReverseMatch):
            kept_resolve_url("maestrano_accounts:no-such-page")
