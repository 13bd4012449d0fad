"""The shipped test peer (``maestrano_sandbox.testing``, ``maestrano_sandbox.pytest_plugin``): the
``platform`` fixture is its ``maestrano_platform``; app and sandbox answer on one loopback
server."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
import requests
from django.core.management import call_command

from maestrano_integration.checks import MISSING_CREDENTIAL_WARNINGS
from maestrano_sandbox.testing import sandbox_settings, setup_problems
from maestrano_sandbox.testing.setup import FAULTS_MIDDLEWARE, ROUTER, TEST_URLCONF
from tests.helpers.certificates import make_key_pair
from tests.helpers.repository import ROOT


def test_platform_serves_the_app_metadata_to_the_sandbox_credentials(platform):
    response = requests.get(f"{platform.url}/maestrano/metadata", auth=platform.auth, timeout=5)
    assert response.status_code == 200
    assert response.json()["api"]["id"] == platform.api_id
    assert response.json()["sso"]["x509_certificate"] == platform.keys.certificate_pem.strip()
    assert platform.url.startswith("http://localhost:") or platform.url.startswith(
        "http://127.0.0.1:"
    )


def test_sandbox_is_mounted(platform):
    response = requests.get(f"{platform.sandbox_url}/", timeout=5)
    assert response.status_code == 200


def test_the_platform_keeps_the_projects_other_maestrano_settings(platform, settings):
    """Only the default preset points at the sandbox; the rest of MAESTRANO stays."""
    assert settings.MAESTRANO["HEALTH"] == {"DATABASES": ["default", "sandbox"]}
    assert list(settings.MAESTRANO["PRESETS"]) == ["maestrano"]
    assert settings.MAESTRANO["PRESETS"]["maestrano"]["api"]["host"] == platform.sandbox_url


# --- login ------------------------------------------------------------------------------------


def test_login_signs_in_through_the_idp_and_returns_the_logged_in_session(platform):
    from maestrano_accounts.models import Company

    http = platform.login(user_uid="usr-kit", group_uid="cld-kit", group_name="Kit Company")

    dashboard = http.get(f"{platform.url}/dashboard/", allow_redirects=False, timeout=10)
    assert dashboard.status_code == 200
    assert "Kit Company" in dashboard.text
    assert Company.objects.get(group_uid="cld-kit").name == "Kit Company"
    anonymous = requests.get(f"{platform.url}/dashboard/", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302


def test_a_login_the_app_refuses_is_an_assertion_error_with_its_page(platform):
    """The app trusts another IdP certificate: its ACS refuses the sandbox's Response."""
    other = make_key_pair().certificate_pem
    platform.configure(maestrano=platform.preset_values(sso={"x509_certificate": other}))

    with pytest.raises(AssertionError, match="The SSO completion answered 4"):
        platform.login(user_uid="usr-kit", group_uid="cld-kit")


def test_refresh_metadata_registers_the_apps_own_paths_which_login_then_uses(platform):
    platform.configure(
        maestrano=platform.preset_values(
            sso={"init_path": "/sso/start", "consume_path": "/sso/acs"},
            webhook={"connec": {"subscriptions": {"people": True}}},
        )
    )

    app = platform.refresh_metadata()

    assert (app.init_path, app.consume_path) == ("/sso/start", "/sso/acs")
    assert app.subscriptions["people"] is True
    http = platform.login(user_uid="usr-kit", group_uid="cld-kit")
    assert http.get(f"{platform.url}/dashboard/", timeout=10).status_code == 200


# --- Connec! records ---------------------------------------------------------------------------


def test_a_record_written_as_another_app_reaches_the_app_before_write_record_returns(platform):
    from crm.models import Person

    platform.login(user_uid="usr-kit", group_uid="cld-kit")

    person = platform.write_record(
        group_uid="cld-kit", entity="people", data={"first_name": "Ada", "last_name": "Byron"}
    )
    assert Person.objects.get(last_name="Byron").first_name == "Ada"

    updated = platform.write_record(
        group_uid="cld-kit", entity="people", record_id=person["id"], data={"last_name": "King"}
    )
    assert updated["id"] == person["id"]
    assert Person.objects.get().last_name == "King"
    [stored] = platform.records(group_uid="cld-kit", entity="people")
    assert stored["id"] == person["id"]
    assert (stored["first_name"], stored["last_name"]) == ("Ada", "King")


def test_a_notification_the_app_refuses_is_an_assertion_error(platform):
    """The app no longer accepts the sandbox's credentials: it answers the notification 401."""
    platform.login(user_uid="usr-kit", group_uid="cld-kit")
    platform.configure(maestrano=platform.preset_values(api={"key": "not-the-sandbox-key"}))

    with pytest.raises(AssertionError, match=r"to app-test: failed after 1 attempt\(s\)"):
        platform.write_record(group_uid="cld-kit", entity="items", data={"name": "Kit"})


def test_records_reads_every_page_of_the_entity(platform):
    platform.add_group(uid="cld-many")
    call_command("sandbox_seed", "--group", "cld-many", "--records", "1300", stdout=StringIO())

    people = platform.records(group_uid="cld-many", entity="people")

    assert len(people) == 520  # 40 % of the records, over two pages of 500
    assert len({person["id"] for person in people}) == 520
    with_ids = platform.records(group_uid="cld-many", entity="organizations", external_ids=True)
    assert all(isinstance(record["id"], list) for record in with_ids)


# --- the settings a project's tests need --------------------------------------------------------


def test_setup_problems_name_what_the_settings_lack(platform, settings):
    assert setup_problems() == []

    settings.MAESTRANO_SANDBOX = {**settings.MAESTRANO_SANDBOX, "ENABLED": False}
    settings.DATABASE_ROUTERS = []
    settings.ROOT_URLCONF = "tests.accounts.urls_billing_prefixed"

    problems = "\n".join(setup_problems())
    assert f'DATABASE_ROUTERS lacks "{ROUTER}"' in problems
    assert 'MAESTRANO_SANDBOX["ENABLED"] is not true' in problems
    assert "The URLconf does not mount the sandbox" in problems


def test_sandbox_settings_add_the_app_its_database_router_urls_and_switch(tmp_path: Path):
    current = {
        "INSTALLED_APPS": ["django.contrib.auth", "myapp"],
        "DATABASES": {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/app/db.sqlite3"}
        },
        "MIDDLEWARE": ["django.middleware.common.CommonMiddleware"],
        "DATABASE_ROUTERS": ["myapp.routers.Router"],
        "ROOT_URLCONF": "mysite.urls",
        "MAESTRANO_SANDBOX": {"SESSION_RECHECK_SECONDS": 5},
        "SILENCED_SYSTEM_CHECKS": ["security.W004"],
    }

    changed = sandbox_settings(current, directory=tmp_path)

    assert changed["INSTALLED_APPS"] == ["django.contrib.auth", "myapp", "maestrano_sandbox"]
    databases = changed["DATABASES"]
    assert databases["sandbox"]["NAME"] == "/srv/app/db_sandbox.sqlite3"
    assert databases["default"]["TEST"] == {"NAME": str(tmp_path / "test_default.sqlite3")}
    assert databases["sandbox"]["TEST"] == {"NAME": str(tmp_path / "test_sandbox.sqlite3")}
    assert databases["default"]["OPTIONS"]["timeout"] == 20
    assert changed["DATABASE_ROUTERS"] == [ROUTER, "myapp.routers.Router"]
    assert changed["MIDDLEWARE"][-1] == FAULTS_MIDDLEWARE
    assert changed["ROOT_URLCONF"] == TEST_URLCONF
    assert changed["MAESTRANO_SANDBOX"] == {
        "SESSION_RECHECK_SECONDS": 5,
        "ENABLED": True,
        "APP_URLCONF": "mysite.urls",
    }
    assert current["DATABASES"]["default"] == {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": "/srv/app/db.sqlite3",
    }, "the project's own settings are left as they were"
    # Applied twice (a settings module that imports another), nothing is added twice.
    again = sandbox_settings({**current, **changed}, directory=tmp_path)
    assert again["INSTALLED_APPS"].count("maestrano_sandbox") == 1
    assert again["DATABASE_ROUTERS"].count(ROUTER) == 1
    assert again["MIDDLEWARE"].count(FAULTS_MIDDLEWARE) == 1
    assert "ROOT_URLCONF" not in again
    assert again["MAESTRANO_SANDBOX"]["APP_URLCONF"] == "mysite.urls"
    assert again["SILENCED_SYSTEM_CHECKS"] == changed["SILENCED_SYSTEM_CHECKS"]


def test_sandbox_settings_silence_the_warnings_of_missing_credentials(tmp_path: Path):
    """The test platform gives the default preset the sandbox's credentials when a test
    runs: the warnings of a preset without them (what the apps' checks say) are silenced,
    the project's own silenced checks kept."""
    current = {
        "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db"}},
        "SILENCED_SYSTEM_CHECKS": ["security.W004"],
    }
    silenced = sandbox_settings(current, directory=tmp_path)["SILENCED_SYSTEM_CHECKS"]
    assert silenced == ["security.W004", *MISSING_CREDENTIAL_WARNINGS]
    assert not any(check.startswith("maestrano.E") for check in silenced)


def test_sandbox_settings_put_the_sandbox_database_on_the_same_postgresql_server():
    default = {"ENGINE": "django.db.backends.postgresql", "NAME": "crm", "HOST": "db", "USER": "u"}

    databases = sandbox_settings({"DATABASES": {"default": default}})["DATABASES"]

    assert databases["sandbox"] == {**default, "NAME": "crm_sandbox"}
    assert "TEST" not in databases["default"]


def test_sandbox_settings_leave_the_projects_atomic_requests_to_its_own_database(tmp_path: Path):
    """A project with ``ATOMIC_REQUESTS`` keeps it on its database, never on the sandbox's:
    Django wraps each view in a transaction on every database that sets it, and each app
    request holding the sandbox's SQLite write lock made the sandbox's requests it calls
    (the SSO completion's) wait for it until they timed out."""
    default = {"ENGINE": "django.db.backends.sqlite3", "NAME": "/srv/app/db.sqlite3"}
    current = {"DATABASES": {"default": {**default, "ATOMIC_REQUESTS": True}}}

    databases = sandbox_settings(current, directory=tmp_path)["DATABASES"]

    assert databases["default"]["ATOMIC_REQUESTS"] is True
    assert not databases["sandbox"].get("ATOMIC_REQUESTS", False)


def test_sandbox_testing_imports_without_pytest_and_before_the_apps_are_ready():
    """A test settings module imports ``sandbox_settings`` before Django is set up, and a
    project's tests may run without pytest: neither needs pytest nor a model, and the
    settings module does not load ``django.test`` (``MaestranoPlatformTestCase`` does,
    when imported)."""
    code = (
        "import sys; sys.modules['pytest'] = None\n"
        "from maestrano_sandbox.testing import Platform, sandbox_settings, start_platform\n"
        "import maestrano_sandbox.testing.sso\n"
        "assert 'maestrano_sandbox.models' not in sys.modules, 'a model was imported'\n"
        "assert 'django.test' not in sys.modules, 'django.test was imported'\n"
        "from maestrano_sandbox.testing import MaestranoPlatformTestCase\n"
        "assert 'maestrano_sandbox.models' not in sys.modules, 'a model was imported'\n"
    )
    env = {name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
