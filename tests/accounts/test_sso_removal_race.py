"""A platform removal that arrives between the ACS and the completion wins over the login.

The ACS accepts the assertion and issues a login ticket; the browser redeems it on the
completion GET, moments later. A group-user (or group) DELETE arriving in between is
newer than the accepted assertion: the completion must not bring the membership (or
the company) back. A new login, accepted after the removal, does (docs/protocol.md,
'Account webhooks'). The platform is the sandbox: its IdP signs the responses, its
``sandbox_send_account_webhook`` command sends the DELETEs.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from maestrano_accounts import sso_state
from maestrano_accounts.models import Company, Membership, SsoLoginTicket
from tests.accounts import test_sso_queries
from tests.accounts.test_sso_queries import ATTRIBUTES, log_in, signed_response
from tests.helpers.saml import (
    form_posting_to,
    idp_initiated_response,
    obtain_saml_response,
    post_saml_response,
)
from tests.helpers.sso_flow import complete, deliver, login
from tests.helpers.users import session_user_pk, user_of

User = get_user_model()
TIMEOUT = 10
#: Where the SSO state and the sessions live: every configuration of the query budget's tests.
preset = test_sso_queries.preset


@pytest.fixture(autouse=True)
def _no_initial_import(request):
    """The live tests' new companies import nothing from Connec! (the sync app's business);
    the test client's tests are configured by ``preset``."""
    if "platform" in request.fixturenames:
        platform = request.getfixturevalue("platform")
        platform.settings.MAESTRANO = {
            **platform.settings.MAESTRANO,
            "SYNC": {"IMPORT_ON_COMPANY_CREATED": False},
        }


@pytest.fixture
def refusals(caplog):
    caplog.set_level(logging.INFO)

    def reasons() -> list[str]:
        return [
            r.reason
            for r in caplog.records
            if r.name == "maestrano_accounts.views" and hasattr(r, "reason")
        ]

    return reasons


def remove_member(platform, *, group: str, user: str | None = None) -> None:
    """The platform's DELETE (of the member, or of the whole group without ``user``)."""
    options = {"app": platform.app.api_id, "group": group}
    if user:
        options["user"] = user
    call_command("sandbox_send_account_webhook", **options)


def membership(uid: str, group_uid: str) -> Membership:
    return Membership.objects.get(user=user_of(uid), company__group_uid=group_uid)


def test_a_member_removed_between_the_acs_and_the_completion_stays_removed(platform, refusals):
    assert (
        login(platform, platform.session(), user_uid="usr-race", group_uid="cld-race").status_code
        == 302
    )
    http = platform.session()
    post = obtain_saml_response(platform, http, user_uid="usr-race", group_uid="cld-race")
    consume = post_saml_response(http, post)
    assert consume.status_code == 303  # accepted: the ticket waits for the browser

    remove_member(platform, group="cld-race", user="usr-race")
    answer = complete(http, consume)

    assert answer.status_code == 403, answer.text[:500]
    assert "We could not log you in" in answer.text
    assert refusals() == ["removed_during_login"]
    assert session_user_pk(http) is None
    assert membership("usr-race", "cld-race").is_active is False
    assert user_of("usr-race").is_active is False  # its last company: blocked, and stays so


def test_a_login_accepted_after_the_removal_brings_the_member_back(platform, refusals):
    assert (
        login(platform, platform.session(), user_uid="usr-back", group_uid="cld-back").status_code
        == 302
    )
    remove_member(platform, group="cld-back", user="usr-back")
    assert membership("usr-back", "cld-back").is_active is False

    # The platform vouches for the user in that group again: a new assertion, later.
    http = platform.session()
    assert login(platform, http, user_uid="usr-back", group_uid="cld-back").status_code == 302

    assert refusals() == []
    assert session_user_pk(http) == user_of("usr-back").pk
    assert membership("usr-back", "cld-back").is_active is True
    assert user_of("usr-back").is_active is True


def test_a_group_cancelled_between_the_acs_and_the_completion_stays_cancelled(platform, refusals):
    assert (
        login(platform, platform.session(), user_uid="usr-grp", group_uid="cld-grp").status_code
        == 302
    )
    http = platform.session()
    consume = post_saml_response(
        http, obtain_saml_response(platform, http, user_uid="usr-grp", group_uid="cld-grp")
    )
    assert consume.status_code == 303

    remove_member(platform, group="cld-grp")
    answer = complete(http, consume)

    assert answer.status_code == 403
    assert refusals() == ["removed_during_login"]
    assert Company.objects.get(group_uid="cld-grp").status == Company.Status.CANCELLED
    assert session_user_pk(http) is None

    # A later login reactivates the company, as before.
    assert (
        login(platform, platform.session(), user_uid="usr-grp", group_uid="cld-grp").status_code
        == 302
    )
    assert Company.objects.get(group_uid="cld-grp").status == Company.Status.ACTIVE


def test_a_first_login_of_a_member_removed_between_the_acs_and_the_completion_is_refused(
    platform, refusals
):
    # The DELETE found no membership to cancel (the user had never logged in): the
    # completion created one all the same, and logged in a user the platform had removed.
    assert (
        login(platform, platform.session(), user_uid="usr-old", group_uid="cld-firsts").status_code
        == 302
    )
    http = platform.session()
    consume = post_saml_response(
        http, obtain_saml_response(platform, http, user_uid="usr-new", group_uid="cld-firsts")
    )
    assert consume.status_code == 303

    remove_member(platform, group="cld-firsts", user="usr-new")
    answer = complete(http, consume)

    assert answer.status_code == 403, answer.text[:500]
    assert refusals() == ["removed_during_login"]
    assert session_user_pk(http) is None
    assert Membership.objects.filter(company__group_uid="cld-firsts").count() == 1

    # The platform vouches for the user again: a login accepted after the removal.
    again = platform.session()
    assert login(platform, again, user_uid="usr-new", group_uid="cld-firsts").status_code == 302
    assert session_user_pk(again) == user_of("usr-new").pk


def test_a_first_login_into_a_group_cancelled_between_the_acs_and_the_completion_is_refused(
    platform, refusals
):
    # The group's DELETE found no company to cancel: the completion created it, active.
    http = platform.session()
    consume = post_saml_response(
        http, obtain_saml_response(platform, http, user_uid="usr-gone", group_uid="cld-gone")
    )
    assert consume.status_code == 303

    remove_member(platform, group="cld-gone")
    answer = complete(http, consume)

    assert answer.status_code == 403, answer.text[:500]
    assert refusals() == ["removed_during_login"]
    assert session_user_pk(http) is None
    assert not Company.objects.filter(group_uid="cld-gone").exists()


def test_a_confirmation_does_not_make_the_login_newer_than_its_assertion(platform, refusals):
    """An IdP-initiated login into a logged-in browser waits for the person's confirmation
    on a new ticket; the removal that came after the ACS still wins when they confirm."""
    platform.add_member(group_uid="cld-second", user_uid="usr-second", role="Member")
    assert (
        login(
            platform, platform.session(), user_uid="usr-second", group_uid="cld-second"
        ).status_code
        == 302
    )
    http = platform.session()
    assert login(platform, http, user_uid="usr-first", group_uid="cld-first").status_code == 302
    consume = post_saml_response(
        http, idp_initiated_response(platform, user_uid="usr-second", group_uid="cld-second")
    )
    assert consume.status_code == 303

    remove_member(platform, group="cld-second", user="usr-second")
    asked = complete(http, consume)
    assert 'id="sso-confirm"' in asked.text
    form = form_posting_to(asked.text, "/maestrano/auth/saml/complete")
    confirmed = http.post(
        f"{platform.url}/maestrano/auth/saml/complete",
        data=form["fields"],
        headers={"Referer": asked.url},
        allow_redirects=False,
        timeout=TIMEOUT,
    )

    assert confirmed.status_code == 403
    assert refusals() == ["removed_during_login"]
    assert membership("usr-second", "cld-second").is_active is False
    assert session_user_pk(http) == user_of("usr-first").pk  # the browser's login stays


def test_a_repeat_login_of_an_active_member_is_not_affected(platform, refusals):
    http = platform.session()
    assert login(platform, http, user_uid="usr-same", group_uid="cld-same").status_code == 302
    assert (
        deliver(
            http, obtain_saml_response(platform, http, user_uid="usr-same", group_uid="cld-same")
        ).status_code
        == 302
    )
    assert refusals() == []


# --- through the Django test client, wherever the SSO state lives ----------------------------

#: The group-user DELETE of ``ATTRIBUTES``' user, with the preset's app credentials.
REMOVAL_PATH = "/maestrano/account/groups/cld-q1/users/usr-q1"
APP_AUTH = "Basic " + base64.b64encode(b"app-q:key-q").decode()


def refusal_reasons(caplog) -> list[str]:
    return [
        r.reason
        for r in caplog.records
        if r.name == "maestrano_accounts.views" and hasattr(r, "reason")
    ]


@pytest.mark.django_db
def test_the_removal_wins_wherever_the_login_ticket_is_kept(client, preset, caplog):
    # Sessions and tickets in the database or in a cache (test_sso_queries.CONFIGURATIONS).
    caplog.set_level(logging.INFO)
    assert log_in(client, preset).status_code == 302
    accepted = client.post(
        preset.consume_path, {"SAMLResponse": signed_response(preset, ATTRIBUTES)}
    )
    assert accepted.status_code == 303

    assert client.delete(REMOVAL_PATH, HTTP_AUTHORIZATION=APP_AUTH).status_code == 200
    answer = client.get(accepted["Location"])

    assert answer.status_code == 403
    assert refusal_reasons(caplog) == ["removed_during_login"]
    assert Membership.objects.get().is_active is False
    assert User.objects.get().is_active is False


@pytest.mark.django_db
@pytest.mark.parametrize("preset", ["state-db-sessions-db"], indirect=True)
@pytest.mark.parametrize(("removal", "status"), [("after", 403), ("before", 302)])
def test_a_ticket_stored_before_the_upgrade_counts_from_its_expiry(
    client, preset, caplog, removal, status
):
    """A ticket written before tickets kept their acceptance time (none in its row) was
    accepted its lifetime before it expires: a removal after that still wins, one before
    it does not."""
    caplog.set_level(logging.INFO)
    assert log_in(client, preset).status_code == 302
    assert client.delete(REMOVAL_PATH, HTTP_AUTHORIZATION=APP_AUTH).status_code == 200
    removed_at = Membership.objects.get().updated_at
    accepted_at = removed_at + dt.timedelta(seconds=-1 if removal == "after" else 1)
    SsoLoginTicket.objects.create(
        token_digest=hashlib.sha256(b"ticket-of-before").hexdigest(),
        preset=preset.name,
        assertion_id="_before",
        in_response_to="",
        attributes=ATTRIBUTES,
        expires_at=accepted_at + sso_state.LOGIN_TICKET_LIFETIME,
    )

    answer = client.get(reverse("maestrano_accounts:sso-complete"), {"ticket": "ticket-of-before"})

    assert answer.status_code == status
    assert Membership.objects.get().is_active is (removal == "before")
