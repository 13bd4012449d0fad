"""Ids on the wire: plain Connec! ids, or external-id lists (docs/protocol.md, 'External ids'), and
their resolution.

With ``CONNEC-EXTERNAL-IDS: true`` a record's ``id`` and its references are
lists of ``{"realm", "provider", "id"}`` entries, Connec!'s own entry last
(provider ``connec``, realm = the group's channel id). Input accepts either
form whatever the header says.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sandbox.models import ConnecExternalId, ConnecRecord, Group, channel_id_for

from .clock import format_timestamp
from .errors import ConnecApiError, Problem
from .schema import SCHEMAS, entity_references, map_references

if TYPE_CHECKING:
    from .selectors import ListedRecord

CONNEC_PROVIDER = "connec"


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def find_by_entries(
    *, group: Group, entity: str, entries: list[dict[str, str]], pointer: str
) -> ConnecRecord | None:
    """The one record of ``group``/``entity`` any of ``entries`` designates, or ``None``.

    A ``connec`` entry must name an existing record (422 otherwise); entries
    designating two different records are a 422 too.
    """
    found: dict[int, ConnecRecord] = {}
    for entry in entries:
        if entry["provider"] == CONNEC_PROVIDER:
            record_uid = parse_uuid(entry["id"])
            record = (
                ConnecRecord.objects.filter(group=group, entity=entity, uid=record_uid).first()
                if record_uid
                else None
            )
            if record is None:
                raise ConnecApiError.single(
                    422,
                    f"No {entity} with Connec! id {entry['id']!r} in {group.uid}",
                    pointer=pointer,
                )
        else:
            external = (
                ConnecExternalId.objects.select_related("record")
                .filter(
                    group=group,
                    entity=entity,
                    provider=entry["provider"],
                    realm=entry["realm"],
                    external_id=entry["id"],
                )
                .first()
            )
            record = external.record if external else None
        if record is not None:
            found[record.pk] = record
    if len(found) > 1:
        raise ConnecApiError.single(
            422, f"These ids designate {len(found)} different {entity}", pointer=pointer
        )
    return next(iter(found.values()), None)


def resolve_references(*, group: Group, entity: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with every reference replaced by the referenced record's Connec! id.

    A reference to a record missing from ``group`` (another group's included)
    is a 422: the hub never stores a dangling reference.
    """
    problems: list[Problem] = []

    def resolve(pointer: str, target: str, value: Any) -> Any:
        if isinstance(value, list):
            try:
                record = find_by_entries(group=group, entity=target, entries=value, pointer=pointer)
            except ConnecApiError as error:
                problems.extend(error.problems)
                return value
            if record is None:
                problems.append(Problem(f"No {target} matches the external ids given", pointer))
                return value
            return str(record.uid)
        record_uid = parse_uuid(value)
        if (
            record_uid is None
            or not ConnecRecord.objects.filter(group=group, entity=target, uid=record_uid).exists()
        ):
            problems.append(Problem(f"No {target} with id {value!r} in {group.uid}", pointer))
            return value
        return str(record_uid)

    resolved = map_references(SCHEMAS[entity].fields, data, resolve, f"/{entity}")
    if problems:
        raise ConnecApiError(status=422, problems=problems)
    return resolved


def external_ids_by_record(*, group: Group, record_uids: Iterable[str]) -> dict[str, list[dict]]:
    """``{connec id: [external entries]}`` for the given records of ``group``, in one query."""
    uids = {u for u in (parse_uuid(str(v)) for v in record_uids) if u is not None}
    entries: dict[str, list[dict]] = defaultdict(list)
    if not uids:
        return entries
    rows = (
        ConnecExternalId.objects.filter(group=group, record__uid__in=uids)
        .order_by("id")
        .values_list("record__uid", "realm", "provider", "external_id")
    )
    for record_uid, realm, provider, external_id in rows:
        entries[str(record_uid)].append({"realm": realm, "provider": provider, "id": external_id})
    return entries


def render_records(
    records: Sequence[ConnecRecord | ListedRecord], *, group: Group, external_ids: bool = False
) -> list[dict[str, Any]]:
    """Records as the API answers them (plain ids, or external-id lists).

    Reads ``uid``, ``entity``, ``data``, ``created_at`` and ``updated_at`` only, so
    list pages pass the lighter :class:`~.selectors.ListedRecord` rows.
    """
    channel_id = channel_id_for(group.uid)
    known: dict[str, list[dict]] = {}
    if external_ids:
        wanted = [str(r.uid) for r in records]
        for record in records:
            wanted.extend(
                v for v in entity_references(record.entity, record.data) if isinstance(v, str)
            )
        known = external_ids_by_record(group=group, record_uids=wanted)

    def id_list(record_uid: str) -> list[dict]:
        own = {"realm": channel_id, "provider": CONNEC_PROVIDER, "id": record_uid}
        return [*known.get(record_uid, []), own]

    rendered = []
    for record in records:
        data = record.data
        if external_ids:
            data = map_references(
                SCHEMAS[record.entity].fields,
                data,
                lambda _pointer, _target, value: (
                    id_list(value) if isinstance(value, str) else value
                ),
                "",
            )
        rendered.append(
            {
                "id": id_list(str(record.uid)) if external_ids else str(record.uid),
                **data,
                "group_id": group.uid,
                "channel_id": channel_id,
                "resource_type": record.entity,
                "created_at": format_timestamp(record.created_at),
                "updated_at": format_timestamp(record.updated_at),
            }
        )
    return rendered


def render_record(record: ConnecRecord, *, group: Group, external_ids: bool = False) -> dict:
    return render_records([record], group=group, external_ids=external_ids)[0]
