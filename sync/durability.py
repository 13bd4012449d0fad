"""Commits that need not wait for the disk (PostgreSQL's ``synchronous_commit``)."""

from __future__ import annotations

from django.db import transaction


def commit_without_flush() -> None:
    """Let the current transaction commit before PostgreSQL flushes it to disk.

    ``SET LOCAL`` ends with the transaction: only its commit is relaxed; after a server
    crash it may be lost, never half applied. Call first thing inside the outermost
    ``atomic`` block; other databases: nothing.
    """
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")
