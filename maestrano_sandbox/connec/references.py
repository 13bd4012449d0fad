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
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from maestrano_integration.lookups import among
from maestrano_sandbox.models import ConnecExternalId, ConnecRecord, Group, channel_id_for

from .clock import format_timestamp
from .errors import ConnecApiError, Problem
from .schema import SCHEMAS, entity_references, is_id_entry, map_references

if TYPE_CHECKING:
    from .selectors import ListedRecord

CONNEC_PROVIDER = "connec"


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


class KnownRecord(NamedTuple):
    """A record known by its ids only: enough to check a reference (group and entity)."""

    pk: int
    uid: uuid.UUID
    group_id: int
    entity: str


# (group pk, entity, provider, realm, external id): what the unique constraint covers.
ExternalKey = tuple[int, str, str, str, str]


def external_key(*, group_id: int, entity: str, entry: dict[str, str]) -> ExternalKey:
    return (group_id, entity, entry["provider"], entry["realm"], entry["id"])


#: The columns of an external-id entry, in the order answers list them.
_ENTRY = ("realm", "provider", "external_id")


class RecordIndex:
    """The records a run of writes looks up, by Connec! id and by external id, read in bulk.

    Why: looked up one at a time, ids and references cost a query each (a batch of
    500 people referencing their organizations by external id made 2,000 queries).
    The ops of a run register what they will look up (``want_uid``, ``want_entry``),
    ``load`` reads it all in three queries, and lookups then answer from memory;
    anything not registered is read on demand (a single write needs no registering).
    The run's writes add their records and external ids (``add``, ``attach``), so each
    op sees the ones before it. Records a run writes (``target=True``) are loaded
    whole and, with ``lock``, locked (``select_for_update``) until the transaction ends.
    """

    def __init__(self, *, lock: bool = True) -> None:
        self._lock = lock
        self._records: dict[uuid.UUID, ConnecRecord | KnownRecord | None] = {}
        self._external: dict[ExternalKey, uuid.UUID | None] = {}
        self._wanted_uids: set[uuid.UUID] = set()
        self._wanted_external: set[ExternalKey] = set()
        self._target_uids: set[uuid.UUID] = set()
        self._target_external: set[ExternalKey] = set()

    # --- registering and loading -------------------------------------------------------
    def want_uid(self, value: Any, *, target: bool = False) -> None:
        record_uid = parse_uuid(value) if isinstance(value, str) else None
        if record_uid is not None:
            self._wanted_uids.add(record_uid)
            if target:
                self._target_uids.add(record_uid)

    def want_entry(self, *, group_id: int, entity: str, entry: Any, target: bool = False) -> None:
        """An ``{id, provider, realm}`` entry (malformed ones are left to validation)."""
        if not is_id_entry(entry):
            return
        if entry["provider"] == CONNEC_PROVIDER:
            self.want_uid(entry["id"], target=target)
            return
        key = external_key(group_id=group_id, entity=entity, entry=entry)
        self._wanted_external.add(key)
        if target:
            self._target_external.add(key)

    def want_references(self, *, group_id: int, entity: str, payload: Any) -> None:
        if not isinstance(payload, dict) or entity not in SCHEMAS:
            return

        def want(_pointer: str, target: str, value: Any) -> Any:
            if isinstance(value, list):
                for entry in value:
                    self.want_entry(group_id=group_id, entity=target, entry=entry)
            else:
                self.want_uid(value)
            return value

        map_references(SCHEMAS[entity].fields, payload, want, "")

    def load(self) -> None:
        """Read what was registered and is not known yet: three queries at most (the ids
        as one parameter each: :func:`~maestrano_integration.lookups.among`)."""
        external = self._wanted_external - self._external.keys()
        if external:
            rows = ConnecExternalId.objects.filter(
                among("group_id", {key[0] for key in external}),
                among("external_id", {key[4] for key in external}),
            ).values_list(
                "group_id", "entity", "provider", "realm", "external_id", "record_id", "record__uid"
            )
            for group_id, entity, provider, realm, external_id, record_pk, record_uid in rows:
                self._external[(group_id, entity, provider, realm, external_id)] = record_uid
                if record_uid not in self._records:
                    self._records[record_uid] = KnownRecord(record_pk, record_uid, group_id, entity)
        for key in external:
            self._external.setdefault(key, None)
        self._load_known(self._wanted_uids - self._records.keys())
        target_uids = {self._external.get(k) for k in self._target_external} | self._target_uids
        targets = {self._records.get(u) for u in target_uids if u is not None}
        self._load_full([r for r in targets if isinstance(r, KnownRecord)])
        self._wanted_uids.clear()
        self._wanted_external.clear()
        self._target_uids.clear()
        self._target_external.clear()

    def _load_known(self, uids: set[uuid.UUID]) -> None:
        if uids:
            rows = ConnecRecord.objects.filter(among("uid", uids)).values_list(
                "pk", "uid", "group_id", "entity"
            )
            for row in rows:
                self._records[row[1]] = KnownRecord._make(row)
        for record_uid in uids:
            self._records.setdefault(record_uid, None)

    def _load_full(self, known: list[KnownRecord]) -> None:
        if known:
            records = ConnecRecord.objects.filter(among("pk", [r.pk for r in known]))
            if self._lock:
                records = records.select_for_update()
            for record in records:
                self._records[record.uid] = record

    # --- lookups -----------------------------------------------------------------------
    def get(
        self, *, group: Group, entity: str, uid: uuid.UUID
    ) -> ConnecRecord | KnownRecord | None:
        """The record ``uid`` if it is a ``entity`` of ``group``."""
        if uid not in self._records:
            self._load_known({uid})
        record = self._records[uid]
        if record is None or record.group_id != group.pk or record.entity != entity:
            return None
        return record

    def owner(self, key: ExternalKey) -> uuid.UUID | None:
        """The Connec! id of the record an external id belongs to, if any."""
        if key not in self._external:
            self._wanted_external.add(key)
            self.load()
        return self._external[key]

    def by_entry(
        self, *, group: Group, entity: str, entry: dict[str, str]
    ) -> ConnecRecord | KnownRecord | None:
        if entry["provider"] == CONNEC_PROVIDER:
            record_uid = parse_uuid(entry["id"])
            return self.get(group=group, entity=entity, uid=record_uid) if record_uid else None
        owner = self.owner(external_key(group_id=group.pk, entity=entity, entry=entry))
        return self.get(group=group, entity=entity, uid=owner) if owner else None

    def full(self, record: ConnecRecord | KnownRecord) -> ConnecRecord:
        """The whole record (read, and locked, if only its ids were known)."""
        if isinstance(record, KnownRecord):
            self._load_full([record])
        full = self._records[record.uid]
        assert isinstance(full, ConnecRecord)
        return full

    def lookup(
        self,
        *,
        group: Group,
        entity: str,
        record_id: str,
        provider: str | None = None,
        realm: str | None = None,
    ) -> ConnecRecord:
        """A record by Connec! id, or by an external id when ``provider`` is given
        (docs/protocol.md, "External ids"); a 404 otherwise."""
        record: ConnecRecord | KnownRecord | None = None
        if provider and provider != CONNEC_PROVIDER:
            entry = {"provider": provider, "realm": realm or "", "id": record_id}
            record = self.by_entry(group=group, entity=entity, entry=entry)
        else:
            record_uid = parse_uuid(record_id)
            if record_uid is not None:
                record = self.get(group=group, entity=entity, uid=record_uid)
        if record is None:
            by = f" for provider {provider!r} realm {realm!r}" if provider else ""
            raise ConnecApiError.single(
                404, f"No {entity} with id {record_id!r}{by} in {group.uid}"
            )
        return self.full(record)

    def claim(
        self, *, uid: uuid.UUID, pk: int | None, group_id: int, entity: str
    ) -> ConnecRecord | None:
        """The run's copy of a record (read whole, and locked, if the run does not hold it
        yet; ``pk`` is then its primary key); ``None`` if it no longer exists."""
        record = self._records.get(uid)
        if not isinstance(record, ConnecRecord) and pk is not None:
            self._load_full([KnownRecord(pk, uid, group_id, entity)])
            record = self._records.get(uid)
        return record if isinstance(record, ConnecRecord) else None

    def held(self, *, group_id: int, entity: str) -> list[ConnecRecord]:
        """The whole records of ``group_id``/``entity`` the run holds: read, created, adopted."""
        return [
            r
            for r in self._records.values()
            if isinstance(r, ConnecRecord) and r.group_id == group_id and r.entity == entity
        ]

    # --- the run's own writes ------------------------------------------------------------
    def add(self, record: ConnecRecord) -> None:
        self._records[record.uid] = record

    def pks(self) -> dict[str, int]:
        """``{connec id: primary key}`` of every record the run read or wrote (after its
        flush, the created ones have theirs): answers look their external ids up by key."""
        return {
            str(uid): record.pk
            for uid, record in self._records.items()
            if record is not None and record.pk is not None
        }

    def attach(self, key: ExternalKey, record_uid: uuid.UUID) -> None:
        self._external[key] = record_uid


def find_by_entries(
    *, index: RecordIndex, group: Group, entity: str, entries: list[dict[str, str]], pointer: str
) -> ConnecRecord | KnownRecord | None:
    """The one record of ``group``/``entity`` any of ``entries`` designates, or ``None``.

    A ``connec`` entry must name an existing record (422 otherwise); entries
    designating two different records are a 422 too.
    """
    found: dict[uuid.UUID, ConnecRecord | KnownRecord] = {}
    for entry in entries:
        record = index.by_entry(group=group, entity=entity, entry=entry)
        if record is None and entry["provider"] == CONNEC_PROVIDER:
            raise ConnecApiError.single(
                422,
                f"No {entity} with Connec! id {entry['id']!r} in {group.uid}",
                pointer=pointer,
            )
        if record is not None:
            found[record.uid] = record
    if len(found) > 1:
        raise ConnecApiError.single(
            422, f"These ids designate {len(found)} different {entity}", pointer=pointer
        )
    return next(iter(found.values()), None)


def resolve_references(
    *, index: RecordIndex, group: Group, entity: str, data: dict[str, Any]
) -> dict[str, Any]:
    """``data`` with every reference replaced by the referenced record's Connec! id.

    A reference to a record missing from ``group`` (another group's included)
    is a 422: the hub never stores a dangling reference.
    """
    problems: list[Problem] = []

    def resolve(pointer: str, target: str, value: Any) -> Any:
        if isinstance(value, list):
            try:
                record = find_by_entries(
                    index=index, group=group, entity=target, entries=value, pointer=pointer
                )
            except ConnecApiError as error:
                problems.extend(error.problems)
                return value
            if record is None:
                problems.append(Problem(f"No {target} matches the external ids given", pointer))
                return value
            return str(record.uid)
        record_uid = parse_uuid(value)
        if record_uid is None or index.get(group=group, entity=target, uid=record_uid) is None:
            problems.append(Problem(f"No {target} with id {value!r} in {group.uid}", pointer))
            return value
        return str(record_uid)

    resolved = map_references(SCHEMAS[entity].fields, data, resolve, f"/{entity}")
    if problems:
        raise ConnecApiError(status=422, problems=problems)
    return resolved


def external_ids_by_record(
    *, group: Group, record_uids: Iterable[str], pks: Mapping[str, int] | None = None
) -> dict[str, list[dict]]:
    """``{connec id: [external entries]}`` for the given records of ``group``.

    Records whose primary key ``pks`` gives (a batch knows every record it read or
    wrote) are looked up by key, in one query without joining the records; the others
    by Connec! id, in one query joining them.
    """
    uids = {str(u) for u in (parse_uuid(str(v)) for v in record_uids) if u is not None}
    entries: dict[str, list[dict]] = defaultdict(list)
    known = pks or {}
    by_pk = {known[u]: u for u in uids if u in known}
    others = uids - known.keys()
    lookups = []  # (rows keyed by record pk or uid, the record uid of that key)
    if by_pk:
        external = ConnecExternalId.objects.filter(among("record_id", by_pk), group=group)
        lookups.append((external.values_list("record_id", *_ENTRY), by_pk.__getitem__))
    if others:
        external = ConnecExternalId.objects.filter(among("record__uid", others), group=group)
        lookups.append((external.values_list("record__uid", *_ENTRY), str))
    for rows, uid_of in lookups:
        for key, realm, provider, external_id in rows.order_by("id"):
            entries[uid_of(key)].append({"realm": realm, "provider": provider, "id": external_id})
    return entries


def render_records(
    records: Sequence[ConnecRecord | ListedRecord],
    *,
    group: Group,
    external_ids: bool = False,
    pks: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Records as the API answers them (plain ids, or external-id lists; ``pks``: see
    :func:`external_ids_by_record`).

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
        known = external_ids_by_record(group=group, record_uids=wanted, pks=pks)

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
