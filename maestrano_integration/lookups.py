"""Lookups of many values that cost what their values and rows cost, however stale the
database's statistics.

The sync reads and writes rows by the hundreds and thousands of keys or ids: a page's
IdMap rows, a push batch's objects, the outbox rows it answers. Django's ``__in`` sends
one parameter per value, each prepared by the field; and when psycopg prepares
statements (``DATABASE_PREPARE_THRESHOLD``, docs/deploy.md), a statement that comes back
with the same number of values (a batch of 100, always) gets a generic plan, which
PostgreSQL makes, on statistics taken before the table grew (autovacuum has not run yet,
or is off), a scan of the table comparing every row with every value: 10-20 ms for 100
keys of a table of a few thousand rows (``benchmarks/sync.py``), seconds for a page of
IdMap lookups.

:func:`among` is ``column IN values`` written so that this cannot happen: on PostgreSQL
``= ANY`` of one constant array, quoted by the driver (Django's ``compose_sql``): never a
parameter, so no generic plan, and PostgreSQL knows how many values there are and hashes
them or probes an index; on SQLite ``IN`` the values of one JSON array parameter (clear
of its limit on parameters) when they are text and integers, as ids and keys are;
otherwise, and on other databases, a plain ``IN`` list. Text for a text column and
integers for an integer one go as they are; other values are prepared by the column's
field first.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable
from typing import Any, TypeVar

from django.db import models
from django.db.models import F, Lookup

M = TypeVar("M", bound=models.Model)


class Among(Lookup):
    """``lhs`` is one of the values of ``rhs`` (a list); see the module's docstring.
    Built by :func:`among`, never registered on a field."""

    lookup_name = "among"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        plain = _plain_type(field)
        values = [
            value if type(value) is plain else field.get_db_prep_value(value, connection)
            for value in self.rhs
        ]
        if connection.vendor == "postgresql":
            cast = field.cast_db_type(connection)
            # Quoted by the driver; a literal %, in a value, doubled for the parameters' pass.
            array = connection.ops.compose_sql(f"%s::{cast}[]", [_array_text(values)])
            return f"{lhs} = ANY({array.replace('%', '%%')})", tuple(lhs_params)
        if connection.vendor == "sqlite" and all(type(v) in (str, int) for v in values):
            # JSON holds text and integers as SQLite stores them; other values (decimals,
            # floats, bytes) go as parameters, adapted by the driver.
            sql = f"{lhs} IN (SELECT value FROM json_each(%s))"  # noqa: S608 (lhs: a column)
            return sql, (*lhs_params, json.dumps(values))
        placeholders = ", ".join(["%s"] * len(values)) or "NULL"
        return f"{lhs} IN ({placeholders})", (*lhs_params, *values)


def _array_text(values: list[Any]) -> Any:
    """PostgreSQL: ``values`` as the text of an array (``{"a","b"}``, ``{1,2}``) when they
    are all text or all integers, for the driver to quote as one string; else the list
    itself, which the driver quotes element by element (in Python: 20 times the time, on
    a page of ids). Each text element is double-quoted, its ``"`` and ``\\`` escaped with
    a backslash: the array syntax's own rule, whatever else it holds (``,``, braces,
    spaces, ``NULL``); the SQL quoting of the whole is the driver's."""
    if all(type(value) is str for value in values):
        together = "".join(values)  # one look for what needs escaping, not one per value
        if '"' in together or "\\" in together:
            values = [value.replace("\\", "\\\\").replace('"', '\\"') for value in values]
        return '{"' + '","'.join(values) + '"}' if values else "{}"
    if all(type(value) is int for value in values):
        return "{" + ",".join(map(str, values)) + "}"
    return values


def _plain_type(field: Any) -> type | None:
    """The type of value ``field`` sends to the database as it is: ``str`` for text, ``int``
    for integers (keys included); any other value is prepared by the field, which converts
    it or refuses it as Django's ``__in`` would."""
    if isinstance(field, (models.CharField, models.TextField)):
        return str
    if isinstance(field, models.IntegerField):
        return int
    return None


def among(column: str, values: Iterable[Any]) -> Among:
    """The filter ``column IN values`` (each value once), for ``QuerySet.filter``:
    ``IdMap.objects.filter(among("connec_id", ids), company=company)``."""
    return Among(F(column), list(dict.fromkeys(values)))


def in_bulk(queryset: models.QuerySet[M], keys: Iterable[Hashable]) -> dict[Any, M]:
    """``queryset.in_bulk(keys)`` through :func:`among`: {primary key: instance} of the
    rows whose key is among ``keys`` (no query for no keys)."""
    keys = list(keys)
    if not keys:
        return {}
    return {obj.pk: obj for obj in queryset.filter(among("pk", keys)).order_by()}
