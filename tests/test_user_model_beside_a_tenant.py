"""A new project whose user model's app also holds its tenant (docs/install.md, "Your tenant").

``django-admin startproject`` with docs/install.md applied, then an app ``people`` with
a custom user model (UUID primary key, the email as ``USERNAME_FIELD``) and ``Customer``,
a model of its own with a foreign key to ``maestrano_accounts.Company``, made before the
first ``migrate``. One ``makemigrations`` puts both in ``people.0001_initial``, which then
depends on our migrations while ours depend on the user model: ``check --database default``,
``check --deploy`` and ``migrate`` say so with the way out (a database check, and a deployment
check: a plain ``check`` does not build the migration graph), before ``migrate`` would stop on
Django's ``CircularDependencyError``.
Made as the hint says (the user model first, the tenant in ``0002``), the project checks and
migrates, and a platform user logs in through SSO as a user of that UUID-keyed model.
The checkout's interpreter runs the project (the apps are installed there): no wheel.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers.adoption import ROOT, apply_install_doc, clean_environment, run

pytestmark = [pytest.mark.adoption]

USER_MODEL = """
import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models


class PersonManager(BaseUserManager):
    def create_user(self, email, password=None, **fields):
        user = self.model(email=self.normalize_email(email), **fields)
        user.set_password(password)
        user.save()
        return user


class Person(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)

    objects = PersonManager()
    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
"""
TENANT_MODEL = """

class Customer(models.Model):
    company = models.ForeignKey("maestrano_accounts.Company", on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
"""


#: An SSO login through Django's test client, in the project (a Response signed with the
#: test key, as tests/accounts/test_sso_queries.py makes them), then our admin pages of the
#: user's identity and company (with its memberships): what it prints.
SSO_LOGIN = f"""
import sys, uuid
sys.path.insert(0, {str(ROOT)!r})
from django.test import Client
from django.test.utils import override_settings
from maestrano_accounts.models import Company, PlatformIdentity
from maestrano_integration.conf import get_preset
from people.models import Person
from tests.accounts.test_sso_queries import ATTRIBUTES, signed_response
from tests.conftest import preset_values

presets = {{"maestrano": preset_values(api_id="app-u", api_key="key-u")}}
with override_settings(
    MAESTRANO={{"DEFAULT_PRESET": "maestrano", "PRESETS": presets,
               "SYNC": {{"IMPORT_ON_COMPANY_CREATED": False}}}},
    ALLOWED_HOSTS=["testserver"],
):
    preset = get_preset()
    client = Client()
    response = signed_response(preset, ATTRIBUTES)
    consumed = client.post(preset.consume_path, {{"SAMLResponse": response}})
    done = client.get(consumed["Location"])
    user = Person.objects.get()
    print(done.status_code, done["Location"])
    linked = PlatformIdentity.objects.get().user == user
    print("uuid" if isinstance(user.pk, uuid.UUID) and linked else "?")
    admin = Client()
    root = Person.objects.create_user("root@example.com", is_staff=True, is_superuser=True)
    admin.force_login(root)
    for model in (PlatformIdentity, Company):  # the company's page lists its memberships
        row = model.objects.get()
        print(admin.get(f"/admin/maestrano_accounts/{{model._meta.model_name}}/{{row.pk}}/change/").status_code)
"""


def manage(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def project(tmp_path) -> Path:
    env = clean_environment()
    run([sys.executable, "-m", "django", "startproject", "mysite"], cwd=tmp_path, env=env)
    project = tmp_path / "mysite"
    apply_install_doc(project)
    people = project / "people"
    (people / "migrations").mkdir(parents=True)
    (people / "__init__.py").write_text("")
    (people / "migrations" / "__init__.py").write_text("")
    (people / "models.py").write_text(USER_MODEL + TENANT_MODEL)
    settings = project / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text()
        + textwrap.dedent("""
            INSTALLED_APPS += ["people"]
            AUTH_USER_MODEL = "people.Person"
            DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
        """)
    )
    return project


def test_one_initial_migration_for_the_user_and_the_tenant_fails_the_check(project):
    made = manage(project, "makemigrations", "people")
    assert made.returncode == 0, made.stderr
    assert [path.name for path in (project / "people" / "migrations").glob("0*.py")] == [
        "0001_initial.py"
    ]

    # A database check: not run by a plain check (nor by runserver or any other command),
    # which would otherwise report it here, so no command pays for the migration graph.
    plain = manage(project, "check")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "maestrano.E031" not in plain.stdout + plain.stderr

    check = manage(project, "check", "--database", "default")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "maestrano.E031" in check.stderr, check.stderr
    assert "people.0001_initial, depends on maestrano_accounts." in check.stderr, check.stderr
    assert "makemigrations people" in check.stderr, check.stderr

    assert check.stderr.count("maestrano.E031") == 1, check.stderr

    # The deployment check says it without being given a database, and once when given one.
    for deploy in (["--deploy"], ["--deploy", "--database", "default"]):
        deploy_check = manage(project, "check", *deploy)
        assert deploy_check.returncode == 1, deploy_check.stdout + deploy_check.stderr
        assert deploy_check.stderr.count("maestrano.E031") == 1, deploy_check.stderr

    # migrate runs the database checks of its database before it loads the migrations: the
    # same message, not Django's CircularDependencyError, and nothing applied.
    migrate = manage(project, "migrate")
    assert migrate.returncode == 1
    assert "maestrano.E031" in migrate.stderr, migrate.stderr
    assert "CircularDependencyError:" not in migrate.stderr, migrate.stderr
    assert "Traceback" not in migrate.stderr, migrate.stderr
    assert "Applying" not in migrate.stdout, migrate.stdout
    # What the check stops it before: without the checks, Django's own error.
    unchecked = manage(project, "migrate", "--skip-checks")
    assert unchecked.returncode == 1
    assert "CircularDependencyError:" in unchecked.stderr, unchecked.stderr
    assert "maestrano.E031" not in unchecked.stderr


def test_the_user_model_first_then_the_tenant_checks_and_migrates(project):
    models = project / "people" / "models.py"
    models.write_text(USER_MODEL)
    assert manage(project, "makemigrations", "people").returncode == 0
    models.write_text(USER_MODEL + TENANT_MODEL)
    assert manage(project, "makemigrations", "people").returncode == 0
    assert sorted(path.name for path in (project / "people" / "migrations").glob("0*.py")) == [
        "0001_initial.py",
        "0002_customer.py",
    ]

    check = manage(project, "check", "--database", "default")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "maestrano.E031" not in check.stderr
    assert "maestrano.E031" not in manage(project, "check", "--deploy").stderr
    migrate = manage(project, "migrate")
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "Applying people.0002_customer... OK" in migrate.stdout
    clean = manage(project, "makemigrations", "--check", "--dry-run")
    assert clean.returncode == 0, clean.stdout + clean.stderr

    # The UUID-keyed user logs in through SSO and shows in our admin pages.
    login = manage(project, "shell", "-v", "0", "-c", SSO_LOGIN)
    assert login.returncode == 0, login.stdout + login.stderr
    assert login.stdout.split() == ["302", "/dashboard/", "uuid", "200", "200"]
