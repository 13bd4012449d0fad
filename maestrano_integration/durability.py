"""Commits that need not wait for the disk (PostgreSQL's ``synchronous_commit``)."""

from __future__ import annotations

from django.db import transaction


def commit_without_flush(*, using: str | None = None) -> None:
    """Let the current transaction commit before PostgreSQL flushes it to disk.

    ``SET LOCAL`` ends with the transaction: only its commit is relaxed; after a server
    crash it may be lost, never half applied. Call first thing inside the outermost
    ``atomic`` block of ``using`` (the default database when ``None``); other
    databases: nothing. The one place of this statement: the repeat SSO login's commit
    (``maestrano_accounts.sso_state``), the import's pages and the sync lock
    (``maestrano_sync``) use it.
    """
    connection = transaction.get_connection(using)
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
