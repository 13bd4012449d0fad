"""Shared fixtures: configured presets, and the sandbox platform on a live server."""

from __future__ import annotations

import secrets

import pytest

from tests.helpers.certificates import make_key_pair

# Fixtures of the sandbox Connec! tests (apps, a group, a hub client) and the real
# Celery worker of the sync tests (tests/helpers/worker.py).
pytest_plugins = [
    "tests.sandbox.connec_support",
    "tests.helpers.worker",
    "tests.helpers.adoption",  # wheel and virtualenv of the adopter tests
]


def pytest_addoption(parser):
    parser.addoption(
        "--test-part",
        default=None,
        metavar="K/N",
        help="run only the K-th of N parts of the selected tests, whole modules dealt to the "
        "parts by their number of tests (two runs side by side: make test's Django 6 halves)",
    )


def pytest_collection_modifyitems(config, items):
    # Tests that use the live platform need both databases, committed for real
    # (the live server answers from other threads).
    for item in items:
        if "platform" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.django_db(transaction=True, databases="__all__"))
    part = config.getoption("--test-part")
    if part:
        kept = _part_of(items, part)
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = [item for item in items if item in kept]


def _part_of(items: list[pytest.Item], part: str) -> set[pytest.Item]:
    """The items of part ``K/N``: modules, largest first, each to the part with the fewest
    tests so far (the same split for the same selection, whatever runs it)."""
    try:
        index, count = (int(number) for number in part.split("/"))
    except ValueError:
        raise pytest.UsageError(f"--test-part takes K/N (1 <= K <= N), not {part!r}") from None
    if not 1 <= index <= count:
        raise pytest.UsageError(f"--test-part takes K/N (1 <= K <= N), not {part!r}")
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    sizes = [0] * count
    kept: set[pytest.Item] = set()
    for _name, members in sorted(modules.items(), key=lambda entry: (-len(entry[1]), entry[0])):
        smallest = sizes.index(min(sizes))
        sizes[smallest] += len(members)
        if smallest == index - 1:
            kept.update(members)
    return kept


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """pytest-django's, plus: before the test databases are dropped, the sandbox's
    notification thread closes the connection it keeps across wake-ups (an open
    connection would block ``DROP DATABASE``)."""
    yield
    from sandbox.connec.notifications import _worker

    assert _worker.release_connections(), "the notification thread kept its connection"


@pytest.fixture(scope="session", autouse=True)
def _database_features_known(django_db_setup, django_db_blocker):
    """Django 6.1's system checks ask each database whether it supports ``JSONField`` (one
    query, then cached on the connection) even when no database is named. Asked once here,
    so that a test of our checks needs no database access whatever runs before it (a
    ``--test-part`` of the suite, a module alone)."""
    from django.db import connections

    with django_db_blocker.unblock():
        for alias in connections:
            assert connections[alias].features.supports_json_field is not None


@pytest.fixture(autouse=True)
def _forget_known_companies():
    """Each test starts with no company remembered by the notifications webhook (a test's
    rolled-back companies are not deleted rows the webhook could notice)."""
    yield
    from maestrano_sync.notifications import known_companies

    known_companies.forget()


@pytest.fixture(autouse=True)
def _forget_refused_authentications():
    """Each test starts with the test client's and live servers' address (127.0.0.1)
    neither blocked nor charged with another test's refused authentications
    (``MAESTRANO["AUTH_FAILURES"]``, counted in the cache, which outlives a test)."""
    yield
    from maestrano_integration.auth import forget_refused

    forget_refused(address="127.0.0.1")


@pytest.fixture(scope="session")
def sandbox_data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sandbox-data")


@pytest.fixture
def platform(live_server, settings, sandbox_data_dir):
    """The sandbox on a live server with our app registered, and the default preset wired to it."""
    from sandbox.keys import ensure_key_pairs
    from sandbox.models import RegisteredApp
    from tests.helpers.platform import Platform

    settings.SANDBOX = {**settings.SANDBOX, "DATA_DIR": sandbox_data_dir}
    keys = ensure_key_pairs(directory=sandbox_data_dir)
    app = RegisteredApp.objects.create(
        api_id="app-test",
        api_key=secrets.token_urlsafe(16),
        name="App under test",
        app_host=live_server.url,
    )
    running = Platform(url=live_server.url, app=app, keys=keys, settings=settings)
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {"maestrano": running.preset_values()},
    }
    yield running
    # Eager tasks mark "inside a task" in one flag for the whole process, saved and restored
    # around each task: when the test's thread and the live server's thread run eager tasks
    # at once, the restores interleave and can leave it set, and a later test's
    # ``result.get()`` then fails with "Never call result.get() within a task!".
    from celery._state import _set_task_join_will_block

    _set_task_join_will_block(False)


def preset_values(
    *, api_id: str, api_key: str, app_host: str = "http://testserver", **overrides
) -> dict:
    values = {
        "environment": "test",
        "app": {"host": app_host},
        "api": {"id": api_id, "key": api_key, "host": "http://127.0.0.1:9", "base": "/api/v1/"},
        "sso": {"x509_certificate": make_key_pair().certificate_pem},
    }
    for key, value in overrides.items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return values


@pytest.fixture
def two_presets(settings):
    """A default preset and a second marketplace with different values."""
    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": preset_values(api_id="app-1", api_key="key-1"),
            "acme-market": preset_values(
                api_id="acme-app",
                api_key="acme-key",
                app_host="https://acme.example",
                environment="production",
                sso={"creation_mode": "virtual", "slo_enabled": False},
                webhook={"connec": {"subscriptions": {"people": True}}},
            ),
        },
    }
    return settings.MAESTRANO
