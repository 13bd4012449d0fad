"""New model rows written in bulk: what ``QuerySet.bulk_create`` does for them, with less of
the ORM's per-value work. Used by the record pipeline (:mod:`sync.pipeline`, the records of
a page; :mod:`sync.children`, their lines).

``bulk_create`` compiles every value of every row through the generic insert compiler
(a placeholder per value, checks for expressions and custom placeholders, on PostgreSQL an
array per column that psycopg renders element by element in Python): three quarters of its
time in a profile of ``benchmarks/initial_import.py``. For models made only of plain fields
(:data:`PLAIN_FIELDS`: no expressions, no database defaults, one table, an automatic primary
key) :func:`insert` does the same work directly: each field's ``pre_save`` (``auto_now``
and the like), its ``get_db_prep_save`` (a string of a text field, an integer of an integer
field and ``None`` are what it returns for them, passed as they are), one ``INSERT ...
RETURNING`` per batch (SQLite: rows of placeholders, batches as ``bulk_create`` sizes them;
PostgreSQL: the rows as one JSON parameter read by ``json_array_elements``, as
:func:`sync.idmap.insert_id_maps` does), then the primary keys and states set as
``bulk_create`` sets them. Anything else, a model or a value, goes to ``bulk_create``
itself. The values reach the database as the same parameters, so a value the
database refuses still fails the statement (``IntegrityError`` / ``DataError``), which the
pipeline redoes record by record.
"""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from django.db import connections, models, router, transaction

#: Field classes whose values :func:`insert` writes itself (exact classes: a subclass may
#: change how its values are prepared).
TEXT_FIELDS: tuple[type[models.Field], ...] = (
    models.CharField,
    models.TextField,
    models.EmailField,
    models.SlugField,
    models.URLField,
)
INTEGER_FIELDS: tuple[type[models.Field], ...] = (
    models.IntegerField,
    models.BigIntegerField,
    models.SmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
    models.PositiveSmallIntegerField,
)
PLAIN_FIELDS: frozenset[type[models.Field]] = frozenset(
    {
        *TEXT_FIELDS,
        *INTEGER_FIELDS,
        models.BooleanField,
        models.DecimalField,
        models.DateField,
        models.DateTimeField,
        models.UUIDField,
        models.ForeignKey,
    }
)
_AUTO_PKS = (models.AutoField, models.BigAutoField, models.SmallAutoField)
_PLAIN_VALUES = (
    str,
    int,
    bool,
    decimal.Decimal,
    datetime.date,
    datetime.datetime,
    uuid.UUID,
)

_PLAIN_TYPES = frozenset({*_PLAIN_VALUES, type(None)})


class _Plan:
    """How one model's new rows are written on one connection (made once, then cached)."""

    def __init__(self, model: type[models.Model], connection: Any) -> None:
        opts = model._meta
        self.fields = [f for f in opts.concrete_fields if not f.primary_key]
        self.pk = opts.pk
        self.related = [f for f in self.fields if f.is_relation]
        self.pre_save: list[Callable[[models.Model], Any] | None] = [
            None if type(f).pre_save is models.Field.pre_save else f.pre_save for f in self.fields
        ]
        self.adapt = [db_adapter(f, connection) for f in self.fields]
        quote = connection.ops.quote_name
        self.table = quote(opts.db_table)
        self.columns = ", ".join(quote(f.column) for f in self.fields)
        self.returning, _ = connection.ops.return_insert_columns([opts.pk])
        #: PostgreSQL: each row is a JSON array, its values read as text and cast.
        self.elements = ", ".join(
            f"(r->>{index})::{f.db_type(connection).split('(')[0]}"
            for index, f in enumerate(self.fields)
        )

    @staticmethod
    def supports(model: type[models.Model], connection: Any) -> bool:
        opts = model._meta
        return (
            connection.vendor in ("sqlite", "postgresql")
            and connection.features.can_return_rows_from_bulk_insert
            and not opts.proxy
            and not opts.parents
            and type(opts.pk) in _AUTO_PKS
            and len(opts.concrete_fields) > 1
            and not any(f.is_relation for f in opts.private_fields)
            and all(
                (f.primary_key or type(f) in PLAIN_FIELDS)
                and not f.generated
                and f.db_default is models.NOT_PROVIDED
                for f in opts.concrete_fields
            )
            and all(
                type(f.target_field) in PLAIN_FIELDS or type(f.target_field) in _AUTO_PKS
                for f in opts.concrete_fields
                if f.is_relation
            )
        )


_plans: dict[tuple[type[models.Model], str], _Plan | None] = {}


class _NotPlain(Exception):
    """A value :func:`insert` does not write itself (an expression, a value of another type)."""


def insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Insert ``objs`` (new instances of ``model``) as ``bulk_create(objs)`` does, setting
    their primary keys and states. Call inside a transaction."""
    if not objs:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    key = (model, alias)
    if key not in _plans:
        _plans[key] = _Plan(model, connection) if _Plan.supports(model, connection) else None
    plan = _plans[key]
    if plan is None or any(obj.pk is not None for obj in objs):
        model._default_manager.bulk_create(objs)
        return
    for obj in objs:
        if obj._state.fields_cache:
            # The related objects' keys copied, unsaved ones refused (bulk_create's check).
            obj._prepare_related_fields_for_save(operation_name="bulk_create")
    try:
        columns = [_column(plan, index, objs, connection) for index in range(len(plan.fields))]
    except _NotPlain:
        model._default_manager.bulk_create(objs)
        return
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            document = json.dumps(
                list(zip(*columns, strict=True)), default=_json_value, ensure_ascii=False
            )
            sql = (
                f"INSERT INTO {plan.table} ({plan.columns}) SELECT {plan.elements} "  # noqa: S608
                f"FROM json_array_elements(%s::json) AS r {plan.returning}"
            )
            cursor.execute(sql, [document])
            pks = [row[0] for row in cursor.fetchall()]
        else:
            rows = list(zip(*columns, strict=True))
            size = max(connection.ops.bulk_batch_size(plan.fields, objs), 1)
            row_sql = f"({', '.join(['%s'] * len(plan.fields))})"
            pks = []
            for start in range(0, len(rows), size):
                batch = rows[start : start + size]
                values = ", ".join([row_sql] * len(batch))
                sql = (
                    f"INSERT INTO {plan.table} ({plan.columns}) "  # noqa: S608
                    f"VALUES {values} {plan.returning}"
                )
                cursor.execute(sql, list(chain.from_iterable(batch)))
                pks.extend(row[0] for row in cursor.fetchall())
    if len(pks) != len(objs):
        raise AssertionError(f"{model._meta.label}: {len(pks)} keys for {len(objs)} rows")
    attname = plan.pk.attname
    for obj, pk in zip(objs, pks, strict=True):
        setattr(obj, attname, pk)
        obj._state.adding = False
        obj._state.db = alias


def _column(plan: _Plan, index: int, objs: Sequence[models.Model], connection: Any) -> list[Any]:
    """The database values of one field for every row: its ``pre_save``, then its
    ``get_db_prep_save`` (:func:`db_adapter`)."""
    field = plan.fields[index]
    pre_save = plan.pre_save[index]
    if pre_save is None:
        attname = field.attname
        values = [getattr(obj, attname) for obj in objs]
    else:
        values = [pre_save(obj, True) for obj in objs]
    if not _PLAIN_TYPES.issuperset(map(type, values)):
        raise _NotPlain(field.name)
    adapt = plan.adapt[index]
    return [adapt(value) for value in values]


def db_adapter(field: models.Field, connection: Any) -> Callable[[Any], Any]:
    """``field.get_db_prep_save(value, connection)`` as a function of the value, with
    the answers known without it: ``None``, a string of a text field, an integer of an
    integer field (or a key to one), a bool of a boolean field as they are; on SQLite an
    aware UTC datetime of a ``DateTimeField`` as Django writes it there (naive, in the
    connection's time zone when that is UTC: ``str`` of the naive value)."""
    target = field.target_field if field.is_relation else field
    prepare = field.get_db_prep_save
    if type(target) in TEXT_FIELDS:
        passed: tuple[type, ...] = (str,)
    elif type(target) in INTEGER_FIELDS or type(target) in _AUTO_PKS:
        passed = (int,)
    elif type(target) is models.BooleanField:
        passed = (bool,)
    elif (
        type(target) is models.DateTimeField
        and connection.vendor == "sqlite"
        and connection.timezone is datetime.UTC
    ):
        utc = datetime.UTC

        def adapt_time(value: Any) -> Any:
            if type(value) is datetime.datetime and value.tzinfo is utc:
                return str(value.replace(tzinfo=None))
            return None if value is None else prepare(value, connection)

        return adapt_time
    else:
        passed = ()

    def adapt(value: Any) -> Any:
        if value is None or type(value) in passed:
            return value
        return prepare(value, connection)

    return adapt


def _json_value(value: Any) -> str:
    """Values of the PostgreSQL JSON document that JSON has no type for, as text that
    PostgreSQL reads back into the column's type."""
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
