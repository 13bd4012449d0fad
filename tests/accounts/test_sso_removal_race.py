"""A platform removal that arrives between the ACS and the completion wins over the login.

The ACS accepts the assertion and issues a login ticket; the browser redeems it on the
completion GET, moments later. A group-user (or group) DELETE arriving in between is
newer than the accepted assertion: the completion must not bring the membership (or
the company) back. A new login, accepted after the removal, does (docs/protocol.md,
'Account webhooks'). The platform is the sandbox: its IdP signs the responses, its
``sandbox_send_account_webhook`` command sends the DELETEs.

A repeated DELETE (the platform still wants the access gone) moves the removal's time to
its own: a login accepted between the two DELETEs and completed after the second is
refused, and the repeat changes nothing else.

Below, through the Django test client: a login counts from its assertion's issue when
that is earlier than its acceptance; it stays refused when another login undid the
removal first, or when the DELETE came again after it; and on PostgreSQL a DELETE and a
first login of the group take turns.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from maestrano_accounts import sso_state
from maestrano_accounts.adapter import DefaultAccountAdapter
from maestrano_accounts.models import (
    AdHocCharge,
    Company,
    CompanySubscription,
    Membership,
    PlatformRemoval,
    SsoLoginTicket,
)
from maestrano_accounts.signals import company_cancelled, member_removed
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


@pytest.fixture
def lifecycle_signals():
    """The ``company_cancelled`` and ``member_removed`` signals the webhooks sent."""
    received: list[str] = []

    def on_cancelled(sender, company, **kwargs):
        received.append(f"cancelled {company.group_uid}")

    def on_removed(sender, company, user, **kwargs):
        received.append(f"removed {user.pk} from {company.group_uid}")

    company_cancelled.connect(on_cancelled, weak=False)
    member_removed.connect(on_removed, weak=False)
    yield received
    company_cancelled.disconnect(on_cancelled)
    member_removed.disconnect(on_removed)


def removal_state(group_uid: str) -> list[tuple]:
    """What a repeated DELETE must leave as it was: the group's company, memberships, users,
    subscriptions and charges (all but the time of the removal)."""
    return [
        tuple(
            Company.objects.filter(group_uid=group_uid).values_list(
                "status", "cancelled_at", "updated_at"
            )
        ),
        tuple(
            Membership.objects.filter(company__group_uid=group_uid)
            .order_by("pk")
            .values_list("pk", "is_active", "role", "updated_at", "user__is_active")
        ),
        tuple(
            CompanySubscription.objects.filter(company__group_uid=group_uid)
            .order_by("pk")
            .values_list("pk", "status", "updated_at")
        ),
        tuple(
            AdHocCharge.objects.filter(company__group_uid=group_uid)
            .order_by("pk")
            .values_list("pk", "status")
        ),
    ]


def removal_time(*, whole_group: bool) -> dt.datetime:
    if whole_group:
        return Company.objects.get(group_uid="cld-twice").removed_at
    return membership("usr-twice", "cld-twice").removed_at


@pytest.mark.parametrize("whole_group", [False, True], ids=["member", "group"])
def test_a_repeated_removal_refuses_a_login_the_idp_issued_between_the_two(
    platform, refusals, lifecycle_signals, whole_group
):
    """DELETE at t1; the IdP issues a login at t2 and the ACS accepts it; the platform sends
    the DELETE again at t3 (the user is still to be removed); the browser completes the login
    after t3. It counts from after the first DELETE but from before the second: refused. The
    repeat moved the time of the removal and nothing else."""
    assert (
        login(platform, platform.session(), user_uid="usr-twice", group_uid="cld-twice").status_code
        == 302
    )
    member = None if whole_group else "usr-twice"
    remove_member(platform, group="cld-twice", user=member)
    first_removal = removal_time(whole_group=whole_group)
    http = platform.session()
    consume = post_saml_response(
        http, obtain_saml_response(platform, http, user_uid="usr-twice", group_uid="cld-twice")
    )
    assert consume.status_code == 303
    before = removal_state("cld-twice")
    signals_before = list(lifecycle_signals)

    remove_member(platform, group="cld-twice", user=member)

    assert removal_state("cld-twice") == before
    assert lifecycle_signals == signals_before  # sent by the first DELETE only
    assert len(signals_before) == 1
    answer = complete(http, consume)

    assert answer.status_code == 403, answer.text[:500]
    assert refusals() == ["removed_during_login"]
    assert session_user_pk(http) is None
    assert removal_time(whole_group=whole_group) > first_removal
    if whole_group:
        assert Company.objects.get(group_uid="cld-twice").status == Company.Status.CANCELLED
    else:
        assert membership("usr-twice", "cld-twice").is_active is False
        assert user_of("usr-twice").is_active is False

    # A login the platform vouches for after the repeat brings the access back, as before.
    again = platform.session()
    assert login(platform, again, user_uid="usr-twice", group_uid="cld-twice").status_code == 302
    assert session_user_pk(again) == user_of("usr-twice").pk


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


# --- the time a login counts from: the assertion's issue, or its acceptance if earlier -------

GROUP_REMOVAL_PATH = "/maestrano/account/groups/cld-q1"
#: Another member of ``ATTRIBUTES``' group: their login makes the group known.
OTHER_MEMBER = {
    **ATTRIBUTES,
    "uid": "usr-q2",
    "virtual_uid": "usr-q2.cld-q1",
    "email": "q2@example.com",
    "virtual_email": "usr-q2.cld-q1@mail.maestrano.com",
    "name": "Other",
}
#: What each platform removal needs first: the member's own login (a membership to cancel),
#: another member's (a known group, an unknown member), or nothing (an unknown group).
REMOVALS = {
    "member": (REMOVAL_PATH, ATTRIBUTES),
    "group": (GROUP_REMOVAL_PATH, ATTRIBUTES),
    "unknown member": (REMOVAL_PATH, OTHER_MEMBER),
    "unknown group": (GROUP_REMOVAL_PATH, None),
}


def accept(client, preset, **issued) -> str:
    """POST a signed Response to the ACS; the completion URL of its ticket."""
    answer = client.post(
        preset.consume_path, {"SAMLResponse": signed_response(preset, ATTRIBUTES, **issued)}
    )
    assert answer.status_code == 303, answer.content[:300]
    return answer["Location"]


def logged_in_pk(client) -> int | None:
    """The pk of the user the test client's session is logged in as, or ``None``."""
    value = client.session.get("_auth_user_id")
    return int(value) if value else None


def member_active() -> bool:
    return Membership.objects.filter(
        user__maestrano_identities__uid="usr-q1", company__group_uid="cld-q1", is_active=True
    ).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("removal", list(REMOVALS))
def test_an_assertion_issued_before_a_removal_and_posted_after_it_is_refused(
    client, preset, caplog, removal
):
    """The ACS accepts it after the removal, but the IdP vouched for the user before it."""
    caplog.set_level(logging.INFO)
    path, earlier = REMOVALS[removal]
    if earlier is not None:
        assert log_in(Client(), preset, earlier).status_code == 302
    issued = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)
    assert client.delete(path, HTTP_AUTHORIZATION=APP_AUTH).status_code == 200

    answer = client.get(accept(client, preset, issued_at=issued))

    assert answer.status_code == 403
    assert refusal_reasons(caplog) == ["removed_during_login"]
    assert logged_in_pk(client) is None
    if path == GROUP_REMOVAL_PATH:
        assert not Company.objects.filter(status=Company.Status.ACTIVE).exists()
    else:
        assert not member_active()


@pytest.mark.django_db
@pytest.mark.parametrize("preset", ["state-db-sessions-db"], indirect=True)
def test_an_assertion_issued_in_the_second_of_the_removal_brings_the_member_back(
    client, preset, caplog
):
    """``IssueInstant`` is read to the second: a time in the removal's own second may stand
    for a moment after it (the platform vouching for the user again), so it is accepted."""
    caplog.set_level(logging.INFO)
    assert log_in(Client(), preset).status_code == 302
    assert client.delete(REMOVAL_PATH, HTTP_AUTHORIZATION=APP_AUTH).status_code == 200
    removed_at = Membership.objects.get().removed_at
    same_second = removed_at.replace(microsecond=0)

    answer = client.get(accept(client, preset, issued_at=same_second))

    assert answer.status_code == 302
    assert refusal_reasons(caplog) == []
    assert member_active()
    # One second earlier, the assertion predates the removal.
    assert client.delete(REMOVAL_PATH, HTTP_AUTHORIZATION=APP_AUTH).status_code == 200
    earlier = Membership.objects.get().removed_at.replace(microsecond=0) - dt.timedelta(seconds=1)
    browser = Client()
    assert browser.get(accept(browser, preset, issued_at=earlier)).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("removal", list(REMOVALS))
def test_a_login_from_before_a_removal_stays_refused_after_a_later_login_undid_it(
    preset, caplog, removal
):
    """Removal at t1; login A accepted at t0 < t1; login B accepted after t1 completes first
    and brings the access back (the platform vouched for the user again); A, completed
    last, is still refused: it counts from before the removal."""
    caplog.set_level(logging.INFO)
    path, earlier = REMOVALS[removal]
    if earlier is not None:
        assert log_in(Client(), preset, earlier).status_code == 302
    browser_a, browser_b = Client(), Client()
    completion_a = accept(browser_a, preset)
    assert Client().delete(path, HTTP_AUTHORIZATION=APP_AUTH).status_code == 200

    assert browser_b.get(accept(browser_b, preset)).status_code == 302
    assert member_active()
    answer = browser_a.get(completion_a)

    assert answer.status_code == 403
    assert refusal_reasons(caplog) == ["removed_during_login"]
    assert logged_in_pk(browser_a) is None
    assert logged_in_pk(browser_b) == user_of("usr-q1").pk
    assert member_active()  # B's login stands
    assert Company.objects.get(group_uid="cld-q1").status == Company.Status.ACTIVE


def latest_removal() -> dt.datetime:
    """The time of the platform's last removal of ``ATTRIBUTES``' user or group, wherever it
    is kept: on the company or the membership, or as a removal that found nothing."""
    return max(
        time
        for time in (
            *Company.objects.filter(group_uid="cld-q1").values_list("removed_at", flat=True),
            *Membership.objects.filter(company__group_uid="cld-q1").values_list(
                "removed_at", flat=True
            ),
            *PlatformRemoval.objects.values_list("removed_at", flat=True),
        )
        if time is not None
    )


@pytest.mark.django_db
@pytest.mark.parametrize("removal", list(REMOVALS))
def test_a_repeated_removal_refuses_a_login_accepted_between_the_two(
    preset, caplog, django_capture_on_commit_callbacks, removal
):
    """DELETE at t1; a login accepted at t2; the same DELETE again at t3; the login, completed
    after t3, is refused. The repeat answers as before, moves the removal's time to t3 and
    changes nothing else: no row but that time, no signal (no after-commit callback)."""
    caplog.set_level(logging.INFO)
    path, earlier = REMOVALS[removal]
    if earlier is not None:
        assert log_in(Client(), preset, earlier).status_code == 302
    assert Client().delete(path, HTTP_AUTHORIZATION=APP_AUTH).status_code == 200
    browser = Client()
    completion = accept(browser, preset)
    before = removal_state("cld-q1")
    first_removal = latest_removal()
    removals_kept = PlatformRemoval.objects.count()

    with django_capture_on_commit_callbacks() as callbacks:
        again = Client().delete(path, HTTP_AUTHORIZATION=APP_AUTH)

    assert (again.status_code, again.json()) == (200, {"success": True})
    assert callbacks == []
    assert removal_state("cld-q1") == before
    answer = browser.get(completion)

    assert answer.status_code == 403
    assert refusal_reasons(caplog) == ["removed_during_login"]
    assert logged_in_pk(browser) is None
    if path == GROUP_REMOVAL_PATH:
        assert not Company.objects.filter(status=Company.Status.ACTIVE).exists()
    else:
        assert not member_active()
    assert latest_removal() > first_removal
    assert PlatformRemoval.objects.count() == removals_kept  # one per removal, refreshed


# --- a removal webhook and a first login at the same moment (PostgreSQL) ---------------------

_inside = threading.Event()
_removed = threading.Event()


def _lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0]


class PausingAdapter(DefaultAccountAdapter):
    """Holds a login inside its transaction, past its look for removals and before its
    commit, until the removal webhook answered or waits for that login."""

    def link_company(self, company, *, preset, attributes, created):
        super().link_company(company, preset=preset, attributes=attributes, created=created)
        _inside.set()
        deadline = time.monotonic() + TIMEOUT
        while not _removed.is_set() and not _lock_waiters() and time.monotonic() < deadline:
            time.sleep(0.01)


def _in_thread(call):
    def run():
        try:
            return call()
        finally:
            connection.close()

    return run


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite runs one writing transaction at a time: the race needs PostgreSQL",
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("preset", ["state-db-sessions-db"], indirect=True)
@pytest.mark.parametrize("removal", ["unknown group", "unknown member"])
def test_a_removal_racing_a_first_login_is_not_lost(preset, settings, removal):
    """The DELETE arrives while the first login that creates the company (or the membership)
    has not committed: it found nothing to cancel, the login found no removal, and both
    committed. Now the DELETE waits for that login, then cancels what it created."""
    path, earlier = REMOVALS[removal]
    if earlier is not None:
        assert log_in(Client(), preset, earlier).status_code == 302
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "ADAPTER": f"{__name__}.PausingAdapter",
        "BILLING": {"ENABLED": False},  # no Account API to tell about the cancellation
    }
    _inside.clear()
    _removed.clear()
    browser = Client()
    completion = accept(browser, preset)

    def remove():
        assert _inside.wait(TIMEOUT)
        try:
            return Client().delete(path, HTTP_AUTHORIZATION=APP_AUTH).status_code
        finally:
            _removed.set()

    with ThreadPoolExecutor(max_workers=2) as pool:
        logged_in = pool.submit(_in_thread(lambda: browser.get(completion).status_code))
        removed = pool.submit(_in_thread(remove))
        assert (logged_in.result(), removed.result()) == (302, 200)

    # The login came first; the removal that followed it won.
    if path == GROUP_REMOVAL_PATH:
        assert Company.objects.get().status == Company.Status.CANCELLED
    else:
        assert not member_active()
        assert User.objects.get(maestrano_identities__uid="usr-q1").is_active is False
