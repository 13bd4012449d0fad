"""``MaestranoPlatformTestCase`` under Django's own test runner, and its set-up check."""

from __future__ import annotations

import os
import re
import time
import unittest

from django.conf import settings
from django.test import override_settings

from maestrano_sandbox.testing import MaestranoPlatformTestCase
from tests.helpers.processes import run_python

MODULE = "tests.sandbox.test_platform_testcase"


def test_the_test_case_runs_under_djangos_own_test_runner(tmp_path):
    """``python -m django test``: its own test databases (SQLite files under another
    VAR_DIR, PostgreSQL databases with another suffix), no pytest-django, and the databases
    dropped at the end (the sandbox's notification thread released its connection)."""
    suffix = os.environ.get("TEST_DATABASE_SUFFIX", "")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "VAR_DIR": str(tmp_path),
        "TEST_DATABASE_SUFFIX": f"{suffix}runner",
    }

    started = time.monotonic()
    result = run_python(["-m", "django", "test", MODULE, "-v", "2", "--noinput"], env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stderr
    assert re.search(r"^Ran 6 tests in ", output, re.MULTILINE), output
    assert re.search(r"^OK$", output, re.MULTILINE), output
    ran = re.findall(r"^test_\w+ \(\S+\.(\w+)\.test_\w+\)", output, re.MULTILINE)
    assert ran.index("SettingsAfterPlatformTests") > ran.index("PlatformTests"), output
    assert "Destroying test database for alias 'sandbox'" in output, output
    assert time.monotonic() - started < 60


def test_settings_without_the_sandbox_stop_the_class_saying_what_to_add():
    """The class's own ``override_settings`` apply before the check (a class of the
    adopter's that overrides settings is checked with them)."""

    @override_settings(MAESTRANO_SANDBOX={"ENABLED": False})
    class NoSandboxTests(MaestranoPlatformTestCase):
        def test_never_runs(self):
            raise AssertionError("the class set-up should have stopped the test")

    result = unittest.TestResult()

    unittest.TestSuite([NoSandboxTests("test_never_runs")]).run(result)

    assert result.testsRun == 0
    [(_, error)] = result.errors
    assert "ImproperlyConfigured" in error
    assert 'MAESTRANO_SANDBOX["ENABLED"] is not true' in error
    assert "globals().update(sandbox_settings(globals()))" in error
    assert not NoSandboxTests.server_thread.is_alive(), "the class's live server was stopped"
    assert settings.MAESTRANO_SANDBOX["ENABLED"], "the class's settings were undone"
