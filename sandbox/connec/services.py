"""Writing Connec! records: create, update, upsert by external id, smart merge.

Callers run each call in a transaction on the ``sandbox`` database and pass the
changed records on to ``notifications.enqueue_changes``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction

from sandbox.models import ConnecExternalId, ConnecRecord, Group, RegisteredApp

from .clock import next_timestamp
from .errors import ConnecApiError
from .queries import data_path
from .references import CONNEC_PROVIDER, find_by_entries, resolve_references
from .schema import SCHEMAS, clean_fields, deep_merge, is_id_entry, missing_required
from .selectors import records_of

logger = logging.getLogger(__name__)
SANDBOX_DATABASE = "sandbox"


@dataclass(frozen=True)
class WriteResult:
    record: ConnecRecord
    created: bool


def split_id_entries(entity: str, payload: dict[str, Any]) -> list[dict[str, str]]:
    """The ``{id, provider, realm}`` entries of ``payload["id"]`` (a plain id string is ignored:
    the URL names the record to update)."""
    value = payload.get("id")
    if value is None or isinstance(value, str):
        return []
    if not isinstance(value, list) or not all(is_id_entry(e) for e in value):
        raise ConnecApiError.single(
            422,
            'id must be a list of {"id", "provider", "realm"} entries',
            pointer=f"/{entity}/id",
        )
    return [{"id": e["id"], "provider": e["provider"], "realm": e["realm"]} for e in value]


def validated_changes(*, group: Group, entity: str, payload: dict[str, Any]) -> dict[str, Any]:
    cleaned, problems = clean_fields(entity, payload)
    cleaned.pop("opts", None)
    if problems:
        raise ConnecApiError(status=422, problems=problems)
    return resolve_references(group=group, entity=entity, data=cleaned)


def require_fields(entity: str, data: dict[str, Any]) -> None:
    problems = missing_required(entity, data)
    if problems:
        raise ConnecApiError(status=422, problems=problems)


def attach_external_ids(*, record: ConnecRecord, entries: list[dict[str, str]]) -> None:
    """Give ``record`` the external ids it does not have yet (Connec!'s own entries skipped).

    An external id already owned by another record of the group is a 422.
    """
    for entry in entries:
        if entry["provider"] == CONNEC_PROVIDER:
            continue
        lookup = {
            "group_id": record.group_id,
            "entity": record.entity,
            "provider": entry["provider"],
            "realm": entry["realm"],
            "external_id": entry["id"],
        }
        owner = (
            ConnecExternalId.objects.filter(**lookup).values_list("record_id", flat=True).first()
        )
        if owner == record.pk:
            continue
        if owner is not None:
            raise ConnecApiError.single(
                422, f"External id {entry} already belongs to another {record.entity}"
            )
        try:
            with transaction.atomic(using=SANDBOX_DATABASE):
                ConnecExternalId.objects.create(record=record, **lookup)
        except IntegrityError:
            # Another request attached it between our check and our insert.
            raise ConnecApiError.single(
                409, f"External id {entry} was attached concurrently; retry the request"
            ) from None


def next_code(*, group: Group, entity: str) -> str:
    prefix = SCHEMAS[entity].code_prefix
    return f"{prefix}{records_of(group=group, entity=entity).count() + 1}"


def smart_match(
    *, group: Group, entity: str, data: dict[str, Any], matching_fields: Any
) -> ConnecRecord | None:
    """The oldest record whose ``matching_fields`` all equal ``data``'s (docs/protocol.md,
    'Smart merging'), if any.

    A matching field missing from ``data`` disables matching: an absent value
    must not merge every record lacking it.
    """
    if not matching_fields:
        return None
    if not isinstance(matching_fields, list) or not all(
        isinstance(f, str) and f for f in matching_fields
    ):
        raise ConnecApiError.single(
            422, "opts.matching_fields must be a list of field names", pointer="/opts"
        )
    conditions = {}
    for name in matching_fields:
        value: Any = data
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None or value == "" or isinstance(value, dict | list):
            return None
        conditions[data_path(name)] = value
    return records_of(group=group, entity=entity).filter(**conditions).order_by("pk").first()


def create_record(
    *,
    group: Group,
    entity: str,
    payload: dict[str, Any],
    app: RegisteredApp | None,
    opts: dict[str, Any] | None = None,
) -> WriteResult:
    """POST: create, or update the record an external id or ``opts.matching_fields`` designates."""
    entries = split_id_entries(entity, payload)
    changes = validated_changes(group=group, entity=entity, payload=payload)
    target = find_by_entries(group=group, entity=entity, entries=entries, pointer=f"/{entity}/id")
    if target is None:
        options = opts if isinstance(opts, dict) else {}
        target = smart_match(
            group=group,
            entity=entity,
            data=changes,
            matching_fields=options.get("matching_fields"),
        )
    if target is not None:
        record = apply_update(record=target, changes=changes, entries=entries, app=app)
        logger.info(
            "Connec! %s %s merged on create",
            entity,
            record.uid,
            extra={"group": group.uid, "entity": entity, "app": app and app.api_id},
        )
        return WriteResult(record=record, created=False)
    schema = SCHEMAS[entity]
    data = {**schema.defaults, **changes}
    if schema.code_prefix and not data.get("code"):
        data["code"] = next_code(group=group, entity=entity)
    require_fields(entity, data)
    stamp = next_timestamp()
    record = ConnecRecord.objects.create(
        group=group, entity=entity, data=data, created_at=stamp, updated_at=stamp, written_by=app
    )
    attach_external_ids(record=record, entries=entries)
    logger.info(
        "Connec! %s %s created",
        entity,
        record.uid,
        extra={"group": group.uid, "entity": entity, "app": app and app.api_id},
    )
    return WriteResult(record=record, created=True)


def update_record(
    *, record: ConnecRecord, payload: dict[str, Any], app: RegisteredApp | None
) -> ConnecRecord:
    """PUT: a partial update (nested objects merged), plus any new external ids."""
    entries = split_id_entries(record.entity, payload)
    changes = validated_changes(group=record.group, entity=record.entity, payload=payload)
    return apply_update(record=record, changes=changes, entries=entries, app=app)


def apply_update(
    *,
    record: ConnecRecord,
    changes: dict[str, Any],
    entries: list[dict[str, str]],
    app: RegisteredApp | None,
) -> ConnecRecord:
    # Lock the row so two concurrent partial updates merge one after the other.
    locked = ConnecRecord.objects.select_for_update().select_related("group").get(pk=record.pk)
    data = deep_merge(locked.data, changes)
    require_fields(locked.entity, data)
    locked.data = data
    locked.updated_at = next_timestamp(after=locked.updated_at)
    locked.written_by = app
    locked.save(update_fields=["data", "updated_at", "written_by"])
    attach_external_ids(record=locked, entries=entries)
    return locked


def get_or_create_company(*, group: Group) -> ConnecRecord:
    """The group's ``company`` singleton, created from the group's details on first use."""
    company = records_of(group=group, entity="company").order_by("pk").first()
    if company is None:
        stamp = next_timestamp()
        company = ConnecRecord.objects.create(
            group=group,
            entity="company",
            data={"name": group.name, "currency": group.currency, "timezone": group.timezone},
            created_at=stamp,
            updated_at=stamp,
        )
    return company
