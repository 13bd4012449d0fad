"""Many new rows of one model in one statement, without the ORM's per-object work.

``bulk_create`` runs ``pre_save`` and ``get_db_prep_save`` for every field of every
object, compiles a new ``INSERT`` for every call and, on PostgreSQL, has psycopg quote
every value of its ``UNNEST`` arrays in Python: for tables written a page or a batch at a
time (the sync's IdMap rows, the sandbox's records and external ids) that cost more than
the database's own work (profiles in docs/performance.md). Three entry points:

* :func:`insert_rows` takes the rows as tuples of field values (the columns the caller
  names; the others shared by every row); a row that conflicts with one there is skipped,
  or updates it (an upsert, as ``bulk_create(update_conflicts=True)``), when asked;
* :func:`insert_instances` takes new model instances, as ``bulk_create(objs)`` does, for
  models of plain fields (:data:`PLAIN_FIELDS`), and hands anything else to
  ``bulk_create`` itself;
* :func:`insert_row_with_children` writes one row and the rows that point at it, all or
  nothing: on PostgreSQL in one statement, so a caller in autocommit needs no transaction.

:func:`insert_rows` and :func:`insert_instances` write one statement per batch:

* PostgreSQL: the rows travel as one JSON parameter (an array per row), read by
  ``jsonb_array_elements`` (``json.dumps`` is C; a JSON field's value is written as it is,
  not encoded twice; ``jsonb``: each row parsed once, where each ``->>`` of a ``json`` row
  parses it again);
* SQLite (with its JSON functions, and rows of :data:`PLAIN_FIELDS`): the same document,
  read by ``json_each``: one parameter where a multi-row ``VALUES`` has one per value
  (Django rewrites each ``%s`` of a statement it runs, and the driver binds each value) and
  ``executemany`` one step per row;
* other databases and shapes: one multi-row ``VALUES`` (when the new primary keys are
  wanted) or ``executemany``.

Values are adapted by the model's fields (:func:`db_adapter`; not at all for a column of
values the field writes as they are, :func:`passed_as_they_are`; in :func:`insert_rows`
once per distinct value and type where the field writes equal values alike: rows often
share a timestamp), SQL identifiers come from
the model's options, quoted, every value is a parameter, and the statement of a shape
(model, columns, conflict handling, rows per statement) is built once per process, with
the constant defaults of the fields the caller leaves out (one row per call: the webhook's
inbox row, ``maestrano_sync.notifications.insert_inbox_entry``, pays for no more). A value
the database refuses fails the statement (``IntegrityError`` / ``DataError``) as with
``bulk_create``.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from itertools import chain, repeat
from typing import Any

from django.db import NotSupportedError, connections, models, router, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models.constants import OnConflict
from django.utils import timezone

from maestrano_integration.model_fields import column_name, key_target, model_field

#: Rows per multi-row ``VALUES`` statement (other databases than PostgreSQL), at most.
VALUES_ROWS = 500

#: Field classes whose values are written without ``get_db_prep_save`` where the answer is
#: known (exact classes: a subclass may change how its values are prepared).
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
#: The fields :func:`insert_instances` writes itself (a model with any other goes to
#: ``bulk_create``).
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
#: The name, in :func:`insert_row_with_children`'s statement, of the parent row's insert.
_PARENT = "parent"
#: A shared field's default that is not a constant (see :meth:`_Shape.shared_values`).
_PER_CALL = object()
_AUTO_PKS = (models.AutoField, models.BigAutoField, models.SmallAutoField)
#: The field classes that write equal values of one type alike (see
#: :func:`adapts_equal_values_alike`).
_ALIKE: frozenset[type[models.Field]] = frozenset(
    {
        *INTEGER_FIELDS,
        *_AUTO_PKS,
        models.BooleanField,
        models.DecimalField,
        models.DateField,
        models.DateTimeField,
        models.UUIDField,
    }
)
_PLAIN_TYPES = frozenset(
    {str, int, bool, decimal.Decimal, datetime.date, datetime.datetime, uuid.UUID, type(None)}
)


def insert_rows(
    model: type[models.Model],
    *,
    fields: Sequence[str],
    rows: Sequence[Sequence[Any]],
    shared: Mapping[str, Any] | None = None,
    ignore_conflicts: bool = False,
    update_conflicts: bool = False,
    update_fields: Sequence[str] = (),
    unique_fields: Sequence[str] = (),
    returning: bool = False,
) -> list[Any]:
    """INSERT one ``model`` row per item of ``rows`` (the values of ``fields``, by
    attribute name: ``group_id`` or ``group``); the other concrete fields but the primary
    key take ``shared``'s value, else their default (``auto_now``/``auto_now_add``:
    now). Returns the new primary keys in ``rows``' order if ``returning``, else ``[]``.

    ``ignore_conflicts``: a row that would break a unique constraint is skipped, as
    ``bulk_create(ignore_conflicts=True)`` does (not with ``returning``).

    ``update_conflicts``: a row whose ``unique_fields`` (a unique constraint's fields) are
    those of a row there updates that row's ``update_fields`` with its own values instead,
    the row's other columns left as they are, as ``bulk_create(update_conflicts=True,
    update_fields=..., unique_fields=...)`` does: an upsert in one statement, atomic on
    its own (not with ``returning``; two rows of one call must not share their
    ``unique_fields``, which PostgreSQL refuses).
    """
    if not fields:
        raise ValueError("insert_rows needs the name of at least one field of each row")
    if not rows:
        return []
    if returning and (ignore_conflicts or update_conflicts):
        raise ValueError("returning the keys of skipped or updated rows is not possible")
    if ignore_conflicts and update_conflicts:
        raise ValueError("a conflicting row is either skipped or updated, not both")
    if update_conflicts and not (update_fields and unique_fields):
        raise ValueError("update_conflicts needs the update_fields and the unique_fields")
    if not update_conflicts and (update_fields or unique_fields):
        raise ValueError("update_fields and unique_fields are for update_conflicts")
    alias = router.db_for_write(model)
    connection = connections[alias]
    update = (tuple(update_fields), tuple(unique_fields)) if update_conflicts else None
    shape = _shape(model, tuple(fields), alias, ignore_conflicts, returning, update=update)
    shared_values = shape.shared_values(shared or {}, connection)
    columns = [
        values if passes.issuperset(map(type, values)) else _db_values(adapt, values, shares)
        for adapt, passes, shares, values in zip(
            shape.adapters, shape.passes, shape.shares, zip(*rows, strict=True), strict=True
        )
    ]
    return _execute(shape, connection, shared_values, columns)


def insert_row_with_children(
    model: type[models.Model],
    *,
    fields: Sequence[str],
    row: Sequence[Any],
    children: type[models.Model],
    link: str,
    child_fields: Sequence[str],
    child_rows: Sequence[Sequence[Any]],
) -> Any:
    """INSERT one ``model`` row (the values of ``fields``, as :func:`insert_rows` takes
    them) and the ``children`` rows that point at it (``child_rows``: the values of
    ``child_fields``; the foreign key ``link`` set to the new row), all or nothing; the
    new row's primary key.

    PostgreSQL: one statement (the parent's ``INSERT`` in a ``WITH``, the children's
    reading its key), atomic on its own, so a caller in autocommit pays for no
    transaction (``BEGIN`` and ``COMMIT`` are two more round trips). Other databases: the
    two statements of :func:`insert_rows` in a transaction (the caller's, if any).
    """
    if not fields or not child_fields:
        raise ValueError("insert_row_with_children needs the names of the fields of each row")
    _check_link(model, children, link)
    alias = router.db_for_write(model)
    if router.db_for_write(children) != alias:
        raise ValueError(f"{children._meta.label} is not written to {model._meta.label}'s database")
    connection = connections[alias]
    if connection.vendor != "postgresql":
        with transaction.atomic(using=alias, savepoint=False):
            (pk,) = insert_rows(model, fields=fields, rows=[row], returning=True)
            insert_rows(
                children,
                fields=(link, *child_fields),
                rows=[(pk, *child) for child in child_rows],
            )
        return pk
    parent = _shape(model, tuple(fields), alias, False, True)
    linked = _shape(children, tuple(child_fields), alias, False, False, link)
    statement = _linked_statement(parent, linked)
    child_columns = zip(*child_rows, strict=True) if child_rows else ([] for _ in child_fields)
    parameters = [
        *parent.shared_values({}, connection),
        _document([[adapt(value)] for adapt, value in zip(parent.adapters, row, strict=True)]),
        *linked.shared_values({}, connection),
        _document(
            [
                _db_values(adapt, values, shares)
                for adapt, shares, values in zip(
                    linked.adapters, linked.shares, child_columns, strict=True
                )
            ]
        ),
    ]
    with connection.cursor() as cursor:
        cursor.execute(statement, parameters)
        (pk,) = cursor.fetchone()
    return pk


@functools.cache
def _check_link(model: type[models.Model], children: type[models.Model], link: str) -> None:
    """Refuse a ``link`` that is not a foreign key of ``children`` to ``model``'s primary key
    (the new row's key would be written into another column, of another model)."""
    field = children._meta.get_field(link)
    if not (
        isinstance(field, models.ForeignObject)
        and field.many_to_one
        and field.related_model is model
        and field.target_field == model._meta.pk
    ):
        raise ValueError(
            f"{children._meta.label}.{link} is not a foreign key to {model._meta.label}'s "
            "primary key"
        )


@functools.cache
def _linked_statement(parent: _Shape, children: _Shape) -> str:
    """The statement of :func:`insert_row_with_children` on PostgreSQL (built once)."""
    key = parent.returned_column
    return (  # identifiers quoted by the backend, every value a parameter
        f"WITH {_PARENT} AS ({parent.sql(1)}), children AS ({children.sql(0)}) "  # noqa: S608
        f"SELECT {key} FROM {_PARENT}"
    )


def insert_instances(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """Insert ``objs`` (new instances of ``model``) as ``bulk_create(objs)`` does: each
    field's ``pre_save`` (``auto_now`` and the like) and ``get_db_prep_save``, related
    objects' keys copied (unsaved ones refused), then the primary keys and states set.
    A model that is not made of :data:`PLAIN_FIELDS` with an automatic primary key, an
    instance that has a key, or a value of another type (an expression) goes to
    ``bulk_create`` itself."""
    if not objs:
        return
    alias = router.db_for_write(model)
    connection = connections[alias]
    if not _plain(model, alias) or any(obj.pk is not None for obj in objs):
        model._default_manager.bulk_create(objs)
        return
    opts = model._meta
    names = tuple(f.name for f in opts.concrete_fields if not f.primary_key)
    shape = _shape(model, names, alias, False, True)
    relations = _relations(model)
    for obj in objs:
        if obj._state.fields_cache and not _related_keys_copied(obj, relations):
            # Model's private step of bulk_create (not in django-stubs).
            obj._prepare_related_fields_for_save(operation_name="bulk_create")  # type: ignore[attr-defined]
    columns = []
    for field, adapt, passes in zip(shape.per_row, shape.adapters, shape.passes, strict=True):
        if _stamps_now(field):
            columns.append(_stamp(field, objs, adapt))
            continue
        if type(field).pre_save is models.Field.pre_save:
            values = [getattr(obj, field.attname) for obj in objs]
        else:
            values = [field.pre_save(obj, True) for obj in objs]
        kinds = set(map(type, values))
        if not _PLAIN_TYPES.issuperset(kinds):
            model._default_manager.bulk_create(objs)
            return
        # A column of values the field writes as they are (texts, integers): not adapted.
        columns.append(values if passes.issuperset(kinds) else [adapt(v) for v in values])
    with transaction.atomic(using=alias, savepoint=False):
        pks = _execute(shape, connection, [], columns)
    if len(pks) != len(objs):
        raise AssertionError(f"{opts.label}: {len(pks)} keys for {len(objs)} rows")
    for obj, pk in zip(objs, pks, strict=True):
        setattr(obj, opts.pk.attname, pk)
        obj._state.adding = False
        obj._state.db = alias


@functools.cache
def _relations(model: type[models.Model]) -> tuple[tuple[str, str, str], ...]:
    """(cache name, attribute, related object's attribute) of each foreign key of
    ``model`` (a model :func:`_plain` accepts: its only relations)."""
    return tuple(
        (f.cache_name, f.attname, key_target(f).attname)
        for f in model._meta.concrete_fields
        if isinstance(f, models.ForeignKey)
    )


def _related_keys_copied(obj: models.Model, relations: tuple[tuple[str, str, str], ...]) -> bool:
    """Whether each related object cached on ``obj`` has the key ``obj`` holds (set when it
    was assigned, the object saved): then Django's check before a bulk insert (an unsaved
    related object refused, a key saved since copied, a changed one's cache cleared)
    has nothing to do. Any other case goes to that check (about 10 µs an object)."""
    cache = obj._state.fields_cache
    for cache_name, attname, target_attname in relations:
        related = cache.get(cache_name)
        if related is None:
            continue
        key = getattr(obj, attname)
        if key is None or getattr(related, target_attname) != key:
            return False
    return True


def _stamps_now(field: models.Field) -> bool:
    """Whether ``field``'s ``pre_save`` on a new row is Django's own stamping of the current
    time (``auto_now`` or ``auto_now_add`` of a ``DateTimeField`` or ``DateField``, its
    ``pre_save`` not overridden)."""
    kind = type(field)
    return (
        kind.pre_save is models.DateTimeField.pre_save or kind.pre_save is models.DateField.pre_save
    ) and bool(field.auto_now or field.auto_now_add)  # type: ignore[attr-defined]


def _stamp(
    field: models.Field, objs: Sequence[models.Model], adapt: Callable[[Any], Any]
) -> list[Any]:
    """The column of a field :func:`_stamps_now`: one time for the rows of one INSERT
    (``bulk_create`` takes the time once per row, microseconds apart), set on each
    instance as its ``pre_save`` does, and adapted once."""
    now = field.pre_save(objs[0], True)
    for obj in objs[1:]:
        setattr(obj, field.attname, now)
    return [adapt(now)] * len(objs)


def db_adapter(field: models.Field, connection: Any) -> Callable[[Any], Any]:
    """``field.get_db_prep_save(value, connection)`` as a function of the value, with
    the answers known without it: the values of :func:`passed_as_they_are` (``None``, a
    string of a text field, an integer of an integer field or a key to one, a bool of a
    boolean field) as they are; on SQLite an
    aware UTC datetime of a ``DateTimeField`` as Django writes it there (naive, in the
    connection's time zone when that is UTC: ``str`` of the naive value); on PostgreSQL
    an aware datetime of a ``DateTimeField`` and a JSON field's value as they are (written
    into the rows' JSON document)."""
    target = key_target(field)
    prepare = field.get_db_prep_save
    if isinstance(field, models.JSONField) and connection.vendor == "postgresql":
        if field.encoder is None:
            return _same
        encoder = field.encoder
        return lambda value: json.loads(json.dumps(value, cls=encoder))
    passed = passed_as_they_are(field)
    if type(target) is models.DateTimeField:
        if connection.vendor == "sqlite" and connection.timezone is datetime.UTC:
            utc = datetime.UTC

            def adapt_time(value: Any) -> Any:
                if type(value) is datetime.datetime and value.tzinfo is utc:
                    # str() of the naive value, without making it: "+00:00" cut from the end.
                    return value.isoformat(" ")[:-6]
                return None if value is None else prepare(value, connection)

            return adapt_time
        if connection.vendor == "postgresql":

            def adapt_aware_time(value: Any) -> Any:
                # What get_db_prep_save returns for an aware datetime on PostgreSQL: itself.
                if type(value) is datetime.datetime and value.tzinfo is not None:
                    return value
                return None if value is None else prepare(value, connection)

            return adapt_aware_time

    if type(target) is models.DecimalField and _decimals_as_they_are(connection):

        def adapt_decimal(value: Any) -> Any:
            # What get_db_prep_save returns for a finite Decimal: a copy of it (the
            # backend's adapt_decimalfield_value being the base one, which returns it).
            if type(value) is decimal.Decimal and value.is_finite():
                return value
            return None if value is None else prepare(value, connection)

        return adapt_decimal

    def adapt(value: Any) -> Any:
        if type(value) in passed:
            return value
        return prepare(value, connection)

    return adapt


def _decimals_as_they_are(connection: Any) -> bool:
    """Whether the backend gives a decimal field's prepared value to its driver as it is."""
    return (
        type(connection.ops).adapt_decimalfield_value
        is BaseDatabaseOperations.adapt_decimalfield_value
    )


def passed_as_they_are(field: models.Field) -> frozenset[type]:
    """The types of the values :func:`db_adapter`'s function returns as they are for
    ``field`` (``None``'s always; a text field's strings, an integer field's or a key's
    integers, a boolean field's bools): a column of only these needs no adapting."""
    target = type(key_target(field))
    if target in TEXT_FIELDS:
        return _PASS_TEXT
    if target in INTEGER_FIELDS or target in _AUTO_PKS:
        return _PASS_INTEGER
    if target is models.BooleanField:
        return _PASS_BOOL
    return _PASS_NONE


def adapts_equal_values_alike(field: models.Field) -> bool:
    """Whether ``field`` writes equal values of one type alike, so that a column's value
    may be adapted once for all the rows holding it. True of the number, date, time and
    UUID fields Django ships (a ``DecimalField`` rounds to its places, a ``DateTimeField``
    writes an instant); not of a text field, which writes the text of the value
    (``Decimal("1.0")`` and ``Decimal("1")``, or one instant in two time zones, are equal
    and written differently), nor of any other field."""
    return type(key_target(field)) in _ALIKE


_PASS_NONE = frozenset({type(None)})
_PASS_TEXT = _PASS_NONE | {str}
_PASS_INTEGER = _PASS_NONE | {int}
_PASS_BOOL = _PASS_NONE | {bool}


def _prep_save(field: models.Field, connection: Any, value: Any) -> Any:
    return field.get_db_prep_save(value, connection)


def _same(value: Any) -> Any:
    return value


def _stamped(field: models.Field) -> bool:
    return bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))


@functools.cache
def _plain(model: type[models.Model], alias: str) -> bool:
    """Whether :func:`insert_instances` writes ``model``'s rows itself."""
    connection = connections[alias]
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
            type(key_target(f)) in PLAIN_FIELDS or type(key_target(f)) in _AUTO_PKS
            for f in opts.concrete_fields
            if f.is_relation
        )
    )


class _Shape:
    """The fields and the statements of one insert shape (built once: see :func:`_shape`)."""

    def __init__(
        self,
        model: type[models.Model],
        names: tuple[str, ...],
        alias: str,
        ignore_conflicts: bool,
        returning: bool,
        linked: str | None = None,
        update: tuple[tuple[str, ...], tuple[str, ...]] | None = None,
    ) -> None:
        connection = connections[alias]
        quote = connection.ops.quote_name
        opts = model._meta
        self.returning = returning
        self.per_row = [model_field(model, name) for name in names]
        # PostgreSQL: the foreign key whose value is the key of the row inserted by the
        # statement's ``parent`` (see :func:`insert_row_with_children`).
        self.linked = model_field(model, linked) if linked else None
        self.adapters = [db_adapter(field, connection) for field in self.per_row]
        self.passes = [passed_as_they_are(field) for field in self.per_row]
        self.shares = [adapts_equal_values_alike(field) for field in self.per_row]
        self.ordered = [f for f in opts.local_concrete_fields if not f.primary_key]
        self.shared = [f for f in self.ordered if f not in self.per_row and f != self.linked]
        self._stamped = [_stamped(f) for f in self.shared]
        # A shared value is a parameter of its own: a JSON field's is adapted as the ORM
        # does (not as an element of the rows' JSON document).
        self._shared_adapters = [
            functools.partial(_prep_save, f, connection)
            if isinstance(f, models.JSONField)
            else db_adapter(f, connection)
            for f in self.shared
        ]
        # Where each column's values come from, in the table's order: (shared?, index)
        # (other databases than PostgreSQL, which have no linked shape).
        self.sources = [
            (True, self.shared.index(f)) if f in self.shared else (False, self.per_row.index(f))
            for f in self.ordered
            if f != self.linked
        ]
        # A shared field's value when the caller gives none: its default prepared here,
        # once, when it is a constant; _PER_CALL for now (auto_now/auto_now_add), a
        # callable default and a database default.
        self._defaults = [
            _PER_CALL
            if stamped
            or (f.has_default() and callable(f.default))
            or f.db_default is not models.NOT_PROVIDED
            else f.get_db_prep_save(f.get_default(), connection)
            for f, stamped in zip(self.shared, self._stamped, strict=True)
        ]
        on_conflict = OnConflict.IGNORE if ignore_conflicts else None
        updated: list[str] = []
        unique: list[str] = []
        if update is not None:
            on_conflict = OnConflict.UPDATE
            updated, unique = _conflict_columns(model, connection, *update)
        suffix = connection.ops.on_conflict_suffix_sql(self.ordered, on_conflict, updated, unique)
        self.returned_column = quote(column_name(opts.pk))
        tail = (f" {suffix}" if suffix else "") + (
            f" RETURNING {self.returned_column}" if returning else ""
        )
        head = (
            f"{connection.ops.insert_statement(on_conflict=on_conflict)} "
            f"{quote(opts.db_table)} ({', '.join(quote(column_name(f)) for f in self.ordered)})"
        )
        self.rows_per_statement = max(
            1, min(VALUES_ROWS, connection.ops.bulk_batch_size(self.ordered, [None] * VALUES_ROWS))
        )
        self._statements: dict[int, str] = {}
        if connection.vendor == "postgresql":

            def cast(field: models.Field) -> str:
                db_type = field.db_type(connection)
                if db_type is None:
                    raise ValueError(f"{field} has no column type")
                return db_type.split("(")[0]

            def element(field: models.Field) -> str:
                index = self.per_row.index(field)
                if isinstance(field, models.JSONField):
                    # The value as JSON (a JSON string stays one); Python's None as NULL.
                    return f"NULLIF((r->{index})::jsonb, 'null'::jsonb)"
                return f"(r->>{index})::{cast(field)}"

            def source(field: models.Field) -> str:
                if field == self.linked:
                    return f"{_PARENT}.{quote(column_name(key_target(field)))}"
                return element(field) if field in self.per_row else f"%s::{cast(field)}"

            values = ", ".join(source(f) for f in self.ordered)
            parent = f"{_PARENT}, " if self.linked else ""
            self._any_rows: str | None = (
                f"{head} SELECT {values} "  # noqa: S608
                f"FROM {parent}jsonb_array_elements(%s::jsonb) AS r{tail}"
            )
        elif _reads_documents(connection) and all(
            type(f) in PLAIN_FIELDS or type(f) is models.JSONField for f in self.per_row
        ):
            # SQLite: each row's values read from the JSON document as the text, number
            # or NULL that binding them would give (the columns' affinities convert both
            # alike; a JSON field's value is its JSON text, as bound). ``WHERE true`` keeps
            # an upsert's ``ON CONFLICT`` from reading as a join's ``ON``. Rows in the
            # document's order: the new keys, which the table numbers upwards, are sorted
            # (see :func:`_execute`).
            values = ", ".join(
                f"json_extract(r.value, '$[{self.per_row.index(f)}]')"
                if f in self.per_row
                else "%s"
                for f in self.ordered
            )
            self._any_rows = (
                f"{head} SELECT {values} FROM json_each(%s) AS r "  # noqa: S608
                f"WHERE true ORDER BY r.key{tail}"
            )
        else:
            self._any_rows = None
        self._head, self._tail = head, tail
        self._row = "(" + ", ".join(["%s"] * len(self.ordered)) + ")"

    @property
    def reads_document(self) -> bool:
        """Whether the statement reads the rows from one JSON document (any number of them)."""
        return self._any_rows is not None

    def shared_values(self, given: Mapping[str, Any], connection: Any) -> list[Any]:
        """The database values of the shared fields: ``given``'s (by name or attribute
        name), else their defaults (``auto_now``/``auto_now_add``: now)."""
        now = None
        values = []
        for field, stamped, default, adapt in zip(
            self.shared, self._stamped, self._defaults, self._shared_adapters, strict=True
        ):
            if field.name in given:
                value = given[field.name]
            elif field.attname in given:
                value = given[field.attname]
            elif default is not _PER_CALL:
                values.append(default)
                continue
            elif stamped:
                value = now = now or timezone.now()
            else:
                value = field.get_default()
            values.append(adapt(value))
        return values

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
    linked: str | None = None,
    update: tuple[tuple[str, ...], tuple[str, ...]] | None = None,
) -> _Shape:
    return _Shape(model, names, alias, ignore_conflicts, returning, linked, update)


def _conflict_columns(
    model: type[models.Model],
    connection: Any,
    update_fields: tuple[str, ...],
    unique_fields: tuple[str, ...],
) -> tuple[list[str], list[str]]:
    """The columns of an upsert's ``update_fields`` and ``unique_fields`` (names or
    attribute names), refused as ``bulk_create`` refuses them: fields that are not
    concrete, a primary key updated, a backend without ``ON CONFLICT ... DO UPDATE``."""
    features = connection.features
    if not (features.supports_update_conflicts and features.supports_update_conflicts_with_target):
        raise NotSupportedError(
            "This database backend does not support updating conflicts with specifying "
            "unique fields that can trigger the upsert."
        )
    opts = model._meta
    updated = [opts.get_field(name) for name in update_fields]
    unique = [opts.get_field(opts.pk.name if name == "pk" else name) for name in unique_fields]
    if any(not f.concrete or f.many_to_many for f in [*updated, *unique]):
        raise ValueError("update_conflicts takes concrete fields only")
    if any(isinstance(f, models.Field) and f.primary_key for f in updated):
        raise ValueError("update_conflicts cannot update a primary key")
    return [column_name(f) for f in updated], [column_name(f) for f in unique]


def _execute(
    shape: _Shape, connection: Any, shared_values: list[Any], columns: Sequence[Sequence[Any]]
) -> list[Any]:
    """Write the rows (``columns``: the adapted values of ``shape.per_row``, one list per
    field); the new primary keys if the shape returns them."""
    with connection.cursor() as cursor:
        if shape.reads_document:
            cursor.execute(shape.sql(0), [*shared_values, _document(columns)])
            if not shape.returning:
                return []
            returned = [row[0] for row in cursor.fetchall()]
            # PostgreSQL returns them in the rows' order; SQLite in an order it does not
            # promise, but it numbers the rows upwards as it inserts them, in that order.
            return returned if connection.vendor == "postgresql" else sorted(returned)
        # The rows zipped from the columns, in the table's column order: the per-row values,
        # the shared ones repeated. Not strict: the repeats are endless.
        params = list(
            zip(
                *(
                    repeat(shared_values[i]) if shared else columns[i]
                    for shared, i in shape.sources
                ),
                strict=False,
            )
        )
        if not shape.returning:
            cursor.executemany(shape.sql(1), params)
            return []
        keys: list[Any] = []
        size = shape.rows_per_statement
        for start in range(0, len(params), size):
            chunk = params[start : start + size]
            cursor.execute(shape.sql(len(chunk)), list(chain.from_iterable(chunk)))
            keys.extend(row[0] for row in cursor.fetchall())
        return keys


def _reads_documents(connection: Any) -> bool:
    """SQLite: whether its JSON functions are there (``json_each``, ``json_extract``)."""
    return connection.vendor == "sqlite" and bool(connection.features.supports_json_field)


def _document(columns: Sequence[Sequence[Any]]) -> str:
    """The rows of ``columns`` (one list of values per field) as the JSON
    document the statements read (an array per row)."""
    return json.dumps(
        list(zip(*map(_json_column, columns), strict=True)),
        default=_json_value,  # what a JSON field's value holds that ``json`` does not know
        ensure_ascii=False,  # text as it is (any encoding the connection uses)
        check_circular=False,  # rows of values: no container holds itself
    )


def _json_column(column: Sequence[Any]) -> Sequence[Any]:
    """``column`` with the values ``json`` does not know (a decimal, a time) as their
    text, a column at a time: ``json.dumps``'s ``default`` would be called back once per
    value (four times as long for a page's lines). A value every row shares (a time
    :func:`_stamp` gave them all) is converted once."""
    kinds = set(map(type, column))
    foreign = kinds - _JSON_NATIVE
    if not foreign:
        return column
    if len(foreign) > 1:
        return [v if type(v) in _JSON_NATIVE else _json_value(v) for v in column]
    (kind,) = foreign
    text = _JSON_TEXT.get(kind, _json_value)
    first = column[0]
    if first is not None and all(v is first for v in column):
        return [text(first)] * len(column)
    return [text(v) if type(v) is kind else v for v in column]


#: Types ``json`` writes as they are (``None`` included).
_JSON_NATIVE = frozenset({str, int, float, bool, list, dict, type(None)})

#: The text of the other values a column usually holds, by exact type (what
#: :func:`_json_value` gives them).
_JSON_TEXT: dict[type, Callable[[Any], str]] = {
    datetime.datetime: datetime.datetime.isoformat,
    datetime.date: datetime.date.isoformat,
    datetime.time: datetime.time.isoformat,
    decimal.Decimal: str,
    uuid.UUID: str,
}


def _json_value(value: Any) -> Any:
    """A value of the rows' JSON document that ``json`` does not know, as text that
    the database reads back into the column's type."""
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()  # ISO 8601, the offset kept
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _db_values(adapt: Callable[[Any], Any], values: Sequence[Any], shares: bool) -> list[Any]:
    """``adapt`` of each value; once per distinct value when the field writes equal values
    alike (``shares``, :func:`adapts_equal_values_alike`: rows often share a timestamp).

    Distinct by type too: equal values of other types (``1``, ``True``, ``1.0``) may be
    written differently."""
    if len(values) == 1 or not shares:
        return list(map(adapt, values))
    adapted: dict[tuple[type, Any], Any] = {}
    result = []
    for value in values:
        key = (type(value), value)
        try:
            prepared = adapted[key]
        except KeyError:
            prepared = adapted[key] = adapt(value)
        except TypeError:  # unhashable
            prepared = adapt(value)
        result.append(prepared)
    return result
