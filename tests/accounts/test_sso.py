"""SSO through the sandbox IdP on a live server: companies, users, memberships, presets, logout."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.core import checks
from django.test.utils import isolate_apps
from lxml import etree

from maestrano_accounts.backends import MaestranoBackend
from maestrano_accounts.checks import check_project_settings
from maestrano_accounts.models import Company, Membership
from maestrano_accounts.signals import company_created
from tests.helpers.saml import (
    idp_initiated_response,
    login_page_url,
    obtain_saml_response,
    post_saml_response,
)
from tests.helpers.sso_flow import complete, deliver, login, logout
from tests.helpers.users import uid_of, user_of

User = get_user_model()

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10


@pytest.fixture(autouse=True)
def _no_initial_import(platform):
    """The Connec! import that a new company triggers is tested by the sync app; skip it here."""
    platform.settings.MAESTRANO = {
        **platform.settings.MAESTRANO,
        "SYNC": {"IMPORT_ON_COMPANY_CREATED": False},
    }


def dashboard(platform, http) -> requests.Response:
    return http.get(f"{platform.url}/dashboard/", allow_redirects=False, timeout=TIMEOUT)


@pytest.fixture
def created_companies():
    received = []

    def receiver(sender, company, preset, **kwargs):
        received.append((company.group_uid, preset.name))

    company_created.connect(receiver, weak=False)
    yield received
    company_created.disconnect(receiver)


def test_first_login_creates_company_user_and_membership(platform, created_companies):
    http = platform.session()
    answer = login(
        platform,
        http,
        user_uid="usr-first",
        name="Jane",
        surname="Doe",
        email="jane@example.com",
        country="NZ",
        group_uid="cld-first",
        group_name="Acme Pty",
        currency="NZD",
        has_credit_card=True,
        free_trial_end=dt.datetime(2031, 1, 31, 12, tzinfo=dt.UTC),
        role="Admin",
    )

    assert answer.status_code == 302
    assert answer.headers["Location"] == "/dashboard/"
    company = Company.objects.get()
    assert (company.preset, company.group_uid, company.name) == (
        "maestrano",
        "cld-first",
        "Acme Pty",
    )
    assert company.currency == "NZD"
    assert company.has_credit_card is True
    assert company.free_trial_end_at == dt.datetime(2031, 1, 31, 12, tzinfo=dt.UTC)
    assert company.status == Company.Status.ACTIVE
    user = User.objects.get()
    assert (uid_of(user), user.email) == ("usr-first", "jane@example.com")
    assert (user.first_name, user.last_name) == ("Jane", "Doe")
    # The adapter fills the fields the user model has; the identity keeps the rest.
    assert getattr(user, "country", "NZ") == "NZ"
    assert user.maestrano_identities.get().extra_data["country"] == "NZ"
    assert not user.has_usable_password()
    membership = Membership.objects.get()
    assert (membership.user, membership.company, membership.role) == (user, company, "Admin")
    assert created_companies == [("cld-first", "maestrano")]
    page = dashboard(platform, http)
    assert page.status_code == 200
    assert "Acme Pty" in page.text


def test_second_user_of_the_same_group_joins_the_existing_company(platform, created_companies):
    login(platform, platform.session(), user_uid="usr-a", group_uid="cld-shared", group_name="Co")
    answer = login(
        platform, platform.session(), user_uid="usr-b", group_uid="cld-shared", role="Member"
    )

    assert answer.status_code == 302
    company = Company.objects.get()
    assert sorted(company.members.values_list("maestrano_identities__uid", flat=True)) == [
        "usr-a",
        "usr-b",
    ]
    assert Membership.objects.get(user__maestrano_identities__uid="usr-b").role == "Member"
    assert created_companies == [("cld-shared", "maestrano")]


def test_known_user_logs_in_again_into_the_same_account(platform):
    login(platform, platform.session(), user_uid="usr-again", group_uid="cld-again")
    user = User.objects.get()

    http = platform.session()
    answer = login(platform, http, user_uid="usr-again", group_uid="cld-again")

    assert answer.status_code == 302
    assert User.objects.get().pk == user.pk
    assert (Company.objects.count(), Membership.objects.count()) == (1, 1)
    assert dashboard(platform, http).status_code == 200


def test_role_and_attributes_are_refreshed_on_every_login(platform):
    login(
        platform,
        platform.session(),
        user_uid="usr-upd",
        name="Jane",
        group_uid="cld-upd",
        group_name="Old name",
        role="Admin",
        has_credit_card=False,
    )
    login(
        platform,
        platform.session(),
        user_uid="usr-upd",
        name="Janet",
        surname="Smith",
        group_uid="cld-upd",
        group_name="New name",
        role="Member",
        has_credit_card=True,
        currency="EUR",
        free_trial_end=dt.datetime(2032, 5, 1, tzinfo=dt.UTC),
    )

    company = Company.objects.get()
    assert (company.name, company.has_credit_card, company.currency) == ("New name", True, "EUR")
    assert company.free_trial_end_at == dt.datetime(2032, 5, 1, tzinfo=dt.UTC)
    user = User.objects.get()
    assert (user.first_name, user.last_name) == ("Janet", "Smith")
    assert Membership.objects.get().role == "Member"


def test_virtual_mode_creates_one_local_user_per_user_and_group(platform):
    platform.configure(maestrano=platform.preset_values(sso={"creation_mode": "virtual"}))

    login(platform, platform.session(), user_uid="usr-v", group_uid="cld-v1")
    login(platform, platform.session(), user_uid="usr-v", group_uid="cld-v2")
    login(platform, platform.session(), user_uid="usr-v", group_uid="cld-v1")

    users = User.objects.order_by("maestrano_identities__uid")
    assert [uid_of(user) for user in users] == ["usr-v.cld-v1", "usr-v.cld-v2"]
    assert [user.email for user in users] == [
        "usr-v.cld-v1@mail.maestrano.com",
        "usr-v.cld-v2@mail.maestrano.com",
    ]
    assert [
        list(user.maestrano_companies.values_list("group_uid", flat=True)) for user in users
    ] == [
        ["cld-v1"],
        ["cld-v2"],
    ]


def test_real_mode_user_belongs_to_several_companies(platform):
    login(platform, platform.session(), user_uid="usr-multi", group_uid="cld-m1")
    login(platform, platform.session(), user_uid="usr-multi", group_uid="cld-m2")

    user = User.objects.get()
    assert sorted(user.maestrano_companies.values_list("group_uid", flat=True)) == [
        "cld-m1",
        "cld-m2",
    ]


def test_email_migration_links_the_existing_local_user(platform):
    local = User.objects.create_user(username="jane", email="Jane.Local@Example.com", password="x")

    answer = login(platform, platform.session(), user_uid="usr-mig", email="jane.local@example.com")

    assert answer.status_code == 302
    user = User.objects.get()
    assert user.pk == local.pk
    assert (uid_of(user), user.username) == ("usr-mig", "jane")
    assert user.email == local.email  # the same address in other case: its spelling stays
    assert user.has_usable_password()
    assert Membership.objects.get().user_id == local.pk


def test_email_migration_can_be_switched_off(platform):
    platform.settings.MAESTRANO = {**platform.settings.MAESTRANO, "SSO_EMAIL_MIGRATION": False}
    local = User.objects.create_user(username="jane", email="jane@example.com", password="x")

    login(platform, platform.session(), user_uid="usr-nomig", email="jane@example.com")

    created = User.objects.exclude(pk=local.pk).get()
    assert uid_of(created) == "usr-nomig"
    assert created.username != "jane"
    assert uid_of(local) == ""


def test_email_migration_never_takes_over_a_user_linked_to_another_uid(platform):
    login(platform, platform.session(), user_uid="usr-one", email="same@example.com")

    login(platform, platform.session(), user_uid="usr-two", email="same@example.com")

    assert sorted(User.objects.values_list("maestrano_identities__uid", flat=True)) == [
        "usr-one",
        "usr-two",
    ]


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"is_superuser": True, "is_staff": True}, id="superuser"),
        pytest.param({"is_staff": True}, id="staff"),
        pytest.param({"is_active": False}, id="inactive"),
    ],
)
def test_email_migration_never_links_a_privileged_or_inactive_account(platform, fields, caplog):
    local = User.objects.create_user(
        username="root", email="boss@example.com", password="x", **fields
    )

    answer = login(platform, platform.session(), user_uid="usr-evil", email="boss@example.com")

    assert answer.status_code == 302
    assert uid_of(local) == ""
    created = user_of("usr-evil")
    assert created.pk != local.pk
    assert not created.is_staff and not created.is_superuser
    assert any("migration refused" in record.getMessage() for record in caplog.records)


def test_email_migration_never_relinks_an_account_that_has_an_identity_of_the_preset(platform):
    local = User.objects.create_user(username="jane", email="jane@example.com", password="x")
    login(platform, platform.session(), user_uid="usr-jane", email="jane@example.com")
    assert uid_of(local) == "usr-jane"

    login(platform, platform.session(), user_uid="usr-impostor", email="jane@example.com")

    assert user_of("usr-impostor").pk != local.pk
    assert uid_of(local) == "usr-jane"


@pytest.mark.parametrize(
    ("local_email", "asserted"),
    [
        pytest.param("bob@gmail.com", "bob@gma\u0131l.com", id="dotless-i"),
        pytest.param("support@corp.com", "\u017fupport@corp.com", id="long-s"),
        pytest.param("kim@corp.com", "\u212aim@corp.com", id="kelvin-sign"),
    ],
)
def test_email_migration_never_links_a_lookalike_address(platform, local_email, asserted):
    # PostgreSQL's case-insensitive match (UPPER) counts these as the local address.
    local = User.objects.create_user(username="victim", email=local_email, password="x")

    answer = login(platform, platform.session(), user_uid="usr-lookalike", email=asserted)

    assert answer.status_code == 302
    assert user_of("usr-lookalike").pk != local.pk
    local.refresh_from_db()
    assert (uid_of(local), local.email) == ("", local_email)


def test_email_migration_never_links_an_account_of_another_marketplace(platform):
    app = platform.register_app(
        api_id="acme-app",
        init_path="/maestrano/acme/auth/saml/init",
        consume_path="/maestrano/acme/auth/saml/consume",
    )
    platform.configure(maestrano=platform.preset_values(), acme=platform.preset_values(app))
    platform.settings.MAESTRANO = {
        **platform.settings.MAESTRANO,
        "SYNC": {"IMPORT_ON_COMPANY_CREATED": False},
    }
    login(platform, platform.session(), user_uid="usr-alice", email="alice@example.com")
    alice = user_of("usr-alice")

    answer = login(
        platform,
        platform.session(),
        init_path="/maestrano/acme/auth/saml/init",
        user_uid="usr-mallory",
        group_uid="cld-mallory",
        email="alice@example.com",
    )

    assert answer.status_code == 302
    assert user_of("usr-mallory", preset="acme").pk != alice.pk
    assert alice.maestrano_identities.get().preset == "maestrano"


def test_an_adapter_decides_which_accounts_email_migration_may_link(platform):
    platform.settings.MAESTRANO = {
        **platform.settings.MAESTRANO,
        "ADAPTER": "tests.accounts.adapters.StaffMigrationAdapter",
    }
    staff = User.objects.create_user(
        username="ops", email="ops@example.com", password="x", is_staff=True
    )

    login(platform, platform.session(), user_uid="usr-ops", email="ops@example.com")

    assert user_of("usr-ops").pk == staff.pk


def test_a_linked_users_new_email_that_another_account_holds_keeps_the_login(platform, caplog):
    # The project's login name is the email (unique): the platform now sends, for a linked
    # user, the email of another local account.
    platform.settings.MAESTRANO = {
        **platform.settings.MAESTRANO,
        "ADAPTER": "tests.accounts.adapters.EmailUsernameAdapter",
    }
    alice = User.objects.create_user(
        username="alice@example.com", email="alice@example.com", password="pw-alice"
    )
    login(platform, platform.session(), user_uid="usr-carol", email="carol@example.com")
    carol = user_of("usr-carol")
    assert (carol.username, carol.email) == ("carol@example.com", "carol@example.com")

    for surname in ("Changed", "Again"):  # every later login too
        http = platform.session()
        answer = login(
            platform,
            http,
            user_uid="usr-carol",
            email="alice@example.com",
            name="Caroline",
            surname=surname,
        )

        assert answer.status_code == 302, answer.text[:500]
        assert dashboard(platform, http).status_code == 200
        carol.refresh_from_db()
        # The linked account, with its own login name; the other attributes refreshed.
        assert (carol.username, carol.email) == ("carol@example.com", "carol@example.com")
        assert (carol.first_name, carol.last_name) == ("Caroline", surname)
    alice.refresh_from_db()
    assert (alice.username, alice.email, uid_of(alice)) == (
        "alice@example.com",
        "alice@example.com",
        "",
    )
    assert alice.check_password("pw-alice")
    assert User.objects.count() == 2
    # What the platform sent is kept on the identity.
    assert carol.maestrano_identities.get().email == "alice@example.com"
    warnings = [r for r in caplog.records if "another local account holds" in r.getMessage()]
    assert len(warnings) == 2
    assert all(
        (r.levelname, r.preset, r.uid) == ("WARNING", "maestrano", "usr-carol") for r in warnings
    )
    assert "username, email" in warnings[0].getMessage()
    assert not any("alice@" in str(vars(r)) for r in warnings)  # no email in the logs


def test_the_login_goes_through_the_maestrano_authentication_backend(platform):
    http = platform.session()
    login(platform, http, user_uid="usr-backend", group_uid="cld-backend")

    from django.contrib.sessions.models import Session

    sessions = [session.get_decoded() for session in Session.objects.all()]
    assert [data["_auth_user_backend"] for data in sessions if "_auth_user_id" in data] == [
        "maestrano_accounts.backends.MaestranoBackend"
    ]


class ProjectMaestranoBackend(MaestranoBackend):
    """An adopter's own subclass, listed in AUTHENTICATION_BACKENDS instead of ours."""


def _auth_backends_of_sessions() -> list[str]:
    from django.contrib.sessions.models import Session

    sessions = [session.get_decoded() for session in Session.objects.all()]
    return [data["_auth_user_backend"] for data in sessions if "_auth_user_id" in data]


def test_a_subclass_of_the_backend_is_the_one_that_logs_in(platform, settings):
    path = f"{__name__}.ProjectMaestranoBackend"
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", path]
    assert not [m for m in check_project_settings() if m.id == "maestrano.E020"]

    http = platform.session()
    answer = login(platform, http, user_uid="usr-sub", group_uid="cld-sub")

    assert answer.status_code == 302
    assert _auth_backends_of_sessions() == [path]
    assert dashboard(platform, http).status_code == 200


def test_without_the_backend_no_sso_login_completes_and_the_check_says_why(platform, settings):
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    assert [m.id for m in check_project_settings() if m.id.startswith("maestrano.E")] == [
        "maestrano.E020"
    ]

    answer = login(platform, platform.session(), user_uid="usr-nob", group_uid="cld-nob")

    assert answer.status_code == 302
    assert answer.headers["Location"] == f"{platform.sandbox_url}/app_access_unauthorized"
    assert _auth_backends_of_sessions() == []


def test_a_strict_session_cookie_is_a_check_error_while_sso_is_enabled(settings):
    """With SameSite=Strict the browser comes back from the platform's cross-site POST
    without the session cookie: Chromium's every SP-initiated login was refused as
    ``unknown_in_response_to`` (a 400 page saying the response may have expired), and
    ``check`` said nothing."""
    assert not [m for m in check_project_settings() if m.id == "maestrano.E028"]

    settings.SESSION_COOKIE_SAMESITE = "Strict"

    (message,) = [m for m in check_project_settings() if m.id == "maestrano.E028"]
    assert isinstance(message, checks.Error)
    assert 'SESSION_COOKIE_SAMESITE = "Lax"' in message.hint

    # Without SSO (every preset's sso.enabled off) the cookie is the project's business.
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "PRESETS": {
            name: {**preset, "sso": {**preset.get("sso", {}), "enabled": False}}
            for name, preset in settings.MAESTRANO["PRESETS"].items()
        },
    }
    assert not [m for m in check_project_settings() if m.id == "maestrano.E028"]


def test_the_apps_pages_need_none_of_the_projects_context_processors(platform, settings, tmp_path):
    """A project whose TEMPLATES list no context processor (no ``user``, no ``request``):
    the dashboard answered 500 (``VariableDoesNotExist`` for ``user``), the logout page
    said "You are logged out" to a logged-in user, and the layout showed no "Log out"."""
    # The apps' own templates, as in a project that overrides none of them (the
    # sandbox, served by the same test server, keeps its pages).
    (tmp_path / "maestrano_sandbox").symlink_to(ROOT / "templates" / "maestrano_sandbox")
    (tmp_path / "base.html").symlink_to(ROOT / "templates" / "base.html")
    settings.TEMPLATES = [
        {
            **engine,
            "DIRS": [tmp_path],
            "OPTIONS": {**engine.get("OPTIONS", {}), "context_processors": []},
        }
        for engine in settings.TEMPLATES
    ]
    http = platform.session()
    login(platform, http, user_uid="usr-noctx", group_uid="cld-noctx", email="noctx@example.com")
    user = user_of("usr-noctx")
    username = user.get_full_name() or user.get_username()

    for path in ("/dashboard/", "/maestrano/logout", "/billing/"):
        answer = http.get(f"{platform.url}{path}", allow_redirects=False, timeout=TIMEOUT)
        assert answer.status_code == 200, (path, answer.text[:500])
        if path != "/billing/":
            assert username in answer.text, path
        assert 'id="logout"' in answer.text, path  # the layout's nav knows the user too
    logout_page = http.get(f"{platform.url}/maestrano/logout", timeout=TIMEOUT).text
    assert 'action="/maestrano/logout"' in logout_page


@pytest.mark.parametrize(
    ("adapter", "says"),
    [
        ("tests.accounts.no_such_module.Adapter", "does not import"),
        ("tests.accounts.adapters.NoSuchAdapter", "does not import"),
        ("django.contrib.auth.backends.ModelBackend", "not a subclass"),
    ],
)
def test_an_adapter_setting_that_names_no_adapter_is_a_check_error(settings, adapter, says):
    """The login completion answered 500 (``ModuleNotFoundError``) and ``check`` said
    nothing."""
    assert not [m for m in check_project_settings() if m.id == "maestrano.E029"]

    settings.MAESTRANO = {**settings.MAESTRANO, "ADAPTER": adapter}

    (message,) = [m for m in check_project_settings() if m.id == "maestrano.E029"]
    assert adapter in message.msg and says in message.msg
    assert "DefaultAccountAdapter" in message.hint


@isolate_apps("tests")
def test_required_user_fields_no_login_fills_are_a_check_warning(settings, monkeypatch):
    """A user model with a required field the default adapter leaves empty: the first SSO
    login of each new user fails when the user is saved; ``check`` says so beforehand."""
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.db import models

    class ShopUser(AbstractBaseUser):
        email = models.EmailField(unique=True)
        first_name = models.CharField(max_length=150)  # filled by the adapter
        nickname = models.CharField(max_length=50)  # "" when left empty: saves
        tier = models.IntegerField()  # required, no default: left empty
        joined = models.DateTimeField(auto_now_add=True)
        newsletter = models.BooleanField(default=False)
        USERNAME_FIELD = "email"

        class Meta:
            app_label = "tests"

    assert not [m for m in check_project_settings() if m.id == "maestrano.W033"]
    monkeypatch.setattr("maestrano_accounts.checks.get_user_model", lambda: ShopUser)

    (message,) = [m for m in check_project_settings() if m.id == "maestrano.W033"]
    assert "'tier'" in message.msg
    assert "nickname" not in message.msg and "joined" not in message.msg
    assert "populate_user" in message.hint
    # An adapter of the project's own fills its fields: no warning.
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "ADAPTER": "tests.accounts.adapters.InactiveNewUserAdapter",
    }
    assert not [m for m in check_project_settings() if m.id == "maestrano.W033"]


def test_a_user_the_adapter_leaves_inactive_is_refused_and_the_failure_signalled(
    platform, settings
):
    settings.MAESTRANO = {
        **settings.MAESTRANO,
        "ADAPTER": "tests.accounts.adapters.InactiveNewUserAdapter",
    }
    failures: list[dict] = []

    def record(sender, credentials, request, **kwargs):
        failures.append(credentials)

    user_login_failed.connect(record)
    try:
        answer = login(platform, platform.session(), user_uid="usr-off", group_uid="cld-off")
    finally:
        user_login_failed.disconnect(record)

    assert answer.headers["Location"] == f"{platform.sandbox_url}/app_access_unauthorized"
    assert _auth_backends_of_sessions() == []
    assert failures == [{"maestrano_preset": "maestrano", "maestrano_uid": "usr-off"}]


def test_login_into_a_cancelled_company_reactivates_it(platform):
    login(platform, platform.session(), user_uid="usr-back", group_uid="cld-back")
    Company.objects.update(status=Company.Status.CANCELLED, cancelled_at=dt.datetime.now(dt.UTC))

    http = platform.session()
    answer = login(platform, http, user_uid="usr-back", group_uid="cld-back")

    assert answer.status_code == 302
    company = Company.objects.get()
    assert (company.status, company.cancelled_at) == (Company.Status.ACTIVE, None)
    assert dashboard(platform, http).status_code == 200


def test_init_forwards_get_parameters_and_asks_for_our_acs(platform):
    http = platform.session()

    location = login_page_url(platform, http, extra_init_params={"group_id": "cld-pre"})

    parts = urlsplit(location)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{platform.sandbox_url}/api/v1/auth/saml"
    )
    query = parse_qs(parts.query)
    assert query["group_id"] == ["cld-pre"]
    assert "SAMLRequest" in query


def test_idp_initiated_login_is_accepted_when_allowed(platform):
    login(platform, platform.session(), user_uid="usr-idp", group_uid="cld-idp")
    http = platform.session()

    post = idp_initiated_response(platform, user_uid="usr-idp", group_uid="cld-idp")
    answer = deliver(http, post)

    assert answer.status_code == 302
    assert dashboard(platform, http).status_code == 200


def test_idp_initiated_login_is_refused_when_disabled(platform):
    login(platform, platform.session(), user_uid="usr-idp2", group_uid="cld-idp2")
    platform.settings.MAESTRANO = {**platform.settings.MAESTRANO, "SSO_ALLOW_IDP_INITIATED": False}

    post = idp_initiated_response(platform, user_uid="usr-idp2", group_uid="cld-idp2")
    answer = post_saml_response(platform.session(), post)

    assert answer.status_code == 403


def test_logout_logs_out_here_and_redirects_to_the_platform_logout(platform):
    http = platform.session()
    login(platform, http, user_uid="usr-out", group_uid="cld-out")

    answer = logout(platform, http)

    assert answer.status_code == 302
    assert answer.headers["Location"] == f"{platform.sandbox_url}/app_logout?user_uid=usr-out"
    assert dashboard(platform, http).status_code == 302
    # The platform ends its session and sends the browser back to the app host's "/"
    # (the logout URL names no return address: docs/protocol.md), here the example
    # project's home page, which says so.
    platform_page = http.get(answer.headers["Location"], timeout=TIMEOUT)
    assert platform_page.status_code == 200
    assert platform_page.url == f"{platform.url}/"
    assert "You are signed out." in platform_page.text


def test_logout_by_get_or_without_the_csrf_token_keeps_the_session(platform):
    """Another site cannot log the user out with a link, an image or a token-less form."""
    http = platform.session()
    login(platform, http, user_uid="usr-stay", group_uid="cld-stay")

    page = http.get(f"{platform.url}/maestrano/logout", allow_redirects=False, timeout=TIMEOUT)
    assert page.status_code == 200
    assert 'id="confirm-logout"' in page.text
    assert dashboard(platform, http).status_code == 200
    forged = http.post(f"{platform.url}/maestrano/logout", allow_redirects=False, timeout=TIMEOUT)
    assert forged.status_code == 403
    assert dashboard(platform, http).status_code == 200

    assert logout(platform, http).status_code == 302
    assert dashboard(platform, http).status_code == 302


def _switch(platform, http, company_id, *, with_token=True) -> requests.Response:
    token = http.cookies.get("csrftoken")
    if token is None:
        dashboard(platform, http)  # the switcher form sets the CSRF cookie
        token = http.cookies.get("csrftoken", "")
    data = {"company_id": str(company_id)}
    if with_token:
        data["csrfmiddlewaretoken"] = token
    return http.post(
        f"{platform.url}/maestrano/switch-company",
        data=data,
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def test_user_in_several_companies_switches_the_current_company(platform):
    login(platform, platform.session(), user_uid="usr-sw", group_uid="cld-sw1", group_name="First")
    http = platform.session()
    login(platform, http, user_uid="usr-sw", group_uid="cld-sw2", group_name="Second")
    assert '<h1 id="company-name">Second</h1>' in dashboard(platform, http).text
    first = Company.objects.get(group_uid="cld-sw1")

    answer = _switch(platform, http, first.pk)

    assert answer.status_code == 302
    assert '<h1 id="company-name">First</h1>' in dashboard(platform, http).text


def test_switching_to_a_company_without_membership_is_refused(platform):
    login(platform, platform.session(), user_uid="usr-other", group_uid="cld-foreign")
    http = platform.session()
    login(platform, http, user_uid="usr-me", group_uid="cld-mine", group_name="Mine")
    foreign = Company.objects.get(group_uid="cld-foreign")

    assert _switch(platform, http, foreign.pk).status_code == 404
    assert _switch(platform, http, "not-a-number").status_code == 404
    assert '<h1 id="company-name">Mine</h1>' in dashboard(platform, http).text


def test_switching_company_requires_the_csrf_token(platform):
    http = platform.session()
    login(platform, http, user_uid="usr-csrf", group_uid="cld-csrf")
    company = Company.objects.get()

    assert _switch(platform, http, company.pk, with_token=False).status_code == 403


@pytest.fixture
def second_preset(platform):
    """A second marketplace ("acme") with its own app registration at the sandbox."""
    app = platform.register_app(
        api_id="acme-app",
        name="Acme marketplace app",
        init_path="/maestrano/acme/auth/saml/init",
        consume_path="/maestrano/acme/auth/saml/consume",
    )
    platform.configure(maestrano=platform.preset_values(), acme=platform.preset_values(app))
    return app


def test_a_second_preset_logs_in_through_its_own_urls(platform, second_preset):
    http = platform.session()

    answer = login(
        platform,
        http,
        init_path="/maestrano/acme/auth/saml/init",
        user_uid="usr-p",
        group_uid="cld-p",
    )

    assert answer.status_code == 302
    company = Company.objects.get()
    assert (company.preset, company.group_uid) == ("acme", "cld-p")
    assert dashboard(platform, http).status_code == 200
    answer = logout(platform, http, path="/maestrano/acme/logout")
    assert answer.headers["Location"] == f"{platform.sandbox_url}/app_logout?user_uid=usr-p"


def test_the_same_group_on_two_presets_is_two_companies(platform, second_preset):
    login(platform, platform.session(), user_uid="usr-2p", group_uid="cld-2p")
    login(
        platform,
        platform.session(),
        init_path="/maestrano/acme/auth/saml/init",
        user_uid="usr-2p",
        group_uid="cld-2p",
    )

    assert sorted(Company.objects.values_list("preset", "group_uid")) == [
        ("acme", "cld-2p"),
        ("maestrano", "cld-2p"),
    ]


def test_unknown_preset_urls_answer_404(platform):
    http = platform.session()
    for path in ("/maestrano/nope/auth/saml/init", "/maestrano/nope/logout"):
        assert (
            http.get(f"{platform.url}{path}", allow_redirects=False, timeout=TIMEOUT).status_code
            == 404
        )
    consume = http.post(
        f"{platform.url}/maestrano/nope/auth/saml/consume",
        data={"SAMLResponse": "x"},
        timeout=TIMEOUT,
    )
    assert consume.status_code == 404


def test_consume_accepts_only_post(platform):
    answer = platform.session().get(
        f"{platform.url}/maestrano/auth/saml/consume", allow_redirects=False, timeout=TIMEOUT
    )
    assert answer.status_code == 405


def test_a_login_ticket_completes_only_once(platform):
    http = platform.session()
    post = obtain_saml_response(platform, http, user_uid="usr-once", group_uid="cld-once")
    consume = post_saml_response(http, post)
    assert complete(http, consume).status_code == 302

    again = complete(http, consume)

    assert again.status_code == 400


def _signing_with_sha1(platform, **sso) -> None:
    """The sandbox signs with the historical 1024-bit rsa-sha1 pair, which the preset trusts."""
    from maestrano_sandbox.keys import key_pair_for_algorithm

    platform.app.signature_algorithm = "sha1"
    platform.app.save()
    sha1_keys = key_pair_for_algorithm("sha1")
    platform.configure(
        maestrano=platform.preset_values(sso={"x509_certificate": sha1_keys.certificate_pem, **sso})
    )


def test_historical_rsa_sha1_responses_with_a_1024_bit_key_are_accepted_by_default(platform):
    _signing_with_sha1(platform)
    http = platform.session()

    post = obtain_saml_response(platform, http, user_uid="usr-sha1", group_uid="cld-sha1")
    answer = deliver(http, post)

    assert "rsa-sha1" in post.xml
    assert answer.status_code == 302
    assert Company.objects.get().group_uid == "cld-sha1"


def test_rsa_sha1_responses_are_refused_where_the_preset_does_not_allow_them(platform, caplog):
    caplog.set_level(logging.INFO)
    _signing_with_sha1(platform, allow_sha1=False)
    http = platform.session()

    post = obtain_saml_response(platform, http, user_uid="usr-sha1", group_uid="cld-sha1")
    answer = deliver(http, post)

    assert "rsa-sha1" in post.xml
    assert answer.status_code == 400
    assert "We could not log you in" in answer.text
    [refusal] = [r for r in caplog.records if hasattr(r, "reason")]
    assert refusal.reason == "sha1_refused"
    assert "rsa-sha1" in refusal.getMessage()
    assert not Company.objects.exists()


def test_a_sha1_response_is_refused_where_allow_sha1_is_the_string_false(platform, caplog):
    # "false" is a non-empty string: read with bool() it was true, and SHA-1 was accepted.
    caplog.set_level(logging.INFO)
    _signing_with_sha1(platform)
    http = platform.session()
    post = obtain_saml_response(platform, http, user_uid="usr-sha1", group_uid="cld-sha1")
    _signing_with_sha1(platform, allow_sha1="false")

    answer = deliver(http, post)

    assert "rsa-sha1" in post.xml
    assert answer.status_code == 503
    assert "not configured correctly" in answer.text
    assert not Company.objects.exists()
    [logged] = [r for r in caplog.records if r.getMessage().startswith("SSO is misconfigured")]
    assert (
        'MAESTRANO["PRESETS"]["maestrano"]["sso"]["allow_sha1"] is \'false\' (str), '
        "not a boolean (True or False)" in logged.getMessage()
    )


@pytest.mark.parametrize("signed", ["digest", "signature"])
def test_a_sha1_digest_under_an_sha256_signature_is_refused_too(platform, caplog, signed):
    # python3-saml's rejectDeprecatedAlgorithm reads both the SignatureMethod and the
    # DigestMethod: either one being SHA-1 is enough.
    from onelogin.saml2.constants import OneLogin_Saml2_Constants as Saml
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    caplog.set_level(logging.INFO)
    platform.configure(maestrano=platform.preset_values(sso={"allow_sha1": False}))
    http = platform.session()
    post = obtain_saml_response(platform, http, user_uid="usr-mixed", group_uid="cld-mixed")
    methods = (Saml.RSA_SHA256, Saml.SHA1) if signed == "digest" else (Saml.RSA_SHA1, Saml.SHA256)
    root = etree.fromstring(post.xml.encode())
    for signature in root.iter("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        signature.getparent().remove(signature)
    mixed = OneLogin_Saml2_Utils.add_sign(
        etree.tostring(root),
        platform.keys.private_key_pem,
        platform.keys.certificate_pem,
        sign_algorithm=methods[0],
        digest_algorithm=methods[1],
    )

    answer = deliver(http, post.with_xml(mixed))

    assert answer.status_code == 400
    [refusal] = [r for r in caplog.records if hasattr(r, "reason")]
    assert refusal.reason == "sha1_refused"


def test_where_the_username_is_the_email_a_concurrent_first_login_is_no_conflict(
    platform, monkeypatch
):
    """Two first logins of one person at once: the second finds the account the first made
    (not the 409 of an address another account holds). The model's username is taken as
    the email here; the race is played by committing the first login's account just
    before the second looks for an account with the address."""
    from maestrano_accounts import services

    platform.settings.MAESTRANO = {
        **platform.settings.MAESTRANO,
        "ADAPTER": "tests.accounts.adapters.EmailUsernameAdapter",
        "SYNC": {"IMPORT_ON_COMPANY_CREATED": False},
    }
    monkeypatch.setattr(services, "_uses_email_as_username", lambda: True)
    real_candidate = services._migration_candidate

    def first_login_wins_meanwhile(**kwargs):
        user = User.objects.create_user(username="ann@example.com", email="ann@example.com")
        services.PlatformIdentity.objects.create(user=user, preset="maestrano", uid="usr-ann")
        return real_candidate(**kwargs)

    monkeypatch.setattr(services, "_migration_candidate", first_login_wins_meanwhile)

    answer = login(platform, platform.session(), user_uid="usr-ann", email="ann@example.com")

    assert answer.status_code == 302, answer.text[:500]
    assert user_of("usr-ann").email == "ann@example.com"
    assert User.objects.filter(email__iexact="ann@example.com").count() == 1
