"""The IdMap: which local object is which Connec! record. The only module that reads or
writes :class:`~maestrano_sync.models.IdMap` rows (``tests/test_import_structure.py`` checks it).

Every function takes the company (tenant) first: an IdMap row of another company is
never visible, even when Connec! ids collide. Reads are bulk (one query for many ids);
writes keep the table's two rules, one row per (company, entity, Connec! id) and one per
local object.

* reads: :func:`bulk_lookup`, :func:`local_pks_for`, :func:`connec_ids_for_pks`,
  :func:`maps_for_objects`, :func:`connec_ids_for_objects`, :func:`links_for_objects`,
  :func:`objects_for_connec_ids`, :func:`owners_of`, :func:`maps_for_keys`,
  :func:`find_id_map`, :func:`id_map_for_object`, :func:`newest_version`, :func:`is_stale`,
  :func:`mapped_counts`, :func:`exclude_mapped`;
  :class:`TableStatistics` keeps
  PostgreSQL's planner informed;
* writes: :func:`link_record` (one), :func:`add_links` (many, existing ones kept),
  :func:`link_unlinked` (records matched to unlinked objects),
  :func:`save_pushed` (after a push), :func:`insert_id_maps` / :func:`update_pulled`
  (bulk SQL of the record pipeline), :func:`bump_pulled`, :func:`forget_pushed_hash`,
  :func:`relink_children` (unlink and link again the rows of child objects).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar

from django.contrib.contenttypes.models import ContentType
from django.db import connections, models, router
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_integration.bulk_insert import insert_rows
from maestrano_integration.lookups import Among, among
from maestrano_integration.model_fields import column_name, model_field

from .keys import key_reader, key_text_sql
from .models import IdMap
from .registry import registry

_RowT = TypeVar("_RowT", bound=models.Model)

# --- reads --------------------------------------------------------------------------------


def _among(column: str, values: Iterable[Any]) -> Among:
    """The filter ``column`` (a text column of IdMap) is one of ``values``, made text
    (:func:`maestrano_integration.lookups.among`: one constant array on PostgreSQL, one JSON
    array parameter on SQLite, whatever the number of ids)."""
    return among(column, (str(value) for value in values))


def bulk_lookup(*, company: Company, entity: str, connec_ids: Iterable[str]) -> dict[str, IdMap]:
    """{connec id: IdMap} for the known ids among ``connec_ids`` (one query)."""
    ids = {connec_id for connec_id in connec_ids if connec_id}
    if not ids:
        return {}
    rows = IdMap.objects.filter(_among("connec_id", ids), company=company, entity=entity)
    return {row.connec_id: row for row in rows}


def local_pks_for(*, company: Company, entity: str, connec_ids: Iterable[str]) -> dict[str, Any]:
    """{connec id: local primary key} for the known ids (one query, no model instances).

    A stored object id that names no record of the model (:func:`maestrano_sync.keys.local_key`:
    text for an integer key, a number past the column's range) is left out: the record is
    as unknown here, and no lookup or row carries a key the database refuses."""
    ids = {connec_id for connec_id in connec_ids if connec_id}
    if not ids:
        return {}
    read = key_reader(registry.for_entity(entity).model)
    rows = IdMap.objects.filter(
        _among("connec_id", ids), company=company, entity=entity
    ).values_list("connec_id", "object_id")
    keys = ((connec_id, read(object_id)) for connec_id, object_id in rows)
    return {connec_id: key for connec_id, key in keys if key is not None}


def connec_ids_for_pks(
    *, company: Company, entity: str, local_pks: Iterable[Any]
) -> dict[str, str]:
    """{str(local pk): connec id} for the mapped objects among ``local_pks`` (one query)."""
    mapper = registry.for_entity(entity)
    content_type = ContentType.objects.get_for_model(mapper.model)
    return connec_ids_for_objects(
        company=company,
        content_type=content_type,
        object_ids=[pk for pk in local_pks if pk is not None],
    )


def maps_for_objects(
    *, company: Company, content_type: ContentType, object_ids: Iterable[Any]
) -> dict[str, IdMap]:
    """{object id (text): IdMap} of the mapped objects among ``object_ids`` (one query)."""
    ids = {str(object_id) for object_id in object_ids}
    if not ids:
        return {}
    rows = IdMap.objects.filter(
        _among("object_id", ids), company=company, content_type=content_type
    )
    return {row.object_id: row for row in rows}


def connec_ids_for_objects(
    *, company: Company, content_type: ContentType | int, object_ids: Iterable[Any]
) -> dict[str, str]:
    """{object id (text): connec id} of the mapped objects among ``object_ids`` (one query,
    none for no ids); ``content_type``: the objects' content type, or its primary key."""
    ids = {str(object_id) for object_id in object_ids}
    if not ids:
        return {}
    rows = IdMap.objects.filter(
        _among("object_id", ids), company=company, content_type=content_type
    ).values_list("object_id", "connec_id")
    return dict(rows)


def objects_for_connec_ids(
    *, company: Company, content_type: ContentType, object_ids: Iterable[Any]
) -> dict[str, str]:
    """{connec id: object id (text)} of the mapped objects among ``object_ids`` (one query)."""
    return {
        connec_id: object_id
        for object_id, connec_id in connec_ids_for_objects(
            company=company, content_type=content_type, object_ids=object_ids
        ).items()
    }


def links_for_objects(
    *, company: Company, content_type: ContentType, object_ids: Iterable[Any]
) -> dict[str, tuple[str, str]]:
    """{object id (text): (connec id, last pushed hash)} of the mapped objects (one query)."""
    ids = {str(object_id) for object_id in object_ids}
    if not ids:
        return {}
    rows = IdMap.objects.filter(
        _among("object_id", ids), company=company, content_type=content_type
    ).values_list("object_id", "connec_id", "last_pushed_hash")
    return {object_id: (connec_id, digest) for object_id, connec_id, digest in rows}


def owners_of(*, company: Company, connec_ids: Iterable[str]) -> dict[tuple[str, str], str]:
    """{(entity, connec id): object id} of the given Connec! ids, in any entity (one query)."""
    ids = set(connec_ids)
    if not ids:
        return {}
    rows = IdMap.objects.filter(_among("connec_id", ids), company=company).values_list(
        "entity", "connec_id", "object_id"
    )
    return {(entity, connec_id): object_id for entity, connec_id, object_id in rows}


def maps_for_keys(*, company: Company, connec_ids: Iterable[str]) -> dict[tuple[str, str], IdMap]:
    """{(entity, connec id): IdMap} of the given Connec! ids, in any entity (one query)."""
    ids = {connec_id for connec_id in connec_ids if connec_id}
    if not ids:
        return {}
    rows = IdMap.objects.filter(_among("connec_id", ids), company=company)
    return {(row.entity, row.connec_id): row for row in rows}


def exclude_mapped(
    rows: models.QuerySet[_RowT], *, company: Company, content_type_id: int
) -> models.QuerySet[_RowT]:
    """``rows`` (of a model with an ``object_id``) but those whose object the IdMap knows
    (one subquery)."""
    mapped = IdMap.objects.filter(
        company=company, content_type_id=content_type_id, object_id=OuterRef("object_id")
    )
    return rows.exclude(Exists(mapped))


def find_id_map(*, company: Company, entity: str, connec_id: str) -> IdMap | None:
    return IdMap.objects.filter(company=company, entity=entity, connec_id=connec_id).first()


def id_map_for_object(*, company: Company, obj: models.Model) -> IdMap | None:
    content_type = ContentType.objects.get_for_model(type(obj))
    return IdMap.objects.filter(
        company=company, content_type=content_type, object_id=str(obj.pk)
    ).first()


def newest_version(*, company: Company, entity: str) -> datetime.datetime | None:
    """The newest Connec! ``updated_at`` pulled or pushed of ``entity`` (``None``: none)."""
    row = IdMap.objects.filter(company=company, entity=entity).aggregate(
        pulled=Max("last_pulled_updated_at"), pushed=Max("last_pushed_updated_at")
    )
    values = [v for v in row.values() if v is not None]
    return max(values) if values else None


def mapped_counts(*, company: Company, entities: Iterable[str]) -> dict[str, int]:
    """{entity: records of ``company`` linked to a Connec! record} for the mappers'
    ``entities`` (one query per entity).

    Only records that exist here count, those the mapper's tenant query finds
    (``Mapper.for_company``, what a list of the company's records shows): an IdMap row
    outlives its local object when the record is deleted, here or in Connec! (which keeps
    it, inactive), so that a late version of it stays out; such a record is in neither.
    (One ``UNION`` of grouped counts would be one query, but Django 6.1 compiles it with an
    ``ORDER BY`` that SQLite refuses.)
    """
    counts: dict[str, int] = {}
    for entity in entities:
        mapper = registry.for_entity(entity)
        linked = IdMap.objects.filter(
            company=company,
            content_type=ContentType.objects.get_for_model(mapper.model),
            object_id=key_text_sql(mapper.model, OuterRef("pk")),
        )
        counts[entity] = mapper.for_company(company).filter(Exists(linked)).order_by().count()
    return counts


def last_known(id_map: IdMap) -> datetime.datetime | None:
    """The ``updated_at`` of the newest version pulled or pushed (``None``: neither)."""
    return max(
        (t for t in (id_map.last_pulled_updated_at, id_map.last_pushed_updated_at) if t),
        default=None,
    )


def is_stale(id_map: IdMap, updated_at: datetime.datetime | None) -> bool:
    """Whether a Connec! version (its ``updated_at``) is not newer than the last one pulled
    or pushed: a redelivery, an out-of-order delivery or the echo of our own push, skipped
    when applied. A version without a time, or a record never pulled nor pushed, is not."""
    last = last_known(id_map)
    return updated_at is not None and last is not None and updated_at <= last


# --- the table's statistics ---------------------------------------------------------------


class TableStatistics:
    """Keeps PostgreSQL's statistics of the IdMap table in step with a large import.

    Every page looks its ids up in IdMap by (company, entity, Connec! id). While
    the statistics still say the company has (almost) no rows of an entity,
    PostgreSQL reads all of them and filters, instead of probing the unique
    index for each id: a cost that grows with every page (at 100k records, a
    fifth of the import's time went there). As advised after bulk loads,
    the table is analyzed (a sample: tens of milliseconds) each time an
    entity's imported rows have doubled, from ``MIN_ROWS`` on. Without
    ownership of the table PostgreSQL only warns; other databases need none of it.
    """

    MIN_ROWS = 5000

    def __init__(self) -> None:
        self._connection = connections[router.db_for_write(IdMap)]
        self._analyzed_at: dict[str, int] = {}

    def imported(self, entity: str, rows: int) -> None:
        if self._connection.vendor != "postgresql":
            return
        if rows < max(self.MIN_ROWS, 2 * self._analyzed_at.get(entity, 0)):
            return
        self._analyzed_at[entity] = rows
        table = self._connection.ops.quote_name(IdMap._meta.db_table)
        with self._connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")


# --- writes -------------------------------------------------------------------------------


def link_record(
    *,
    company: Company,
    entity: str,
    obj: models.Model,
    connec_id: str,
    pulled_updated_at: datetime.datetime | None = None,
    pushed_updated_at: datetime.datetime | None = None,
) -> IdMap:
    """Map ``obj`` to a Connec! record (idempotent; updates the timestamps given)."""
    content_type = ContentType.objects.get_for_model(type(obj))
    defaults: dict[str, Any] = {"content_type": content_type, "object_id": str(obj.pk)}
    if pulled_updated_at is not None:
        defaults["last_pulled_updated_at"] = pulled_updated_at
    if pushed_updated_at is not None:
        defaults["last_pushed_updated_at"] = pushed_updated_at
    id_map, _ = IdMap.objects.update_or_create(
        company=company, entity=entity, connec_id=connec_id, defaults=defaults
    )
    return id_map


def add_links(
    *, company: Company, entity: str, content_type: ContentType, links: dict[str, str]
) -> None:
    """Map {connec id: object id}, skipping the Connec! ids and objects already mapped."""
    if not links:
        return
    known = bulk_lookup(company=company, entity=entity, connec_ids=links)
    mapped_objects = set(
        IdMap.objects.filter(
            _among("object_id", links.values()), company=company, content_type=content_type
        ).values_list("object_id", flat=True)
    )
    new_maps = [
        IdMap(
            company=company,
            entity=entity,
            content_type=content_type,
            object_id=object_id,
            connec_id=connec_id,
        )
        for connec_id, object_id in links.items()
        if connec_id not in known and object_id not in mapped_objects
    ]
    if new_maps:
        IdMap.objects.bulk_create(new_maps, ignore_conflicts=True)


def link_unlinked(
    *, company: Company, entity: str, content_type: ContentType, links: dict[str, str]
) -> dict[str, IdMap]:
    """Map {connec id: object id} of records found equal to local objects no IdMap row
    names (:mod:`maestrano_sync.matching`); the rows of those records now (one statement and
    one lookup). A row that would break the table's rules (written meanwhile) is skipped:
    the lookup then gives what the table holds."""
    if not links:
        return {}
    insert_id_maps(
        company=company,
        entity=entity,
        content_type=content_type,
        rows=[NewIdMap(object_id, connec_id) for connec_id, object_id in links.items()],
        now=timezone.now(),
        ignore_conflicts=True,
    )
    return bulk_lookup(company=company, entity=entity, connec_ids=links)


def new_pushed(
    *,
    company: Company,
    entity: str,
    content_type_id: int,
    object_id: str,
    connec_id: str,
    updated_at: datetime.datetime | None,
    digest: str,
) -> IdMap:
    """An unsaved IdMap row for a record a push created (saved by :func:`save_pushed`)."""
    return IdMap(
        company=company,
        entity=entity,
        content_type_id=content_type_id,
        object_id=object_id,
        connec_id=connec_id,
        last_pushed_updated_at=updated_at,
        last_pushed_hash=digest,
    )


#: The columns of a pushed IdMap row :func:`save_pushed` writes (the stamps aside).
_PUSHED_FIELDS = (
    "company_id",
    "entity",
    "content_type_id",
    "object_id",
    "connec_id",
    "last_pulled_updated_at",
    "last_pushed_updated_at",
    "last_pushed_hash",
)
_pushed_row = attrgetter(*_PUSHED_FIELDS)
#: What a push changes in an IdMap row it knew (the upsert's updated columns).
_PUSHED_UPDATES = ["connec_id", "last_pushed_updated_at", "last_pushed_hash", "updated_at"]


def save_pushed(*, new: list[IdMap], changed: list[IdMap], now: datetime.datetime) -> None:
    """Write a push's IdMap rows: ``new`` inserted (existing ones kept), ``changed`` updated
    (Connec! id, last pushed version and hash).

    Both as rows (:func:`~maestrano_integration.bulk_insert.insert_rows`: one JSON parameter
    per statement), where ``bulk_create`` had psycopg quote every value of its arrays.
    """
    _write_pushed(new, now=now, ignore_conflicts=True)
    if not changed:
        return
    # Rows deleted since they were read stay deleted (as with an UPDATE), and so do rows
    # linked to another local object since (a record re-created here): the upsert's key is
    # the local object's, so such a row would be inserted again beside the one holding
    # its Connec! id. The others are locked, then written by one INSERT ... ON CONFLICT
    # (the local object's key) DO UPDATE, where bulk_update builds a CASE per field and
    # row (two thirds of an update push's time). Each conflicts with itself, the columns
    # not updated (``created_at`` among them) are left as they are.
    unchanged = set(
        IdMap.objects.select_for_update()
        .filter(pk__in=[id_map.pk for id_map in changed])
        .values_list("pk", "object_id")
    )
    rows = [id_map for id_map in changed if (id_map.pk, id_map.object_id) in unchanged]
    for id_map in rows:
        id_map.updated_at = now
    _write_pushed(
        rows,
        now=now,
        update_conflicts=True,
        unique_fields=["company", "content_type", "object_id"],
        update_fields=_PUSHED_UPDATES,
    )


def _write_pushed(id_maps: list[IdMap], *, now: datetime.datetime, **on_conflict: Any) -> None:
    if id_maps:
        insert_rows(
            IdMap,
            fields=_PUSHED_FIELDS,
            rows=list(map(_pushed_row, id_maps)),
            shared={"created_at": now, "updated_at": now},
            **on_conflict,
        )


def bump_pulled(*, bumps: Iterable[tuple[IdMap, datetime.datetime | None]]) -> None:
    """Raise each row's last pulled version to the given one when it is newer (bulk)."""
    changed = []
    now = timezone.now()
    for id_map, updated_at in bumps:
        if updated_at is None:
            continue
        if id_map.last_pulled_updated_at is None or updated_at > id_map.last_pulled_updated_at:
            id_map.last_pulled_updated_at = updated_at
            id_map.updated_at = now
            changed.append(id_map)
    if changed:
        IdMap.objects.bulk_update(changed, ["last_pulled_updated_at", "updated_at"])


def forget_pushed_hash(*, company: Company, entity: str, connec_ids: Iterable[str]) -> None:
    """Our last push no longer describes these records (Connec!'s version was applied)."""
    IdMap.objects.filter(_among("connec_id", connec_ids), company=company, entity=entity).exclude(
        last_pushed_hash=""
    ).update(last_pushed_hash="")


def relink_children(
    *,
    company: Company,
    entity: str,
    content_type: ContentType,
    rows: Iterable[tuple[models.Model, str | None, str]],
    unlinked: Iterable[str] = (),
) -> None:
    """(Re)write the IdMap rows of child objects: delete the old links of those objects and
    of those Connec! ids (a line id once linked to a row deleted since), then create."""
    rows = [(obj, line_id, digest) for obj, line_id, digest in rows]
    object_ids = [str(obj.pk) for obj, _, _ in rows] + list(unlinked)
    line_ids = [line_id for _, line_id, _ in rows if line_id]
    if object_ids:
        IdMap.objects.filter(
            _among("object_id", object_ids), company=company, content_type=content_type
        ).delete()
    if line_ids:
        IdMap.objects.filter(_among("connec_id", line_ids), company=company, entity=entity).delete()
    insert_id_maps(
        company=company,
        entity=entity,
        content_type=content_type,
        rows=[
            NewIdMap(str(obj.pk), line_id, last_pushed_hash=digest)
            for obj, line_id, digest in rows
            if line_id
        ],
        now=timezone.now(),
        ignore_conflicts=True,
    )


# New IdMap rows are written with one statement per page (``maestrano_integration.bulk_insert``)
# rather than with ``bulk_create`` / ``bulk_update``: there is one per imported row and one per
# invoice line, and the ORM's per-value work cost more than writing the models themselves
# (profile of benchmarks/initial_import.py: 4x less time on SQLite, 2-3x on PostgreSQL).


class NewIdMap(NamedTuple):
    """One IdMap row to insert: the values that differ between the rows of a page."""

    object_id: str
    connec_id: str
    last_pulled_updated_at: datetime.datetime | None = None
    last_pushed_hash: str = ""


def insert_id_maps(
    *,
    company: Company,
    entity: str,
    content_type: ContentType,
    rows: Sequence[NewIdMap],
    now: datetime.datetime,
    ignore_conflicts: bool = False,
) -> None:
    """INSERT new IdMap rows of ``company``'s ``entity`` (``content_type`` objects).

    ``ignore_conflicts``: a row that would break a unique constraint is skipped,
    as ``bulk_create(ignore_conflicts=True)`` does.
    """
    insert_rows(
        IdMap,
        fields=NewIdMap._fields,
        rows=rows,
        shared={
            "company": company.pk,
            "entity": entity,
            "content_type": content_type.pk,
            "created_at": now,
            "updated_at": now,
        },
        ignore_conflicts=ignore_conflicts,
    )


def update_pulled(*, id_maps: list[IdMap]) -> None:
    """UPDATE the object id, last pulled and updated times of known IdMap rows."""
    connection = connections[router.db_for_write(IdMap)]
    quote = connection.ops.quote_name
    opts = IdMap._meta
    fields = [model_field(IdMap, n) for n in ("object_id", "last_pulled_updated_at", "updated_at")]
    assignments = ", ".join(f"{quote(column_name(f))} = %s" for f in fields)
    where = f"{quote(column_name(opts.pk))} = %s"
    sql = f"UPDATE {quote(opts.db_table)} SET {assignments} WHERE {where}"  # noqa: S608
    params = [
        [f.get_db_prep_save(getattr(id_map, f.attname), connection) for f in fields] + [id_map.pk]
        for id_map in id_maps
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
