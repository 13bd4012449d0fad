"""The company switcher and the switch after a lost company stay within the marketplace
(preset) of the SSO login; a login without SSO keeps all of the user's companies.

Through the Django test client: a user who is a member of companies of two presets,
logged in through one preset's SSO (tests.helpers.users.sso_browser).
"""

from __future__ import annotations

import base64
from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from maestrano_accounts.models import Company, Membership
from maestrano_accounts.sessions import CURRENT_COMPANY_KEY
from tests.helpers.users import platform_user, sso_browser

User = get_user_model()

pytestmark = pytest.mark.django_db

GROUP_DELETE = "/maestrano/account/groups/cld-gone"
GROUP_DELETE_AUTH = "Basic " + base64.b64encode(b"app-1:key-1").decode()  # preset "maestrano"


@pytest.fixture(autouse=True)
def _presets(two_presets):
    return two_presets


@pytest.fixture
def companies():
    """Two companies of the default preset and one of "acme-market", whose name sorts first
    (the switch after a loss takes the first by name)."""
    return {
        "gone": Company.objects.create(preset="maestrano", group_uid="cld-gone", name="Gone Co"),
        "kept": Company.objects.create(preset="maestrano", group_uid="cld-kept", name="Kept Co"),
        "acme": Company.objects.create(
            preset="acme-market", group_uid="cld-acme", name="Acme Market Co"
        ),
    }


@pytest.fixture
def member(companies):
    """A member of all three companies (one person, linked on both marketplaces)."""
    user = platform_user("usr-1")
    for company in companies.values():
        Membership.objects.create(user=user, company=company, role="Admin")
    return user


def cancel_gone_company() -> None:
    answer = Client().delete(GROUP_DELETE, HTTP_AUTHORIZATION=GROUP_DELETE_AUTH)
    assert answer.status_code == 200


def switch(browser: Client, company_id: object):
    return browser.post("/maestrano/switch-company", {"company_id": str(company_id)})


# --- the switch after the current company is lost ----------------------------------------


def test_losing_the_current_company_moves_on_to_one_of_the_same_preset_only(member, companies):
    browser = sso_browser(member, companies["gone"], uid="usr-1")

    cancel_gone_company()
    page = browser.get("/dashboard/")

    assert page.status_code == 200
    assert page.context["company"] == companies["kept"]
    assert [str(m) for m in page.context["messages"]] == [
        "Gone Co is no longer available; you are now in Kept Co."
    ]


def test_losing_the_last_company_of_the_preset_refuses_despite_another_presets(member, companies):
    Membership.objects.filter(company=companies["kept"]).delete()
    browser = sso_browser(member, companies["gone"], uid="usr-1")

    cancel_gone_company()
    page = browser.get("/dashboard/")

    assert (page.status_code, page.headers["Location"]) == (
        302,
        "http://127.0.0.1:9/app_access_unauthorized",
    )
    assert browser.get("/dashboard/").headers["Location"].startswith("/?next=")  # logged out
    assert CURRENT_COMPANY_KEY not in browser.session


def test_a_current_company_of_another_preset_is_not_worked_in(member, companies):
    """A session whose current company is another marketplace's (however it came there)
    does not work in it: the same as a lost company."""
    browser = sso_browser(member, companies["acme"], uid="usr-1", preset="maestrano")

    page = browser.get("/dashboard/")

    assert page.context["company"] == companies["gone"]  # the preset's first, by name
    assert browser.session[CURRENT_COMPANY_KEY] == companies["gone"].pk


# --- the switcher ----------------------------------------------------------------------


def test_the_switcher_offers_only_the_companies_of_the_logins_preset(member, companies):
    browser = sso_browser(member, companies["gone"], uid="usr-1")

    page = browser.get("/dashboard/")

    assert page.context["companies"] == [companies["gone"], companies["kept"]]
    assert "Acme Market Co" not in page.text
    acme_browser = sso_browser(member, companies["acme"], uid="usr-1")
    # Alone in its preset: no switcher at all.
    acme_page = acme_browser.get("/dashboard/")
    assert acme_page.context["companies"] == [companies["acme"]]
    assert 'id="company-switcher"' not in acme_page.text


def test_switching_to_a_company_of_another_preset_is_404(member, companies):
    browser = sso_browser(member, companies["gone"], uid="usr-1")

    assert switch(browser, companies["acme"].pk).status_code == 404
    assert browser.session[CURRENT_COMPANY_KEY] == companies["gone"].pk
    assert switch(browser, companies["kept"].pk).status_code == 302
    assert browser.get("/dashboard/").context["company"] == companies["kept"]


@pytest.mark.parametrize(
    "value", ["", "abc", "-1", "0", "9" * 30, "1e3", "٩٩٩٩٩", "1\x00", " "], ids=repr
)
def test_switching_to_an_odd_company_id_is_404(member, companies, value):
    browser = sso_browser(member, companies["gone"], uid="usr-1")

    assert switch(browser, value).status_code == 404
    assert browser.session[CURRENT_COMPANY_KEY] == companies["gone"].pk


def test_a_login_without_sso_keeps_all_of_the_users_companies(member, companies):
    """A Django user logged in without SSO (the admin's login form) is tied to no
    marketplace: the switcher offers all of their companies, of every preset."""
    browser = Client()
    browser.force_login(member)

    assert switch(browser, companies["acme"].pk).status_code == 302
    page = browser.get("/dashboard/")
    assert page.context["company"] == companies["acme"]
    assert page.context["companies"] == [companies["acme"], companies["gone"], companies["kept"]]


# --- the switcher's accessible name ------------------------------------------------------


class _Switcher(HTMLParser):
    """The accessible name of the switcher's <select> (aria-label, else its <label for>),
    and the text of its visible <label>."""

    def __init__(self) -> None:
        super().__init__()
        self.select_id = self.aria_label = None
        self.labels: dict[str, str] = {}
        self._label_for: str | None = None

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "select" and values.get("name") == "company_id":
            self.select_id, self.aria_label = values.get("id"), values.get("aria-label")
        elif tag == "label":
            self._label_for = values.get("for")
            self.labels[self._label_for] = ""

    def handle_data(self, data):
        if self._label_for is not None:
            self.labels[self._label_for] += data

    def handle_endtag(self, tag):
        if tag == "label":
            self._label_for = None


def _switcher(html: str) -> _Switcher:
    parser = _Switcher()
    parser.feed(html)
    return parser


def test_the_switchers_accessible_name_is_its_visible_label(member, companies):
    """WCAG 2.5.3, label in name: a speech user says what they see."""
    page = sso_browser(member, companies["gone"], uid="usr-1").get("/dashboard/")

    switcher = _switcher(page.text)
    visible = switcher.labels.get(switcher.select_id, "").strip()
    assert visible == "Switch company"
    assert (switcher.aria_label or visible) == visible


def test_the_accounts_apps_own_switcher_has_a_visible_label_that_names_it(member, companies, rf):
    """The reusable app's plain dashboard (the example project overrides it)."""
    from pathlib import Path

    from django.template import engines

    import maestrano_accounts

    source = (
        Path(maestrano_accounts.__file__).parent / "templates/maestrano_accounts/dashboard.html"
    ).read_text()
    request = rf.get("/dashboard/")
    request.user = member
    html = (
        engines["django"]
        .from_string(source)
        .render(
            {"company": companies["gone"], "companies": [companies["gone"], companies["kept"]]},
            request,
        )
    )

    switcher = _switcher(html)
    visible = switcher.labels.get(switcher.select_id, "").strip()
    assert visible == "Company"
    assert (switcher.aria_label or visible) == visible


def test_an_anonymous_request_has_no_session_companies(rf, companies):
    """The selector the switcher's list reads answers an anonymous request (no login)
    with no company, rather than a query of a user that is none (which raised)."""
    from django.contrib.auth.models import AnonymousUser
    from django.contrib.sessions.backends.db import SessionStore

    from maestrano_accounts.selectors import session_companies

    request = rf.get("/")
    request.user = AnonymousUser()
    request.session = SessionStore()
    assert list(session_companies(request)) == []
