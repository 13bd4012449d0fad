"""New IdMap rows written in one statement per page (import, invoice lines).

IdMap rows are written with one statement (PostgreSQL: the rows as arrays,
through UNNEST; other databases: ``executemany``) rather than with
``bulk_create``: there is one per imported row and one per invoice line, and
the ORM's per-value work (``pre_save`` and ``get_db_prep_save`` of every field
of every row) cost more than writing the models themselves (profile of
benchmarks/initial_import.py: 4x less time on SQLite, 2-3x on PostgreSQL).
Values are still adapted by the model's fields; SQL identifiers come from the
model's options, quoted, and every value is a parameter.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import NamedTuple

from django.contrib.contenttypes.models import ContentType
from django.db import connections, models, router
from django.db.models.constants import OnConflict

from accounts.models import Company

from .models import IdMap


class NewIdMap(NamedTuple):
    """One IdMap row to insert: the values that differ between the rows of a page."""

    object_id: str
    connec_id: str
    last_pulled_updated_at: datetime.datetime | None = None
    last_pushed_hash: str = ""


def insert_id_maps(
    *,
    company: Company,
    entity: str,
    content_type: ContentType,
    rows: Sequence[NewIdMap],
    now: datetime.datetime,
    ignore_conflicts: bool = False,
) -> None:
    """INSERT new IdMap rows of ``company``'s ``entity`` (``content_type`` objects).

    ``ignore_conflicts``: a row that would break a unique constraint is skipped,
    as ``bulk_create(ignore_conflicts=True)`` does.
    """
    if not rows:
        return
    connection = connections[router.db_for_write(IdMap)]
    quote = connection.ops.quote_name
    opts = IdMap._meta
    fields = [f for f in opts.local_concrete_fields if not f.primary_key]
    per_row = [opts.get_field(name) for name in NewIdMap._fields]
    shared_values = {
        "company": company.pk,
        "entity": entity,
        "content_type": content_type.pk,
        "created_at": now,
        "updated_at": now,
    }
    shared = {
        f.name: f.get_db_prep_save(shared_values.get(f.name, f.get_default()), connection)
        for f in fields
        if f not in per_row
    }
    columns = [
        [field.get_db_prep_save(value, connection) for value in values]
        for field, values in zip(per_row, zip(*rows, strict=True), strict=True)
    ]
    on_conflict = OnConflict.IGNORE if ignore_conflicts else None
    insert = connection.ops.insert_statement(on_conflict=on_conflict)
    suffix = connection.ops.on_conflict_suffix_sql(fields, on_conflict, [], [])
    table = quote(opts.db_table)
    names = ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # As Django's bulk_create does there: array types without their length.
            def cast(field: models.Field) -> str:
                return field.db_type(connection).split("(")[0]

            values = ", ".join(
                f"r.{quote(f.column)}" if f in per_row else f"%s::{cast(f)}" for f in fields
            )
            arrays = ", ".join(f"%s::{cast(f)}[]" for f in per_row)
            aliases = ", ".join(quote(f.column) for f in per_row)
            sql = (
                f"{insert} {table} ({names}) SELECT {values} "  # noqa: S608
                f"FROM UNNEST({arrays}) AS r({aliases}) {suffix}"
            )
            params = [shared[f.name] for f in fields if f not in per_row] + columns
            cursor.execute(sql, params)
        else:
            # Per column: the index of its per-row value, or the value every row shares.
            template = [
                (per_row.index(f), None) if f in per_row else (None, shared[f.name]) for f in fields
            ]
            params = [
                [value if slot is None else row[slot] for slot, value in template]
                for row in zip(*columns, strict=True)
            ]
            placeholders = ", ".join(["%s"] * len(fields))
            sql = f"{insert} {table} ({names}) VALUES ({placeholders}) {suffix}"
            cursor.executemany(sql, params)
