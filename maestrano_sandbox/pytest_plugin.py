"""pytest plugin: the sandbox as the test peer of your tests (docs/sandbox.md, "In your
project's tests"). Opt-in, in your conftest.py::

    pytest_plugins = ["maestrano_sandbox.pytest_plugin"]

(no ``pytest11`` entry point: installing django-maestrano changes no project's pytest). It
needs pytest-django and test settings with the sandbox
(``maestrano_sandbox.testing.sandbox_settings``).

* ``maestrano_platform``: the app and the sandbox on pytest-django's live server, the app
  registered with the sandbox and the default preset pointed at it
  (``maestrano_sandbox.testing.Platform``). A test that uses it runs on every database, committed
  (``django_db(transaction=True, databases="__all__")``): the live server answers from
  other threads.
* ``maestrano_sandbox_data_dir``: where the sandbox's IdP keys are made, once per run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maestrano_sandbox.testing import Platform, setup_message, setup_problems
from maestrano_sandbox.testing.platform import platform_for_test, release_sandbox_connections

FIXTURE = "maestrano_platform"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tests that use the platform run on committed databases, all of them; settings
    that cannot run the sandbox stop the run at once, saying what to add."""
    using = [item for item in items if FIXTURE in getattr(item, "fixturenames", ())]
    if not using:
        return
    problems = setup_problems()
    if problems:
        raise pytest.UsageError(setup_message(problems))
    for item in using:
        item.add_marker(pytest.mark.django_db(transaction=True, databases="__all__"))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: Any) -> Iterator[None]:
    """pytest-django's, plus: before the test databases are dropped, the sandbox's
    notification thread closes the connection it keeps across wake-ups (an open
    connection would block ``DROP DATABASE`` on PostgreSQL)."""
    yield
    release_sandbox_connections()


@pytest.fixture(scope="session")
def maestrano_sandbox_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sandbox's data (its IdP key pairs), made once for the run."""
    return tmp_path_factory.mktemp("sandbox-data")


@pytest.fixture
def maestrano_platform(
    live_server: Any, settings: Any, maestrano_sandbox_data_dir: Path
) -> Iterator[Platform]:
    """The sandbox on the live server with the app under test registered (api id
    ``app-test``) and the default preset wired to it
    (``maestrano_sandbox.testing.platform_for_test``, which
    ``maestrano_sandbox.testing.MaestranoPlatformTestCase`` shares)."""
    with platform_for_test(
        url=live_server.url, settings=settings, data_dir=maestrano_sandbox_data_dir
    ) as platform:
        yield platform
