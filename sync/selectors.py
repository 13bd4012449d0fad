"""Reads of the sync's state. The only place that answers "do we know this record".

Every function takes the company (tenant) first: an IdMap row of another
company is never visible, even when Connec! ids collide.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from accounts.models import Company

from .models import IdMap, SyncRun
from .registry import registry


def bulk_lookup(*, company: Company, entity: str, connec_ids: Iterable[str]) -> dict[str, IdMap]:
    """{connec id: IdMap} for the known ids among ``connec_ids`` (one query)."""
    ids = {connec_id for connec_id in connec_ids if connec_id}
    if not ids:
        return {}
    rows = IdMap.objects.filter(company=company, entity=entity, connec_id__in=ids)
    return {row.connec_id: row for row in rows}


def local_pks_for(*, company: Company, entity: str, connec_ids: Iterable[str]) -> dict[str, Any]:
    """{connec id: local primary key} for the known ids (one query, no model instances)."""
    ids = {connec_id for connec_id in connec_ids if connec_id}
    if not ids:
        return {}
    mapper = registry.for_entity(entity)
    to_pk = mapper.model._meta.pk.to_python
    rows = IdMap.objects.filter(company=company, entity=entity, connec_id__in=ids).values_list(
        "connec_id", "object_id"
    )
    return {connec_id: to_pk(object_id) for connec_id, object_id in rows}


def connec_ids_for_pks(
    *, company: Company, entity: str, local_pks: Iterable[Any]
) -> dict[str, str]:
    """{str(local pk): connec id} for the mapped objects among ``local_pks`` (one query)."""
    mapper = registry.for_entity(entity)
    content_type = ContentType.objects.get_for_model(mapper.model)
    pks = {str(pk) for pk in local_pks if pk is not None}
    if not pks:
        return {}
    rows = IdMap.objects.filter(
        company=company, content_type=content_type, object_id__in=pks
    ).values_list("object_id", "connec_id")
    return dict(rows)


def find_id_map(*, company: Company, entity: str, connec_id: str) -> IdMap | None:
    return IdMap.objects.filter(company=company, entity=entity, connec_id=connec_id).first()


def id_map_for_object(*, company: Company, obj: models.Model) -> IdMap | None:
    content_type = ContentType.objects.get_for_model(type(obj))
    return IdMap.objects.filter(
        company=company, content_type=content_type, object_id=str(obj.pk)
    ).first()


def find_local_object(*, company: Company, entity: str, connec_id: str) -> models.Model | None:
    """The local object mapped to a Connec! record of this company, or ``None``."""
    id_map = find_id_map(company=company, entity=entity, connec_id=connec_id)
    if id_map is None:
        return None
    mapper = registry.for_entity(entity)
    manager = mapper.model._default_manager
    return manager.filter(**{mapper.tenant_field: company}, pk=id_map.object_id).first()


def connec_id_for(*, company: Company, obj: models.Model) -> str | None:
    """The Connec! id of a local object, or ``None`` when it was never synced."""
    id_map = id_map_for_object(company=company, obj=obj)
    return id_map.connec_id if id_map is not None else None


def latest_run(*, company: Company, kind: str = SyncRun.Kind.IMPORT) -> SyncRun | None:
    return SyncRun.objects.filter(company=company, kind=kind).order_by("-started_at", "-pk").first()


def resumable_run(
    *, company: Company, entities: list[str] | None = None, kind: str = SyncRun.Kind.IMPORT
) -> SyncRun | None:
    """The latest unfinished run (running or failed) to continue, if its entities match."""
    run = (
        SyncRun.objects.filter(
            company=company, kind=kind, status__in=[SyncRun.Status.RUNNING, SyncRun.Status.FAILED]
        )
        .order_by("-started_at", "-pk")
        .first()
    )
    if run is None:
        return None
    newer_finished = SyncRun.objects.filter(company=company, kind=kind, pk__gt=run.pk).exists()
    if newer_finished:
        return None
    if entities is not None:
        run_entities = set(run.entities.values_list("entity", flat=True))
        if run_entities != set(entities):
            return None
    return run
