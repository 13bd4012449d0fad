"""Shared fixtures: configured presets, and the sandbox platform on a live server."""

from __future__ import annotations

import logging

import pytest

from tests.helpers.certificates import make_key_pair

# Fixtures of the sandbox Connec! tests (apps, a group, a hub client) and the real
# Celery worker of the sync tests (tests/helpers/worker.py).
pytest_plugins = [
    # The sandbox as a test peer: the maestrano_platform fixture every adopter's conftest
    # loads the same way (docs/sandbox.md); ``platform`` below is its name here.
    "maestrano_sandbox.pytest_plugin",
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
    # (The tests that use the live platform are marked by maestrano_sandbox.pytest_plugin.)
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
def _log_streams_stay_open():
    """A test must not leave a log handler on a stream that closes with it (``capsys``'s,
    a temporary file's): every later line of the run would fail to be written, a
    "--- Logging error ---" traceback each, from whichever thread logs it. Set up first
    (autouse), so checked after the test's own fixtures, ``capsys`` included, are gone."""
    yield
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    closed = [
        f"{getattr(logger, 'name', '?')}: {handler!r}"
        for logger in loggers
        for handler in getattr(logger, "handlers", ())
        if getattr(getattr(handler, "stream", None), "closed", False)
    ]
    assert not closed, f"log handlers left on a closed stream: {closed}"


@pytest.fixture(autouse=True)
def _forget_known_companies():
    """Each test starts with no company remembered by the notifications webhook (a test's
    rolled-back companies are not deleted rows the webhook could notice)."""
    yield
    from maestrano_sync.notifications import known_companies

    known_companies.forget()


@pytest.fixture(autouse=True)
def _sandbox_clock_from_now():
    """Each test's sandbox stamps its Connec! records from now, also without the
    ``maestrano_platform`` fixture (which restarts the clock itself): a test that stored a
    record stamped in the future leaves the next test's remote edits stamped after it, and
    the conflict rule then reads them as later than that test's local changes."""
    from maestrano_sandbox.connec.clock import restart_clock

    restart_clock()


@pytest.fixture(autouse=True)
def _forget_refused_authentications():
    """Each test starts with the test client's and live servers' address (127.0.0.1)
    neither blocked nor charged with another test's refused authentications
    (``MAESTRANO["AUTH_FAILURES"]``, counted in the cache, which outlives a test)."""
    yield
    from maestrano_integration.auth import forget_refused

    forget_refused(address="127.0.0.1")


@pytest.fixture(scope="session")
def sandbox_data_dir(maestrano_sandbox_data_dir):
    """The sandbox's keys, the same as the platform's (``maestrano_sandbox.pytest_plugin``)."""
    return maestrano_sandbox_data_dir


@pytest.fixture
def platform(maestrano_platform):
    """The sandbox on a live server with our app registered, and the default preset wired
    to it: the shipped ``maestrano_platform`` (``maestrano_sandbox.pytest_plugin``), under its
    name here."""
    return maestrano_platform


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
