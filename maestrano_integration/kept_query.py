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
"""

from __future__ import annotations

import inspect
import secrets
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
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
        for row in compiler.results_iter([rows]):
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
        )
