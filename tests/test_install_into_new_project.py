"""docs/install.md, followed literally: the wheel in a fresh virtualenv and a new Django project.

The test builds a wheel of this project, installs it (without dependencies) into a
new virtualenv, runs ``django-admin startproject mysite`` there and applies the
code blocks of docs/install.md as written: a block whose first line is
``# add to <file>`` is appended to that file, ``# create <file>`` creates it, and
the ``# environment`` block gives the variables. Then ``check``, ``migrate`` and a
real server answering the metadata endpoint and the pages a logout lands on. The
dependencies come from this project's virtualenv through a ``.pth`` file: no network.

Then the same new project's own tests, as docs/sandbox.md ("In your project's tests")
writes them: its test settings, ``pytest.ini``, ``conftest.py`` and tests, with the sandbox
of the wheel as their peer; the project's pytest must pass (a login through the sandbox's
IdP, a record written in the sandbox reaching the project's model and back), and so must
its ``manage.py test`` (the same tests as ``MaestranoPlatformTestCase`` classes).
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest
import requests

from tests.helpers.adoption import (
    SANDBOX_DOC,
    apply_install_doc,
    clean_environment,
    documented_environment,
    run,
    running_server,
)
from tests.helpers.certificates import make_key_pair
from tests.helpers.processes import free_port

pytestmark = [pytest.mark.slow, pytest.mark.adoption]


def test_the_install_guide_works_in_a_new_django_project(tmp_path, virtualenv):
    python = str(virtualenv / "bin" / "python")
    env = clean_environment()

    # The apps come from the wheel, not from this checkout.
    location = run(
        [
            python,
            "-c",
            "import maestrano_accounts, maestrano_sync, maestrano_integration; "
            "print(maestrano_accounts.__file__)",
        ],
        cwd=tmp_path,
        env=env,
    )
    assert location.startswith(str(virtualenv)), location
    run(
        [
            python,
            "-c",
            "import importlib.resources as r; "
            "accounts = r.files('maestrano_accounts'); "
            "assert accounts.joinpath('migrations/0001_initial.py').is_file(); "
            "assert r.files('maestrano_sync').joinpath('migrations/0001_initial.py').is_file(); "
            "assert accounts.joinpath('templates/maestrano_accounts/sso_error.html').is_file()",
        ],
        cwd=tmp_path,
        env=env,
    )

    # django-admin startproject mysite
    run([python, "-m", "django", "startproject", "mysite"], cwd=tmp_path, env=env)
    project = tmp_path / "mysite"
    applied = apply_install_doc(project)
    assert applied == [
        "add to mysite/settings.py",
        "add to mysite/urls.py",
        "create mysite/celery.py",
        "add to mysite/__init__.py",
    ]

    certificate = tmp_path / "idp-certificate.pem"
    certificate.write_text(make_key_pair().certificate_pem)
    documented = documented_environment()
    assert {"MAESTRANO_API_ID", "MAESTRANO_API_KEY", "MAESTRANO_SSO_X509_CERTIFICATE"} <= set(
        documented
    )
    env.update(documented)
    env["MAESTRANO_SSO_X509_CERTIFICATE"] = str(certificate)  # the doc's path does not exist here

    check = run([python, "manage.py", "check"], cwd=project, env=env)
    assert "no issues" in check
    run([python, "manage.py", "migrate", "--no-input"], cwd=project, env=env)
    # The Celery app finds the apps' tasks, and the documented beat schedule names real ones.
    unknown = run(
        [
            python,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; from mysite import celery_app; "
            "celery_app.loader.import_default_modules(); "
            "print(sorted(entry['task'] for entry in settings.CELERY_BEAT_SCHEDULE.values() "
            "if entry['task'] not in celery_app.tasks))",
        ],
        cwd=project,
        env=env,
    )
    assert unknown.strip().splitlines()[-1] == "[]", unknown

    port = free_port()
    url = f"http://127.0.0.1:{port}/maestrano/metadata"
    with running_server(
        [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=project,
        env=env,
        url=url,
    ):
        anonymous = requests.get(url, timeout=5)
        authenticated = requests.get(
            url, auth=(documented["MAESTRANO_API_ID"], documented["MAESTRANO_API_KEY"]), timeout=5
        )
        # Where a logout lands: the app host's "/" after the platform's logout, the
        # signed-out page after a logout that stays here (no LOGOUT_REDIRECT_URL set).
        landings = [
            requests.get(f"http://127.0.0.1:{port}{path}", timeout=5)
            for path in ("/", "/maestrano/signed-out")
        ]

    for landing in landings:
        assert landing.status_code == 200, landing.url
        assert "<h1>You are signed out</h1>" in landing.text
        assert 'href="/maestrano/auth/saml/init"' in landing.text

    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": "Invalid credentials"}
    assert authenticated.status_code == 200
    metadata = authenticated.json()
    assert metadata["api"]["id"] == documented["MAESTRANO_API_ID"]
    assert "key" not in metadata["api"]
    assert documented["MAESTRANO_API_KEY"] not in authenticated.text
    assert metadata["app"]["host"] == documented["MAESTRANO_APP_HOST"]
    assert metadata["sso"]["consume_path"] == "/maestrano/auth/saml/consume"


# --- the new project's own tests, with the sandbox as their peer ----------------------------

#: The adopter's synced model (docs/sync.md, "A mapper"), which the documented tests import.
MYAPP = {
    "myapp/__init__.py": "",
    "myapp/apps.py": """
        from django.apps import AppConfig


        class MyAppConfig(AppConfig):
            name = "myapp"
            default_auto_field = "django.db.models.BigAutoField"

            def ready(self):
                from . import mappers  # noqa: F401
    """,
    "myapp/models.py": """
        from django.db import models


        class Contact(models.Model):
            company = models.ForeignKey("maestrano_accounts.Company", on_delete=models.CASCADE)
            first_name = models.CharField(max_length=100, blank=True)
            last_name = models.CharField(max_length=100, blank=True)
    """,
    "myapp/mappers.py": """
        from maestrano_sync import registry
        from maestrano_sync.mappers import Mapper

        from .models import Contact


        @registry.register(Contact)
        class ContactMapper(Mapper):
            entity = "people"
            fields = {"first_name": "first_name", "last_name": "last_name"}
    """,
}


def test_the_sandbox_is_the_peer_of_a_new_projects_own_tests(tmp_path, virtualenv):
    python = str(virtualenv / "bin" / "python")
    env = clean_environment()
    run([python, "-m", "django", "startproject", "mysite"], cwd=tmp_path, env=env)
    project = tmp_path / "mysite"
    apply_install_doc(project)
    for name, content in MYAPP.items():
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip())
    settings = project / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + '\nINSTALLED_APPS += ["myapp"]\n')
    run([python, "manage.py", "makemigrations", "myapp"], cwd=project, env=env)

    applied = apply_install_doc(project, SANDBOX_DOC)
    assert applied == [
        "create mysite/settings_test.py",
        "create pytest.ini",
        "create conftest.py",
        "create tests/test_maestrano.py",
        "create myapp/tests.py",
    ]
    result = run_pytest(python, project=project, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout, result.stdout

    # The same two tests as MaestranoPlatformTestCase classes, under Django's own runner.
    django_runner = subprocess.run(
        [python, "manage.py", "test", "--settings=mysite.settings_test", "--noinput"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert django_runner.returncode == 0, django_runner.stdout + django_runner.stderr
    assert "Ran 2 tests" in django_runner.stderr, django_runner.stderr
    # No credentials in the project's settings: the test platform supplies the sandbox's,
    # so the run does not warn of their absence.
    for output in (result.stdout, django_runner.stdout, django_runner.stderr):
        assert "maestrano.W00" not in output, output


def test_settings_without_the_sandbox_stop_the_run_saying_what_to_add(tmp_path, virtualenv):
    """The plugin's check, in the adopter's own run: test settings that are the project's
    settings alone (no sandbox app, database, router, URLs) stop pytest before any test."""
    python = str(virtualenv / "bin" / "python")
    env = clean_environment()
    run([python, "-m", "django", "startproject", "mysite"], cwd=tmp_path, env=env)
    project = tmp_path / "mysite"
    apply_install_doc(project)
    (project / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = mysite.settings\n")
    (project / "conftest.py").write_text('pytest_plugins = ["maestrano_sandbox.pytest_plugin"]\n')
    (project / "test_login.py").write_text(
        "def test_login(maestrano_platform):\n    maestrano_platform.login()\n"
    )

    result = run_pytest(python, project=project, env=env)

    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    for missing in (
        'INSTALLED_APPS has no "maestrano_sandbox"',
        'DATABASES has no "sandbox" database',
        'DATABASE_ROUTERS lacks "maestrano_sandbox.routers.SandboxRouter"',
        'MAESTRANO_SANDBOX["ENABLED"] is not true',
        "The URLconf does not mount the sandbox",
        "globals().update(sandbox_settings(globals()))",
    ):
        assert missing in result.stderr, result.stderr


def run_pytest(python: str, *, project: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The project's own pytest, as its developer runs it (its pytest.ini, its conftest)."""
    return subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
