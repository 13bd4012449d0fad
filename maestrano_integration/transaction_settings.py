"""PostgreSQL settings of one transaction (``SET LOCAL``): its commit's durability, and
the plans of the statements a connection prepares.

**Durability.** :func:`commit_without_flush` lets a transaction commit before PostgreSQL
flushes it to disk (``synchronous_commit``): the import's pages and the sync lock
(``maestrano_sync``). :data:`COMMIT_WITHOUT_FLUSH_EXPRESSION` does the same from inside a
statement that has work of its own (``RETURNING`` it): one round trip instead of two;
:func:`own_commit_without_flush` gives it only for a statement that is its own
transaction: the one rule of the repeat SSO login's opt-in
(``maestrano_accounts.sso_state.holding_login_writes``) and of the import's lock writes
(``maestrano_sync.locks``).

**Plans** (the opt-in ``DATABASE_PREPARE_THRESHOLD`` of docs/deploy.md: Django's
``server_side_binding`` with a psycopg ``prepare_threshold``). Five executions after a
statement is prepared, PostgreSQL may keep one generic plan for it, costed with the table
statistics of that moment. A transaction whose tables grow under it (an import's pages:
the IdMap from empty to every record of the company) would keep the plan chosen for the
first pages: :func:`plan_each_statement` asks for a plan per execution in that
transaction, until :func:`plan_as_configured`. Not up to the commit: the foreign keys
checked at commit (deferred, one check per written row) would then be planned once per
row, which costs more than the generic plans saved (measured on the import benchmark: the
commits of an import took 1.3 s instead of 0.75 s).

Every setting here ends with its transaction and is a no-op on other databases.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

#: The same setting as :func:`commit_without_flush`, as an SQL expression (PostgreSQL only):
#: evaluated by a statement of the transaction (``UPDATE ... RETURNING`` it), it relaxes
#: that transaction's commit as ``SET LOCAL`` does, without a statement of its own. Only
#: when the statement evaluates it: an ``UPDATE`` that matches no row leaves the commit as
#: it was.
COMMIT_WITHOUT_FLUSH_EXPRESSION = "set_config('synchronous_commit', 'off', true)"


def own_commit_without_flush(*, using: str | None = None) -> str | None:
    """:data:`COMMIT_WITHOUT_FLUSH_EXPRESSION` for a statement about to run on ``using``
    (the default database when ``None``) when that statement is its own transaction on
    PostgreSQL (autocommit: no ``atomic`` block open); ``None`` otherwise: a caller's
    transaction is never relaxed, and other databases have nothing to relax. For
    ``PreparedWrite.run(returning=...)``."""
    connection = transaction.get_connection(using)
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return None
    return COMMIT_WITHOUT_FLUSH_EXPRESSION


def commit_without_flush(*, using: str | None = None) -> None:
    """Let the current transaction commit before PostgreSQL flushes it to disk.

    ``SET LOCAL`` ends with the transaction: only its commit is relaxed; after a server
    crash it may be lost, never half applied. Call first thing inside the outermost
    ``atomic`` block of ``using`` (the default database when ``None``); other
    databases: nothing.
    """
    _set_local("synchronous_commit", "OFF", using=using)


def prepares_statements(connection: Any) -> bool:
    """Whether ``connection`` (a Django connection) lets psycopg prepare statements: on
    PostgreSQL, with server-side binding and a ``prepare_threshold``."""
    if connection.vendor != "postgresql":
        return False
    options = connection.settings_dict.get("OPTIONS") or {}
    return (
        options.get("server_side_binding") is True and options.get("prepare_threshold") is not None
    )


def plan_each_statement(*, using: str | None = None) -> None:
    """From here in the current transaction of ``using``, plan every execution of a
    prepared statement with its own values (``SET LOCAL plan_cache_mode TO
    force_custom_plan``: the parsing stays saved, a generic plan is never kept), until
    :func:`plan_as_configured`. Nothing when the connection prepares no statements."""
    _set_local("plan_cache_mode", "force_custom_plan", using=using, only_if=prepares_statements)


def plan_as_configured(*, using: str | None = None) -> None:
    """Back to the connection's own ``plan_cache_mode`` for the rest of the transaction
    (its commit's foreign key checks included). Nothing when the connection prepares no
    statements."""
    _set_local("plan_cache_mode", "DEFAULT", using=using, only_if=prepares_statements)


def _set_local(name: str, value: str, *, using: str | None, only_if: Any = None) -> None:
    """``SET LOCAL name TO value`` in the current transaction of ``using`` on PostgreSQL
    (and only if ``only_if(connection)``, when given); ``name`` and ``value`` are this
    module's constants, never input."""
    connection = transaction.get_connection(using)
    if connection.vendor != "postgresql" or (only_if is not None and not only_if(connection)):
        return
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL {name} TO {value}")
