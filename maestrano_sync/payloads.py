"""What a pushed record looks like on the wire: its payload, deleted state, external id
and the Connec! ids of its references (docs/protocol.md, 'External ids').

Deletes: Connec! v2 has no DELETE; a deleted record is pushed as
``{"status": "INACTIVE"}`` (``{"status": "VOIDED"}`` for invoices), or what
the mapper's ``connec_delete_payload`` says. A record arriving in that state
follows :func:`deleted_record_fate`, whatever brings it (import, notification).
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, cast

from django.contrib.contenttypes.models import ContentType
from django.db import models

from maestrano_accounts.models import Company
from maestrano_integration.conf import get_preset
from maestrano_integration.http import path_segment_problem
from maestrano_integration.model_fields import field_attname

from . import idmap
from .mappers import ChildMapping, Mapper, MappingError, ReferenceResolver, get_path, set_path
from .registry import registry

#: How a deleted record is pushed, per entity (Connec! v2 has no DELETE).
DEFAULT_DELETE_PAYLOADS: dict[str, dict[str, Any]] = {"invoices": {"status": "VOIDED"}}


INACTIVE_PAYLOAD: dict[str, Any] = {"status": "INACTIVE"}


def delete_payload(mapper: Mapper) -> dict[str, Any]:
    """What a local delete sends: the mapper's ``connec_delete_payload`` or the entity default."""
    return dict(_delete_marker(mapper))


def _delete_marker(mapper: Mapper) -> Mapping[str, Any]:
    """:func:`delete_payload` itself, not a copy: for the checks that only read it."""
    custom = getattr(mapper, "connec_delete_payload", None)
    if custom is not None:
        return cast(Mapping[str, Any], custom)
    return DEFAULT_DELETE_PAYLOADS.get(mapper.entity, INACTIVE_PAYLOAD)


def status_is_data(mapper: Mapper) -> bool:
    """When the mapper maps the delete marker's fields, the marker is plain data (invoice
    ``VOIDED``): a delete is only pushed, and Connec!'s value is applied like any other."""
    mapped_paths = set(mapper.fields.values())
    return all(key in mapped_paths for key in _delete_marker(mapper))


def is_deleted_state(mapper: Mapper, data: Mapping[str, Any]) -> bool:
    """Whether a Connec! record is in the state our deletes push (e.g. INACTIVE)."""
    marker = _delete_marker(mapper)  # once per imported record: read, not copied
    return bool(marker) and all(data.get(key) == value for key, value in marker.items())


class DeletedRecord(enum.Enum):
    """What a Connec! record in its deleted state does here (:func:`deleted_record_fate`)."""

    #: Never mapped here: nothing is created, a ``RemoteTombstone`` remembers it.
    REMEMBER = "remember"
    #: Mapped to a local object: the object is deleted.
    DELETE = "delete"
    #: Mapped to a local object deleted already: it stays deleted.
    STAYS_DELETED = "stays_deleted"


def deleted_record_fate(
    *, mapper: Mapper, data: Mapping[str, Any], mapped: bool, exists: bool
) -> DeletedRecord | None:
    """What a record in its deleted state does here, or ``None`` to apply it as usual.

    The one rule of Connec!'s deletes for every way records arrive (initial import,
    notifications, reconciliation; docs/sync.md): a record in its deleted state never
    creates a local object, deletes the one it is mapped to, and leaves one deleted
    here deleted. ``mapped``: the record has an IdMap row; ``exists``: its local object
    still exists. When the mapper maps the marker's fields itself (:func:`status_is_data`,
    invoice ``VOIDED``), the marker is data: such a record is applied like any other,
    except onto a local object deleted already.
    """
    if not is_deleted_state(mapper, data):
        return None
    if not mapped:
        return None if status_is_data(mapper) else DeletedRecord.REMEMBER
    if not exists:
        return DeletedRecord.STAYS_DELETED
    return None if status_is_data(mapper) else DeletedRecord.DELETE


def live_payload(mapper: Mapper) -> dict[str, Any]:
    """What every upsert of a live record adds: ``{"status": "ACTIVE"}`` when deletes are
    pushed as ``INACTIVE`` and the mapper does not map ``status`` itself.

    A local update made after another app deactivated the record is the later
    write, so it brings the record back (last writer wins, both sides alive).
    """
    custom = getattr(mapper, "connec_live_payload", None)
    if custom is not None:
        return dict(custom)
    if status_is_data(mapper) or _delete_marker(mapper) != INACTIVE_PAYLOAD:
        return {}
    return {"status": "ACTIVE"}


def external_id_entry(*, company: Company, object_id: Any) -> dict[str, str]:
    """Our id of a local object in Connec!'s external-id form (docs/protocol.md, 'External ids').

    Connec! addresses a record by it as one URL path segment (``GET
    /<group>/<entity>/<our id>?opts[provider]=…``): a local key that cannot be one (an
    empty text key, ``.`` or ``..``: :func:`maestrano_integration.http.path_segment_problem`)
    is no external id, a :class:`MappingError` naming it. The push parks the record, and a
    record referencing it, with that reason; the others of the batch go on.
    """
    text = str(object_id)
    if (problem := path_segment_problem(text)) is not None:
        raise MappingError(f"the local key {text!r} cannot be our id in Connec!: {problem}")
    return {
        "id": text,
        "provider": get_preset(company.preset).api_id,
        "realm": company.group_uid,
    }


def payload_hash(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def blank_to_null(data: Any) -> Any:
    """Empty strings as ``null``: Connec! validates a present value (``""`` is no currency),
    and ``null`` clears a field, which is what an empty local field means."""
    if isinstance(data, dict):
        return {key: blank_to_null(value) for key, value in data.items()}
    if isinstance(data, list):
        return [blank_to_null(value) for value in data]
    return None if data == "" else data


def leave_out_blanks(
    *, mapper: Mapper, data: dict[str, Any], known: bool
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``data`` (blanks already ``null``: :func:`blank_to_null`) without the ``null`` values
    that clear nothing in Connec!, and the dotted paths of those left out of the record.

    The one rule of what a blank local value sends (docs/sync.md, 'Push: the
    transactional outbox'): ``null``, which clears the field, only where Connec! may
    hold a value. An update of a record Connec! knows (``known``: a ``PUT`` by its
    Connec! id) and a line carrying its Connec! id keep their ``null`` values: a value
    cleared here is cleared there (a ``PUT`` is a partial update; a field left out keeps
    its value). A new record (``known`` false: a first push, a ``POST``) and a new line
    (no ``id``) leave their blanks out, and an object left empty (``{"phone": {}}``, a
    whole ``address``): a record never had those values, Connec! leaves out what a
    record never had, and a ``null`` there would only be noise. A first push may still
    land on a record Connec! has (a retry after a lost answer, a smart merge):
    :func:`values_to_clear` tells which of the left-out paths then hold a value there.
    """
    left_out: list[str] = []
    result = data if known else _without_nulls(data, prefix="", left_out=left_out)
    for child in mapper.children:
        lines = get_path(result, child.path, None)
        if isinstance(lines, list):
            lines[:] = [
                _without_nulls(line, prefix="", left_out=[])
                if isinstance(line, dict) and line.get("id") is None
                else line
                for line in lines
            ]
    return result, tuple(left_out)


def _without_nulls(data: dict[str, Any], *, prefix: str, left_out: list[str]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            value = _without_nulls(value, prefix=f"{path}.", left_out=left_out)
            if not value:
                continue
        elif value is None:
            left_out.append(path)
            continue
        kept[key] = value
    return kept


def values_to_clear(*, left_out: tuple[str, ...], status: int, record: Any) -> list[str]:
    """The paths a first push left out as blank (:func:`leave_out_blanks`) that hold a value
    in the record Connec! answered, when the push updated a record it had (``200``: our
    external id was known, or smart merging found an equal record) rather than creating
    one (``201``: the values Connec! fills in itself, a ``code``, are its own). The
    local record is blank there: they are cleared by an update."""
    if status != 200 or not isinstance(record, Mapping):
        return []
    return [path for path in left_out if get_path(record, path, None) not in (None, "", [], {})]


def clear_empty_references(mapper: Mapper, instance: models.Model, data: dict[str, Any]) -> None:
    """An empty local reference is sent as ``null``: a PUT is a partial update, so an
    absent reference would keep the one Connec! has (set there by another app, or by us
    before the local one was cleared) and the two sides would disagree for good."""
    for local_name, (connec_field, _) in mapper.references.items():
        if getattr(instance, field_attname(mapper.model, local_name)) is None:
            set_path(data, connec_field, None)


class ExportResolver(ReferenceResolver):
    """Connec! ids of referenced records; our external id for those not pushed yet.

    A referenced record created in the same batch (earlier op) or pushed
    before under our external id is found by Connec! through that id.
    """

    def __init__(self, *, company: Company, connec_ids: dict[str, dict[str, str]]) -> None:
        super().__init__(connec_ids=connec_ids)
        self._company = company
        self._unmapped: set[tuple[str, str]] = set()

    def connec_id(self, entity: str, local_pk: Any) -> Any:
        known = super().connec_id(entity, local_pk)
        if known is not None:
            return known
        try:
            entry = external_id_entry(company=self._company, object_id=local_pk)
        except MappingError as error:
            raise MappingError(f"its {entity} reference: {error}") from None
        self._unmapped.add((entity, str(local_pk)))
        return [entry]

    def unmapped_used(self, instance: models.Model) -> bool:
        """Whether the last export used a not-yet-mapped reference (then a 4xx may be temporary)."""
        used = bool(self._unmapped)
        self._unmapped.clear()
        return used


def export_resolver(*, company: Company, mapper: Mapper, instances: Any) -> ExportResolver:
    """One IdMap query per referenced entity for the whole window."""
    instances = list(instances)
    wanted: dict[str, set[str]] = defaultdict(set)
    mappings: tuple[Mapper | type[ChildMapping], ...] = (mapper, *mapper.children)
    for mapping in mappings:
        for local_name, (_, entity) in mapping.references.items():
            attname = field_attname(mapping.model, local_name)
            if mapping is mapper:
                values = [getattr(obj, attname) for obj in instances]
            else:
                child = cast(type[ChildMapping], mapping)  # one of the mapper's children
                values = list(
                    child.model._default_manager.filter(
                        **{f"{child.parent_field}__in": [obj.pk for obj in instances]}
                    ).values_list(attname, flat=True)
                )
            wanted[entity].update(str(value) for value in values if value is not None)
    connec_ids: dict[str, dict[str, str]] = {}
    for entity, pks in wanted.items():
        if not pks or entity not in registry.entities():
            continue
        referenced = registry.for_entity(entity).model
        connec_ids[entity] = idmap.connec_ids_for_objects(
            company=company,
            content_type=ContentType.objects.get_for_model(referenced),
            object_ids=pks,
        )
    return ExportResolver(company=company, connec_ids=connec_ids)
