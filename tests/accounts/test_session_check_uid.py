"""The session check asks about the session's uid and nothing else: the uid is one segment
of the check's path (``maestrano_integration.http.path_segment``).

The uid comes from the platform's assertion; the check carries our credentials, which
the platform's other APIs accept too. A ``/``, ``?`` or ``..`` in it must not turn the
check into another call (``usr-1/../../account/groups``: the Account API's groups).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from http.server import BaseHTTPRequestHandler

import pytest

from maestrano_accounts.models import Company, Membership
from maestrano_accounts.sessions import SESSION_KEY
from tests.conftest import preset_values
from tests.helpers.loopback import serving
from tests.helpers.users import platform_user, sso_browser

pytestmark = pytest.mark.django_db

#: The paths the stand-in platform was asked, in order.
ASKED: list[str] = []


class Platform(BaseHTTPRequestHandler):
    """A platform whose session check answers "valid" (and records what it was asked)."""

    def do_GET(self) -> None:
        ASKED.append(self.path)
        body = json.dumps({"valid": True, "recheck": "2099-01-01T00:00:00Z"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def platform_url(settings):
    ASKED.clear()
    with serving(Platform) as url:
        settings.MAESTRANO = {
            "DEFAULT_PRESET": "maestrano",
            "PRESETS": {
                "maestrano": preset_values(api_id="app-1", api_key="key-1", api={"host": url})
            },
        }
        yield url


def browser_due_for_a_check(uid: str):
    """A browser logged in through SSO as ``uid``, its session check due now."""
    company = Company.objects.create(preset="maestrano", group_uid="cld-1", name="Co")
    user = platform_user("usr-1")
    Membership.objects.create(user=user, company=company, role="Admin")
    browser = sso_browser(user, company, uid=uid)
    session = browser.session
    due = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    session[SESSION_KEY] = {**session[SESSION_KEY], "session_recheck": due}
    session.save()
    return browser


def test_a_plain_uid_is_checked_as_before(platform_url):
    browser = browser_due_for_a_check("usr-1")

    assert browser.get("/dashboard/").status_code == 200
    assert ASKED == ["/api/v1/auth/saml/usr-1?session=platform-session"]


def test_a_uid_holding_a_path_is_asked_about_as_one_segment(platform_url):
    browser = browser_due_for_a_check("usr-1/../../account/groups?limit=1#x")

    assert browser.get("/dashboard/").status_code == 200
    assert ASKED == [
        "/api/v1/auth/saml/usr-1%2F..%2F..%2Faccount%2Fgroups%3Flimit%3D1%23x"
        "?session=platform-session"
    ]


@pytest.mark.parametrize("uid", [".", ".."])
def test_a_uid_no_path_can_carry_keeps_the_session_until_the_next_check(platform_url, uid, caplog):
    browser = browser_due_for_a_check(uid)

    with caplog.at_level(logging.WARNING, logger="maestrano_accounts.sessions"):
        assert browser.get("/dashboard/").status_code == 200
        assert browser.get("/dashboard/").status_code == 200  # not asked again before then

    assert ASKED == []
    (warning,) = [r for r in caplog.records if r.name == "maestrano_accounts.sessions"]
    assert "session check failed (ValueError)" in warning.getMessage()
