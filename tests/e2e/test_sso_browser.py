"""SSO in headless Chromium: landing → init → sandbox login page → consume → dashboard.

The IdP is served under the *other* loopback name (``127.0.0.1`` when the app is
``localhost``, and the reverse), so the ACS POST is cross-site as in production
and the default ``SameSite=Lax`` session cookie is really put to the test: the
completion view must see the session that init created (for ``InResponseTo``).
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from django.contrib.auth import get_user_model

from maestrano_accounts.models import Company
from tests.helpers.saml import parse_form
from tests.helpers.users import uid_of

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
    assert uid_of(User.objects.get()) == "usr-browser"


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
    # Found by its accessible name, which is its visible label (WCAG 2.5.3, label in name).
    page.get_by_role("combobox", name="Switch company", exact=True).select_option(label="One Co")
    page.click("#company-switcher button[type=submit]")
    page.wait_for_url(f"{platform.url}/dashboard/")
    assert page.text_content("#company-name") == "One Co"


def test_an_idp_initiated_login_completes_only_in_the_browser_that_posted(
    platform, cross_site_idp, browser_page
):
    """Login CSRF: a completion link the attacker got for their own login fails in a victim's
    browser; the browser that posted the response completes, thanks to a ``SameSite=Lax``
    nonce cookie set on the response to the cross-site POST and sent on the redirected GET.
    """
    platform.add_member(group_uid="cld-evil", user_uid="usr-evil", role="Admin")
    platform.add_member(
        group_uid="cld-launch", user_uid="usr-launch", role="Admin", name="Lana", surname="Launch"
    )
    complete_url = f"{platform.url}/maestrano/auth/saml/complete"
    launch_url = f"{cross_site_idp}/apps/{platform.api_id}/launch"
    # The attacker launches the app as themselves, posts the response, keeps the link.
    attacker = platform.session()
    launched = attacker.get(launch_url, params={"user": "usr-evil", "group": "cld-evil"})
    form = parse_form(launched.text, "saml-post")
    consume = attacker.post(form["action"], data=form["fields"], allow_redirects=False)
    assert consume.status_code == 303
    stolen_link = urljoin(consume.url, consume.headers["Location"])

    page = browser_page
    page.goto(stolen_link)
    assert "We could not log you in" in page.content()
    assert not User.objects.exists()

    launch = f"{launch_url}?user=usr-launch&group=cld-launch"
    with page.expect_request(f"{complete_url}*") as completion:
        page.goto(launch)  # the sandbox page auto-submits the response to the app's ACS
    page.wait_for_url(f"{platform.url}/dashboard/")
    assert "maestrano_sso_auth_nonce=" in completion.value.all_headers().get("cookie", "")
    assert page.text_content("#current-user") == "Lana Launch"
    cookies = page.context.cookies(complete_url)
    assert not [c for c in cookies if c["name"] == "maestrano_sso_auth_nonce"]
