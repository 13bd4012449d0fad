"""The session middleware: platform session check (SLO) and loss of company access."""

from __future__ import annotations

import io
import logging
import logging.config

import pytest
from django.contrib.auth import get_user_model
from django.utils.log import configure_logging

from maestrano_accounts.models import Company, Membership
from maestrano_integration.logs import logging_config
from tests.helpers.processes import free_port
from tests.helpers.sso_flow import login

User = get_user_model()

TIMEOUT = 10


@pytest.fixture(autouse=True)
def _no_initial_import(platform):
    """The Connec! import that a new company triggers is tested by the sync app; skip it here."""
    platform.settings.MAESTRANO = {
        **platform.settings.MAESTRANO,
        "SYNC": {"IMPORT_ON_COMPANY_CREATED": False},
    }


def dashboard(platform, http):
    return http.get(f"{platform.url}/dashboard/", allow_redirects=False, timeout=TIMEOUT)


@pytest.fixture
def recheck_at_once(platform):
    """The sandbox hands out recheck times already due, so the next page checks the session."""
    platform.settings.MAESTRANO_SANDBOX = {
        **platform.settings.MAESTRANO_SANDBOX,
        "SESSION_RECHECK_SECONDS": -60,
    }


def logout_at_platform(platform, uid: str) -> None:
    answer = platform.session().get(
        f"{platform.sandbox_url}/app_logout", params={"user_uid": uid}, timeout=TIMEOUT
    )
    assert answer.status_code == 200


def session_check_warnings(caplog) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "maestrano_accounts.sessions" and r.levelno == logging.WARNING
    ]


def test_a_valid_platform_session_keeps_the_user_logged_in(platform, recheck_at_once):
    http = platform.session()
    login(platform, http, user_uid="usr-valid", group_uid="cld-valid")

    assert dashboard(platform, http).status_code == 200
    assert dashboard(platform, http).status_code == 200


def test_an_invalid_platform_session_logs_out_and_redirects_to_init(platform, recheck_at_once):
    http = platform.session()
    login(platform, http, user_uid="usr-gone", group_uid="cld-gone")
    logout_at_platform(platform, "usr-gone")

    answer = dashboard(platform, http)

    assert answer.status_code == 302
    assert answer.headers["Location"] == f"{platform.url}/maestrano/auth/saml/init"
    after = dashboard(platform, http)
    assert after.status_code == 302
    assert after.headers["Location"].startswith("/?next=")


@pytest.fixture
def debug_logs(settings):
    """The log lines written through ``logging_config`` at ``DEBUG`` (what an operator's
    ``LOG_LEVEL=DEBUG`` gives); Django's logging configured again afterwards.

    The console handler writes to a buffer of this fixture's, not to ``sys.stderr``: under
    ``capsys`` that is a stream closed at the end of the test, and the configuration
    made again afterwards (still under ``capsys``) left the root's handler on it, so
    every later log line of the run (the live server's threads first) was a
    "--- Logging error ---" (tests/conftest.py now fails the test that leaves one)."""
    written = io.StringIO()
    config = logging_config(json_output=False, level="DEBUG")
    config["handlers"]["console"]["stream"] = written
    logging.config.dictConfig(config)
    yield written.getvalue
    configure_logging(settings.LOGGING_CONFIG, settings.LOGGING)


def test_the_platform_session_token_is_not_logged_at_debug(platform, recheck_at_once, debug_logs):
    http = platform.session()
    login(platform, http, user_uid="usr-logged", group_uid="cld-logged")
    logout_at_platform(platform, "usr-logged")

    # The check was made (the platform said the session is over), and its request line,
    # whose query string carries the token, was not written.
    assert dashboard(platform, http).headers["Location"].endswith("/maestrano/auth/saml/init")
    written = debug_logs()
    assert "maestrano_accounts" in written  # DEBUG lines of the apps are written
    assert "session=" not in written


def test_a_platform_call_is_answered_whatever_session_cookie_it_carries(platform, recheck_at_once):
    """The platform's endpoints are exempt from the session checks: a cookie of a session
    the platform ended does not turn the webhook's answer into a redirect."""
    http = platform.session()
    login(platform, http, user_uid="usr-hook", group_uid="cld-hook")
    logout_at_platform(platform, "usr-hook")

    answer = http.post(
        f"{platform.url}/maestrano/connec/notifications",
        json={"people": [{"id": "p-1", "group_id": "cld-not-a-company"}]},
        auth=platform.auth,
        allow_redirects=False,
        timeout=TIMEOUT,
    )

    assert answer.status_code == 202
    assert answer.json() == {"accepted": 0, "notification": None}
    page = dashboard(platform, http)  # the user's pages are still checked
    assert page.status_code == 302
    assert page.headers["Location"] == f"{platform.url}/maestrano/auth/saml/init"


def test_the_session_is_trusted_until_the_recheck_time(platform):
    http = platform.session()
    login(platform, http, user_uid="usr-trust", group_uid="cld-trust")
    logout_at_platform(platform, "usr-trust")

    # The recheck time (3 minutes by default) has not passed: no check yet.
    assert dashboard(platform, http).status_code == 200


def test_an_unreachable_platform_keeps_the_session_until_the_next_window(
    platform, recheck_at_once, caplog
):
    caplog.set_level(logging.INFO)
    http = platform.session()
    login(platform, http, user_uid="usr-net", group_uid="cld-net")
    platform.configure(
        maestrano=platform.preset_values(api={"host": f"http://127.0.0.1:{free_port()}/sandbox"})
    )

    assert dashboard(platform, http).status_code == 200
    assert len(session_check_warnings(caplog)) == 1
    warning = session_check_warnings(caplog)[0]
    assert (warning.preset, warning.uid) == ("maestrano", "usr-net")
    assert platform.api_key not in caplog.text

    # The recheck was pushed forward: the next page does not try again.
    assert dashboard(platform, http).status_code == 200
    assert len(session_check_warnings(caplog)) == 1


def test_a_platform_error_keeps_the_session(platform, recheck_at_once, caplog):
    caplog.set_level(logging.INFO)
    http = platform.session()
    login(platform, http, user_uid="usr-500", group_uid="cld-500")
    # Wrong api key: the platform answers 401, which is our misconfiguration, not the user's.
    platform.configure(maestrano=platform.preset_values(api={"key": "wrong-key"}))

    assert dashboard(platform, http).status_code == 200
    assert any(
        r.name == "maestrano_accounts.sessions" and r.levelno == logging.ERROR
        for r in caplog.records
    )


def test_no_session_check_when_single_logout_is_disabled(platform, recheck_at_once):
    http = platform.session()
    login(platform, http, user_uid="usr-noslo", group_uid="cld-noslo")
    platform.configure(maestrano=platform.preset_values(sso={"slo_enabled": False}))
    logout_at_platform(platform, "usr-noslo")

    assert dashboard(platform, http).status_code == 200


def test_a_cancelled_company_loses_access_at_once(platform):
    http = platform.session()
    login(platform, http, user_uid="usr-cancel", group_uid="cld-cancel")
    Company.objects.update(status=Company.Status.CANCELLED)

    answer = dashboard(platform, http)

    assert answer.status_code == 302
    assert answer.headers["Location"] == f"{platform.sandbox_url}/app_access_unauthorized"
    assert dashboard(platform, http).headers["Location"].startswith("/?next=")


def test_an_inactive_membership_loses_access(platform):
    http = platform.session()
    login(platform, http, user_uid="usr-removed", group_uid="cld-removed")
    Membership.objects.update(is_active=False)

    answer = dashboard(platform, http)

    assert answer.headers["Location"] == f"{platform.sandbox_url}/app_access_unauthorized"


def test_a_blocked_user_loses_access(platform):
    http = platform.session()
    login(platform, http, user_uid="usr-blocked", group_uid="cld-blocked")
    User.objects.update(is_active=False)

    answer = dashboard(platform, http)

    assert answer.headers["Location"] == f"{platform.sandbox_url}/app_access_unauthorized"


def test_a_user_with_another_company_goes_on_in_that_one(platform):
    login(platform, platform.session(), user_uid="usr-two", group_uid="cld-keep")
    http = platform.session()
    login(platform, http, user_uid="usr-two", group_uid="cld-drop")
    Company.objects.filter(group_uid="cld-drop").update(status=Company.Status.CANCELLED)

    answer = dashboard(platform, http)

    assert answer.status_code == 200
    assert "is no longer available" in answer.text
    kept = Company.objects.get(group_uid="cld-keep")
    assert f'<h1 id="company-name">{kept.name}</h1>' in answer.text

    # Logging in through the other group works as before.
    http = platform.session()
    login(platform, http, user_uid="usr-two", group_uid="cld-keep")
    assert dashboard(platform, http).status_code == 200
