"""Smart merging (docs/protocol.md, 'Smart merging'): the oldest record whose
``opts.matching_fields`` all equal a create's, found in memory.

Why: matched by a query per create, a batch of N creates cost N scans of the
group's records (no index serves a JSON path) and N flushes of the session's
pending rows (so that the query saw them): a first push of 5,000 people ran at
64 records/s. A :class:`MatchIndex` reads the matching values of the entity's
records that hold the batch's values (one query per batch, whatever else the group
stores: read whole, a push of N records in batches of 100 read about N²/200 rows), and
the session keeps it up to date with its own writes: the records it creates, and those
it changes (a rename leaves the old value's group of records and joins the new one's).
"""

from __future__ import annotations

import bisect
import datetime
import decimal
import json
import math
import uuid
from collections.abc import Hashable, Iterable
from typing import Any, NoReturn

from django.db import NotSupportedError
from django.db.models import BooleanField, F, Func, JSONField

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
    ``true`` is not ``1``, ``1.0`` is ``1``.

    A number is compared by the decimal value of its JSON text (a ``Decimal``: PostgreSQL's
    ``jsonb`` keeps that value, and gives ``1e308`` back as the integer it writes out,
    which is not the float ``1e308``)."""
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return ("bool", value)
    if type(value) is float:
        return decimal.Decimal(repr(value)) if math.isfinite(value) else value
    if type(value) is int:
        return decimal.Decimal(value)
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


class _DataPath(Func):
    """An expression of the value at a dotted path of a record's ``data``, written for
    SQLite and PostgreSQL (``as_sqlite``, ``as_postgresql``)."""

    def __init__(self, field: str) -> None:
        self.keys = field.split(".")
        super().__init__(F("data"))

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


class JsonValue(_DataPath):
    """The JSON value at a dotted path of ``data`` (decoded, types kept), ``None`` if absent.

    Django's key transform gives SQLite's SQL values (the text ``"123"`` would come
    back as the number 123); this reads the JSON text of the value on both databases.
    """

    output_field = JSONField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        data, params = compiler.compile(self.source_expressions[0])
        return f"({data} -> %s)", (*params, sqlite_json_path(self.keys))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        data, params = compiler.compile(self.source_expressions[0])
        return f"({data} #> %s)", (*params, self.keys)


class JsonValueIn(_DataPath):
    """True when the JSON value at a dotted path of ``data`` is one of ``keys`` (as
    :func:`match_key` gives them): a filter that keeps at least every record whose value
    matches one of them, and possibly a few more (SQLite reads ``true`` as ``1``), which
    :class:`MatchIndex` then compares in Python."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, field: str, keys: Iterable[Hashable]) -> None:
        super().__init__(field)
        self.values = list(keys)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        # json_extract gives SQL values: a text, an integer or a real (1.0 = 1), true as 1.
        data, params = compiler.compile(self.source_expressions[0])
        values = [_sqlite_value(v) for v in self.values]
        holders = ", ".join(["%s"] * len(values))
        return (
            f"json_extract({data}, %s) IN ({holders})",
            (*params, sqlite_json_path(self.keys), *values),
        )

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, tuple]:
        # jsonb equality is a JSON comparison: 1.0 = 1, "1" <> 1, true <> 1.
        data, params = compiler.compile(self.source_expressions[0])
        holders = ", ".join(["%s::jsonb"] * len(self.values))
        values = [_json_text(v) for v in self.values]
        return f"({data} #> %s) IN ({holders})", (*params, self.keys, *values)


# SQLite's integers are 64-bit; a larger one is read from JSON as a real, and so compared.
_SQLITE_INTEGERS = range(-(2**63), 2**63)


def _json_text(key: Hashable) -> str:
    """The JSON text of a :func:`match_key` key (PostgreSQL reads it as ``jsonb``)."""
    if isinstance(key, tuple):
        return json.dumps(key[1])
    if isinstance(key, decimal.Decimal):
        return str(key)  # a JSON number: "1E+308", "0.1", "12"
    return json.dumps(key)


def _sqlite_value(key: Hashable) -> Any:
    """The SQL value ``json_extract`` gives for a :func:`match_key` key's JSON value:
    a bool's integer, a number's integer (64 bits) or real, a text."""
    if isinstance(key, tuple):
        return int(key[1])
    if isinstance(key, decimal.Decimal):
        integral = key == key.to_integral_value()
        return int(key) if integral and int(key) in _SQLITE_INTEGERS else float(key)
    return key


def filterable(key: Hashable) -> bool:
    """Whether :class:`JsonValueIn` can look ``key`` up: a text, a finite number, a bool
    (anything else, which a request's JSON does not give, is matched by reading every
    record)."""
    if isinstance(key, tuple):
        return True
    if isinstance(key, decimal.Decimal):
        return key.is_finite()
    return isinstance(key, str) and "\x00" not in key


class MatchIndex:
    """The records of one group and entity by the values of some matching fields.

    Each value tuple lists its records oldest first: stored records by primary
    key, then the session's new records in creation order.

    Stored records are read on demand, by the value of the first matching field: the
    first lookup of a value reads the stored records holding it, together with those of
    every value registered beforehand (:meth:`want`: a batch registers its creates'
    values, so one query serves it), whatever else the group stores. A record the
    session holds (:meth:`put`, or ``held`` when the index is made) is indexed by its
    session copy, never by what is stored.
    """

    # Values per query: a batch's creates, in a few statements of bounded size.
    CHUNK = 500

    def __init__(
        self, *, records: Any, fields: tuple[str, ...], held: Iterable[ConnecRecord] = ()
    ) -> None:
        self.records = records
        self.fields = fields
        self._buckets: dict[Values, list[tuple[Order, uuid.UUID]]] = {}
        self._values: dict[uuid.UUID, Values] = {}
        self._order: dict[uuid.UUID, Order] = {}
        self._pks: dict[uuid.UUID, int | None] = {}
        # Records whose session copy is the truth (indexed or not), and what is read.
        self._held: set[uuid.UUID] = set()
        self._read_keys: set[Hashable] = set()
        self._read_all = False
        self._wanted: set[Hashable] = set()
        for record in held:
            self.put(record)

    def want(self, keys: Iterable[Hashable]) -> None:
        """Register first-field values a later :meth:`best` will look up."""
        self._wanted.update(keys)

    def best(self, values: Values) -> tuple[uuid.UUID, int | None] | None:
        """The oldest record with ``values``: its id and primary key (``None``: not written yet)."""
        if not self._read_all and values[0] not in self._read_keys:
            self._read({values[0], *self._wanted})
        bucket = self._buckets.get(values)
        if not bucket:
            return None
        uid = bucket[0][1]
        return uid, self._pks[uid]

    def put(self, record: ConnecRecord) -> None:
        """Index ``record`` by its current values (it keeps its place among the oldest)."""
        self._held.add(record.uid)
        order = self._order.get(record.uid)
        self.drop(record.uid)
        values = matching_values(record.data, self.fields)
        if values is None:
            return
        if order is None:
            order = (0, record.pk) if record.pk is not None else (1, record.created_at)
        self._insert(uid=record.uid, pk=record.pk, order=order, values=values)

    def drop(self, uid: uuid.UUID) -> None:
        self._held.add(uid)
        values = self._values.pop(uid, None)
        if values is None:
            return
        order = self._order.pop(uid)
        del self._pks[uid]
        bucket = self._buckets[values]
        bucket.remove((order, uid))
        if not bucket:
            del self._buckets[values]

    def _read(self, keys: set[Hashable]) -> None:
        """Index the stored records whose first matching value is one of ``keys`` (every
        stored record if one of them cannot be filtered on)."""
        keys -= self._read_keys
        self._wanted -= keys
        columns = ("pk", "uid", *(JsonValue(f) for f in self.fields))
        if all(map(filterable, keys)):
            ordered = sorted(keys, key=repr)
            queries = [
                self.records.filter(JsonValueIn(self.fields[0], ordered[i : i + self.CHUNK]))
                for i in range(0, len(ordered), self.CHUNK)
            ]
            self._read_keys |= keys
        else:
            queries = [self.records]
            self._read_all = True
        for query in queries:
            for pk, uid, *raw in query.order_by("pk").values_list(*columns):
                if uid in self._held or uid in self._values:
                    continue
                values = tuple(match_key(v) for v in raw)
                if None not in values:
                    self._insert(uid=uid, pk=pk, order=(0, pk), values=values)

    def _insert(self, *, uid: uuid.UUID, pk: int | None, order: Order, values: Values) -> None:
        self._values[uid] = values
        self._order[uid] = order
        self._pks[uid] = pk
        bisect.insort(self._buckets.setdefault(values, []), (order, uid))
