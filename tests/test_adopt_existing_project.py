"""Adoption by an existing project: the wheel, docs/install.md, the standalone sandbox, a browser.

The project under test is not this checkout's example project but one of its own,
as an adopter has it before they hear of Maestrano:

* a custom user model whose ``USERNAME_FIELD`` is the email, in a top-level app of its
  own named ``accounts`` (``startapp accounts``; our apps are ``maestrano_*``);
* its own tenant model ``Account`` and a model ``Contact`` that belongs to it;
* already migrated, with rows: a user with the email of a platform user, a
  superuser, a legacy account with a contact.

Then, as the install guide says: the wheel in a fresh virtualenv, the blocks of
docs/install.md applied literally, the adopter's own tenant link (a field on
``Account``, an adapter, a mapper with a tenant path), ``check`` and ``migrate``.
The sandbox runs on its own from this checkout (the commands of docs/install.md,
"Develop against the sandbox") under another host name. In headless Chromium:
an existing user linked by email (who logs out and lands on a page, not a 404), a new
user, a second company, a refused takeover of the superuser's email. Then both account
DELETE webhooks, a push of one of the adopter's contacts to Connec! and a notification
back. Once with the default paths, once with custom ones.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests

from tests.helpers.adoption import (
    INSTALL_DOC,
    ROOT,
    apply_install_doc,
    clean_environment,
    documented_environment,
    run,
    running_server,
)
from tests.helpers.processes import free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.adoption]

CHROMIUM = Path("/usr/bin/chromium")
APP_HOST = "127.0.0.1"
#: Another host name for the platform: browsers share cookies between ports of one name.
SANDBOX_HOST = "localhost"
API_ID, API_KEY = "app-dev", "dev-key"
CUSTOM_PATHS = {
    "MAESTRANO_SSO_INIT_PATH": "/sso/start",
    "MAESTRANO_SSO_CONSUME_PATH": "/sso/acs",
    "MAESTRANO_WEBHOOK_ACCOUNT_GROUPS_PATH": "/hooks/groups/:id",
    "MAESTRANO_WEBHOOK_ACCOUNT_GROUP_USERS_PATH": "/hooks/groups/:group_id/users/:id",
    "MAESTRANO_WEBHOOK_CONNEC_NOTIFICATIONS_PATH": "/hooks/connec",
}

# --- the adopter's project, before Maestrano ------------------------------------------------

OWN_APPS = {
    "accounts/__init__.py": "",
    "accounts/apps.py": """
        from django.apps import AppConfig


        class AccountsConfig(AppConfig):
            name = "accounts"  # made by `startapp accounts`, beside our maestrano_accounts
            default_auto_field = "django.db.models.BigAutoField"
    """,
    "accounts/models.py": """
        from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
        from django.contrib.auth.models import PermissionsMixin
        from django.db import models


        class UserManager(BaseUserManager):
            def create_user(self, email, password=None, **fields):
                user = self.model(email=self.normalize_email(email), **fields)
                user.set_password(password)
                user.save()
                return user

            def create_superuser(self, email, password=None, **fields):
                fields.update(is_staff=True, is_superuser=True)
                return self.create_user(email, password, **fields)


        class User(AbstractBaseUser, PermissionsMixin):
            email = models.EmailField(unique=True)
            full_name = models.CharField(max_length=200, blank=True)
            # No is_active field: AbstractBaseUser's attribute (always True) stands in.
            is_staff = models.BooleanField(default=False)

            objects = UserManager()
            USERNAME_FIELD = "email"
            EMAIL_FIELD = "email"


        class Account(models.Model):
            name = models.CharField(max_length=200)
    """,
    "mysite/contacts/__init__.py": "",
    "mysite/contacts/apps.py": """
        from django.apps import AppConfig


        class ContactsConfig(AppConfig):
            name = "mysite.contacts"
            default_auto_field = "django.db.models.BigAutoField"
    """,
    "mysite/contacts/models.py": """
        from django.db import models


        class Contact(models.Model):
            account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE)
            first_name = models.CharField(max_length=100, blank=True)
            last_name = models.CharField(max_length=100, blank=True)
    """,
}
OWN_SETTINGS = """
INSTALLED_APPS += ["accounts", "mysite.contacts"]
AUTH_USER_MODEL = "accounts.User"
"""

# --- what the adopter writes for Maestrano (docs/install.md, "Your tenant") -------------------

TENANT_LINK = {
    "accounts/adapter.py": """
        from maestrano_accounts.adapter import DefaultAccountAdapter

        from .models import Account


        class Adapter(DefaultAccountAdapter):
            def link_company(self, company, *, preset, attributes, created):
                Account.objects.get_or_create(
                    maestrano_company=company, defaults={"name": company.name}
                )
    """,
    "mysite/contacts/mappers.py": """
        from maestrano_sync import registry
        from maestrano_sync.mappers import Mapper

        from .models import Contact


        @registry.register(Contact)
        class ContactMapper(Mapper):
            entity = "people"
            tenant_field = "account__maestrano_company"
            fields = {"first_name": "first_name", "last_name": "last_name"}
    """,
    "mysite/contacts/apps.py": """
        from django.apps import AppConfig


        class ContactsConfig(AppConfig):
            name = "mysite.contacts"
            default_auto_field = "django.db.models.BigAutoField"

            def ready(self):
                from . import mappers  # noqa: F401
    """,
}
#: Appended to ``class Account`` (the last class of the module), so indented.
TENANT_FIELD = (
    "    maestrano_company = models.OneToOneField(\n"
    '        "maestrano_accounts.Company", null=True, blank=True, on_delete=models.SET_NULL\n'
    "    )\n"
)
TENANT_SETTINGS = """
MAESTRANO["ADAPTER"] = "accounts.adapter.Adapter"
"""


def write_files(project: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip())


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text().rstrip("\n") + "\n" + textwrap.dedent(text))


# --- fixtures -----------------------------------------------------------------------------------


class Adopter:
    """The adopter's project: its manage.py in the wheel's virtualenv."""

    def __init__(self, *, directory: Path, python: str, env: dict[str, str]) -> None:
        self.directory = directory
        self.python = python
        self.env = env

    def manage(self, *arguments: str) -> str:
        return run([self.python, "manage.py", *arguments], cwd=self.directory, env=self.env)

    def query(self, code: str) -> object:
        """Run ``code`` in ``manage.py shell``; it prints one JSON value, which is returned."""
        output = self.manage("shell", "-c", textwrap.dedent(code))
        return json.loads(output.strip().splitlines()[-1])


class Sandbox:
    """The emulated platform, run on its own from this checkout (``SANDBOX_ONLY=true``)."""

    def __init__(self, *, var_dir: Path, port: int) -> None:
        self.port = port
        self.url = f"http://{SANDBOX_HOST}:{port}/sandbox"
        self.env = clean_environment()
        self.env.update(
            DEBUG="true",  # as docs/install.md's commands say: the checkout's settings need it
            SANDBOX_ONLY="true",
            VAR_DIR=str(var_dir),
            DATABASE_URL=f"sqlite:///{var_dir / 'platform.sqlite3'}",
            SANDBOX_DATABASE_URL=f"sqlite:///{var_dir / 'platform_sandbox.sqlite3'}",
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        )

    def shell(self, line: str) -> str:
        """A documented command line, which must say itself what the settings need."""
        env = {k: v for k, v in self.env.items() if k not in {"DEBUG", "SANDBOX_ONLY"}}
        return run(["bash", "-c", line], cwd=ROOT, env=env)

    def manage(self, *arguments: str) -> str:
        return run([sys.executable, "manage.py", *arguments], cwd=ROOT, env=self.env)

    def api(self, method: str, path: str, *, auth=(API_ID, API_KEY), **kwargs) -> dict:
        answer = requests.request(method, f"{self.url}{path}", auth=auth, timeout=10, **kwargs)
        assert answer.status_code < 300, f"{method} {path}: {answer.status_code} {answer.text}"
        return answer.json()


def sandbox_commands(*, app_port: int, sandbox_port: int) -> list[str]:
    """The commands of docs/install.md, "Develop against the sandbox", with our ports."""
    text = INSTALL_DOC.read_text()
    section = text[text.index("## 9. Develop against the sandbox") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = [line for line in block.splitlines() if line.strip()]
    return [
        line.replace("8100", str(sandbox_port)).replace("8000", str(app_port)) for line in lines
    ]


def sso_login(browser, *, app_url: str, init_path: str, user: str, email: str, group: str):
    """A whole SP-initiated login in a fresh browser context; returns the page at the end."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(app_url + init_path)
    page.wait_for_selector("#idp-login")
    page.fill("#id_user_uid", user)
    page.fill("#id_user_email", email)
    page.fill("#id_user_name", user.removeprefix("usr-").title())
    page.fill("#id_group_uid", group)
    page.fill("#id_group_name", f"Group {group}")
    page.check("#id_create_missing")  # new uids, on purpose
    page.click("#idp-login button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


def wait_for(check, *, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


# --- the test -----------------------------------------------------------------------------


@pytest.mark.parametrize("custom_paths", [False, True], ids=["default-paths", "custom-paths"])
def test_an_existing_project_adopts_the_apps(tmp_path, virtualenv, custom_paths):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: `make browser` installs it")
    python = str(virtualenv / "bin" / "python")
    env = clean_environment()

    # 1. The adopter's project as it is before Maestrano: migrated, with rows.
    run([python, "-m", "django", "startproject", "mysite"], cwd=tmp_path, env=env)
    directory = tmp_path / "mysite"
    write_files(directory, OWN_APPS)
    append(directory / "mysite" / "settings.py", OWN_SETTINGS)
    adopter = Adopter(directory=directory, python=python, env=env)
    adopter.manage("makemigrations", "accounts", "contacts")
    adopter.manage("migrate", "--no-input")
    adopter.query(
        """
        import json
        from accounts.models import Account, User
        from mysite.contacts.models import Contact
        User.objects.create_user("jane@example.com", "jane-password", full_name="Jane Local")
        User.objects.create_superuser("admin@example.com", "admin-password")
        Contact.objects.create(account=Account.objects.create(name="Legacy"), first_name="Old")
        print(json.dumps(True))
        """
    )

    # 2. docs/install.md, literally; then the adopter's tenant link (docs: "Your tenant").
    applied = apply_install_doc(directory)
    assert applied == [
        "add to mysite/settings.py",
        "add to mysite/urls.py",
        "create mysite/celery.py",
        "add to mysite/__init__.py",
    ]
    write_files(directory, TENANT_LINK)
    models_py = directory / "accounts" / "models.py"
    models_py.write_text(models_py.read_text().rstrip("\n") + "\n" + TENANT_FIELD)
    append(directory / "mysite" / "settings.py", TENANT_SETTINGS)

    # 3. The sandbox on its own, as the guide says, on its own host name and port.
    app_port, sandbox_port = free_port(), free_port()
    app_url = f"http://{APP_HOST}:{app_port}"
    sandbox = Sandbox(var_dir=tmp_path / "platform", port=sandbox_port)
    commands = sandbox_commands(app_port=app_port, sandbox_port=sandbox_port)
    *set_up, serve = commands
    for line in set_up:
        sandbox.shell(line.replace("> idp-certificate.pem", f"> {tmp_path}/idp.pem"))
    assert serve.startswith("DEBUG=true SANDBOX_ONLY=true python manage.py runserver")

    env.update(documented_environment())
    env.update(
        MAESTRANO_ENVIRONMENT="test",
        MAESTRANO_APP_HOST=app_url,
        MAESTRANO_API_ID=API_ID,
        MAESTRANO_API_KEY=API_KEY,
        MAESTRANO_API_HOST=sandbox.url,
        MAESTRANO_SSO_X509_CERTIFICATE=str(tmp_path / "idp.pem"),
    )
    del env["MAESTRANO_CONNEC_HOST"]  # follows the api host: the sandbox serves Connec! there
    if custom_paths:
        env.update(CUSTOM_PATHS)
    adopter.manage("makemigrations", "accounts")
    assert "no issues" in adopter.manage("check")
    adopter.manage("migrate", "--no-input")

    init_path = (
        CUSTOM_PATHS["MAESTRANO_SSO_INIT_PATH"] if custom_paths else ("/maestrano/auth/saml/init")
    )
    with (
        running_server(
            [
                sys.executable,
                "manage.py",
                "runserver",
                f"{SANDBOX_HOST}:{sandbox_port}",
                "--noreload",
            ],
            cwd=ROOT,
            env=sandbox.env,
            url=f"{sandbox.url}/",
        ),
        running_server(
            [python, "manage.py", "runserver", f"{APP_HOST}:{app_port}", "--noreload"],
            cwd=directory,
            env=env,
            url=f"{app_url}/maestrano/metadata",
        ),
    ):
        # The platform reads the app's paths and subscriptions from its metadata.
        sandbox.manage(
            "sandbox_register_app", "--api-id", API_ID, "--app-host", app_url, "--from-metadata"
        )
        metadata = requests.get(
            f"{app_url}/maestrano/metadata", auth=(API_ID, API_KEY), timeout=10
        ).json()
        assert metadata["sso"]["init_path"] == init_path
        run_browser_story(adopter=adopter, sandbox=sandbox, app_url=app_url, init_path=init_path)
        run_webhooks_and_sync(adopter=adopter, sandbox=sandbox)


def run_browser_story(*, adopter: Adopter, sandbox: Sandbox, app_url: str, init_path: str):
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        login = functools.partial(sso_login, browser, app_url=app_url, init_path=init_path)
        try:
            # An existing user of the project, linked by email.
            page = login(user="usr-jane", email="jane@example.com", group="cld-one")
            assert page.url == f"{app_url}/dashboard/", page.content()[:2000]
            assert "Group cld-one" in page.content()
            # The app's dashboard, not an error page (it names the user, whatever the model).
            assert page.locator("#current-user").is_visible(), page.content()[:2000]
            # Log out: the platform sends the browser back to the app host's "/", which
            # the project did not serve before (the guide's last URL pattern does now).
            page.click("#logout")
            page.wait_for_url(f"{app_url}/")
            assert page.text_content("#signed-out h1") == "You are signed out"
            # A new user of the same company.
            page = login(user="usr-new", email="new@example.com", group="cld-one")
            assert page.url == f"{app_url}/dashboard/"
            # The existing user again, in a second company.
            page = login(user="usr-jane", email="jane@example.com", group="cld-two")
            assert page.url == f"{app_url}/dashboard/"
            # A platform user with the superuser's email gets neither that account nor a login.
            page = login(user="usr-evil", email="admin@example.com", group="cld-one")
            assert page.url.startswith(app_url) and "/dashboard/" not in page.url
            assert page.locator("#account-conflict").is_visible()
            # Nor does one with the same address in other case (no second account beside it).
            page = login(user="usr-evil-2", email="Admin@EXAMPLE.com", group="cld-one")
            assert "/dashboard/" not in page.url
            assert page.locator("#account-conflict").is_visible()
        finally:
            browser.close()

    state = adopter.query(
        """
        import json
        from maestrano_accounts.models import Company, Membership, PlatformIdentity
        from accounts.models import Account, User
        jane = User.objects.get(email="jane@example.com")
        print(json.dumps({
            "users": sorted(User.objects.values_list("email", flat=True)),
            "jane_uid": list(jane.maestrano_identities.values_list("uid", flat=True)),
            "jane_keeps_password": jane.check_password("jane-password"),
            "jane_companies": sorted(jane.maestrano_companies.values_list("group_uid", flat=True)),
            "identities": sorted(PlatformIdentity.objects.values_list("uid", flat=True)),
            "admin_linked": PlatformIdentity.objects.filter(user__is_superuser=True).exists(),
            "accounts": sorted(
                Account.objects.values_list("name", "maestrano_company__group_uid")
            ),
        }))
        """
    )
    assert state == {
        "users": ["admin@example.com", "jane@example.com", "new@example.com"],
        "jane_uid": ["usr-jane"],
        "jane_keeps_password": True,
        "jane_companies": ["cld-one", "cld-two"],
        "identities": ["usr-jane", "usr-new"],
        "admin_linked": False,
        "accounts": [["Group cld-one", "cld-one"], ["Group cld-two", "cld-two"], ["Legacy", None]],
    }


def run_webhooks_and_sync(*, adopter: Adopter, sandbox: Sandbox):
    # Push: one of the adopter's own records, saved the adopter's way, reaches Connec!.
    adopter.query(
        """
        import json
        from accounts.models import Account
        from mysite.contacts.models import Contact
        account = Account.objects.get(maestrano_company__group_uid="cld-one")
        Contact.objects.create(account=account, first_name="Ada", last_name="Lovelace")
        print(json.dumps(True))
        """
    )
    people = wait_for(
        lambda: [
            person
            for person in sandbox.api("GET", "/api/v2/cld-one/people")["people"]
            if person.get("first_name") == "Ada"
        ],
        what="the pushed contact in Connec!",
    )
    assert len(people) == 1

    # A notification back: another app of the group changes the record.
    sandbox.manage(
        "sandbox_register_app",
        "--api-id",
        "other-app",
        "--api-key",
        "other-key",
        "--app-host",
        "http://127.0.0.1:9",
    )
    sandbox.manage(
        "shell",
        "-c",
        "from maestrano_sandbox.models import Group, RegisteredApp; "
        "Group.objects.get(uid='cld-one').apps.add(RegisteredApp.objects.get(api_id='other-app'))",
    )
    sandbox.api(
        "PUT",
        f"/api/v2/cld-one/people/{people[0]['id']}",
        auth=("other-app", "other-key"),
        json={"people": {"last_name": "Byron"}},
    )
    wait_for(
        lambda: (
            adopter.query(
                """
            import json
            from mysite.contacts.models import Contact
            print(json.dumps(list(Contact.objects.filter(first_name="Ada")
                .values_list("last_name", flat=True))))
            """
            )
            == ["Byron"]
        ),
        what="the notification applied to the adopter's contact",
    )

    # Both account webhooks, sent by the platform.
    sandbox.manage(
        "sandbox_send_account_webhook", "--app", API_ID, "--group", "cld-one", "--user", "usr-new"
    )
    sandbox.manage("sandbox_send_account_webhook", "--app", API_ID, "--group", "cld-two")
    lifecycle = adopter.query(
        """
        import json
        from maestrano_accounts.models import Company, Membership
        print(json.dumps({
            "new_member_active": Membership.objects.get(
                user__email="new@example.com", company__group_uid="cld-one").is_active,
            "jane_member_active": Membership.objects.get(
                user__email="jane@example.com", company__group_uid="cld-one").is_active,
            "companies": dict(Company.objects.values_list("group_uid", "status")),
        }))
        """
    )
    assert lifecycle == {
        "new_member_active": False,
        "jane_member_active": True,
        "companies": {"cld-one": "active", "cld-two": "cancelled"},
    }
