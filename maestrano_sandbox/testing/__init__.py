"""The sandbox as the test peer of a project's own tests (docs/sandbox.md, "In your project's
tests"), importable without pytest:

* ``sandbox_settings(globals())``: what a test settings module adds for the sandbox to run
  beside the app (the app, its database and router, its URLs, ``MAESTRANO_SANDBOX["ENABLED"]``);
  ``setup_problems()`` says what the settings lack;
* ``start_platform(url=..., settings=..., data_dir=...)``: the app under test registered
  with the sandbox, the default preset pointed at it; it returns a ``Platform``, whose
  ``login`` signs in through the sandbox's IdP over HTTP, ``write_record`` writes Connec!
  data as another app (the app is notified), ``records`` reads the sandbox's records and
  ``add_member`` puts platform users in groups;
* ``platform_for_test(url=..., data_dir=...)``: ``start_platform`` for one test, its
  changes undone at the end (``SettingsOverrides``: ``override_settings`` one setting at a
  time);
* ``maestrano_sandbox.testing.sso``: the SSO steps one by one.

The pytest fixture ``maestrano_platform`` is in ``maestrano_sandbox.pytest_plugin`` (opt-in:
``pytest_plugins = ["maestrano_sandbox.pytest_plugin"]`` in your conftest.py); for Django's own test
runner, ``MaestranoPlatformTestCase`` (``maestrano_sandbox.testing.testcases``, imported from here
only when asked for: settings modules import this package).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .overrides import SettingsOverrides
from .platform import DEFAULT_API_ID, DEFAULT_PRESET, Platform, platform_for_test, start_platform
from .setup import sandbox_settings, setup_message, setup_problems
from .sso import DEFAULT_INIT_PATH, SamlPost

if TYPE_CHECKING:
    from .testcases import MaestranoPlatformTestCase

__all__ = [
    "DEFAULT_API_ID",
    "DEFAULT_INIT_PATH",
    "DEFAULT_PRESET",
    "MaestranoPlatformTestCase",
    "Platform",
    "SamlPost",
    "SettingsOverrides",
    "platform_for_test",
    "sandbox_settings",
    "setup_message",
    "setup_problems",
    "start_platform",
]


def __getattr__(name: str) -> Any:
    """``MaestranoPlatformTestCase`` on first use (it imports ``django.test``)."""
    if name == "MaestranoPlatformTestCase":
        from .testcases import MaestranoPlatformTestCase

        return MaestranoPlatformTestCase
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
