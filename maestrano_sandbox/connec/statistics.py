"""PostgreSQL's statistics of the Connec! tables, kept in step with bulk writes.

A batch's answer and its lookups read the records and external ids of one group.
While the statistics still describe a fresh (or much smaller) table, PostgreSQL
expects one row per group and picks plans that probe the records once per
external id of the group: on a fresh database at 5,000 records, 21 ms for the
answer's external-id query instead of 4 ms, a cost that grows with every batch
until autovacuum gets to the table (a minute later, or never under a steady write
load). As after any bulk load, the tables are analyzed (a sample: milliseconds)
once this process has written as many rows as they held when it last analyzed
them, from ``MIN_ROWS`` on: a handful of times while a table grows from nothing
to millions of rows. Other databases need none of it; without ownership of the
tables PostgreSQL only warns.
"""

from __future__ import annotations

import logging
import threading

from django.db import DatabaseError, connections, transaction

from maestrano_sandbox.models import ConnecExternalId, ConnecRecord

logger = logging.getLogger(__name__)
SANDBOX_DATABASE = "sandbox"
MIN_ROWS = 2000

_lock = threading.Lock()
# Rows written by this process since the last ANALYZE, and the threshold of the next.
_state = {"written": 0, "next_at": MIN_ROWS}


def rows_written(count: int) -> None:
    """Count ``count`` records written (created or updated) by a committed write; analyze
    the record and external-id tables when they have grown enough since the last time."""
    connection = connections[SANDBOX_DATABASE]
    if count <= 0 or connection.vendor != "postgresql":
        return
    with _lock:
        _state["written"] += count
        if _state["written"] < _state["next_at"]:
            return
        written, _state["written"] = _state["written"], 0
    tables = [
        connection.ops.quote_name(model._meta.db_table)
        for model in (ConnecRecord, ConnecExternalId)
    ]
    try:
        with transaction.atomic(using=SANDBOX_DATABASE), connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {', '.join(tables)}")
            cursor.execute(
                "SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                [ConnecRecord._meta.db_table],
            )
            (rows,) = cursor.fetchone()
    except DatabaseError:
        logger.warning("ANALYZE of the Connec! tables failed", exc_info=True)
        return
    with _lock:
        _state["next_at"] = max(MIN_ROWS, int(rows or 0), written)
