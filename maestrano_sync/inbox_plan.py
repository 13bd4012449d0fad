"""What the inbox does with a batch of Connec! records of one entity, decided before
anything is written (:mod:`maestrano_sync.inbox` applies the plan; docs/protocol.md, 'Connec!
notifications').

* :func:`entity_is_applicable`: whether records of an entity are applied at all;
* :func:`link_our_own_records`: records carrying our external id are linked (a push
  whose answer was lost), never duplicated;
* :func:`current_versions_of_conflicts`: a version about to win a conflict is replaced
  by Connec!'s current one;
* :func:`plan_batch`: each record applied, skipped (stale, the echo of our push),
  deleted, remembered as deleted, or in conflict (:mod:`maestrano_sync.conflicts`);
* :func:`plan_records_changed_here`: the same plan for the records of an import page
  whose local object has a change not pushed yet (the import applies the others itself).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType

from maestrano_accounts.models import Company
from maestrano_integration.conf import get_preset
from maestrano_integration.connec import ConnecClient, ConnecNotFoundError
from maestrano_integration.lookups import among, in_bulk

from . import idmap
from .company_settings import SyncPolicy, policy_for
from .conflicts import (
    LocalChange,
    conflict_record,
    deleted_locally,
    pending_local_changes,
    remote_wins,
)
from .keys import key_reader, local_keys
from .mappers import Mapper, MappingError, ReferenceResolver, connec_time_or_none
from .models import IdMap, SyncConflict
from .payloads import DeletedRecord, deleted_record_fate
from .registry import registry
from .values import foreign_group_problem, our_entry_ids

logger = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    ignored: int = 0
    #: Kept in the inbox while the company's import of their entity is off.
    held: int = 0
    conflicts: int = 0
    failed: int = 0
    fetched: int = 0

    def add(self, other: ApplyResult) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Plan:
    """What to do with one batch of records of one entity."""

    apply: list[tuple[str, Mapping[str, Any], datetime.datetime | None]] = field(
        default_factory=list
    )
    delete: list[tuple[IdMap, datetime.datetime | None]] = field(default_factory=list)
    bump: list[tuple[IdMap, datetime.datetime | None]] = field(default_factory=list)
    #: {object id: the newest pending outbox row read} of the local changes that lost.
    superseded: dict[str, int] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    links: list[IdMap] = field(default_factory=list)
    tombstones: list[tuple[str, datetime.datetime | None]] = field(default_factory=list)


#: :func:`entity_is_applicable`'s reason when the company's sync is off.
SYNC_OFF = "the company's sync is off"


class SyncPaused(Exception):
    """The company's sync was switched off while its notifications were being applied."""


def entity_never_applied(*, company: Company, entity: str) -> str | None:
    """Why records of ``entity`` are ignored whatever the company's sync settings (no
    mapper, its import disabled, not subscribed to), or ``None``."""
    try:
        mapper = registry.for_entity(entity)
    except LookupError:
        if get_preset(company.preset).subscribes_to(entity):
            _warn_subscribed_without_mapper(preset=company.preset, entity=entity)
        return "no mapper is registered for it"
    if not mapper.directions.import_enabled:
        return "its mapper has import disabled"
    if not get_preset(company.preset).subscribes_to(entity):
        return f"preset {company.preset!r} does not subscribe to it"
    return None


#: The entities :func:`_warn_subscribed_without_mapper` warned about in this process.
_WARNED_WITHOUT_MAPPER: set[str] = set()


def _warn_subscribed_without_mapper(*, preset: str, entity: str) -> None:
    """A WARNING, once per entity and process: the platform sends records of ``entity``
    (the preset subscribes to it) that nothing here applies (no mapper is registered)."""
    if entity in _WARNED_WITHOUT_MAPPER:
        return
    _WARNED_WITHOUT_MAPPER.add(entity)
    logger.warning(
        "Connec! %s: preset %r subscribes to it but no mapper is registered for it, so its "
        "notified records are ignored (said once per process); register a mapper, or take "
        "it out of webhook.connec.subscriptions",
        entity,
        preset,
        extra={"preset": preset, "entity": entity},
    )


def entity_is_applicable(
    *, company: Company, entity: str, policy: SyncPolicy | None = None
) -> str | None:
    """``None`` when records of ``entity`` are applied, else why they are ignored.

    ``policy``: the company's sync settings when the caller has read them (an inbox run
    reads them once, :func:`maestrano_sync.inbox.process_inbox`); else they are read here.
    """
    if (never := entity_never_applied(company=company, entity=entity)) is not None:
        return never
    if policy is None:
        policy = policy_for(company_id=company.pk)
    if not policy.enabled:
        return SYNC_OFF
    if not policy.imports(entity):
        return f"the company's direction for it is {policy.direction(entity).value!r}"
    return None


def parse_updated_at(data: Mapping[str, Any]) -> datetime.datetime | None:
    return connec_time_or_none(data.get("updated_at"))


def link_our_own_records(
    *, company: Company, mapper: Mapper, content_type: ContentType, parsed: list[tuple]
) -> None:
    """Map unknown records that carry our external id to our object (a lost push answer)."""
    api_id = get_preset(company.preset).api_id
    model = mapper.model
    ours: dict[str, str] = {}
    for connec_id, data, _ in parsed:
        for object_id in our_entry_ids(data.get("id"), provider=api_id, realm=company.group_uid):
            ours[connec_id] = object_id
    # Only ids of our objects of this company: not a value the primary key refuses or one
    # of another tenant (the external id is Connec!'s data, not proof). An object of ours
    # deleted since, its delete still in this company's outbox, is ours too: linked, the
    # record meets that delete (which wins, maestrano_sync.conflicts) instead of coming back as new.
    pks: dict[str, Any] = {}
    read_key = key_reader(model)
    for connec_id, object_id in ours.items():
        if (pk := read_key(object_id)) is not None:
            pks[connec_id] = pk
    if not pks:
        return
    existing = {
        str(pk)
        for pk in mapper.for_company(company)
        .filter(among("pk", pks.values()))
        .values_list("pk", flat=True)
    }
    existing |= deleted_locally(
        company=company,
        content_type_id=content_type.pk,
        object_ids={str(pk) for pk in pks.values()} - existing,
    )
    ours = {c: str(pk) for c, pk in pks.items() if str(pk) in existing}
    if not ours:
        return
    idmap.add_links(company=company, entity=mapper.entity, content_type=content_type, links=ours)


def current_versions_of_conflicts(
    *,
    group_uid: str,
    entity: str,
    parsed: list[tuple[str, Mapping[str, Any], datetime.datetime | None]],
    known: dict[str, IdMap],
    pending: dict[str, LocalChange],
    client: ConnecClient,
) -> list[tuple[str, Mapping[str, Any], datetime.datetime | None]]:
    """Replace a version about to win a conflict by the record's current Connec! version.

    The pending local change may already be in Connec!: pushed, but its answer
    lost (a timeout, a worker killed mid-drain), so the IdMap does not know it
    and no notification ever tells us (Connec! does not notify the writer).
    Connec! then holds a version newer than the notified one, with our change in
    it; applying the notified one would undo our change locally only. One GET
    per such conflict (rare: a record changed on both sides within a drain's
    latency); a transient error leaves the notification for a later try. A version
    answered as another group's (:func:`maestrano_sync.values.foreign_group_problem`)
    takes the notified one's place whatever its time, so that the caller parks the record
    (:func:`maestrano_sync.pipeline.park_foreign_records`) rather than apply either.
    """
    wanted: set[str] = set()
    for connec_id, _, updated_at in parsed:
        id_map = known.get(connec_id)
        local = pending.get(id_map.object_id) if id_map is not None else None
        if (
            id_map is None
            or local is None
            or not remote_wins(local=local, remote_updated_at=updated_at)
        ):
            continue
        if not idmap.is_stale(id_map, updated_at):
            wanted.add(connec_id)
    if not wanted:
        return parsed
    current: dict[str, tuple[Mapping[str, Any], datetime.datetime]] = {}
    foreign: dict[str, Mapping[str, Any]] = {}
    for connec_id in sorted(wanted):
        try:
            record = client.retrieve(entity, connec_id)
        except ConnecNotFoundError:
            continue
        if isinstance(record, Mapping) and foreign_group_problem(record, group_uid=group_uid):
            foreign[connec_id] = record
            continue
        updated_at = parse_updated_at(record) if isinstance(record, Mapping) else None
        if updated_at is not None:
            current[connec_id] = (record, updated_at)
    refreshed = []
    for connec_id, data, updated_at in parsed:
        fresh = current.get(connec_id)
        if connec_id in foreign:
            data = foreign[connec_id]
        elif fresh is not None and (updated_at is None or fresh[1] > updated_at):
            data, updated_at = fresh
        refreshed.append((connec_id, data, updated_at))
    return refreshed


def existing_object_ids(*, company: Company, mapper: Mapper, object_ids: list[str]) -> set[str]:
    """Those of ``object_ids`` whose local object of ``company`` still exists (one query)."""
    if not object_ids:
        return set()
    return {
        str(pk)
        for pk in mapper.for_company(company)
        .filter(among("pk", local_keys(mapper.model, object_ids)))
        .values_list("pk", flat=True)
    }


def plan_records_changed_here(
    *,
    company: Company,
    mapper: Mapper,
    content_type_id: int,
    parsed: list[tuple[str, Mapping[str, Any], datetime.datetime | None]],
    known: Mapping[str, IdMap],
    result: ApplyResult,
) -> tuple[list[tuple[str, Mapping[str, Any], datetime.datetime | None]], Plan]:
    """Split an import page: the records whose local object has a pending local change
    (an outbox row not pushed yet: an edit, or a delete) are planned as a notification of
    them would be (:func:`plan_batch`: the conflict rule of :mod:`maestrano_sync.conflicts`, stale
    versions skipped into ``result``); the records to apply (the others, unchanged, and
    those the plan applies) and the plan.

    One outbox query when the page holds mapped records, none on a first import.
    """
    pending = pending_local_changes(
        company=company,
        content_type_id=content_type_id,
        object_ids=[id_map.object_id for id_map in known.values()],
    )
    if not pending:
        return parsed, Plan()
    changed: list[tuple[str, Mapping[str, Any], datetime.datetime | None]] = []
    others: list[tuple[str, Mapping[str, Any], datetime.datetime | None]] = []
    for record in parsed:
        id_map = known.get(record[0])
        (changed if id_map is not None and id_map.object_id in pending else others).append(record)
    plan = plan_batch(
        mapper=mapper,
        parsed=changed,
        known=known,
        existing_pks=existing_object_ids(
            company=company,
            mapper=mapper,
            object_ids=[known[connec_id].object_id for connec_id, _, _ in changed],
        ),
        pending=pending,
        result=result,
        tombstones={},
    )
    attach_losing_local_versions(company=company, mapper=mapper, plan=plan)
    return [*others, *plan.apply], plan


def plan_batch(
    *,
    mapper: Mapper,
    parsed: list[tuple[str, Mapping[str, Any], datetime.datetime | None]],
    known: Mapping[str, IdMap],
    existing_pks: set[str],
    pending: dict[str, LocalChange],
    result: ApplyResult,
    tombstones: Mapping[str, datetime.datetime | None],
) -> Plan:
    plan = Plan()
    for connec_id, data, updated_at in parsed:
        id_map = known.get(connec_id)
        if id_map is None:
            fate = deleted_record_fate(mapper=mapper, data=data, mapped=False, exists=False)
            if fate is DeletedRecord.REMEMBER:
                result.ignored += 1  # deleted before we ever knew it: remember it
                plan.tombstones.append((connec_id, updated_at))
                continue
            dead_at = tombstones.get(connec_id)
            if dead_at is not None and updated_at is not None and updated_at <= dead_at:
                # An older version delivered late (its first delivery failed): not a record
                # to create, Connec! deleted it since.
                result.skipped += 1
                continue
            plan.apply.append((connec_id, data, updated_at))
            continue
        if idmap.is_stale(id_map, updated_at):
            result.skipped += 1  # stale, repeated, or the echo of our own push
            continue
        local = pending.get(id_map.object_id)
        if local is not None:
            if remote_wins(local=local, remote_updated_at=updated_at):
                plan.superseded[id_map.object_id] = local.last_row
                plan.conflicts.append(
                    conflict_record(
                        id_map, SyncConflict.Winner.REMOTE, local.changed_at, updated_at, {}
                    )
                )
            else:
                plan.conflicts.append(
                    conflict_record(
                        id_map, SyncConflict.Winner.LOCAL, local.changed_at, updated_at, data
                    )
                )
                plan.bump.append((id_map, updated_at))
                continue
        exists = id_map.object_id in existing_pks
        fate = deleted_record_fate(mapper=mapper, data=data, mapped=True, exists=exists)
        if fate is DeletedRecord.DELETE:
            plan.delete.append((id_map, updated_at))
            continue
        if fate is DeletedRecord.STAYS_DELETED:
            plan.bump.append((id_map, updated_at))
            continue
        plan.apply.append((connec_id, full_version(mapper, data) if exists else data, updated_at))
    return plan


def full_version(mapper: Mapper, data: Mapping[str, Any]) -> Mapping[str, Any]:
    """``data`` with every mapped field and reference it does not carry set to ``None``.

    A Connec! record (notification, fetch) is a whole version, and Connec! leaves
    out what a record never had. Applied over an existing local object, such a
    field must be emptied: otherwise a local value that never reached Connec!
    (a pending change that lost a conflict) would survive the remote version and
    the two sides would disagree for good. Nested objects are copied, not changed.
    """
    result = dict(data)
    paths = [*mapper.fields.values(), *(path for path, _ in mapper.references.values())]
    for path in paths:
        *parents, leaf = path.split(".")
        current = result
        for part in parents:
            child = current.get(part)
            if child is None:
                child = {}
            elif isinstance(child, Mapping):
                child = dict(child)
            else:
                break  # not an object: left as it is (the mapper reports it)
            current[part] = child
            current = child
        else:
            current.setdefault(leaf, None)
    return result


def attach_losing_local_versions(*, company: Company, mapper: Mapper, plan: Plan) -> None:
    """Keep the local version a remote change is about to overwrite (conflicts only)."""
    losers = [c for c in plan.conflicts if c["winner"] == SyncConflict.Winner.REMOTE]
    if not losers:
        return
    model = mapper.model
    objects = in_bulk(
        mapper.for_company(company), local_keys(model, [c["object_id"] for c in losers])
    )
    read_key = key_reader(model)
    for conflict in losers:
        obj = objects.get(read_key(conflict["object_id"]))
        if obj is not None:
            try:
                conflict["losing_data"] = mapper.export_fields(obj, ReferenceResolver())
            except MappingError:
                conflict["losing_data"] = {}
