"""What a project's test settings need for the sandbox to run beside the app, and the check
that they have it.

Imported by settings modules, before Django's apps are ready: nothing here imports a model.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import router
from django.urls import NoReverseMatch, reverse

from maestrano_sandbox.routers import SANDBOX_APP_LABEL, SANDBOX_DATABASE, SandboxRouter

ROUTER = "maestrano_sandbox.routers.SandboxRouter"
FAULTS_MIDDLEWARE = "maestrano_sandbox.faults.FaultInjectionMiddleware"
#: The URLconf ``sandbox_settings`` selects: the sandbox beside the project's own
#: (``MAESTRANO_SANDBOX["APP_URLCONF"]``).
TEST_URLCONF = "maestrano_sandbox.testing.urls"
#: What a test settings module adds in one line (docs/sandbox.md, "In your project's tests").
ONE_LINE = "globals().update(sandbox_settings(globals()))  # from maestrano_sandbox.testing"
SQLITE = "django.db.backends.sqlite3"
#: SQLite between the test's thread, the live server's threads and the sandbox's delivery
#: thread: wait for the writer instead of failing at once, and let readers run beside it
#: (the example project's own databases have the same options, config/settings.py).
SQLITE_OPTIONS = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


#: ``maestrano_integration.checks.MISSING_CREDENTIAL_WARNINGS`` (the sandbox imports no
#: check of the apps; tests/sandbox/test_platform_fixture.py compares the two).
MISSING_CREDENTIAL_WARNINGS = ("maestrano.W001", "maestrano.W002", "maestrano.W004")


def sandbox_settings(
    current: Mapping[str, Any], *, directory: str | Path | None = None
) -> dict[str, Any]:
    """The settings a test settings module changes so that the sandbox runs beside the app.

    ``current`` holds the settings as they are (a settings module's ``globals()``); the
    answer holds only what changes, for ``globals().update(...)``:

    * ``INSTALLED_APPS``: ``"maestrano_sandbox"`` added;
    * ``DATABASES``: a ``"sandbox"`` database beside ``"default"``, on the same server (its
      name + ``_sandbox``); SQLite databases get files for their test databases, in
      ``directory`` (default: a new temporary directory), and the options that let threads
      wait for each other's writes, each on a connection of its own (an in-memory test
      database is one connection, shared by the live server's threads);
    * ``DATABASE_ROUTERS``: ``maestrano_sandbox.routers.SandboxRouter`` first;
    * ``MIDDLEWARE``: the sandbox's fault injection (``maestrano_sandbox.faults``), last;
    * ``ROOT_URLCONF``: ``maestrano_sandbox.testing.urls``, which serves the sandbox at
      ``/sandbox/`` and your URLconf, kept in ``MAESTRANO_SANDBOX["APP_URLCONF"]``, at the root;
    * ``MAESTRANO_SANDBOX``: yours, with ``"ENABLED": True``;
    * ``SILENCED_SYSTEM_CHECKS``: yours, with the warnings of a preset without credentials
      (``maestrano.W001``, ``W002``, ``W004``): the test platform gives the default preset
      the sandbox's when a test runs, so a test run does not print them.
    """
    installed = list(current.get("INSTALLED_APPS", []))
    if SANDBOX_APP_LABEL not in installed:
        installed.append(SANDBOX_APP_LABEL)
    databases = {alias: dict(config) for alias, config in current["DATABASES"].items()}
    if SANDBOX_DATABASE not in databases:
        databases[SANDBOX_DATABASE] = _sibling(databases["default"])
    folder: Path | None = Path(directory) if directory is not None else None
    for alias, config in databases.items():
        if config.get("ENGINE") != SQLITE:
            continue
        if folder is None:
            folder = Path(tempfile.mkdtemp(prefix="maestrano-test-databases-"))
        config["OPTIONS"] = {**SQLITE_OPTIONS, **config.get("OPTIONS", {})}
        config["TEST"] = {"NAME": str(folder / f"test_{alias}.sqlite3"), **config.get("TEST", {})}
    routers = list(current.get("DATABASE_ROUTERS", []))
    if ROUTER not in routers:
        routers.insert(0, ROUTER)
    middleware = list(current.get("MIDDLEWARE", []))
    if FAULTS_MIDDLEWARE not in middleware:
        middleware.append(FAULTS_MIDDLEWARE)
    sandbox = {**current.get("MAESTRANO_SANDBOX", {}), "ENABLED": True}
    silenced = list(current.get("SILENCED_SYSTEM_CHECKS", []))
    silenced += [check for check in MISSING_CREDENTIAL_WARNINGS if check not in silenced]
    changed: dict[str, Any] = {
        "INSTALLED_APPS": installed,
        "DATABASES": databases,
        "DATABASE_ROUTERS": routers,
        "MIDDLEWARE": middleware,
        "MAESTRANO_SANDBOX": sandbox,
        "SILENCED_SYSTEM_CHECKS": silenced,
    }
    urlconf = current.get("ROOT_URLCONF")
    if urlconf and urlconf != TEST_URLCONF:
        sandbox["APP_URLCONF"] = urlconf
        changed["ROOT_URLCONF"] = TEST_URLCONF
    return changed


def _sibling(default: Mapping[str, Any]) -> dict[str, Any]:
    """The ``sandbox`` database: the default one's server, its name + ``_sandbox``.

    Without the project's ``ATOMIC_REQUESTS``: Django wraps every view in a transaction on
    each database that sets it, so each of the app's requests would hold one on the
    sandbox's database (on SQLite its write lock, taken at ``BEGIN IMMEDIATE``) while it
    calls the sandbox, whose request then waits for that lock: every SSO login timed out.
    """
    config = {
        key: value for key, value in default.items() if key not in ("TEST", "ATOMIC_REQUESTS")
    }
    name = str(config.get("NAME") or "")
    if config.get("ENGINE") == SQLITE:
        path = Path(name or "db.sqlite3")
        config["NAME"] = str(path.with_name(f"{path.stem}_sandbox{path.suffix}"))
    else:
        config["NAME"] = f"{name}_sandbox"
    return config


def setup_problems() -> list[str]:
    """What the current settings lack for the sandbox to serve a test, each with what to
    add (empty: nothing). Call it once Django is set up."""
    problems = []
    if not apps.is_installed(SANDBOX_APP_LABEL):
        problems.append('INSTALLED_APPS has no "maestrano_sandbox": add it.')
    if SANDBOX_DATABASE not in settings.DATABASES:
        problems.append(
            'DATABASES has no "sandbox" database (the sandbox keeps its data apart, as the '
            "real platform does): add one, on the same server as the default database."
        )
    if not any(isinstance(each, SandboxRouter) for each in router.routers):
        problems.append(f'DATABASE_ROUTERS lacks "{ROUTER}": put it first.')
    if not getattr(settings, "MAESTRANO_SANDBOX", {}).get("ENABLED"):
        problems.append(
            'MAESTRANO_SANDBOX["ENABLED"] is not true: set MAESTRANO_SANDBOX = {"ENABLED": True}.'
        )
    try:
        reverse("maestrano_sandbox:home")
    except NoReverseMatch:
        problems.append(
            f'The URLconf does not mount the sandbox: set ROOT_URLCONF = "{TEST_URLCONF}" '
            'and MAESTRANO_SANDBOX["APP_URLCONF"] to your URLconf, or add '
            'path("sandbox/", include("maestrano_sandbox.urls")) to your urlpatterns.'
        )
    return problems


def setup_message(problems: list[str]) -> str:
    """``problems`` in one message, with the one line that fixes them all."""
    lines = "\n".join(f"  - {problem}" for problem in problems)
    return (
        "The Maestrano sandbox cannot run beside your app with these test settings:\n"
        f"{lines}\n"
        "Your test settings module can get all of it in one line:\n"
        f"  {ONE_LINE}\n"
        '(docs/sandbox.md of django-maestrano, "In your project\'s tests").'
    )
