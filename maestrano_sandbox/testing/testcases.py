"""The ``maestrano_platform`` fixture for Django's own test runner (``manage.py test``):
``MaestranoPlatformTestCase`` (docs/sandbox.md, "With Django's test runner")."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.test import LiveServerTestCase
from django.utils.functional import classproperty

from .platform import Platform, platform_for_test, release_sandbox_connections
from .setup import setup_message, setup_problems


@cache
def sandbox_data_dir() -> Path:
    """Where the sandbox's IdP keys are made: once per process, removed when it ends."""
    path = Path(tempfile.mkdtemp(prefix="maestrano-sandbox-data-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


class MaestranoPlatformTestCase(LiveServerTestCase):
    """Each test gets ``self.platform`` (a ``maestrano_sandbox.testing.Platform``): the app and the
    sandbox on the class's live server, the app registered with the sandbox (api id
    ``app-test``), the default preset pointed at it, as ``maestrano_platform`` does.

    The settings it changes (and those ``self.platform.configure`` changes) are Django's
    ``override_settings``, undone after each test; ``LiveServerTestCase`` adds the server's
    host to ``ALLOWED_HOSTS`` for the class. Like the fixture's tests, these run committed on
    every database (``databases = "__all__"``), each flushed after the test. A ``setUp`` of
    yours calls ``super().setUp()`` first.
    """

    databases = "__all__"

    @classproperty
    def static_handler(cls) -> type:
        """The static files as pytest-django's live server serves them: from the finders
        when ``django.contrib.staticfiles`` is installed (``StaticLiveServerTestCase``'s
        handler), else from ``STATIC_ROOT``. A class attribute of yours replaces it."""
        if apps.is_installed("django.contrib.staticfiles"):
            from django.contrib.staticfiles.handlers import StaticFilesHandler

            return StaticFilesHandler
        handler: type = LiveServerTestCase.static_handler
        return handler

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()  # the class's own override_settings included
        # Before the run drops the test databases, which come after the last class.
        cls.addClassCleanup(release_sandbox_connections)
        problems = setup_problems()
        if problems:  # the class's cleanups run: its server stops, its settings are undone
            raise ImproperlyConfigured(setup_message(problems))

    def setUp(self) -> None:
        super().setUp()
        self._maestrano_platform = self.enterContext(
            platform_for_test(url=self.live_server_url, data_dir=sandbox_data_dir())
        )

    @property
    def platform(self) -> Platform:
        try:
            return self._maestrano_platform
        except AttributeError:
            raise AttributeError(
                f"{type(self).__name__}.setUp did not reach MaestranoPlatformTestCase.setUp: "
                "call super().setUp() first in yours."
            ) from None
