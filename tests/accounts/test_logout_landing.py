"""Where a logout that stays in the application lands (docs/install.md, "Your users").

Django's ``LOGOUT_REDIRECT_URL`` when the project sets it (a path, a URL or a URL name),
else the "You are signed out" page of maestrano_accounts, which the include serves in
every project: never a hard-coded ``/`` that a new project does not serve. (A logout of
an SSO session goes on at the platform: tests/accounts/test_sso.py.)
"""

from __future__ import annotations

import pytest

from maestrano_accounts.models import Company
from tests.helpers.users import log_in_to_company

pytestmark = pytest.mark.django_db

SIGNED_OUT = "/maestrano/signed-out"


@pytest.fixture
def member(client):
    """A user logged in without SSO (no platform uid in the session): the logout stays here."""
    company = Company.objects.create(preset="maestrano", group_uid="cld-out", name="Out Ltd")
    log_in_to_company(client, company, role="Member")
    return client


def test_without_a_logout_redirect_url_the_logout_lands_on_the_signed_out_page(member, settings):
    settings.LOGOUT_REDIRECT_URL = None  # Django's default (the example project sets "/")

    answer = member.post("/maestrano/logout")

    assert answer.status_code == 302
    assert answer["Location"] == SIGNED_OUT
    page = member.get(SIGNED_OUT)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h1>You are signed out</h1>" in html
    # Said once: the message the logout left is not repeated beside the heading.
    assert html.count("You are signed out") == 1
    assert 'href="/maestrano/auth/saml/init"' in html
    assert member.get("/dashboard/").status_code == 302  # logged out indeed


@pytest.mark.parametrize(
    ("setting", "location"),
    [
        ("/goodbye/", "/goodbye/"),
        ("maestrano_accounts:dashboard", "/dashboard/"),  # a URL name, as Django reads it
        ("https://www.example.com/bye", "https://www.example.com/bye"),
    ],
)
def test_the_logout_honours_logout_redirect_url(member, settings, setting, location):
    settings.LOGOUT_REDIRECT_URL = setting

    answer = member.post("/maestrano/logout")

    assert answer.status_code == 302
    assert answer["Location"] == location


def test_the_logout_page_of_a_logged_out_visitor_leads_to_the_landing(client, settings):
    settings.LOGOUT_REDIRECT_URL = None

    page = client.get("/maestrano/logout")

    assert page.status_code == 200
    assert f'href="{SIGNED_OUT}"' in page.content.decode()


def test_the_signed_out_page_of_a_logged_in_user_says_so(member):
    page = member.get(SIGNED_OUT)

    assert page.status_code == 200
    html = page.content.decode()
    assert "You are signed out" not in html
    assert "<h1>You are logged in</h1>" in html
    assert 'href="/dashboard/"' in html
    assert "no-store" in page["Cache-Control"]


def test_the_signed_out_page_offers_no_login_when_sso_is_off(client, settings):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "PRESETS": {
            name: {**values, "sso": {**values.get("sso", {}), "enabled": False}}
            for name, values in settings.MAESTRANO["PRESETS"].items()
        },
    }

    page = client.get(SIGNED_OUT)

    assert page.status_code == 200
    assert 'id="login-again"' not in page.content.decode()


def test_the_signed_out_page_only_answers_get(client):
    assert client.post(SIGNED_OUT).status_code == 405


def test_a_project_overrides_the_signed_out_template(client, settings, tmp_path):
    override = tmp_path / "maestrano_accounts" / "signed_out.html"
    override.parent.mkdir()
    override.write_text("<p id='ours'>Goodbye from the project.</p>")
    engine = settings.TEMPLATES[0]
    settings.TEMPLATES = [{**engine, "DIRS": [tmp_path, *engine["DIRS"]]}]

    page = client.get(SIGNED_OUT)

    assert page.status_code == 200
    assert page.content.decode() == "<p id='ours'>Goodbye from the project.</p>"
