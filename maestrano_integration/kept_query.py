"""A read whose SQL is compiled once per database connection and then run with new values.

Building a queryset (``filter`` across joins) and compiling it (``select_related``'s
columns, the joins, the ``WHERE``) costs the ORM more than the database's own work
for a small indexed read: about 0.6 ms of CPU on SQLite and 1.5 ms on PostgreSQL for
the repeat SSO login's read of a membership with its company and user, against
0.05 ms and about 1 ms (planning included) for running the same SQL
(docs/performance.md). A :class:`KeptQuery` builds its queryset once per connection,
with a marker value for each parameter, keeps the compiled SQL and the compiler (its
selected columns and related-model layout), and on each call runs that SQL with the
caller's values, Django's own iterable building the model instances from the rows: the fields'
database converters applied, ``select_related`` objects attached. Repeating the same
SQL text also lets PostgreSQL's prepared statements (``DATABASE_PREPARE_THRESHOLD``,
docs/deploy.md) skip the planning.

Only parameters that reach the SQL unchanged can be kept (``exact`` lookups on text
columns: a lookup that transforms its value, ``icontains`` for instance, would hide the
marker); building raises :class:`ValueError` otherwise, the first time the query runs.

:class:`KeptUpdate` does the same for an ``UPDATE`` of some columns of the rows matching
exact values (the repeat login's write of the identity's login time): its SQL is built
once per database vendor from the model's options, and the values are prepared by the
model's fields as ``QuerySet.update`` prepares them. On PostgreSQL several such writes
go in one statement (:meth:`PreparedWrite.run_after`, data-modifying ``WITH``): one round
trip, one commit.
"""

from __future__ import annotations

import copy
import inspect
import secrets
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, models, router

from maestrano_integration.model_fields import column_name

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: For each SQL parameter: the name of the caller's value, or ``None`` for a constant.
    names: tuple[str | None, ...]
    constants: tuple[Any, ...]
    #: The queryset's query and its compiler, as compiling them left them (the compiler's
    #: selected columns and related-model layout filled in).
    query: Any
    compiler: Any
    #: The database converters of the selected columns (``get_converters``), which depend
    #: on the columns alone: looked up once, not on every run.
    converters: dict[int, Any]


@dataclass(frozen=True)
class PreparedWrite:
    """A :class:`KeptUpdate`'s statement with its values, for one database alias."""

    alias: str
    sql: str
    params: list[Any]

    def run(self, *, returning: str | None = None) -> int:
        """Run the statement by itself; how many rows it updated.

        ``returning``: an SQL expression the statement evaluates for each row it updates
        (``RETURNING``), for its effect (a module's constant, never input), such as
        :data:`maestrano_integration.transaction_settings.COMMIT_WITHOUT_FLUSH_EXPRESSION`.
        """
        return self.run_after(returning=returning)

    def run_after(self, *before: PreparedWrite, returning: str | None = None) -> int:
        """Run the writes ``before``, then this one; how many rows this one updated.

        On PostgreSQL, when all are on this one's database, in one statement: each of
        ``before`` a data-modifying ``WITH`` of this one, which PostgreSQL runs whole and
        exactly once, in the statement's one snapshot (writes of different tables: which
        comes first is not observable). One round trip, and in autocommit one commit.
        Elsewhere each runs by itself, in turn. ``returning``: as for :meth:`run`.
        """
        connection = connections[self.alias]
        together = connection.vendor == "postgresql" and all(
            write.alias == self.alias for write in before
        )
        if not together:
            for write in before:
                write.run()
        sql, params = self.sql, list(self.params)
        if together and before:
            parts = ", ".join(f"kept_write_{i} AS ({w.sql})" for i, w in enumerate(before))
            sql = f"WITH {parts} {sql}"
            params = [*(p for write in before for p in write.params), *params]
        if returning is not None:
            sql = f"{sql} RETURNING {returning}"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount


class KeptQuery(Generic[M]):
    """``build(**values)``, a queryset of ``model``, compiled once per connection.

    ``build``'s keyword parameters name the values each call passes::

        LATEST = KeptQuery(
            Person, lambda uid: Person.objects.filter(uid=uid).select_related("org")[:1]
        )
        person = LATEST.first(uid="usr-1")

    ``model`` routes the read (``router.db_for_read``) before anything is built; a
    ``build`` that returns a queryset of another model is refused when first compiled.

    Django's own iterable builds the instances (converters, ``select_related`` objects,
    fetch modes): it is handed a copy of the kept compiler whose ``execute_sql`` runs the
    kept SQL with the new values and whose ``get_converters`` gives the converters looked
    up when compiling, so only the building, the compiling and that lookup are skipped.
    """

    def __init__(self, model: type[M], build: Callable[..., models.QuerySet[M]]) -> None:
        self.model = model
        self._build = build
        self._names = tuple(inspect.signature(build).parameters)
        # One compiled form per connection object (connections are per thread).
        self._compiled: weakref.WeakKeyDictionary[Any, _Compiled] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def first(self, **values: str) -> M | None:
        """The first instance the query finds with ``values``, or ``None``."""
        return next(self._iterate(values), None)

    def iterator(self, **values: str) -> Iterator[M]:
        """The instances the query finds with ``values``, in its order."""
        return self._iterate(values)

    def _iterate(self, values: Mapping[str, str]) -> Iterator[M]:
        if set(values) != set(self._names):
            raise TypeError(f"expected the values {sorted(self._names)}, got {sorted(values)}")
        alias = router.db_for_read(self.model)
        compiled = self._compiled_for(alias)
        constants = iter(compiled.constants)
        params = [values[name] if name else next(constants) for name in compiled.names]
        sql = compiled.sql
        compiler = copy.copy(compiled.compiler)

        def execute_sql(*args: Any, **kwargs: Any) -> list[list[Any]]:
            with compiler.connection.cursor() as cursor:
                cursor.execute(sql, params)
                return [cursor.fetchall()]  # one chunk of rows, as execute_sql(MULTI)

        compiler.execute_sql = execute_sql
        # The kept compiler selects the same columns on every run: so do their converters.
        compiler.get_converters = lambda expressions: compiled.converters
        query = copy.copy(compiled.query)
        query.get_compiler = lambda *args, **kwargs: compiler
        return iter(models.QuerySet(model=self.model, query=query, using=alias))

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
        if queryset.model is not self.model:
            raise ValueError(
                f"build returned a queryset of {queryset.model.__name__}, "
                f"not of {self.model.__name__}"
            )
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
        return _Compiled(
            sql=sql,
            names=names,
            constants=tuple(p for p, name in zip(params, names, strict=True) if name is None),
            query=queryset.query,
            compiler=compiler,
            converters=compiler.get_converters(
                [column for column, *_ in compiler.select[: compiler.col_count]]
            ),
        )


def _column_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    if (
        not isinstance(field, models.Field)
        or not field.concrete
        or field.many_to_many
        or field.one_to_many
    ):
        raise ValueError(f"{model.__name__}.{field.name} is not a column")
    return field


class KeptUpdate:
    """``model.objects.filter(**where).update(**values)`` for fixed column names, with its
    SQL built once per database vendor.

    As ``QuerySet.update``: no signals, no ``auto_now``, no ``save()``; each value is
    prepared by its field (``get_db_prep_save``, and ``get_db_prep_value`` for the
    ``WHERE``), identifiers are quoted, every value is a parameter. ``where`` names columns
    equal to the values given; ``unset_or_before`` columns that are ``NULL`` or less than
    the value given (``Q(f__isnull=True) | Q(f__lt=value)``: a lease that lapsed).
    """

    def __init__(
        self,
        model: type[models.Model],
        *,
        fields: Sequence[str],
        where: Sequence[str],
        unset_or_before: Sequence[str] = (),
    ) -> None:
        self.model = model
        self._fields = tuple(_column_field(model, name) for name in fields)
        self._where = tuple(_column_field(model, name) for name in where)
        self._before = tuple(_column_field(model, name) for name in unset_or_before)
        self._sql: dict[str, str] = {}

    def run(self, *, where: Mapping[str, Any], values: Mapping[str, Any]) -> int:
        """How many rows were updated."""
        return self.prepare(where=where, values=values).run()

    def prepare(
        self, *, where: Mapping[str, Any], values: Mapping[str, Any], using: str | None = None
    ) -> PreparedWrite:
        """The statement :meth:`run` would run, with its database and parameters (to run
        later, or with others: :meth:`PreparedWrite.run_after`); on ``using``, else where
        the router writes the model."""
        alias = using or router.db_for_write(self.model)
        connection = connections[alias]
        sql = self._sql.get(connection.vendor) or self._build(connection)
        params = [
            *(field.get_db_prep_save(values[field.name], connection) for field in self._fields),
            *(field.get_db_prep_value(where[field.name], connection) for field in self._where),
            *(field.get_db_prep_value(where[field.name], connection) for field in self._before),
        ]
        return PreparedWrite(alias=alias, sql=sql, params=params)

    def _build(self, connection: Any) -> str:
        quote = connection.ops.quote_name
        assignments = ", ".join(f"{quote(column_name(field))} = %s" for field in self._fields)
        conditions = " AND ".join(
            [
                *(f"{quote(column_name(field))} = %s" for field in self._where),
                *(
                    f"({quote(column_name(field))} IS NULL OR {quote(column_name(field))} < %s)"
                    for field in self._before
                ),
            ]
        )
        sql = (
            f"UPDATE {quote(self.model._meta.db_table)} "  # noqa: S608 (identifiers from the model)
            f"SET {assignments} WHERE {conditions}"
        )
        self._sql[connection.vendor] = sql
        return sql
