"""Many new rows of one model in one statement, without the ORM's per-object work.

``bulk_create`` runs ``pre_save`` and ``get_db_prep_save`` for every field of every
object, compiles a new ``INSERT`` for every call and, on PostgreSQL, has psycopg quote
every value of its ``UNNEST`` arrays in Python: for tables written a page or a batch at a
time (the sync's IdMap rows, the sandbox's records and external ids) that cost more than
the database's own work (profiles in docs/performance.md). :func:`insert_rows` takes the
rows as tuples of field values instead:

* PostgreSQL: the rows travel as one JSON parameter, read by ``json_to_recordset``
  (``json.dumps`` is C; a JSON field's value is written as it is, not encoded twice);
* other databases: one multi-row ``VALUES`` (when the new primary keys are wanted) or
  ``executemany``.

Values are adapted by the model's fields (once per distinct value: rows often share a
timestamp), SQL identifiers come from the model's options, quoted, every value is a
parameter, and the statement of a shape (model, columns, conflict handling, rows per
statement) is built once per process.
"""

from __future__ import annotations

import datetime
import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Any

from django.db import connections, models, router
from django.db.models.constants import OnConflict
from django.utils import timezone

# SQLite and others: rows per multi-row VALUES statement (at most 32,766 parameters).
VALUES_ROWS = 500


def insert_rows(
    model: type[models.Model],
    *,
    fields: Sequence[str],
    rows: Sequence[Sequence[Any]],
    shared: Mapping[str, Any] | None = None,
    ignore_conflicts: bool = False,
    returning: bool = False,
) -> list[Any]:
    """INSERT one ``model`` row per item of ``rows`` (the values of ``fields``, by
    attribute name: ``group_id`` or ``group``); the other concrete fields but the primary
    key take ``shared``'s value, else their default (``auto_now``/``auto_now_add``:
    now). Returns the new primary keys in ``rows``' order if ``returning``, else ``[]``.

    ``ignore_conflicts``: a row that would break a unique constraint is skipped, as
    ``bulk_create(ignore_conflicts=True)`` does (not with ``returning``).
    """
    if not rows:
        return []
    if returning and ignore_conflicts:
        raise ValueError("returning the keys of skipped rows is not possible")
    alias = router.db_for_write(model)
    connection = connections[alias]
    shape = _shape(model, tuple(fields), alias, ignore_conflicts, returning)
    now = timezone.now()
    given = {**(shared or {})}
    shared_values = [
        field.get_db_prep_save(
            given[field.name]
            if field.name in given
            else given.get(field.attname, now if _stamped(field) else field.get_default()),
            connection,
        )
        for field in shape.shared
    ]
    columns = [
        _db_values(field, values, connection)
        for field, values in zip(shape.per_row, zip(*rows, strict=True), strict=True)
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            document = json.dumps(
                [dict(zip(shape.keys, row, strict=True)) for row in zip(*columns, strict=True)],
                default=_json_value,
                ensure_ascii=False,  # text as it is (any encoding the connection uses)
            )
            cursor.execute(shape.sql(len(rows)), [*shared_values, document])
            return [row[0] for row in cursor.fetchall()] if returning else []
        # The rows zipped from the columns, in the table's column order: the per-row values,
        # the shared ones repeated. Not strict: the repeats are endless.
        by_field = dict(zip(shape.per_row, columns, strict=True))
        by_field.update(zip(shape.shared, map(repeat, shared_values), strict=True))
        params = list(zip(*(by_field[f] for f in shape.ordered), strict=False))
        if not returning:
            cursor.executemany(shape.sql(1), params)
            return []
        keys: list[Any] = []
        for start in range(0, len(params), VALUES_ROWS):
            chunk = params[start : start + VALUES_ROWS]
            cursor.execute(shape.sql(len(chunk)), [value for row in chunk for value in row])
            keys.extend(row[0] for row in cursor.fetchall())
        return keys


def _stamped(field: models.Field) -> bool:
    return bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))


class _Shape:
    """The fields and the statements of one insert shape (built once: see :func:`_shape`)."""

    def __init__(
        self,
        model: type[models.Model],
        names: tuple[str, ...],
        alias: str,
        ignore_conflicts: bool,
        returning: bool,
    ) -> None:
        connection = connections[alias]
        quote = connection.ops.quote_name
        opts = model._meta
        self.per_row = [opts.get_field(name) for name in names]
        self.ordered = [f for f in opts.local_concrete_fields if not f.primary_key]
        self.shared = [f for f in self.ordered if f not in self.per_row]
        self.keys = [f.column for f in self.per_row]
        on_conflict = OnConflict.IGNORE if ignore_conflicts else None
        suffix = connection.ops.on_conflict_suffix_sql(self.ordered, on_conflict, [], [])
        tail = (f" {suffix}" if suffix else "") + (
            f" RETURNING {quote(opts.pk.column)}" if returning else ""
        )
        head = (
            f"{connection.ops.insert_statement(on_conflict=on_conflict)} "
            f"{quote(opts.db_table)} ({', '.join(quote(f.column) for f in self.ordered)})"
        )
        self._statements: dict[int, str] = {}
        if connection.vendor == "postgresql":
            values = ", ".join(
                f"r.{quote(f.column)}"
                if f in self.per_row
                else f"%s::{f.db_type(connection).split('(')[0]}"
                for f in self.ordered
            )
            record = ", ".join(f"{quote(f.column)} {f.db_type(connection)}" for f in self.per_row)
            self._any_rows: str | None = (
                f"{head} SELECT {values} "  # noqa: S608
                f"FROM json_to_recordset(%s::json) AS r({record}){tail}"
            )
        else:
            self._any_rows = None
        self._head, self._tail = head, tail
        self._row = "(" + ", ".join(["%s"] * len(self.ordered)) + ")"

    def sql(self, rows: int) -> str:
        """The statement for ``rows`` rows (PostgreSQL: any number, as one JSON document)."""
        if self._any_rows is not None:
            return self._any_rows
        if rows not in self._statements:
            self._statements[rows] = (
                f"{self._head} VALUES {', '.join([self._row] * rows)}{self._tail}"
            )
        return self._statements[rows]


@functools.cache
def _shape(
    model: type[models.Model],
    names: tuple[str, ...],
    alias: str,
    ignore_conflicts: bool,
    returning: bool,
) -> _Shape:
    return _Shape(model, names, alias, ignore_conflicts, returning)


def _json_value(value: Any) -> Any:
    """A value of :func:`insert_rows`' JSON document that ``json`` does not know."""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()  # ISO 8601, the offset kept
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _db_values(field: models.Field, values: Sequence[Any], connection: Any) -> list[Any]:
    """The column's values as the database takes them.

    ``field.get_db_prep_save`` of each value, except: a ``str`` for a plain ``CharField``
    as is (what that returns for it); on PostgreSQL, a JSON field's value as is (it is
    written into the JSON document); other values adapted once per distinct value.
    """
    if type(field) is models.CharField:
        return [
            value if type(value) is str else field.get_db_prep_save(value, connection)
            for value in values
        ]
    if isinstance(field, models.JSONField) and connection.vendor == "postgresql":
        if field.encoder is not None:
            return [json.loads(json.dumps(value, cls=field.encoder)) for value in values]
        return list(values)
    adapted: dict[Any, Any] = {}
    result = []
    for value in values:
        try:
            prepared = adapted[value]
        except KeyError:
            prepared = adapted[value] = field.get_db_prep_save(value, connection)
        except TypeError:  # unhashable
            prepared = field.get_db_prep_save(value, connection)
        result.append(prepared)
    return result
