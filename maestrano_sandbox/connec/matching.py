"""Smart merging (docs/protocol.md, 'Smart merging'): the oldest record whose
``opts.matching_fields`` all equal a create's, found in memory.

Why: matched by a query per create, a batch of N creates cost N scans of the
group's records (no index serves a JSON path) and N flushes of the session's
pending rows (so that the query saw them): a first push of 5,000 people ran at
64 records/s. A :class:`MatchIndex` reads the matching values of an entity's
records once per session (one query), and the session keeps it up to date with
its own writes: the records it creates, and those it changes (a rename leaves the
old value's group of records and joins the new one's).
"""

from __future__ import annotations

import bisect
import datetime
import json
import uuid
from collections.abc import Hashable, Iterable
from typing import Any, NoReturn

from django.db import NotSupportedError
from django.db.models import F, Func, JSONField

from maestrano_sandbox.models import ConnecRecord

from .errors import ConnecApiError

# The values of a record's matching fields, each as :func:`match_key` compares it.
Values = tuple[Hashable, ...]
# Stored records (by primary key) are older than the session's new ones (by creation stamp).
Order = tuple[int, int] | tuple[int, datetime.datetime]


def checked_matching_fields(matching_fields: Any) -> tuple[str, ...]:
    """``opts.matching_fields`` as a tuple of (dotted) field names; a 422 otherwise."""
    if not isinstance(matching_fields, list) or not all(
        isinstance(f, str) and f for f in matching_fields
    ):
        raise ConnecApiError.single(
            422, "opts.matching_fields must be a list of field names", pointer="/opts"
        )
    return tuple(matching_fields)


def match_key(value: Any) -> Hashable | None:
    """``value`` as smart merging compares it, or ``None`` when it cannot match: missing,
    empty, an object or a list. Types count, as in a JSON comparison: ``"1"`` is not ``1``,
    ``true`` is not ``1``, ``1.0`` is ``1``."""
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return ("bool", value)
    return value


def matching_values(data: dict[str, Any], fields: tuple[str, ...]) -> Values | None:
    """The values of ``fields`` in ``data``; ``None`` if one of them cannot match (a matching
    field missing from ``data`` disables matching: an absent value must not merge every
    record lacking it)."""
    values = []
    for name in fields:
        value: Any = data
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        key = match_key(value)
        if key is None:
            return None
        values.append(key)
    return tuple(values)


def sqlite_json_path(keys: list[str]) -> str:
    """SQLite's JSON path of ``keys``: ``$."a"."b"``, an integer key as an array index
    (as Django's own key transforms build it; its helper is not public API)."""
    parts = ["$"]
    for key in keys:
        try:
            parts.append(f"[{int(key)}]")
        except ValueError:
            parts.append("." + json.dumps(key))
    return "".join(parts)


class JsonValue(Func):
    """The JSON value at a dotted path of ``data`` (decoded, types kept), ``None`` if absent.

    Django's key transform gives SQLite's SQL values (the text ``"123"`` would come
    back as the number 123); this reads the JSON text of the value on both databases.
    """

    output_field = JSONField()

    def __init__(self, field: str) -> None:
        self.keys = field.split(".")
        super().__init__(F("data"))

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        data, params = compiler.compile(self.source_expressions[0])
        return f"({data} -> %s)", (*params, sqlite_json_path(self.keys))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        data, params = compiler.compile(self.source_expressions[0])
        return f"({data} #> %s)", (*params, self.keys)

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> NoReturn:
        raise NotSupportedError("The sandbox's smart merging supports SQLite and PostgreSQL")


class MatchIndex:
    """The records of one group and entity by the values of some matching fields.

    Each value tuple lists its records oldest first: stored records by primary
    key, then the session's new records in creation order.
    """

    def __init__(self, *, fields: tuple[str, ...]) -> None:
        self.fields = fields
        self._buckets: dict[Values, list[tuple[Order, uuid.UUID]]] = {}
        self._values: dict[uuid.UUID, Values] = {}
        self._order: dict[uuid.UUID, Order] = {}
        self._pks: dict[uuid.UUID, int | None] = {}

    @classmethod
    def read(
        cls, *, records: Any, fields: tuple[str, ...], held: Iterable[ConnecRecord]
    ) -> MatchIndex:
        """The index of ``records`` (a queryset: one query, of the primary key, id and the
        fields' values), with ``held``, the session's copies, in place of what is stored."""
        index = cls(fields=fields)
        rows = records.order_by("pk").values_list("pk", "uid", *(JsonValue(f) for f in fields))
        for pk, uid, *raw in rows:
            values = tuple(match_key(v) for v in raw)
            if None not in values:
                index._insert(uid=uid, pk=pk, order=(0, pk), values=values)
        for record in held:
            index.put(record)
        return index

    def best(self, values: Values) -> tuple[uuid.UUID, int | None] | None:
        """The oldest record with ``values``: its id and primary key (``None``: not written yet)."""
        bucket = self._buckets.get(values)
        if not bucket:
            return None
        uid = bucket[0][1]
        return uid, self._pks[uid]

    def put(self, record: ConnecRecord) -> None:
        """Index ``record`` by its current values (it keeps its place among the oldest)."""
        order = self._order.get(record.uid)
        self.drop(record.uid)
        values = matching_values(record.data, self.fields)
        if values is None:
            return
        if order is None:
            order = (0, record.pk) if record.pk is not None else (1, record.created_at)
        self._insert(uid=record.uid, pk=record.pk, order=order, values=values)

    def drop(self, uid: uuid.UUID) -> None:
        values = self._values.pop(uid, None)
        if values is None:
            return
        order = self._order.pop(uid)
        del self._pks[uid]
        bucket = self._buckets[values]
        bucket.remove((order, uid))
        if not bucket:
            del self._buckets[values]

    def _insert(self, *, uid: uuid.UUID, pk: int | None, order: Order, values: Values) -> None:
        self._values[uid] = values
        self._order[uid] = order
        self._pks[uid] = pk
        bisect.insort(self._buckets.setdefault(values, []), (order, uid))
