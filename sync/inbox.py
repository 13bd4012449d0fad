"""Applying Connec! records to local models: notifications and reconciliation
(docs/protocol.md, 'Connec! notifications').

:func:`apply_records` is idempotent and order-insensitive:

* unknown Connec! id → create the local object and map it; known →
  update it; a record carrying *our* external id is ours (a push
  whose answer was lost) and is linked, never duplicated;
* a version whose ``updated_at`` is not newer than the last one pulled or
  pushed is stale (a redelivery, an out-of-order delivery, the echo of our own
  push) and is skipped, so nothing is pushed back (no ping-pong);
* a record changed locally and remotely at once follows :mod:`sync.conflicts`;
* a record in its deleted state (``status: INACTIVE``, see
  :func:`sync.push.delete_payload`) deletes the local object when the mapper
  does not map ``status`` itself; a record we deleted stays deleted unless
  Connec! brings it back to life with a newer change;
* references are resolved through the IdMap; a referenced record we do not
  know is fetched from Connec! and applied first.

Local writes happen inside :func:`sync.outbox.applying_remote_changes`: they
never enter the outbox. The bulk writes go through the record pipeline (:mod:`sync.pipeline`).
"""

from __future__ import annotations

import datetime
import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone

from accounts.models import Company
from maestrano_integration.conf import get_preset, maestrano_settings
from maestrano_integration.connec import (
    ConnecClient,
    ConnecError,
    ConnecNotFoundError,
)

from . import lost_answers, pipeline
from .company_settings import policy_for
from .conflicts import (
    LocalChange,
    deleted_locally,
    pending_local_changes,
    record_conflict,
    remote_wins,
    supersede_local_changes,
)
from .locks import company_run, renew_lock
from .mappers import (
    Mapper,
    MappingError,
    ReferenceResolver,
    connec_id_of,
    connec_time_or_none,
    get_path,
    set_path,
)
from .models import (
    IdMap,
    InboxEntry,
    RemoteTombstone,
    SyncConflict,
    SyncRecordError,
    SyncState,
)
from .outbox import applying_remote_changes
from .push import delete_payload, status_is_data
from .registry import registry
from .scheduling import enqueue_inbox
from .selectors import bulk_lookup, local_pks_for
from .services import parked_record

logger = logging.getLogger(__name__)

MAX_REFERENCE_DEPTH = 3


@dataclass
class ApplyResult:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    skipped: int = 0
    ignored: int = 0
    conflicts: int = 0
    failed: int = 0
    fetched: int = 0

    def add(self, other: ApplyResult) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Plan:
    """What to do with one batch of records of one entity."""

    apply: list[tuple[str, Mapping[str, Any], datetime.datetime | None]] = field(
        default_factory=list
    )
    delete: list[tuple[IdMap, datetime.datetime | None]] = field(default_factory=list)
    bump: list[tuple[IdMap, datetime.datetime | None]] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    links: list[IdMap] = field(default_factory=list)
    tombstones: list[tuple[str, datetime.datetime | None]] = field(default_factory=list)


#: :func:`entity_is_applicable`'s reason when the company's sync is off.
SYNC_OFF = "the company's sync is off"


class SyncPaused(Exception):
    """The company's sync was switched off while its notifications were being applied."""


def entity_is_applicable(*, company: Company, entity: str) -> str | None:
    """``None`` when records of ``entity`` are applied, else why they are ignored."""
    try:
        mapper = registry.for_entity(entity)
    except LookupError:
        return "no mapper is registered for it"
    if not mapper.directions.import_enabled:
        return "its mapper has import disabled"
    subscriptions = get_preset(company.preset).subscriptions
    if not subscriptions.get(entity):
        return f"preset {company.preset!r} does not subscribe to it"
    policy = policy_for(company_id=company.pk)
    if not policy.enabled:
        return SYNC_OFF
    if not policy.imports(entity):
        return f"the company's direction for it is {policy.direction(entity).value!r}"
    return None


def is_deleted_state(mapper: Mapper, data: Mapping[str, Any]) -> bool:
    """Whether a Connec! record is in the state our deletes push (e.g. INACTIVE)."""
    marker = delete_payload(mapper)
    return bool(marker) and all(data.get(key) == value for key, value in marker.items())


def _parse_updated_at(data: Mapping[str, Any]) -> datetime.datetime | None:
    return connec_time_or_none(data.get("updated_at"))


def apply_records(
    *,
    company: Company,
    entity: str,
    records: list[Any],
    client: ConnecClient | None = None,
    depth: int = 0,
) -> ApplyResult:
    """Apply Connec! records of one entity to ``company``'s local models (see module doc)."""
    result = ApplyResult()
    mapper = registry.for_entity(entity)
    model = mapper.model
    content_type = ContentType.objects.get_for_model(model)
    outcome = pipeline.Outcome()
    # Newest last, so that the pipeline's de-duplication keeps the latest version.
    ordered = sorted(
        (r for r in records if isinstance(r, Mapping)),
        key=lambda r: _parse_updated_at(r) or datetime.datetime.min.replace(tzinfo=datetime.UTC),
    )
    ordered += [r for r in records if not isinstance(r, Mapping)]
    parsed = pipeline.parse_records(ordered, outcome)
    if not parsed and not outcome.errors:
        return result
    if client is not None:
        parsed = lost_answers.with_external_ids(
            company=company,
            entity=entity,
            content_type_id=content_type.pk,
            parsed=parsed,
            client=client,
        )
    _link_our_own_records(company=company, mapper=mapper, content_type=content_type, parsed=parsed)
    known = bulk_lookup(company=company, entity=entity, connec_ids=[p[0] for p in parsed])
    pending = pending_local_changes(
        company=company,
        content_type_id=content_type.pk,
        object_ids=[m.object_id for m in known.values()],
    )
    dead: dict[str, set[str]] = {}
    if client is not None:
        parsed = _current_versions_of_conflicts(
            entity=entity, parsed=parsed, known=known, pending=pending, client=client
        )
        if depth < MAX_REFERENCE_DEPTH:
            fetched, dead = _fetch_missing_references(
                company=company, mapper=mapper, parsed=parsed, client=client, depth=depth
            )
            result.add(fetched)
    existing_pks = {
        str(pk)
        for pk in mapper.for_company(company)
        .filter(pk__in=[model._meta.pk.to_python(m.object_id) for m in known.values()])
        .values_list("pk", flat=True)
    }
    unknown = [connec_id for connec_id, _, _ in parsed if connec_id not in known]
    tombstones = (
        dict(
            RemoteTombstone.objects.filter(
                company=company, entity=entity, connec_id__in=unknown
            ).values_list("connec_id", "updated_at")
        )
        if unknown
        else {}
    )
    plan = _plan(
        mapper=mapper,
        parsed=parsed,
        known=known,
        existing_pks=existing_pks,
        pending=pending,
        result=result,
        tombstones=tombstones,
    )
    _attach_losing_local_versions(company=company, mapper=mapper, plan=plan)
    if any(dead.values()):
        plan.apply = [
            (connec_id, _null_dead_references(mapper, data, dead), updated_at)
            for connec_id, data, updated_at in plan.apply
        ]
    with transaction.atomic(), applying_remote_changes():
        prepared = pipeline.prepare(
            company=company, mapper=mapper, parsed=plan.apply, outcome=outcome
        )
        _drop_dangling_references(company=company, mapper=mapper, prepared=prepared)
        prepared = pipeline.save(company=company, mapper=mapper, prepared=prepared, outcome=outcome)
        for item in prepared:
            if item.is_new:
                result.created += 1
            else:
                result.updated += 1
        if prepared:
            # The local record now holds Connec!'s version: our last push no longer describes
            # it, so a later local save of those old values must be pushed again.
            IdMap.objects.filter(
                company=company, entity=entity, connec_id__in=[i.connec_id for i in prepared]
            ).exclude(last_pushed_hash="").update(last_pushed_hash="")
        result.skipped += outcome.skipped
        result.deleted += _delete_local(company=company, mapper=mapper, plan=plan, outcome=outcome)
        _bump_pulled(plan.bump)
        _bury(company=company, entity=entity, tombstones=plan.tombstones)
        supersede_local_changes(
            company=company, content_type_id=content_type.pk, object_ids=plan.superseded
        )
        for conflict in plan.conflicts:
            record_conflict(company=company, entity=entity, **conflict)
        result.conflicts += len(plan.conflicts)
        if outcome.errors:
            SyncRecordError.objects.bulk_create(
                parked_record(
                    company=company, entity=entity, connec_id=connec_id, reason=reason, data=data
                )
                for connec_id, reason, data in outcome.errors
            )
            result.failed += len(outcome.errors)
            for connec_id, reason, _ in outcome.errors:
                logger.warning(
                    "Connec! %s record %s not applied: %s",
                    entity,
                    connec_id,
                    reason,
                    extra={"preset": company.preset, "group": company.group_uid},
                )
    return result


def _link_our_own_records(
    *, company: Company, mapper: Mapper, content_type: ContentType, parsed: list[tuple]
) -> None:
    """Map unknown records that carry our external id to our object (a lost push answer)."""
    api_id = get_preset(company.preset).api_id
    model = mapper.model
    ours: dict[str, str] = {}
    for connec_id, data, _ in parsed:
        ids = data.get("id")
        if not isinstance(ids, list):
            continue
        for entry in ids:
            if (
                isinstance(entry, Mapping)
                and entry.get("provider") == api_id
                and entry.get("realm") == company.group_uid
                and entry.get("id")
            ):
                ours[connec_id] = str(entry["id"])
    # Only ids of our objects of this company: not a value the primary key refuses or one
    # of another tenant (the external id is Connec!'s data, not proof). An object of ours
    # deleted since, its delete still in this company's outbox, is ours too: linked, the
    # record meets that delete (which wins, sync.conflicts) instead of coming back as new.
    pks: dict[str, Any] = {}
    for connec_id, object_id in ours.items():
        try:
            pks[connec_id] = model._meta.pk.to_python(object_id)
        except ValidationError:
            continue
    if not pks:
        return
    existing = {
        str(pk)
        for pk in mapper.for_company(company)
        .filter(pk__in=list(pks.values()))
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
    known = bulk_lookup(company=company, entity=mapper.entity, connec_ids=ours)
    mapped_objects = set(
        IdMap.objects.filter(
            company=company, content_type=content_type, object_id__in=ours.values()
        ).values_list("object_id", flat=True)
    )
    new_maps = [
        IdMap(
            company=company,
            entity=mapper.entity,
            content_type=content_type,
            object_id=object_id,
            connec_id=connec_id,
        )
        for connec_id, object_id in ours.items()
        if connec_id not in known and object_id not in mapped_objects
    ]
    if new_maps:
        IdMap.objects.bulk_create(new_maps, ignore_conflicts=True)


def _last_known(id_map: IdMap) -> datetime.datetime | None:
    """The ``updated_at`` of the newest version pulled or pushed (``None``: neither)."""
    return max(
        (t for t in (id_map.last_pulled_updated_at, id_map.last_pushed_updated_at) if t),
        default=None,
    )


def _current_versions_of_conflicts(
    *,
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
    latency); a transient error leaves the notification for a later try.
    """
    wanted: set[str] = set()
    for connec_id, _, updated_at in parsed:
        id_map = known.get(connec_id)
        local = pending.get(id_map.object_id) if id_map is not None else None
        if local is None or not remote_wins(local=local, remote_updated_at=updated_at):
            continue
        last = _last_known(id_map)
        if last is None or updated_at is None or updated_at > last:
            wanted.add(connec_id)
    if not wanted:
        return parsed
    current: dict[str, tuple[Mapping[str, Any], datetime.datetime]] = {}
    for connec_id in sorted(wanted):
        try:
            record = client.retrieve(entity, connec_id)
        except ConnecNotFoundError:
            continue
        updated_at = _parse_updated_at(record) if isinstance(record, Mapping) else None
        if updated_at is not None:
            current[connec_id] = (record, updated_at)
    refreshed = []
    for connec_id, data, updated_at in parsed:
        fresh = current.get(connec_id)
        if fresh is not None and (updated_at is None or fresh[1] > updated_at):
            data, updated_at = fresh
        refreshed.append((connec_id, data, updated_at))
    return refreshed


def _fetch_missing_references(
    *, company: Company, mapper: Mapper, parsed: list[tuple], client: ConnecClient, depth: int
) -> tuple[ApplyResult, dict[str, set[str]]]:
    """Fetch and apply the referenced records we do not know yet (no transaction open).

    Returns the result and the referenced ids that are dead: unknown to Connec!
    (404) or deleted there before we ever knew them. References to those are
    applied as empty, like references to records deleted on both sides.
    """
    result = ApplyResult()
    dead: dict[str, set[str]] = defaultdict(set)
    wanted: dict[str, set[str]] = defaultdict(set)
    for _, data, _ in parsed:
        for entity, ids in mapper.referenced_ids(data).items():
            wanted[entity].update(ids)
    for entity, ids in wanted.items():
        if entity == mapper.entity or entity_is_applicable(company=company, entity=entity):
            continue
        missing = set(ids) - set(local_pks_for(company=company, entity=entity, connec_ids=ids))
        fetched = []
        for connec_id in sorted(missing):
            try:
                fetched.append(client.retrieve(entity, connec_id))
            except ConnecNotFoundError:
                dead[entity].add(connec_id)
                continue
        if fetched:
            result.fetched += len(fetched)
            result.add(
                apply_records(
                    company=company, entity=entity, records=fetched, client=client, depth=depth + 1
                )
            )
            referenced = registry.for_entity(entity)
            dead[entity].update(
                _connec_id_or_empty(record.get("id"))
                for record in fetched
                if is_deleted_state(referenced, record) and not status_is_data(referenced)
            )
    return result, dead


def _connec_id_or_empty(value: Any) -> str:
    try:
        return connec_id_of(value) or ""
    except MappingError:
        return ""


def _null_dead_references(
    mapper: Mapper, data: Mapping[str, Any], dead: dict[str, set[str]]
) -> Mapping[str, Any]:
    """A copy of ``data`` whose references to dead records are ``None``."""
    copy = json.loads(json.dumps(data, default=str))

    def clear(mapping: Any, item: dict[str, Any]) -> None:
        for connec_field, entity in mapping.references.values():
            value = get_path(item, connec_field, None)
            try:
                target = connec_id_of(value)
            except MappingError:
                continue
            if target and target in dead.get(entity, ()):
                set_path(item, connec_field, None)

    clear(mapper, copy)
    for child in mapper.children:
        items = get_path(copy, child.path, None)
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict):
                clear(child, item)
    return copy


def _plan(
    *,
    mapper: Mapper,
    parsed: list[tuple[str, Mapping[str, Any], datetime.datetime | None]],
    known: dict[str, IdMap],
    existing_pks: set[str],
    pending: dict[str, LocalChange],
    result: ApplyResult,
    tombstones: Mapping[str, datetime.datetime | None],
) -> _Plan:
    plan = _Plan()
    data_status = status_is_data(mapper)
    for connec_id, data, updated_at in parsed:
        id_map = known.get(connec_id)
        deleted_state = is_deleted_state(mapper, data)
        if id_map is None:
            if deleted_state and not data_status:
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
        last = _last_known(id_map)
        if updated_at is not None and last is not None and updated_at <= last:
            result.skipped += 1  # stale, repeated, or the echo of our own push
            continue
        local = pending.get(id_map.object_id)
        if local is not None:
            if remote_wins(local=local, remote_updated_at=updated_at):
                plan.superseded.append(id_map.object_id)
                plan.conflicts.append(
                    _conflict(id_map, SyncConflict.Winner.REMOTE, local.changed_at, updated_at, {})
                )
            else:
                plan.conflicts.append(
                    _conflict(id_map, SyncConflict.Winner.LOCAL, local.changed_at, updated_at, data)
                )
                plan.bump.append((id_map, updated_at))
                continue
        exists = id_map.object_id in existing_pks
        if deleted_state and (not exists or not data_status):
            if exists:
                plan.delete.append((id_map, updated_at))
            else:
                plan.bump.append((id_map, updated_at))
            continue
        plan.apply.append((connec_id, _full_version(mapper, data) if exists else data, updated_at))
    return plan


def _full_version(mapper: Mapper, data: Mapping[str, Any]) -> Mapping[str, Any]:
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


def _conflict(
    id_map: IdMap,
    winner: str,
    local_changed_at: datetime.datetime,
    remote_updated_at: datetime.datetime | None,
    losing_data: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "connec_id": id_map.connec_id,
        "object_id": id_map.object_id,
        "winner": winner,
        "local_changed_at": local_changed_at,
        "remote_updated_at": remote_updated_at,
        "losing_data": dict(losing_data),
    }


def _attach_losing_local_versions(*, company: Company, mapper: Mapper, plan: _Plan) -> None:
    """Keep the local version a remote change is about to overwrite (conflicts only)."""
    losers = [c for c in plan.conflicts if c["winner"] == SyncConflict.Winner.REMOTE]
    if not losers:
        return
    model = mapper.model
    objects = mapper.for_company(company).in_bulk(
        [model._meta.pk.to_python(c["object_id"]) for c in losers]
    )
    for conflict in losers:
        obj = objects.get(model._meta.pk.to_python(conflict["object_id"]))
        if obj is not None:
            try:
                conflict["losing_data"] = mapper.export_fields(obj, ReferenceResolver())
            except MappingError:
                conflict["losing_data"] = {}


def _drop_dangling_references(*, company: Company, mapper: Mapper, prepared: list) -> None:
    """A reference to a local object deleted meanwhile becomes empty (or fails the record).

    Checked here because foreign keys are only verified at commit: one dangling
    id would otherwise fail the whole transaction.
    """
    checks: list[tuple[models.Model, Any]] = []
    for item in prepared:
        checks.append((item.instance, mapper))
        for child, objects in item.children.items():
            checks.extend((obj, child) for obj in objects)
    wanted: dict[type[models.Model], set[Any]] = defaultdict(set)
    for obj, mapping in checks:
        for local_name in mapping.references:
            field = mapping.model._meta.get_field(local_name)
            value = getattr(obj, field.attname)
            if value is not None:
                wanted[field.related_model].add(value)
    alive = {}
    for related, pks in wanted.items():
        if registry.is_registered(related):
            rows = registry.for_model(related).for_company(company).filter(pk__in=pks)
        else:
            rows = related._default_manager.filter(pk__in=pks)
        alive[related] = set(rows.values_list("pk", flat=True))
    for obj, mapping in checks:
        for local_name in mapping.references:
            field = mapping.model._meta.get_field(local_name)
            value = getattr(obj, field.attname)
            if value is not None and value not in alive[field.related_model]:
                setattr(obj, field.attname, None)


def _delete_local(*, company: Company, mapper: Mapper, plan: _Plan, outcome: Any) -> int:
    if not plan.delete:
        return 0
    model = mapper.model
    objects = mapper.for_company(company).in_bulk(
        [model._meta.pk.to_python(id_map.object_id) for id_map, _ in plan.delete]
    )
    deleted = 0
    for id_map, updated_at in plan.delete:
        obj = objects.get(model._meta.pk.to_python(id_map.object_id))
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
        plan.bump.append((id_map, updated_at))
    return deleted


def _bury(
    *, company: Company, entity: str, tombstones: list[tuple[str, datetime.datetime | None]]
) -> None:
    """Remember records first seen deleted, with the newest deleted version's time."""
    for connec_id, updated_at in tombstones:
        row, created = RemoteTombstone.objects.get_or_create(
            company=company, entity=entity, connec_id=connec_id, defaults={"updated_at": updated_at}
        )
        newer = updated_at is not None and (row.updated_at is None or updated_at > row.updated_at)
        if not created and newer:
            RemoteTombstone.objects.filter(pk=row.pk).update(updated_at=updated_at)


def _bump_pulled(bumps: list[tuple[IdMap, datetime.datetime | None]]) -> None:
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


# --- the inbox ----------------------------------------------------------------------------


def apply_notification(*, entry: InboxEntry, client: ConnecClient | None = None) -> ApplyResult:
    """Apply one stored notification."""
    return apply_payloads(company=entry.company, payloads=[entry.payload], client=client)


def apply_payloads(
    *, company: Company, payloads: list[Any], client: ConnecClient | None = None
) -> ApplyResult:
    """Apply notifications of one company together, entity by entity in dependency order.

    Several versions of one record across the payloads are fine: the newest
    ``updated_at`` wins, as if they had been applied one after the other.
    """
    merged: dict[str, list[Any]] = defaultdict(list)
    for payload in payloads:
        if isinstance(payload, dict):
            for entity, records in payload.items():
                if isinstance(records, list):
                    merged[entity].extend(records)
    result = ApplyResult()
    order = {entity: index for index, entity in enumerate(registry.dependency_order())}
    now = timezone.now()
    for entity in sorted(merged, key=lambda e: (order.get(e, len(order)), e)):
        records = merged[entity]
        reason = entity_is_applicable(company=company, entity=entity)
        if reason == SYNC_OFF:
            raise SyncPaused  # never ignored: kept until the sync is on again
        if reason is not None:
            result.ignored += len(records)
            logger.info(
                "Connec! notifications: %s records of %r ignored: %s",
                len(records),
                entity,
                reason,
                extra={"preset": company.preset, "group": company.group_uid, "entity": entity},
            )
            continue
        result.add(apply_records(company=company, entity=entity, records=records, client=client))
        SyncState.objects.update_or_create(
            company=company, entity=entity, defaults={"last_notification_at": now}
        )
    return result


@dataclass
class InboxRun:
    locked: bool = False
    paused: bool = False  # the company's sync is off: its notifications wait
    processed: int = 0
    failed: int = 0
    deferred: int = 0
    result: ApplyResult = field(default_factory=ApplyResult)


#: Notifications applied together (up to this many records) when several are waiting.
GROUP_RECORDS = 1000


def _next_group(company: Company) -> list[InboxEntry]:
    waiting = InboxEntry.objects.filter(
        company=company,
        status__in=[InboxEntry.Status.PENDING, InboxEntry.Status.PROCESSING],
    ).order_by("pk")[:200]
    group: list[InboxEntry] = []
    records = 0
    for entry in waiting:
        if group and records + entry.record_count > GROUP_RECORDS:
            break
        group.append(entry)
        records += entry.record_count
    return group


def process_inbox(*, company: Company, client: ConnecClient | None = None) -> InboxRun:
    """Apply the company's pending notifications in arrival order, under the company lock.

    One worker at a time per company, so two versions of a record are never
    applied concurrently; waiting notifications are applied together (one
    bulk write per entity). A transient Connec! error (fetching a missing
    reference) leaves them pending for a later try; an unexpected error marks
    the notification failed (retry it from the admin), the others go on.
    """
    run = InboxRun()
    if not policy_for(company_id=company.pk).enabled:
        run.paused = True  # kept in the inbox; applied when the sync is switched on again
        return run
    with company_run(company=company, client=client) as held:
        if held is None:
            run.locked = True
            return run
        token, client = held
        while renew_lock(company_id=company.pk, token=token):
            group = _next_group(company)
            if not group:
                break
            if not _process_group(company=company, group=group, client=client, run=run):
                break
    return run


def _process_group(
    *, company: Company, group: list[InboxEntry], client: ConnecClient, run: InboxRun
) -> bool:
    """Apply ``group``; ``False`` when processing must stop for now (transient error)."""
    ids = [entry.pk for entry in group]
    context = {"preset": company.preset, "group": company.group_uid, "notifications": ids}
    InboxEntry.objects.filter(pk__in=ids).update(
        status=InboxEntry.Status.PROCESSING, attempts=models.F("attempts") + 1
    )
    try:
        run.result.add(
            apply_payloads(
                company=company, payloads=[entry.payload for entry in group], client=client
            )
        )
    except SyncPaused:
        InboxEntry.objects.filter(pk__in=ids).update(
            status=InboxEntry.Status.PENDING, attempts=models.F("attempts") - 1
        )
        run.paused = True
        return False  # what was applied is applied again later (idempotent)
    except ConnecError as error:
        max_attempts = int(maestrano_settings.SYNC["MAX_ATTEMPTS"])
        attempts = max(entry.attempts for entry in group) + 1
        status = (
            InboxEntry.Status.PENDING
            if error.is_transient and attempts < max_attempts
            else InboxEntry.Status.FAILED
        )
        InboxEntry.objects.filter(pk__in=ids).update(status=status, last_error=str(error)[:4000])
        if status == InboxEntry.Status.PENDING:
            run.deferred += len(ids)
        else:
            run.failed += len(ids)
        logger.warning("Connec! notifications not applied yet: %s", error, extra=context)
        return False  # keep arrival order: later notifications wait for these
    except Exception as error:
        if len(group) > 1:
            # Find the culprit: apply them one by one.
            InboxEntry.objects.filter(pk__in=ids).update(status=InboxEntry.Status.PENDING)
            for entry in group:
                entry.refresh_from_db()
                if not _process_group(company=company, group=[entry], client=client, run=run):
                    return False
            return True
        logger.exception("Connec! notification %s failed", ids[0], extra=context)
        InboxEntry.objects.filter(pk__in=ids).update(
            status=InboxEntry.Status.FAILED,
            last_error=f"{error.__class__.__name__}: {error}"[:4000],
        )
        run.failed += 1
        return True
    InboxEntry.objects.filter(pk__in=ids).update(
        status=InboxEntry.Status.DONE, processed_at=timezone.now(), last_error=""
    )
    run.processed += len(ids)
    return True


def has_pending_notifications(*, company: Company) -> bool:
    return InboxEntry.objects.filter(
        company=company, status__in=[InboxEntry.Status.PENDING, InboxEntry.Status.PROCESSING]
    ).exists()


def retry_failed_entries(*, queryset: models.QuerySet[InboxEntry]) -> int:
    """Put failed notifications back in the queue and enqueue their processing."""
    rows = queryset.filter(status=InboxEntry.Status.FAILED)
    companies = set(rows.values_list("company_id", flat=True))
    count = rows.update(status=InboxEntry.Status.PENDING, attempts=0)
    for company_id in companies:
        enqueue_inbox(company_id=company_id)
    return count
