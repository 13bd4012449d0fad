"""SSO in headless Chromium: landing → init → sandbox login page → consume → dashboard.

The IdP is served under the *other* loopback name (``127.0.0.1`` when the app is
``localhost``, and the reverse), so the ACS POST is cross-site as in production
and the default ``SameSite=Lax`` session cookie is really put to the test: the
completion view must see the session that init created (for ``InResponseTo``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model

from accounts.models import Company

User = get_user_model()

pytestmark = pytest.mark.browser


@pytest.fixture
def cross_site_idp(platform) -> str:
    """Point the default preset at the sandbox under the other loopback host name."""
    parts = urlsplit(platform.url)
    other = "127.0.0.1" if parts.hostname == "localhost" else "localhost"
    idp_root = f"http://{other}:{parts.port}/sandbox"
    platform.configure(maestrano=platform.preset_values(api={"host": idp_root}))
    return idp_root


def sign_in_at_the_idp(page, *, user_uid: str, group_uid: str, group_name: str) -> None:
    page.fill("#id_user_uid", user_uid)
    page.fill("#id_user_name", "Brenda")
    page.fill("#id_user_surname", "Browser")
    page.fill("#id_group_uid", group_uid)
    page.fill("#id_group_name", group_name)
    page.check("#id_create_missing")  # new uids, on purpose
    page.click("#idp-login button[type=submit]")


def test_a_click_through_sso_lands_on_the_dashboard(platform, cross_site_idp, browser_page):
    page = browser_page
    page.goto(f"{platform.url}/")

    page.click("#login-with-maestrano")
    page.wait_for_url(f"{cross_site_idp}/api/v1/auth/saml?*")
    sign_in_at_the_idp(
        page, user_uid="usr-browser", group_uid="cld-browser", group_name="Browser Co"
    )
    page.wait_for_url(f"{platform.url}/dashboard/")

    assert page.text_content("#company-name") == "Browser Co"
    assert page.text_content("#current-user") == "Brenda Browser"
    session_cookie = next(c for c in page.context.cookies(platform.url) if c["name"] == "sessionid")
    assert session_cookie["sameSite"] == "Lax"
    assert Company.objects.get().group_uid == "cld-browser"
    assert User.objects.get().uid == "usr-browser"


def test_a_logged_in_user_opening_another_company_switches_to_it(
    platform, cross_site_idp, browser_page
):
    page = browser_page
    page.goto(f"{platform.url}/maestrano/auth/saml/init")
    sign_in_at_the_idp(page, user_uid="usr-two", group_uid="cld-one", group_name="One Co")
    page.wait_for_url(f"{platform.url}/dashboard/")

    page.goto(f"{platform.url}/maestrano/auth/saml/init?group_id=cld-two")
    sign_in_at_the_idp(page, user_uid="usr-two", group_uid="cld-two", group_name="Two Co")
    page.wait_for_url(f"{platform.url}/dashboard/")

    assert page.text_content("#company-name") == "Two Co"
    page.select_option("#company-switcher select", label="One Co")
    page.click("#company-switcher button[type=submit]")
    page.wait_for_url(f"{platform.url}/dashboard/")
    assert page.text_content("#company-name") == "One Co"
