"""A read whose SQL is compiled once per database connection and then run with new values.

Building a queryset (``filter`` across joins) and compiling it (``select_related``'s
columns, the joins, the ``WHERE``) costs the ORM more than the database's own work
for a small indexed read: about 0.6 ms of CPU on SQLite and 1.5 ms on PostgreSQL for
the repeat SSO login's read of a membership with its company and user, against
0.05 ms and about 1 ms (planning included) for running the same SQL
(docs/performance.md). A :class:`KeptQuery` builds its queryset once per connection,
with a marker value for each parameter, keeps the compiled SQL and the compiler (its
selected columns and related-model layout), and on each call runs that SQL with the
caller's values, then builds the model instances as the ORM does: the fields'
database converters applied, ``select_related`` objects attached. Repeating the same
SQL text also lets PostgreSQL's prepared statements (``DATABASE_PREPARE_THRESHOLD``,
docs/deploy.md) skip the planning.

Only parameters that reach the SQL unchanged can be kept (``exact`` lookups on text
columns: a lookup that transforms its value, ``icontains`` for instance, would hide the
marker); building raises :class:`ValueError` otherwise, the first time the query runs.

:class:`KeptUpdate` does the same for an ``UPDATE`` of some columns of the rows matching
exact values (the repeat login's write of the identity's login time): its SQL is built
once per database vendor from the model's options, and the values are prepared by the
model's fields as ``QuerySet.update`` prepares them.
"""

from __future__ import annotations

import inspect
import secrets
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, models, router
from django.db.models.query import get_related_populators

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: For each SQL parameter: the name of the caller's value, or ``None`` for a constant.
    names: tuple[str | None, ...]
    constants: tuple[Any, ...]
    compiler: Any
    model: type[models.Model]
    init_list: tuple[str, ...]
    model_columns: slice
    populators: Sequence[Any]
    #: The fields' database converters, by column (what ``results_iter`` works out per call).
    converters: dict[int, Any]


class KeptQuery(Generic[M]):
    """``build(**values)`` (a queryset of ``M``), compiled once per connection.

    ``build``'s keyword parameters name the values each call passes::

        LATEST = KeptQuery(lambda uid: Person.objects.filter(uid=uid).select_related("org")[:1])
        person = LATEST.first(uid="usr-1")
    """

    def __init__(self, build: Callable[..., models.QuerySet[M]]) -> None:
        self._build = build
        self._names = tuple(inspect.signature(build).parameters)
        # One compiled form per connection object (connections are per thread).
        self._compiled: weakref.WeakKeyDictionary[Any, _Compiled] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()
        self._model_class: type[models.Model] | None = None

    def first(self, **values: str) -> M | None:
        """The first instance the query finds with ``values``, or ``None``."""
        return next(self.iterator(**values), None)

    def iterator(self, **values: str) -> Iterator[M]:
        """The instances the query finds with ``values``, in its order."""
        if set(values) != set(self._names):
            raise TypeError(f"expected the values {sorted(self._names)}, got {sorted(values)}")
        compiled = self._compiled_for(router.db_for_read(self._model()))
        constants = iter(compiled.constants)
        params = [values[name] if name else next(constants) for name in compiled.names]
        compiler = compiled.compiler
        with compiler.connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if compiled.converters:
            rows = compiler.apply_converters(rows, compiled.converters)
        for row in rows:
            instance = compiled.model.from_db(
                compiler.using, compiled.init_list, row[compiled.model_columns]
            )
            for populator in compiled.populators:
                populator.populate(row, instance)
            yield instance  # type: ignore[misc]

    def _model(self) -> type[models.Model]:
        if self._model_class is None:
            self._model_class = self._build(**dict.fromkeys(self._names, "")).model
        return self._model_class

    def _compiled_for(self, alias: str) -> _Compiled:
        connection = connections[alias]
        compiled = self._compiled.get(connection)
        if compiled is None:
            compiled = self._compile(alias)
            with self._lock:
                self._compiled[connection] = compiled
        return compiled

    def _compile(self, alias: str) -> _Compiled:
        markers = {f"kept-query-{name}-{secrets.token_hex(8)}": name for name in self._names}
        queryset = self._build(**{name: marker for marker, name in markers.items()})
        compiler = queryset.query.get_compiler(using=alias)
        # Also fills the compiler's select, klass_info and col_count, which building the
        # instances reads.
        sql, params = compiler.as_sql()
        names = tuple(markers.get(param) if isinstance(param, str) else None for param in params)
        missing = set(self._names) - set(names)
        if missing:
            raise ValueError(
                f"{sorted(missing)} do not reach the SQL unchanged: only exact lookups "
                "on text columns can be kept"
            )
        klass_info, select = compiler.klass_info, compiler.select
        columns = [column[0] for column in select[: compiler.col_count]]
        if compiler.has_composite_fields(columns):
            raise ValueError("composite primary keys are not supported")
        fields = klass_info["select_fields"]
        model_columns = slice(fields[0], fields[-1] + 1)
        return _Compiled(
            sql=sql,
            names=names,
            constants=tuple(p for p, name in zip(params, names, strict=True) if name is None),
            compiler=compiler,
            model=klass_info["model"],
            init_list=tuple(column[0].target.attname for column in select[model_columns]),
            model_columns=model_columns,
            populators=get_related_populators(klass_info, select, alias),
            converters=compiler.get_converters(columns),
        )


class KeptUpdate:
    """``model.objects.filter(**where).update(**values)`` for fixed column names, with its
    SQL built once per database vendor.

    As ``QuerySet.update``: no signals, no ``auto_now``, no ``save()``; each value is
    prepared by its field (``get_db_prep_save``, and ``get_db_prep_value`` for the
    ``WHERE``), identifiers are quoted, every value is a parameter.
    """

    def __init__(
        self, model: type[models.Model], *, fields: Sequence[str], where: Sequence[str]
    ) -> None:
        self.model = model
        meta = model._meta
        self._fields = tuple(meta.get_field(name) for name in fields)
        self._where = tuple(meta.get_field(name) for name in where)
        for field in (*self._fields, *self._where):
            if not field.concrete or field.many_to_many or field.one_to_many:
                raise ValueError(f"{model.__name__}.{field.name} is not a column")
        self._sql: dict[str, str] = {}

    def run(self, *, where: Mapping[str, Any], values: Mapping[str, Any]) -> int:
        """How many rows were updated."""
        alias = router.db_for_write(self.model)
        connection = connections[alias]
        sql = self._sql.get(connection.vendor) or self._build(connection)
        params = [
            *(field.get_db_prep_save(values[field.name], connection) for field in self._fields),
            *(field.get_db_prep_value(where[field.name], connection) for field in self._where),
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    def _build(self, connection: Any) -> str:
        quote = connection.ops.quote_name
        assignments = ", ".join(f"{quote(field.column)} = %s" for field in self._fields)
        conditions = " AND ".join(f"{quote(field.column)} = %s" for field in self._where)
        sql = (
            f"UPDATE {quote(self.model._meta.db_table)} "  # noqa: S608 (identifiers from the model)
            f"SET {assignments} WHERE {conditions}"
        )
        self._sql[connection.vendor] = sql
        return sql
