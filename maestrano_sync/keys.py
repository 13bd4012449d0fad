"""Local primary keys as the sync keeps them: text (``IdMap.object_id``, ``OutboxEntry.object_id``,
a conflict's ``object_id``), read back into the model's key before a lookup.

One rule for every lookup by these ids (the import, the push, the problems panel): a text
that is no key the database can hold names no record. A lookup of several keys must not
carry it: SQLite's driver refuses an integer past 64 bits and, with it, the whole query.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections, models, router


def storable_key(model: type[models.Model], value: Any) -> bool:
    """Whether the database can hold ``value`` as a primary key of ``model``: an external
    id Connec! hands back may be any number (SQLite's driver refuses one past 64 bits,
    the whole statement with it)."""
    field = model._meta.pk
    if not isinstance(value, int):
        return True
    connection = connections[router.db_for_read(model)]
    try:
        low, high = connection.ops.integer_field_range(field.get_internal_type())
    except KeyError:  # not an integer column
        return True
    return (low is None or value >= low) and (high is None or value <= high)


def local_key(model: type[models.Model], object_id: Any) -> Any | None:
    """The primary key of ``model`` that ``object_id`` names; ``None`` when it names none
    (the key field refuses it, or no database row could hold it)."""
    try:
        key = model._meta.pk.to_python(object_id)
    except (ValidationError, TypeError, ValueError):
        return None
    if key is None or not storable_key(model, key):
        return None
    return key


def local_keys(model: type[models.Model], object_ids: Iterable[Any]) -> list[Any]:
    """:func:`local_key` of each of ``object_ids``, without those that name no record: what a
    ``pk__in`` / ``in_bulk`` lookup may carry."""
    keys = (local_key(model, object_id) for object_id in object_ids)
    return [key for key in keys if key is not None]
