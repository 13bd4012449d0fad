"""Local primary keys as the sync keeps them: text (``IdMap.object_id``, ``OutboxEntry.object_id``,
a conflict's ``object_id``), read back into the model's key before a lookup.

One rule for every lookup by these ids (the import, the push, the problems panel): a text
that is no key the database can hold names no record. A lookup of several keys must not
carry it: SQLite's driver refuses an integer past 64 bits and, with it, the whole query.

The text of a key is ``str(pk)`` (a UUID with its hyphens); :func:`key_text_sql` is the
same text computed by the database, for a query that matches the stored ids with a model's
key column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections, models, router
from django.db.models.expressions import Combinable, Value
from django.db.models.fields import AutoFieldMixin
from django.db.models.functions import Cast, Concat, Substr

from maestrano_integration.model_fields import key_target


def storable_key(model: type[models.Model], value: Any) -> bool:
    """Whether the database can hold ``value`` as a primary key of ``model``: an external
    id Connec! hands back may be any number (SQLite's driver refuses one past 64 bits,
    the whole statement with it)."""
    if not isinstance(value, int):
        return True
    low, high = _key_range(model)
    return (low is None or value >= low) and (high is None or value <= high)


def _key_range(model: type[models.Model]) -> tuple[int | None, int | None]:
    """The integers the column of ``model``'s key holds, in the database it is read from
    (``None``: no bound, or not an integer column)."""
    field = model._meta.pk
    connection = connections[router.db_for_read(model)]
    try:
        return connection.ops.integer_field_range(field.get_internal_type())
    except KeyError:  # not an integer column
        return None, None


def keyed_on_insert(field: models.Field) -> bool:
    """Whether a new row gets a key for ``field`` (a primary key) without the sync giving
    it one: from the database (an ``AutoField``, a ``db_default``), from the field's
    ``default``, from its own ``pre_save`` (a field that makes its value), or from the
    parent row (the link of a multi-table inherited model)."""
    return (
        isinstance(field, AutoFieldMixin)
        or field.has_default()
        or field.has_db_default()
        or type(field).pre_save is not models.Field.pre_save
        or field.is_relation
    )


def local_key(model: type[models.Model], object_id: Any) -> Any | None:
    """The primary key of ``model`` that ``object_id`` names; ``None`` when it names none
    (the key field refuses it, or no database row could hold it)."""
    return key_reader(model)(object_id)


def key_reader(model: type[models.Model]) -> Callable[[Any], Any | None]:
    """:func:`local_key` of ``model`` for many ids: the key field and the range of its
    column looked up once, not for every id (the import reads thousands per page)."""
    to_python = model._meta.pk.to_python
    low, high = _key_range(model)

    def read(object_id: Any) -> Any | None:
        try:
            key = to_python(object_id)
        except (ValidationError, TypeError, ValueError):
            return None
        if key is None:
            return None
        if isinstance(key, int) and (
            (low is not None and key < low) or (high is not None and key > high)
        ):
            return None
        return key

    return read


def local_keys(model: type[models.Model], object_ids: Iterable[Any]) -> list[Any]:
    """:func:`local_key` of each of ``object_ids``, without those that name no record: what a
    ``pk__in`` / ``in_bulk`` lookup may carry."""
    read = key_reader(model)
    keys = (read(object_id) for object_id in object_ids)
    return [key for key in keys if key is not None]


#: Where the hyphens of a UUID's text go among its 32 hex digits (``8-4-4-4-12``).
_UUID_GROUPS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))


def key_text_sql(model: type[models.Model], key: Combinable) -> Combinable:
    """The text the sync keeps for a key of ``model`` (``str(pk)``), computed in SQL from
    ``key``, an expression of that key's column (``OuterRef("pk")``).

    The column's own text is that text, but for a UUID on a database without a UUID type
    (SQLite, MySQL): Django keeps it there as 32 hex digits, without the hyphens of
    ``str()``; they are put back, so that a stored id still finds its row."""
    field = model._meta.pk
    target = key_target(field)
    connection = connections[router.db_for_read(model)]
    text = Cast(key, output_field=models.CharField())
    if not isinstance(target, models.UUIDField) or connection.features.has_native_uuid_field:
        return text
    parts: list[Combinable] = []
    for start, length in _UUID_GROUPS:
        if parts:
            parts.append(Value("-"))
        parts.append(Substr(text, start, length))
    return Concat(*parts, output_field=models.CharField())
