"""The one record pipeline of Connec! data: parse → prepare → save (→ IdMap), used by the
initial import (:mod:`maestrano_sync.importer`, a page at a time), notifications and
reconciliation (:mod:`maestrano_sync.inbox`).

* :func:`parse_records`: well-formed records (id, ``updated_at``) of the company's
  group, the last occurrence of an id kept; the others (another group's record
  included) become errors of the :class:`Outcome`, parked by the caller.
* :func:`prepare`: every record mapped onto a new or existing instance of the
  mapper's model, with bulk reads only (one IdMap lookup, one per referenced
  entity, one for the existing rows). Records older than what was last pulled
  are skipped; records a mapper refuses are parked; records in their deleted
  state are set aside, never mapped (:func:`maestrano_sync.payloads.deleted_record_fate`);
  a record whose local object was deleted here, its delete not pushed yet, is not
  created again (the pending delete wins, :mod:`maestrano_sync.conflicts`).
* :func:`save`: ``bulk_create`` / ``bulk_update`` of the models, their children
  replaced, one statement for the IdMap rows; when the database refuses the
  batch, record by record (:func:`save_one_by_one`), the refused ones parked.
* :func:`apply_deleted`: what records in their deleted state do: local objects
  deleted, deleted ones kept deleted, unknown ones remembered (``RemoteTombstone``).

The caller owns the transaction and what surrounds the batch (cursor, conflicts,
parked rows), and calls :func:`apply_deleted` after :func:`save`.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, DataError, IntegrityError, models, transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_integration.bulk_insert import insert_instances
from maestrano_integration.lookups import in_bulk
from maestrano_integration.strict_input import Unreadable

from . import idmap
from .children import save_children
from .conflicts import LocalChange, conflict_record, pending_local_changes
from .keys import key_reader, local_keys
from .mappers import (
    ChildMapping,
    Mapper,
    MappingError,
    ReferenceResolver,
    connec_time,
    record_connec_id,
)
from .models import IdMap, RemoteTombstone, SyncConflict
from .payloads import DeletedRecord, deleted_record_fate
from .values import foreign_group_problem

logger = logging.getLogger(__name__)

#: (Connec! id, record, updated_at) of a well-formed record.
ParsedRecord = tuple[str, Mapping[str, Any], datetime.datetime | None]


@dataclass
class Prepared:
    """One mapped record, ready to be saved."""

    connec_id: str
    data: Mapping[str, Any]
    updated_at: datetime.datetime | None
    instance: models.Model
    is_new: bool
    id_map: IdMap | None
    children: dict[type[ChildMapping], list[models.Model]] = field(default_factory=dict)


@dataclass
class Outcome:
    """What happened to a batch of records: counts, the records parked with their reason,
    and the records in their deleted state that :func:`prepare` set aside, by fate
    (:func:`apply_deleted` applies them): (IdMap row, ``updated_at``) of mapped records,
    (Connec! id, ``updated_at``) of the others. ``bump``: mapped records not applied whose
    version is remembered as pulled, and ``conflicts``: the conflicts :func:`prepare`
    decided (the caller settles them, :func:`maestrano_sync.conflicts.settle_conflicts`)."""

    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[tuple[str | None, str, Any]] = field(default_factory=list)
    delete: list[tuple[IdMap, datetime.datetime | None]] = field(default_factory=list)
    stays_deleted: list[tuple[IdMap, datetime.datetime | None]] = field(default_factory=list)
    remember: list[tuple[str, datetime.datetime | None]] = field(default_factory=list)
    bump: list[tuple[IdMap, datetime.datetime | None]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def set_aside(self) -> int:
        """How many records in their deleted state :func:`prepare` set aside."""
        return len(self.delete) + len(self.stays_deleted) + len(self.remember)


def parse_records(records: list[Any], outcome: Outcome, *, group_uid: str) -> list[ParsedRecord]:
    """(connec id, record, updated_at) for well-formed records of the group ``group_uid``
    (the company's); the others become errors (parked), another group's record too
    (:func:`maestrano_sync.values.foreign_group_problem`).

    A Connec! id seen twice in one page keeps its last occurrence.
    """
    by_id: dict[str, ParsedRecord] = {}
    for data in records:
        if type(data) is not dict and not isinstance(data, Mapping):  # dict: no ABC check
            if isinstance(data, Unreadable):  # in a page that could not be read whole
                outcome.errors.append((None, f"unreadable record: {data.reason}", data))
            else:
                outcome.errors.append((None, "malformed record: not a JSON object", data))
            continue
        try:
            connec_id = record_connec_id(data)
        except MappingError as error:
            outcome.errors.append((None, f"malformed record: id: {error}", data))
            continue
        if not connec_id:
            outcome.errors.append((None, "malformed record: no id", data))
            continue
        if problem := foreign_group_problem(data, group_uid=group_uid):
            outcome.errors.append((connec_id, problem, data))
            continue
        try:
            updated_at = connec_time(data.get("updated_at"))
        except MappingError as error:
            outcome.errors.append((connec_id, f"malformed record: updated_at: {error}", data))
            continue
        by_id.pop(connec_id, None)
        by_id[connec_id] = (connec_id, data, updated_at)
    return list(by_id.values())


def park_foreign_records(
    parsed: list[ParsedRecord], outcome: Outcome, *, group_uid: str
) -> list[ParsedRecord]:
    """``parsed`` without another group's records, which become errors (parked): for
    records whose data was replaced after :func:`parse_records` by a version fetched
    from Connec! (the inbox's current version of a conflict)."""
    kept = []
    for connec_id, data, updated_at in parsed:
        if problem := foreign_group_problem(data, group_uid=group_uid):
            outcome.errors.append((connec_id, problem, data))
        else:
            kept.append((connec_id, data, updated_at))
    return kept


def prepare(
    *,
    company: Company,
    mapper: Mapper,
    parsed: list[ParsedRecord],
    outcome: Outcome,
    known: Mapping[str, IdMap] | None = None,
) -> list[Prepared]:
    """Map every record onto a new or existing instance (bulk reads only).

    A record in its deleted state is not mapped: it goes to ``outcome``'s list of its
    fate (:func:`maestrano_sync.payloads.deleted_record_fate`), for :func:`apply_deleted`.
    ``known``: the IdMap rows of ``parsed`` when the caller has read them already
    (in the same transaction), else they are read here.
    """
    model = mapper.model
    entity = mapper.entity
    if known is None:
        known = idmap.bulk_lookup(company=company, entity=entity, connec_ids=[p[0] for p in parsed])
    wanted: dict[str, set[str]] = {}
    for _, data, _ in parsed:
        for ref_entity, ids in mapper.referenced_ids(data).items():
            wanted.setdefault(ref_entity, set()).update(ids)
    resolver = ReferenceResolver(
        local_pks={
            ref_entity: idmap.local_pks_for(company=company, entity=ref_entity, connec_ids=ids)
            for ref_entity, ids in wanted.items()
        }
    )
    existing = (
        in_bulk(
            mapper.for_company(company),
            local_keys(model, [id_map.object_id for id_map in known.values()]),
        )
        if known  # none on a first import: no queryset to build
        else {}
    )
    read_key = key_reader(model)
    deleted_here = _pending_deletes(
        company=company,
        model=model,
        parsed=parsed,
        known=known,
        existing=existing,
        read_key=read_key,
    )
    new_instance = mapper.instance_factory(company)
    prepared: list[Prepared] = []
    for connec_id, data, updated_at in parsed:
        id_map = known.get(connec_id)
        instance = None
        if id_map is not None:
            last = id_map.last_pulled_updated_at
            if updated_at is not None and last is not None and updated_at <= last:
                outcome.skipped += 1
                continue
            instance = existing.get(read_key(id_map.object_id))
        fate = deleted_record_fate(
            mapper=mapper, data=data, mapped=id_map is not None, exists=instance is not None
        )
        if fate is not None:
            if id_map is None:
                outcome.remember.append((connec_id, updated_at))
            elif fate is DeletedRecord.DELETE:
                outcome.delete.append((id_map, updated_at))
            else:
                outcome.stays_deleted.append((id_map, updated_at))
            continue
        if id_map is not None and (local := deleted_here.get(id_map.object_id)) is not None:
            # Deleted here after the caller planned the batch (it saw no pending change):
            # the delete wins, as in the plan; Connec!'s version is kept as the loser.
            outcome.skipped += 1
            outcome.bump.append((id_map, updated_at))
            outcome.conflicts.append(
                conflict_record(
                    id_map, SyncConflict.Winner.LOCAL, local.changed_at, updated_at, data
                )
            )
            continue
        is_new = instance is None
        if instance is None:
            instance = new_instance()
        try:
            instance = mapper.to_local(data, instance=instance, references=resolver)
            children = mapper.children_to_local(data, company=company, references=resolver)
        except MappingError as error:
            outcome.errors.append((connec_id, str(error), data))
            continue
        except DatabaseError:
            raise  # the transaction is broken: the page (or notification) is retried whole
        except Exception as error:
            # A mapper's own code failed on this record's data: park it with the reason
            # (retried from the parked list once the mapper is fixed); the others go on.
            logger.exception("Connec! %s mapper failed on record %s", entity, connec_id)
            outcome.errors.append(
                (connec_id, f"mapper error: {error.__class__.__name__}: {error}", data)
            )
            continue
        prepared.append(
            Prepared(
                connec_id=connec_id,
                data=data,
                updated_at=updated_at,
                instance=instance,
                is_new=is_new,
                id_map=id_map,
                children=children,
            )
        )
    return prepared


def _pending_deletes(
    *,
    company: Company,
    model: type[models.Model],
    parsed: list[ParsedRecord],
    known: Mapping[str, IdMap],
    existing: Mapping[Any, models.Model],
    read_key: Callable[[Any], Any | None],
) -> dict[str, LocalChange]:
    """{object id: its pending delete} of the mapped records of ``parsed`` whose local
    object is gone (not in ``existing``) and whose delete waits in the outbox; one query,
    none when every mapped object exists. A delete commits with its outbox row, so an
    object found gone here has its delete visible here too. ``read_key``: the model's
    :func:`~maestrano_sync.keys.key_reader`, by which ``existing`` is keyed (read once)."""
    gone = {
        id_map.object_id
        for connec_id, _, _ in parsed
        if (id_map := known.get(connec_id)) is not None
        and read_key(id_map.object_id) not in existing
    }
    if not gone:
        return {}
    changes = pending_local_changes(
        company=company,
        content_type_id=ContentType.objects.get_for_model(model).pk,
        object_ids=gone,
    )
    return {object_id: change for object_id, change in changes.items() if change.deleted}


def save(
    *, company: Company, mapper: Mapper, prepared: list[Prepared], outcome: Outcome
) -> list[Prepared]:
    """Write ``prepared`` in bulk; the saved records (all, unless the database refused some).

    One bad row fails a whole statement: the batch is then redone record by
    record to find it, keeping the others (the refused ones become errors of
    ``outcome``). Call inside a transaction.
    """
    keyed_by_database = _keyed_by_database(prepared)
    try:
        with transaction.atomic():
            save_bulk(company=company, mapper=mapper, prepared=prepared)
    except (IntegrityError, DataError) as error:
        logger.info(
            "Bulk write of %s records failed (%s); retrying one by one",
            mapper.entity,
            error.__class__.__name__,
        )
        return save_one_by_one(
            company=company,
            mapper=mapper,
            prepared=prepared,
            outcome=outcome,
            keyed_by_database=keyed_by_database,
        )
    return prepared


def _keyed_by_database(prepared: list[Prepared]) -> set[int]:
    """The ``id()`` of the new rows (records and their children) that have no key before
    their insert: the database gives them one (an ``AutoField``). The others have theirs
    already (a UUID's default, a key the mapper set), which stays theirs."""
    return {
        id(obj)
        for item in prepared
        if item.is_new
        for obj in (item.instance, *(o for objects in item.children.values() for o in objects))
        if obj.pk is None
    }


def save_bulk(*, company: Company, mapper: Mapper, prepared: list[Prepared]) -> None:
    model = mapper.model
    manager = model._default_manager
    new = [item.instance for item in prepared if item.is_new]
    changed = [item.instance for item in prepared if not item.is_new]
    if new:
        insert_instances(model, new)
        if any(obj.pk is None for obj in new):  # backends that cannot return ids
            raise DatabaseError(f"{model._meta.label}: bulk_create returned no primary keys")
    if changed:
        manager.bulk_update(changed, mapper.update_field_names())
    save_children(company=company, mapper=mapper, prepared=prepared)
    _write_id_maps(company=company, mapper=mapper, prepared=prepared)


def _write_id_maps(*, company: Company, mapper: Mapper, prepared: list[Prepared]) -> None:
    content_type = ContentType.objects.get_for_model(mapper.model)
    now = timezone.now()
    new_rows: list[idmap.NewIdMap] = []
    changed_maps: list[IdMap] = []
    for item in prepared:
        object_id = str(item.instance.pk)
        if item.id_map is None:
            new_rows.append(idmap.NewIdMap(object_id, item.connec_id, item.updated_at))
        else:
            item.id_map.object_id = object_id
            item.id_map.last_pulled_updated_at = item.updated_at
            item.id_map.updated_at = now
            changed_maps.append(item.id_map)
    if new_rows:
        idmap.insert_id_maps(
            company=company,
            entity=mapper.entity,
            content_type=content_type,
            rows=new_rows,
            now=now,
        )
    if changed_maps:
        idmap.update_pulled(id_maps=changed_maps)


def save_one_by_one(
    *,
    company: Company,
    mapper: Mapper,
    prepared: list[Prepared],
    outcome: Outcome,
    keyed_by_database: set[int],
) -> list[Prepared]:
    """Slow path after a failed bulk write: each record in its own savepoint.

    The rolled-back insert gave keys to the rows in ``keyed_by_database``
    (:func:`_keyed_by_database`): they are taken back. Every other row keeps its own."""
    saved = []
    for item in prepared:
        if item.is_new:
            for obj in (item.instance, *(o for objects in item.children.values() for o in objects)):
                if id(obj) in keyed_by_database:
                    obj.pk = None
                obj._state.adding = True
        try:
            with transaction.atomic():
                save_bulk(company=company, mapper=mapper, prepared=[item])
        except (IntegrityError, DataError) as error:
            reason = f"rejected by the database: {str(error).splitlines()[0][:300]}"
            outcome.errors.append((item.connec_id, reason, item.data))
            continue
        saved.append(item)
    return saved


def apply_deleted(
    *,
    company: Company,
    mapper: Mapper,
    outcome: Outcome,
    delete: list[tuple[IdMap, datetime.datetime | None]] | None = None,
    bump: list[tuple[IdMap, datetime.datetime | None]] | None = None,
    tombstones: list[tuple[str, datetime.datetime | None]] | None = None,
) -> int:
    """Apply the records in their deleted state that :func:`prepare` set aside in ``outcome``
    and those given (the inbox's plan); the number of local objects deleted.

    ``delete``: their local objects are deleted, each in a savepoint (one a protected
    foreign key keeps is parked in ``outcome``, with the reason). Those and ``bump``
    (records whose local object is gone already, and versions to remember as pulled)
    raise their IdMap row's last pulled version. ``tombstones``: records never mapped
    here are remembered (``RemoteTombstone``), so that an older version delivered late
    creates nothing. Call inside the batch's transaction, after :func:`save`.
    """
    to_delete = [*outcome.delete, *(delete or ())]
    bumps = [*outcome.stays_deleted, *outcome.bump, *(bump or ())]
    deleted = 0
    if to_delete:
        model = mapper.model
        objects = in_bulk(
            mapper.for_company(company),
            local_keys(model, [id_map.object_id for id_map, _ in to_delete]),
        )
        read_key = key_reader(model)
        for id_map, updated_at in to_delete:
            obj = objects.get(read_key(id_map.object_id))
            if obj is not None:
                try:
                    with transaction.atomic():
                        obj.delete()
                    deleted += 1
                except (ProtectedError, RestrictedError) as error:
                    outcome.errors.append(
                        (id_map.connec_id, f"cannot delete locally: {error.args[0]}", {})
                    )
                    continue
            bumps.append((id_map, updated_at))
    idmap.bump_pulled(bumps=bumps)
    for connec_id, updated_at in [*outcome.remember, *(tombstones or ())]:
        row, created = RemoteTombstone.objects.get_or_create(
            company=company,
            entity=mapper.entity,
            connec_id=connec_id,
            defaults={"updated_at": updated_at},
        )
        newer = updated_at is not None and (row.updated_at is None or updated_at > row.updated_at)
        if not created and newer:
            RemoteTombstone.objects.filter(pk=row.pk).update(updated_at=updated_at)
    return deleted
