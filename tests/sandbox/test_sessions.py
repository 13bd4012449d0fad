"""Session check (docs/protocol.md, 'Session check') and the platform's logout pages, over HTTP."""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from maestrano_sandbox.models import PlatformSession
from tests.helpers import saml
from tests.helpers.saml import form_posting_to


@pytest.fixture
def logged_in(platform):
    """A user logged in to our app through the IdP: ``(uid, mno_session)``."""
    url, _ = saml.authn_request_url(platform)
    post = saml.submit_login(requests.Session(), url, user_uid="usr-1", group_uid="cld-1")
    attributes = saml.validate_response(platform, post)[2]
    return attributes["uid"][0], attributes["mno_session"][0]


def _check(platform, uid, session, auth=None):
    return requests.get(
        f"{platform.sandbox_url}/api/v1/auth/saml/{uid}",
        params={"session": session},
        auth=auth or platform.auth,
        timeout=10,
    )


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_live_session_is_valid_with_a_recheck_time(platform, logged_in, settings):
    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "SESSION_RECHECK_SECONDS": 30}
    uid, session = logged_in
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    response = _check(platform, uid, session)
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    recheck = _parse(body["recheck"])
    assert before + dt.timedelta(seconds=29) <= recheck <= before + dt.timedelta(seconds=90)
    assert PlatformSession.objects.get(token=session).last_checked_at is not None


def test_unknown_or_foreign_sessions_are_invalid(platform, logged_in):
    uid, session = logged_in
    assert _check(platform, uid, "not-a-session").json()["valid"] is False
    assert _check(platform, "usr-someone-else", session).json()["valid"] is False
    assert _check(platform, uid, "").json()["valid"] is False
    other = platform.register_app(api_id="app-other")
    response = _check(platform, uid, session, auth=(other.api_id, other.api_key))
    assert response.status_code == 200
    assert response.json()["valid"] is False


def test_session_check_needs_the_app_credentials(platform, logged_in):
    uid, session = logged_in
    response = _check(platform, uid, session, auth=(platform.api_id, "wrong"))
    assert response.status_code == 401
    assert response.json()["errors"] == {"authentication": ["Invalid API token"]}
    assert (
        requests.get(f"{platform.sandbox_url}/api/v1/auth/saml/{uid}", timeout=10).status_code
        == 401
    )


def test_log_out_everywhere_button_invalidates_the_sessions(platform, logged_in):
    uid, session = logged_in
    http = requests.Session()
    page = http.get(f"{platform.sandbox_url}/users/{uid}", timeout=10)
    assert page.status_code == 200
    assert "valid" in page.text
    form = form_posting_to(page.text, f"/sandbox/users/{uid}/logout-everywhere")
    response = http.post(
        f"{platform.sandbox_url}/users/{uid}/logout-everywhere",
        data=form["fields"],
        headers={"Referer": page.url},
        timeout=10,
    )
    assert response.status_code == 200
    assert "logged out" in response.text
    assert _check(platform, uid, session).json()["valid"] is False


def test_log_out_everywhere_needs_csrf(platform, logged_in):
    uid, session = logged_in
    response = requests.post(f"{platform.sandbox_url}/users/{uid}/logout-everywhere", timeout=10)
    assert response.status_code == 403
    assert _check(platform, uid, session).json()["valid"] is True


def test_app_logout_closes_the_user_sessions_and_returns_to_the_app(platform, logged_in):
    uid, session = logged_in
    response = requests.get(
        f"{platform.sandbox_url}/app_logout",
        params={"user_uid": uid},
        timeout=10,
        allow_redirects=False,
    )
    assert response.status_code == 302
    assert response.headers["Location"] == f"{platform.url}/"
    assert response.headers["Cache-Control"] == "no-store"
    assert _check(platform, uid, session).json()["valid"] is False


def test_app_logout_returns_to_the_app_the_user_signed_in_to_last(platform, logged_in):
    uid, _ = logged_in
    other = platform.register_app(api_id="app-other", app_host="http://other.example")
    first = PlatformSession.objects.filter(user__uid=uid).get()
    PlatformSession.objects.create(user=first.user, group=first.group, app=other)
    response = requests.get(
        f"{platform.sandbox_url}/app_logout",
        params={"user_uid": uid},
        timeout=10,
        allow_redirects=False,
    )
    assert response.headers["Location"] == "http://other.example/"
    assert not PlatformSession.objects.filter(user__uid=uid, invalidated_at=None).exists()


@pytest.mark.parametrize("dest", ["image", "iframe", "empty", "script"])
def test_another_sites_page_cannot_log_a_user_out_from_within_it(platform, logged_in, dest):
    # <img src=".../app_logout?user_uid=…">, a frame, a fetch(): the browser says which
    # (Fetch Metadata). Nothing is closed.
    uid, session = logged_in
    response = requests.get(
        f"{platform.sandbox_url}/app_logout",
        params={"user_uid": uid},
        headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": dest},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 403
    assert "nothing closed" in response.text
    assert _check(platform, uid, session).json()["valid"] is True


@pytest.mark.parametrize("site", ["cross-site", "same-site", "same-origin", "none"])
def test_a_top_level_app_logout_closes_the_sessions_from_any_site(platform, logged_in, site):
    # The app's redirect is a top-level navigation, from another site when the sandbox runs
    # on its own host name (docs/install.md), or from the same one beside the app.
    uid, session = logged_in
    response = requests.get(
        f"{platform.sandbox_url}/app_logout",
        params={"user_uid": uid},
        headers={"Sec-Fetch-Site": site, "Sec-Fetch-Dest": "document"},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 302
    assert response.headers["Location"] == f"{platform.url}/"
    assert _check(platform, uid, session).json()["valid"] is False


def test_app_logout_of_a_user_without_sessions_shows_the_platform_page(platform):
    platform.add_member(group_uid="cld-1", user_uid="usr-never")
    response = requests.get(
        f"{platform.sandbox_url}/app_logout", params={"user_uid": "usr-never"}, timeout=10
    )
    assert response.status_code == 200
    assert "You are logged out" in response.text
    assert "0 platform sessions closed" in response.text


def test_app_logout_for_an_unknown_user_changes_nothing(platform, logged_in):
    uid, session = logged_in
    response = requests.get(
        f"{platform.sandbox_url}/app_logout", params={"user_uid": "usr-nobody"}, timeout=10
    )
    assert response.status_code == 200
    assert "nothing to close" in response.text
    assert _check(platform, uid, session).json()["valid"] is True


def test_access_unauthorized_page(platform):
    response = requests.get(f"{platform.sandbox_url}/app_access_unauthorized", timeout=10)
    assert response.status_code == 403
    assert "Access refused" in response.text
    # Every cause a person may be in, not only "ask to be added" (an Admin whose group
    # cancelled the app reads this too), and the brand leads to the sandbox, not the app.
    assert "no longer a member" in response.text
    assert "service of this application was cancelled" in response.text
    assert '<a class="brand" href="/sandbox/">' in response.text
