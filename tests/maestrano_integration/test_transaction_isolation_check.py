"""maestrano.W042: the apps' concurrent rules need READ COMMITTED on PostgreSQL.

An SSO login waits for a platform removal of the same group (an advisory lock) and must
then read what the removal committed; at REPEATABLE READ or SERIALIZABLE it reads the
snapshot its transaction took before waiting. ``manage.py check`` says so when the
database's ``OPTIONS`` ask for such a level, and ``check --database`` (as ``migrate``) when
the server's own default does.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.backends.postgresql.psycopg_any import IsolationLevel

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the isolation levels are PostgreSQL's"
)


@pytest.mark.parametrize(
    ("level", "named"),
    [
        (IsolationLevel.REPEATABLE_READ, "REPEATABLE READ"),
        (IsolationLevel.SERIALIZABLE, "SERIALIZABLE"),
        (3, "REPEATABLE READ"),  # the number psycopg's enum stands for
    ],
)
def test_a_stricter_level_in_options_is_warned(monkeypatch, capsys, level, named):
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "isolation_level", level)

    call_command("check", tags=["maestrano"])

    err = capsys.readouterr().err
    assert "maestrano.W042" in err
    assert "'default'" in err
    assert f"runs transactions at {named}" in err


@pytest.mark.parametrize("level", [IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED])
def test_read_committed_in_options_is_not_warned(monkeypatch, capsys, level):
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "isolation_level", level)

    call_command("check", tags=["maestrano"])

    assert "maestrano.W042" not in capsys.readouterr().err


def test_no_level_in_options_and_the_server_default_is_not_warned(monkeypatch, capsys, db):
    monkeypatch.delitem(connection.settings_dict["OPTIONS"], "isolation_level", raising=False)

    call_command("check", databases=["default"])

    assert "maestrano.W042" not in capsys.readouterr().err


def test_a_stricter_server_default_is_warned_by_the_database_check(monkeypatch, capsys, db):
    monkeypatch.delitem(connection.settings_dict["OPTIONS"], "isolation_level", raising=False)
    with connection.cursor() as cursor:
        # For this session, undone with the test's transaction.
        cursor.execute("SET default_transaction_isolation = 'repeatable read'")

    call_command("check", tags=["maestrano"])  # no database named: no query, no warning
    assert "maestrano.W042" not in capsys.readouterr().err

    call_command("check", databases=["default"])
    err = capsys.readouterr().err
    assert "maestrano.W042" in err
    assert "default_transaction_isolation" in err
