"""The example project's production settings (docs/deploy.md), in fresh processes.

The settings and URLs are read once at import, so every case runs ``manage.py``
(or a short script) in a subprocess with its own environment: the documented
production environment passes ``check --deploy --fail-level WARNING``; the sandbox
is not mounted with ``DEBUG=false`` unless forced, and forcing it fails that check;
the sandbox's certificate and the demo credentials left in ``VAR_DIR`` are not
trusted outside development.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.helpers.certificates import make_key_pair
from tests.helpers.processes import ROOT, run_python

DEPLOY_DOC = ROOT / "docs" / "deploy.md"
ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$", re.M)
#: Variables of the test run that would leak into the subprocesses' settings.
INHERITED = re.compile(r"^(DJANGO_SETTINGS_MODULE|DEBUG|SANDBOX_|MAESTRANO_|SECURE_|AXES_)")


def documented_environment() -> dict[str, str]:
    """The ``bash`` block under "The production environment" in docs/deploy.md."""
    text = DEPLOY_DOC.read_text()
    section = text[text.index("## The production environment") :]
    block = section[section.index("```bash\n") + len("```bash\n") :]
    block = block[: block.index("```")]
    return dict(ASSIGNMENT.findall(block))


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    """The documented environment, with real values for its ``<...>`` placeholders."""
    certificate = tmp_path / "idp_certificate.pem"
    certificate.write_text(make_key_pair().certificate_pem)
    real_values = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'production.sqlite3'}",
        "MAESTRANO_API_ID": "app-production",
        "MAESTRANO_API_KEY": secrets.token_urlsafe(24),
        "MAESTRANO_SSO_X509_CERTIFICATE": str(certificate),
    }
    documented = documented_environment()
    placeholders = {name for name, value in documented.items() if value.startswith("<")}
    assert placeholders == set(real_values), "docs/deploy.md and this test disagree"
    environment = {name: value for name, value in os.environ.items() if not INHERITED.match(name)}
    var_dir = tmp_path / "var"
    return {
        **environment,
        **documented,
        **real_values,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "VAR_DIR": str(var_dir),
        "SANDBOX_DATABASE_URL": f"sqlite:///{tmp_path / 'sandbox.sqlite3'}",
    }


def deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_python(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env=env)


#: GET a path with the test client (HTTPS, the production host) and print the status code.
STATUS_OF = """
import sys, django
django.setup()
from django.test import Client
print(Client().get(sys.argv[1], secure=True, HTTP_HOST="crm.example.com").status_code)
"""


#: Whether a path is routed to a view (the sandbox's pages need its database to answer).
ROUTED = """
import sys, django
django.setup()
from django.urls import Resolver404, resolve
try:
    print(resolve(sys.argv[1]).func.__module__)
except Resolver404:
    print("not routed")
"""


def routed_to(path: str, env: dict[str, str]) -> str:
    result = run_python(["-c", ROUTED, path], env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def status_of(path: str, env: dict[str, str]) -> str:
    result = run_python(["-c", STATUS_OF, path], env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


#: The readiness probe's checks, as JSON.
READY_CHECKS = """
import json, django
django.setup()
from django.test import Client
answer = Client().get("/health/ready", secure=True, HTTP_HOST="crm.example.com")
print(json.dumps(answer.json()["checks"]))
"""


def test_readiness_leaves_out_the_sandbox_database_of_a_deployment(production_env, tmp_path):
    # No sandbox mounted, and no database where the sandbox's would be.
    env = {**production_env, "SANDBOX_DATABASE_URL": f"sqlite:///{tmp_path}/none/sandbox.db"}

    result = run_python(["-c", READY_CHECKS], env=env)

    assert result.returncode == 0, result.stderr
    checks = json.loads(result.stdout.strip().splitlines()[-1])
    assert checks["database:default"] == "ok"
    assert "database:sandbox" not in checks


def test_the_documented_production_environment_passes_the_deploy_check(production_env):
    result = deploy_check(production_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in (result.stdout + result.stderr)


def test_debug_off_without_forcing_does_not_mount_the_sandbox(production_env):
    env = {**production_env, "SANDBOX_ENABLED": "true"}

    assert status_of("/sandbox/", env) == "404"
    assert routed_to("/sandbox/", env) == "not routed"
    assert status_of("/maestrano/metadata", env) == "401"  # the app itself answers
    assert deploy_check(env).returncode == 0


def test_forcing_the_sandbox_with_debug_off_fails_the_deploy_check(production_env):
    env = {**production_env, "SANDBOX_ENABLED": "true", "SANDBOX_FORCE": "true"}

    result = deploy_check(env)

    assert result.returncode != 0
    assert "maestrano_sandbox.E001" in result.stdout + result.stderr
    assert routed_to("/sandbox/", env).startswith("maestrano_sandbox.")


def test_the_sandbox_is_off_unless_enabled_even_with_debug(production_env):
    env = {**production_env, "DEBUG": "true"}

    assert status_of("/sandbox/", env) == "404"


def test_sandbox_files_in_var_dir_are_not_trusted_outside_development(production_env, tmp_path):
    # A leftover demo: the sandbox's certificate and the demo app's credentials in VAR_DIR.
    sandbox_dir = Path(production_env["VAR_DIR"]) / "sandbox"
    sandbox_dir.mkdir(parents=True)
    (sandbox_dir / "idp_certificate.pem").write_text(make_key_pair().certificate_pem)
    (sandbox_dir / "demo_app.env").write_text("MAESTRANO_API_ID=app-demo\nMAESTRANO_API_KEY=k\n")
    env = {
        name: value
        for name, value in production_env.items()
        if name not in {"MAESTRANO_SSO_X509_CERTIFICATE", "MAESTRANO_API_ID", "MAESTRANO_API_KEY"}
    }

    result = deploy_check(env)

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "maestrano.E004" in output  # no IdP certificate: the sandbox's is not used
    assert "maestrano.E001" in output  # no api id: the demo credentials are not read


def test_debug_off_without_a_secret_key_refuses_to_start(production_env):
    env = {name: value for name, value in production_env.items() if name != "SECRET_KEY"}

    result = run_python(["manage.py", "check"], env=env)

    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


#: ``settings.DEBUG`` as the settings module makes it from the environment.
DEBUG_OF = """
import django
django.setup()
from django.conf import settings
print(settings.DEBUG)
"""


def test_debug_is_off_unless_the_environment_turns_it_on(production_env):
    """A copy of config/settings.py run without ``DEBUG`` is not a debug server."""
    env = {name: value for name, value in production_env.items() if name != "DEBUG"}

    result = run_python(["-c", DEBUG_OF], env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
    # Nor does it start with the insecure key instead: it says what to set.
    del env["SECRET_KEY"]
    refused = run_python(["-c", DEBUG_OF], env=env)
    assert refused.returncode != 0
    assert "Set SECRET_KEY" in refused.stderr and "DEBUG=true to develop" in refused.stderr


#: The default cache's key for "k", as Django builds it from the settings.
CACHE_KEY = """
import django
django.setup()
from django.core.cache import cache
print(cache.make_key("k"))
"""


def test_a_key_prefix_and_version_in_cache_url_reach_the_cache(production_env):
    production_env["CACHE_URL"] = "redis://127.0.0.1:6379/1?key_prefix=crm-eu&version=3"

    result = run_python(["-c", CACHE_KEY], env=production_env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "crm-eu:3:k"


#: The connection options of both PostgreSQL aliases, as psycopg would receive them.
CONNECTION_OPTIONS = """
import django
django.setup()
from django.db import connections
for alias in ("default", "sandbox"):
    params = connections[alias].get_connection_params()
    print(alias, params.get("prepare_threshold"), params["cursor_factory"].__name__)
"""


def test_the_prepare_threshold_reaches_the_postgresql_connections(production_env):
    production_env["DATABASE_URL"] = "postgres://app@db.example.com:5432/crm"
    production_env.pop("SANDBOX_DATABASE_URL")
    # The documented environment sets it (the recipe's prepared statements).
    assert production_env.pop("DATABASE_PREPARE_THRESHOLD") == "5"

    unset = run_python(["-c", CONNECTION_OPTIONS], env=production_env)
    production_env["DATABASE_PREPARE_THRESHOLD"] = ""
    empty = run_python(["-c", CONNECTION_OPTIONS], env=production_env)
    production_env["DATABASE_PREPARE_THRESHOLD"] = "5"
    prepared = run_python(["-c", CONNECTION_OPTIONS], env=production_env)

    for result in (unset, empty):  # an empty variable counts as unset
        assert result.returncode == 0, result.stderr
        assert result.stdout.split("\n")[-3:-1] == ["default None Cursor", "sandbox None Cursor"]
    assert prepared.returncode == 0, prepared.stderr
    assert prepared.stdout.split("\n")[-3:-1] == [
        "default 5 ServerBindingCursor",
        "sandbox 5 ServerBindingCursor",
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [("-1", "-1"), ("five", "'five'"), ("1.5", "'1.5'"), ("5 uses", "'5 uses'"), (" ", "' '")],
)
def test_a_prepare_threshold_that_is_no_count_refuses_to_start(production_env, value, shown):
    production_env["DATABASE_URL"] = "postgres://app@db.example.com:5432/crm"
    production_env["DATABASE_PREPARE_THRESHOLD"] = value

    result = deploy_check(production_env)

    assert result.returncode != 0
    message = "ImproperlyConfigured: DATABASE_PREPARE_THRESHOLD must be 0 or more (or unset)"
    assert message in result.stderr
    assert f"a number of uses, not {shown}." in result.stderr
    assert "ValueError" not in result.stderr  # the settings' message, not int()'s traceback


# --- boolean variables: django-environ's words only -------------------------------------------

#: What each boolean variable of the settings module turns into, as the settings say it.
BOOLEANS_OF = """
import json
from django.conf import settings
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "SANDBOX_ONLY": settings.ROOT_URLCONF == "config.urls.sandbox",
    "SANDBOX_ENABLED": settings.MAESTRANO_SANDBOX["ENABLED"],
    "SANDBOX_FORCE": settings.MAESTRANO_SANDBOX["ENABLED"],
    "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": settings.CSRF_COOKIE_SECURE,
    "USE_X_FORWARDED_PROTO": settings.SECURE_PROXY_SSL_HEADER is not None,
    "SECURE_SSL_REDIRECT": settings.SECURE_SSL_REDIRECT,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": settings.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "SECURE_HSTS_PRELOAD": settings.SECURE_HSTS_PRELOAD,
    "MAESTRANO_SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT": (
        settings.MAESTRANO["SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT"]
    ),
}))
"""
BOOLEAN_VARIABLES = (
    "DEBUG",
    "SANDBOX_ONLY",
    "SANDBOX_ENABLED",
    "SANDBOX_FORCE",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "USE_X_FORWARDED_PROTO",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "MAESTRANO_SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT",
)
ACCEPTED = "(true, on, ok, y, yes, 1 for true; false, off, no, n, 0 for false)"


def booleans_of(env: dict[str, str]) -> dict[str, bool]:
    result = run_python(["-c", BOOLEANS_OF], env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        *[(word, True) for word in ("true", "on", "ok", "y", "yes", "1", "TRUE", " Yes ")],
        *[(word, False) for word in ("false", "off", "no", "n", "0", "False", " OFF ")],
    ],
)
def test_every_boolean_variable_takes_each_accepted_word(production_env, word, expected):
    env = {**production_env, **dict.fromkeys(BOOLEAN_VARIABLES, word)}

    assert booleans_of(env) == dict.fromkeys(BOOLEAN_VARIABLES, expected)


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_an_unset_or_empty_boolean_variable_keeps_its_default(production_env, empty):
    env = {name: value for name, value in production_env.items() if name not in BOOLEAN_VARIABLES}
    if empty is not None:
        env.update(dict.fromkeys(BOOLEAN_VARIABLES, empty))

    # env.bool() read an empty variable as false: SECURE_SSL_REDIRECT= turned HTTPS off.
    assert booleans_of(env) == {
        **dict.fromkeys(BOOLEAN_VARIABLES, False),
        "SESSION_COOKIE_SECURE": True,  # not DEBUG
        "CSRF_COOKIE_SECURE": True,  # as SESSION_COOKIE_SECURE
        "SECURE_SSL_REDIRECT": True,  # not DEBUG
        "MAESTRANO_SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT": True,
    }


@pytest.mark.parametrize(
    ("variable", "word"),
    [
        *[(variable, "ture") for variable in BOOLEAN_VARIABLES],
        ("SANDBOX_ENABLED", "yse"),
        ("SECURE_SSL_REDIRECT", "2"),  # django-environ: any number but 0 is true
        ("DEBUG", "enabled"),
    ],
)
def test_a_boolean_variable_with_an_unknown_word_refuses_to_start(production_env, variable, word):
    """django-environ read any word it does not know as false: a typo turned a setting off
    (``MAESTRANO_SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT=ture`` relaxed the commit's durability)."""
    env = {**production_env, variable: word}

    result = run_python(["-c", BOOLEANS_OF], env=env)

    assert result.returncode != 0
    assert (
        f"ImproperlyConfigured: {variable} must be true or false {ACCEPTED}, not {word!r} "
        "(unset or empty: " in result.stderr
    )


#: The default preset as the platform reads it (its metadata) and as the app uses it.
PRESET_OF = """
import base64, json, os, django
django.setup()
from django.test import Client
from maestrano_integration.conf import get_preset
credentials = f"{os.environ['MAESTRANO_API_ID']}:{os.environ['MAESTRANO_API_KEY']}"
metadata = Client().get(
    "/maestrano/metadata", secure=True, HTTP_HOST="crm.example.com",
    HTTP_AUTHORIZATION="Basic " + base64.b64encode(credentials.encode()).decode(),
).json()
preset = get_preset()
print(json.dumps({
    "sso.enabled": metadata["sso"]["enabled"],
    "sso.slo_enabled": metadata["sso"]["slo_enabled"],
    "webhook.connec.subscriptions": metadata["webhook"]["connec"]["subscriptions"],
    "sso.allow_sha1": preset.allow_sha1,
    "connec.timeout": preset.connec_timeout,
}))
"""
#: The preset's variables that are not text: booleans, a number, a list.
PRESET_VARIABLES = (
    "MAESTRANO_SSO_ENABLED",
    "MAESTRANO_SSO_SLO_ENABLED",
    "MAESTRANO_SSO_ALLOW_SHA1",
    "MAESTRANO_CONNEC_TIMEOUT",
    "MAESTRANO_WEBHOOK_CONNEC_SUBSCRIPTIONS",
)


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_preset_variable_keeps_the_presets_default(production_env, empty):
    # MAESTRANO_SSO_ENABLED= read as false turned SSO off; an empty timeout refused to
    # start; empty subscriptions subscribed to nothing.
    env = {**production_env, **dict.fromkeys(PRESET_VARIABLES, empty)}

    result = run_python(["-c", PRESET_OF], env=env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "sso.enabled": True,
        "sso.slo_enabled": True,
        "webhook.connec.subscriptions": {
            "organizations": True,
            "people": True,
            "items": True,
            "invoices": True,
            "company": False,
        },
        "sso.allow_sha1": True,
        "connec.timeout": 30.0,
    }


@pytest.mark.parametrize(
    ("variable", "word", "said"),
    [
        *[
            (variable, "ture", f" must be true or false {ACCEPTED}, not 'ture'")
            for variable in PRESET_VARIABLES[:3]
        ],
        ("MAESTRANO_CONNEC_TIMEOUT", "soon", " must be a number of seconds, not 'soon'"),
        (
            "MAESTRANO_WEBHOOK_CONNEC_SUBSCRIPTIONS",
            '{"people": ""}',
            f"['people'] must be true or false {ACCEPTED}, not ''",
        ),
    ],
)
def test_a_preset_variable_that_says_none_of_its_values_refuses_to_start(
    production_env, variable, word, said
):
    env = {**production_env, variable: word}

    result = run_python(["-c", PRESET_OF], env=env)

    assert result.returncode != 0
    assert (
        f"ImproperlyConfigured: {variable}{said} (unset or empty: the default)." in result.stderr
    ), result.stderr
