"""References of the Connec! records the inbox applies (notifications, reconciliation) and,
for :func:`drop_dangling_references`, of the initial import's pages too.

* :func:`fetch_missing_references`: referenced records we do not know are fetched from
  Connec! and applied first (up to :data:`MAX_REFERENCE_DEPTH` levels);
* :func:`null_dead_references`: references to records Connec! does not know (404) or
  deleted before we knew them are applied as empty;
* :func:`drop_dangling_references`: a reference to a local object deleted meanwhile
  becomes empty before the save (foreign keys are only checked at commit).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from django.db import models

from maestrano_accounts.models import Company
from maestrano_integration.connec import ConnecClient, ConnecNotFoundError
from maestrano_integration.lookups import among

from . import idmap
from .company_settings import SyncPolicy
from .inbox_plan import ApplyResult, entity_is_applicable
from .mappers import (
    Mapper,
    MappingError,
    connec_id_of,
    get_path,
    record_connec_id,
    set_path,
)
from .payloads import DeletedRecord, deleted_record_fate
from .registry import registry

MAX_REFERENCE_DEPTH = 3


def fetch_missing_references(
    *,
    company: Company,
    mapper: Mapper,
    parsed: list[tuple],
    client: ConnecClient,
    apply: Callable[..., ApplyResult],
    policy: SyncPolicy | None = None,
) -> tuple[ApplyResult, dict[str, set[str]]]:
    """Fetch and apply the referenced records we do not know yet (no transaction open).

    ``apply(entity=..., records=...)`` applies the fetched records (the inbox's
    :func:`maestrano_sync.inbox.apply_records`, one level deeper).

    Returns the result and the referenced ids that are dead: unknown to Connec!
    (404) or deleted there before we ever knew them. References to those are
    applied as empty, like references to records deleted on both sides. ``policy``: the
    company's sync settings, when the caller has read them (else read per entity).
    """
    result = ApplyResult()
    dead: dict[str, set[str]] = defaultdict(set)
    wanted: dict[str, set[str]] = defaultdict(set)
    for _, data, _ in parsed:
        for entity, ids in mapper.referenced_ids(data).items():
            wanted[entity].update(ids)
    for entity, ids in wanted.items():
        if entity == mapper.entity or entity_is_applicable(
            company=company, entity=entity, policy=policy
        ):
            continue
        known = idmap.local_pks_for(company=company, entity=entity, connec_ids=ids)
        missing = set(ids) - set(known)
        fetched = []
        for connec_id in sorted(missing):
            try:
                fetched.append(client.retrieve(entity, connec_id))
            except ConnecNotFoundError:
                dead[entity].add(connec_id)
                continue
        if fetched:
            result.fetched += len(fetched)
            result.add(apply(entity=entity, records=fetched))
            referenced = registry.for_entity(entity)
            dead[entity].update(
                connec_id_or_empty(record)
                for record in fetched
                if deleted_record_fate(mapper=referenced, data=record, mapped=False, exists=False)
                is DeletedRecord.REMEMBER
            )
    return result, dead


def connec_id_or_empty(record: Mapping[str, Any]) -> str:
    """The record's Connec! id (:func:`record_connec_id`), ``""`` when it has no usable one."""
    try:
        return record_connec_id(record) or ""
    except MappingError:
        return ""


def null_dead_references(
    mapper: Mapper, data: Mapping[str, Any], dead: dict[str, set[str]]
) -> Mapping[str, Any]:
    """A copy of ``data`` whose references to dead records are ``None``."""
    copy = json.loads(json.dumps(data, default=str))

    def clear(mapping: Any, item: dict[str, Any]) -> None:
        for connec_field, entity in mapping.references.values():
            value = get_path(item, connec_field, None)
            try:
                # The references' Connec! entries are in the record's realm.
                target = connec_id_of(value, record=data)
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


def drop_dangling_references(*, company: Company, mapper: Mapper, prepared: list) -> None:
    """A reference to a local object deleted meanwhile becomes empty (or fails the record).

    Checked here because foreign keys are only verified at commit: one dangling
    id would otherwise fail the whole transaction (a page of the import, a group of
    notifications). One query per referenced model that the records refer to; a
    reference its field cannot leave empty fails that record alone when saved.
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
            rows = registry.for_model(related).for_company(company).filter(among("pk", pks))
        else:
            rows = related._default_manager.filter(among("pk", pks))
        alive[related] = set(rows.values_list("pk", flat=True))
    for obj, mapping in checks:
        for local_name in mapping.references:
            field = mapping.model._meta.get_field(local_name)
            value = getattr(obj, field.attname)
            if value is not None and value not in alive[field.related_model]:
                setattr(obj, field.attname, None)
