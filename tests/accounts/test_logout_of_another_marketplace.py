"""The "Log out" button of a session that logged in through a second marketplace (preset).

docs/install.md gives projects one logout form, posting to
``{% url 'maestrano_accounts:sso-logout' %}`` (``/maestrano/logout``), and the app's own
pages (``maestrano_accounts/base.html``: billing, signed-out, logout confirmation) carry the
same one. It ends the session of the marketplace the person logged in through, whichever
it is: logged out here, then sent to that marketplace's logout (single logout), never
logged out here only while their session at the other marketplace goes on.

Through the Django test client, with the app's own templates (the example project
overrides some of them).
"""

from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.test import override_settings

from maestrano_accounts.models import Company, Membership
from tests.conftest import preset_values
from tests.helpers.users import platform_user, sso_browser

pytestmark = pytest.mark.django_db

#: The project's TEMPLATES without its own directory: the apps' templates only.
APP_TEMPLATES = [{**django_settings.TEMPLATES[0], "DIRS": []}]
ACME_HUB = "https://hub.acme-market.example"


@pytest.fixture
def acme_session(settings):
    """A person logged in through the second marketplace, ``acme-market``."""
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(api_id="app-1", api_key="key-1"),
            "acme-market": preset_values(
                api_id="acme-app", api_key="acme-key", api={"host": ACME_HUB}
            ),
        },
    }
    company = Company.objects.create(preset="acme-market", group_uid="cld-acme", name="Acme")
    user = platform_user("usr-acme", preset="acme-market")
    Membership.objects.create(user=user, company=company, role="Admin")
    return sso_browser(user, company, uid="usr-acme")


def logout_form_action(html: str) -> str:
    (action,) = re.findall(
        r'<form method="post" action="([^"]*)"[^>]*>[^<]*<input[^>]*'
        r'csrfmiddlewaretoken[^>]*><button type="submit" id="logout">',
        html,
    )
    return action


def test_the_documented_logout_form_ends_the_other_marketplaces_session_there(acme_session):
    answer = acme_session.post("/maestrano/logout")  # the form docs/install.md gives

    assert answer.status_code == 302
    assert answer["Location"] == f"{ACME_HUB}/app_logout?user_uid=usr-acme"
    assert acme_session.get("/dashboard/").status_code == 302  # logged out here too


@override_settings(TEMPLATES=APP_TEMPLATES)
@pytest.mark.parametrize("page", ["/maestrano/signed-out", "/dashboard/"])
def test_the_apps_own_logout_buttons_end_it_there_too(acme_session, page):
    html = acme_session.get(page).content.decode()
    action = logout_form_action(html)

    answer = acme_session.post(action)

    assert answer.status_code == 302
    assert answer["Location"] == f"{ACME_HUB}/app_logout?user_uid=usr-acme"


def test_a_logout_of_the_default_marketplaces_session_is_unchanged(settings):
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(
                api_id="app-1", api_key="key-1", api={"host": "https://hub.example"}
            ),
            "acme-market": preset_values(api_id="acme-app", api_key="acme-key"),
        },
    }
    company = Company.objects.create(preset="maestrano", group_uid="cld-1", name="One")
    user = platform_user("usr-1")
    Membership.objects.create(user=user, company=company, role="Member")
    browser = sso_browser(user, company, uid="usr-1")

    answer = browser.post("/maestrano/logout")

    assert answer["Location"] == "https://hub.example/app_logout?user_uid=usr-1"


def test_a_logout_naming_another_marketplace_only_logs_out_here(acme_session):
    """``/maestrano/<preset>/logout`` names the marketplace: a session of another one has
    no uid there, so it ends here only, as before."""
    answer = acme_session.post("/maestrano/maestrano/logout")

    assert answer.status_code == 302
    assert not answer["Location"].startswith(ACME_HUB)
