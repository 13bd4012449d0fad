"""Writing Connec! records: create, update, upsert by external id, smart merge, sub-records
that keep their ids.

Every write goes through a :class:`WriteSession`: a batch of 500 ops, or a
single POST. Callers run the session in a transaction on the ``sandbox``
database, ``flush`` it, and pass ``session.changed`` on to
``notifications.enqueue_changes``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from maestrano_integration.bulk_insert import insert_rows
from maestrano_sandbox.models import ConnecExternalId, ConnecRecord, Group, RegisteredApp

from .clock import next_timestamp
from .errors import ConnecApiError
from .matching import MatchIndex, checked_matching_fields, matching_values
from .references import (
    CONNEC_PROVIDER,
    ExternalKey,
    KnownRecord,
    RecordIndex,
    external_key,
    find_by_entries,
    resolve_references,
)
from .schema import SCHEMAS, clean_fields, is_id_entry, merge_record, missing_required
from .selectors import ListedRecord, group_for_app, records_of

logger = logging.getLogger(__name__)
SANDBOX_DATABASE = "sandbox"
UPDATED_FIELDS = ["data", "updated_at", "written_by"]
# The columns of a new record, and of a new external id (an ``ExternalKey`` after the record).
RECORD_FIELDS = ("uid", "group_id", "entity", "data", "created_at", "updated_at", "written_by_id")
_record_row = attrgetter(*RECORD_FIELDS)
EXTERNAL_ID_FIELDS = ("record_id", "group_id", "entity", "provider", "realm", "external_id")


@dataclass(frozen=True)
class WriteResult:
    record: ConnecRecord
    created: bool
    # The record as this write left it (a later op of the same batch may change it again).
    state: ListedRecord


def new_sub_record_id() -> str:
    """The id of a new sub-record (an invoice line): unique, like a record's."""
    return str(uuid.uuid4())


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


def validated_changes(
    *, group: Group, entity: str, payload: dict[str, Any], index: RecordIndex | None = None
) -> dict[str, Any]:
    cleaned, problems = clean_fields(entity, payload)
    cleaned.pop("opts", None)
    if problems:
        raise ConnecApiError(status=422, problems=problems)
    return resolve_references(
        index=index or RecordIndex(lock=False), group=group, entity=entity, data=cleaned
    )


def require_fields(entity: str, data: dict[str, Any]) -> None:
    problems = missing_required(entity, data)
    if problems:
        raise ConnecApiError(status=422, problems=problems)


def state_of(record: ConnecRecord) -> ListedRecord:
    return ListedRecord(
        record.uid, record.entity, record.data, record.created_at, record.updated_at
    )


@dataclass
class WriteSession:
    """A run of Connec! writes applied in memory one after the other, then written in bulk.

    Why: written one at a time, a record cost about fifteen queries (lookups of its
    ids and references, a count for its code, a locked re-read, a save, one query
    per external id), 12-15 ms each. Here the ops of a run register what they will
    look up (``want``), the :class:`RecordIndex` reads it in a few queries, each op
    is validated and applied to the in-memory records (an op sees the previous
    ones: an upsert finds the record an earlier op created), and ``flush`` writes
    them with one ``bulk_create`` / ``bulk_update`` per table.

    An op that fails validation changes nothing: every check runs before the op
    touches the session. Smart merge (``opts.matching_fields``) looks the match up in
    a :class:`~.matching.MatchIndex` of the entity's records holding the batch's values
    and kept up to date with the session's own writes: no flush, no query per record
    (but the lock of the record it merges into).
    """

    app: RegisteredApp | None
    index: RecordIndex = field(default_factory=RecordIndex)
    # Every record written, in op order (a record written twice appears twice).
    changed: list[ConnecRecord] = field(default_factory=list, init=False)
    _created: list[ConnecRecord] = field(default_factory=list, init=False)
    _updated: dict[int, ConnecRecord] = field(default_factory=dict, init=False)
    # External ids to insert: the record, and the key it is known by.
    _external_ids: list[tuple[ConnecRecord, ExternalKey]] = field(default_factory=list, init=False)
    # Records per (group, entity), counted once, for the next generated code.
    _counts: dict[tuple[int, str], int] = field(default_factory=dict, init=False)
    _groups: dict[str, Group] = field(default_factory=dict, init=False)
    # Smart merging's indexes, per (group pk, entity, matching fields).
    _matches: dict[tuple[int, str, tuple[str, ...]], MatchIndex] = field(
        default_factory=dict, init=False
    )
    # The first matching value of each registered create, for the index's first read.
    _match_wants: dict[tuple[int, str, tuple[str, ...]], set[Hashable]] = field(
        default_factory=dict, init=False
    )

    @property
    def groups(self) -> list[Group]:
        """The groups the session has read."""
        return list(self._groups.values())

    def group(self, uid: str) -> Group:
        """The group ``uid`` if it uses the session's app (404 otherwise), read once."""
        if uid not in self._groups:
            self._groups[uid] = group_for_app(group_uid=uid, app=self.app)
        return self._groups[uid]

    # --- reads, in bulk ----------------------------------------------------------------
    def want(
        self,
        *,
        group: Group,
        entity: str,
        record_id: str | None,
        provider: str | None,
        realm: str | None,
        payload: Any,
        opts: Any = None,
    ) -> None:
        """Register what a POST (``record_id=None``) or a PUT will look up; ``load`` reads it
        (and a POST's smart-merging value, the first lookup of its entity's index)."""
        if record_id is None and isinstance(payload, dict) and isinstance(opts, dict):
            self._want_match(group=group, entity=entity, payload=payload, opts=opts)
        if record_id is not None:
            if provider and provider != CONNEC_PROVIDER:
                entry = {"provider": provider, "realm": realm or "", "id": record_id}
                self.index.want_entry(group_id=group.pk, entity=entity, entry=entry, target=True)
            else:
                self.index.want_uid(record_id, target=True)
        if isinstance(payload, dict):
            ids = payload.get("id")
            for entry in ids if isinstance(ids, list) else ():
                self.index.want_entry(group_id=group.pk, entity=entity, entry=entry, target=True)
            self.index.want_references(group_id=group.pk, entity=entity, payload=payload)

    def load(self) -> None:
        self.index.load()

    def _want_match(
        self, *, group: Group, entity: str, payload: dict[str, Any], opts: dict[str, Any]
    ) -> None:
        matching_fields = opts.get("matching_fields")
        if not matching_fields:
            return
        try:
            fields = checked_matching_fields(matching_fields)
        except ConnecApiError:
            return  # the op answers it
        # The value as sent; validation may change it, and a value not registered is read
        # when it is looked up.
        values = matching_values(payload, fields)
        if values is not None:
            self._match_wants.setdefault((group.pk, entity, fields), set()).add(values[0])

    def lookup(
        self, *, group: Group, entity: str, record_id: str, provider: str | None, realm: str | None
    ) -> ConnecRecord:
        """The record a PUT names (by Connec! id, or by external id with ``provider``); 404."""
        return self.index.lookup(
            group=group, entity=entity, record_id=record_id, provider=provider, realm=realm
        )

    def adopt(self, *, group: Group, record: ConnecRecord) -> ConnecRecord:
        """The session's copy of a record read elsewhere (after a flush, both agree)."""
        known = self.index.get(group=group, entity=record.entity, uid=record.uid)
        if isinstance(known, ConnecRecord):
            return known
        self.index.add(record)
        return record

    # --- writes ------------------------------------------------------------------------
    def create(
        self,
        *,
        group: Group,
        entity: str,
        payload: dict[str, Any],
        opts: dict[str, Any] | None = None,
    ) -> WriteResult:
        """POST: create, or update the record an external id or ``opts.matching_fields``
        designates."""
        entries = split_id_entries(entity, payload)
        changes = validated_changes(group=group, entity=entity, payload=payload, index=self.index)
        target = find_by_entries(
            index=self.index, group=group, entity=entity, entries=entries, pointer=f"/{entity}/id"
        )
        if target is None:
            matching_fields = (opts if isinstance(opts, dict) else {}).get("matching_fields")
            if matching_fields:
                target = self._smart_match(
                    group=group, entity=entity, data=changes, matching_fields=matching_fields
                )
        if target is not None:
            result = self._update(group=group, record=target, changes=changes, entries=entries)
            logger.debug(
                "Connec! %s %s merged on create",
                entity,
                result.record.uid,
                extra={"group": group.uid, "entity": entity, "app": self.app_id},
            )
            return WriteResult(record=result.record, created=False, state=result.state)
        schema = SCHEMAS[entity]
        data = merge_record(entity, dict(schema.defaults), changes, new_id=new_sub_record_id)
        if schema.code_prefix and not data.get("code"):
            data["code"] = f"{schema.code_prefix}{self._count(group=group, entity=entity) + 1}"
        require_fields(entity, data)
        stamp = next_timestamp()
        # Ids rather than instances: the related-object descriptors cost more than the
        # rest of the row (nothing reads ``record.group`` or ``record.written_by`` later).
        record = ConnecRecord(
            group_id=group.pk,
            entity=entity,
            data=data,
            created_at=stamp,
            updated_at=stamp,
            written_by_id=self.app.pk if self.app else None,
        )
        self._attach(record=record, keys=self._new_external_keys(record=record, entries=entries))
        self.index.add(record)
        self._reindex(record)
        self._created.append(record)
        if (group.pk, entity) in self._counts:
            self._counts[(group.pk, entity)] += 1
        self.changed.append(record)
        logger.debug(
            "Connec! %s %s created",
            entity,
            record.uid,
            extra={"group": group.uid, "entity": entity, "app": self.app_id},
        )
        return WriteResult(record=record, created=True, state=state_of(record))

    def update(self, *, group: Group, record: ConnecRecord, payload: dict[str, Any]) -> WriteResult:
        """PUT: a partial update (nested objects merged), plus any new external ids."""
        entries = split_id_entries(record.entity, payload)
        changes = validated_changes(
            group=group, entity=record.entity, payload=payload, index=self.index
        )
        return self._update(group=group, record=record, changes=changes, entries=entries)

    def flush(self) -> None:
        """Write what the ops applied so far: at most one query per table (per 500 rows)."""
        if self._created:
            # Rows rather than bulk_create's per-object work (docs/performance.md, "Sandbox
            # writes"); the records get their primary keys as bulk_create gives them.
            pks = insert_rows(
                ConnecRecord,
                fields=RECORD_FIELDS,
                rows=list(map(_record_row, self._created)),
                returning=True,
            )
            for record, pk in zip(self._created, pks, strict=True):
                record.pk = pk
                record._state.adding = False
                record._state.db = SANDBOX_DATABASE
        if self._updated:
            # An upsert of existing rows (by their unique id, the rows all there: the
            # session locked them): one INSERT ... ON CONFLICT DO UPDATE statement, where
            # bulk_update builds a CASE per field and row (ten times slower here), and
            # bulk_create's upsert has psycopg quote each value of its arrays.
            insert_rows(
                ConnecRecord,
                fields=RECORD_FIELDS,
                rows=list(map(_record_row, self._updated.values())),
                update_conflicts=True,
                unique_fields=["uid"],
                update_fields=UPDATED_FIELDS,
            )
        if self._external_ids:
            insert_rows(
                ConnecExternalId,
                fields=EXTERNAL_ID_FIELDS,
                rows=[(record.pk, *key) for record, key in self._external_ids],
            )
        self._created.clear()
        self._updated.clear()
        self._external_ids.clear()

    # --- helpers -------------------------------------------------------------------------
    @property
    def app_id(self) -> str | None:
        return self.app.api_id if self.app else None

    def _update(
        self,
        *,
        group: Group,
        record: ConnecRecord | KnownRecord,
        changes: dict[str, Any],
        entries: list[dict[str, str]],
    ) -> WriteResult:
        full = self.index.full(record)
        data = merge_record(full.entity, full.data, changes, new_id=new_sub_record_id)
        require_fields(full.entity, data)
        keys = self._new_external_keys(record=full, entries=entries)
        full.data = data
        full.updated_at = next_timestamp(after=full.updated_at)
        full.written_by_id = self.app.pk if self.app else None
        if full.pk is not None:  # else it is created by this session, with these values
            self._updated[full.pk] = full
        self._reindex(full)
        self._attach(record=full, keys=keys)
        self.changed.append(full)
        return WriteResult(record=full, created=False, state=state_of(full))

    def _new_external_keys(
        self, *, record: ConnecRecord, entries: list[dict[str, str]]
    ) -> list[ExternalKey]:
        """The external ids ``record`` does not have yet (Connec!'s own entries skipped);
        one already owned by another record of the group is a 422."""
        keys: list[ExternalKey] = []
        for entry in entries:
            if entry["provider"] == CONNEC_PROVIDER:
                continue
            key = external_key(group_id=record.group_id, entity=record.entity, entry=entry)
            owner = self.index.owner(key)
            if owner == record.uid or key in keys:
                continue
            if owner is not None:
                raise ConnecApiError.single(
                    422, f"External id {entry} already belongs to another {record.entity}"
                )
            keys.append(key)
        return keys

    def _attach(self, *, record: ConnecRecord, keys: list[ExternalKey]) -> None:
        for key in keys:
            self._external_ids.append((record, key))
            self.index.attach(key, record.uid)

    def _smart_match(
        self, *, group: Group, entity: str, data: dict[str, Any], matching_fields: Any
    ) -> ConnecRecord | None:
        """The oldest record whose ``matching_fields`` all equal ``data``'s (docs/protocol.md,
        'Smart merging'), if any: locked, as every record a session updates.

        A matching field missing from ``data`` (or empty, an object, a list) disables
        matching: an absent value must not merge every record lacking it.
        """
        fields = checked_matching_fields(matching_fields)
        values = matching_values(data, fields)
        if values is None:
            return None
        key = (group.pk, entity, fields)
        if key not in self._matches:
            self._matches[key] = MatchIndex(
                records=records_of(group=group, entity=entity),
                fields=fields,
                held=self.index.held(group_id=group.pk, entity=entity),
            )
        matches = self._matches[key]
        matches.want(self._match_wants.pop(key, ()))
        while (best := matches.best(values)) is not None:
            uid, pk = best
            record = self.index.claim(uid=uid, pk=pk, group_id=group.pk, entity=entity)
            if record is None:  # gone since the index was read
                matches.drop(uid)
                continue
            # As read under the lock: another transaction may have changed it meanwhile.
            matches.put(record)
            after = matches.best(values)
            if after is not None and after[0] == uid:
                return record
        return None

    def _reindex(self, record: ConnecRecord) -> None:
        """Keep smart merging's indexes of ``record``'s entity up to date with a write."""
        for (group_id, entity, _fields), matches in self._matches.items():
            if group_id == record.group_id and entity == record.entity:
                matches.put(record)

    def _count(self, *, group: Group, entity: str) -> int:
        """How many ``entity`` records ``group`` has, this session's unwritten ones included."""
        key = (group.pk, entity)
        if key not in self._counts:
            pending = sum(1 for r in self._created if r.group_id == group.pk and r.entity == entity)
            self._counts[key] = records_of(group=group, entity=entity).count() + pending
        return self._counts[key]


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
