"""Receiving Connec! notifications (docs/protocol.md, 'Connec! notifications'): validate, store
raw, answer fast.

The webhook only checks what it can check without Connec!: the JSON shape,
the entities and the ids. The valid records are stored as one
:class:`~maestrano_sync.models.InboxEntry` per company of the preset the URL names, and
applied later by a task (:func:`maestrano_sync.inbox.process_inbox`); a refused payload
stores nothing.

Decisions (documented in ``docs/sync.md``):

* the envelope is ``{"<entity>": [...]}``: a body that is not JSON, not an object, or
  a value that is not a list is a 400 (the payload is malformed), and nothing is stored;
  a Connec! entity we do not map, subscribe to or import is accepted and
  ignored when applied, with a log line (the platform must not redeliver it
  forever);
* one bad element never sinks the others (:func:`check_record`: no usable
  ``id``, a non-string ``updated_at``, a value no database stores; an element that
  is not an object; a record of a name that is no Connec! entity): it is parked
  for its company with its reason and the whole record (a ``SyncRecordError``,
  among ``maestrano_sync.status.problems``), once however often it is delivered
  (:func:`maestrano_sync.services.park_records`), the others are stored, and the
  answer is a 202; one naming no usable ``group_id`` is parked for the notification's
  company when it has one group, logged and skipped otherwise (:func:`_parking_rule`);
* a record's ``id`` is a string or a list of ``{provider, realm, id}``
  entries, of which the Connec! one is taken (:func:`record_connec_id`, read once per
  record: the stored record keeps only that Connec! entry, :func:`normalized_record`);
* a payload may carry records of several groups: each company's records are
  stored as its own inbox entry and applied in its own tenant; the records of
  a group that is not a company of this preset are logged and skipped, and the
  answer is still a 202 (the platform must not redeliver them forever).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TypeGuard

from django.db import IntegrityError, connections, transaction

from maestrano_accounts.models import Company
from maestrano_integration import strict_input
from maestrano_integration.bulk_insert import insert_row_with_children, insert_rows
from maestrano_integration.conf import Preset

from .conf import sync_settings
from .fingerprints import REFUSED_REASON
from .models import InboxEntry, InboxRecord, SyncRecordError
from .registry import known_entities, registry
from .scheduling import enqueue_inbox
from .services import park_records, parked_record, payload_excerpt
from .values import (
    CONNEC_PROVIDER,
    connec_entry_id,
    connec_id_problem,
    connec_time_or_none,
)

logger = logging.getLogger(__name__)


class NotificationRejected(Exception):
    """The payload is refused as a whole; ``status`` is the HTTP answer."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def max_body_bytes() -> int:
    return sync_settings().notification_max_body_bytes


@dataclass(frozen=True)
class RefusedRecord:
    """A record of a well-formed notification that cannot be applied, and why.

    Parked for its company (a :class:`~maestrano_sync.models.SyncRecordError` with the whole
    record) when its ``group_id`` names one; logged and skipped when it names none.
    """

    entity: str
    record: Any  # a record, or whatever stood in an entity's list instead of one
    reason: str
    group_id: str = ""  # "" when the record names no group we can look up
    connec_id: str = ""  # "" when the record has no usable Connec! id


@dataclass(frozen=True)
class NotifiedRecord:
    """A valid notified record (as :func:`normalized_record` keeps it) with its Connec! id,
    as :func:`check_record` read it: the inbox's index of records (:func:`insert_inbox_entry`)
    takes it from here, never reads it again."""

    connec_id: str
    data: dict[str, Any]

    @property
    def updated_at(self) -> Any:
        return connec_time_or_none(self.data.get("updated_at"))


@dataclass(frozen=True)
class Notification:
    """A notification's records: the valid ones by entity, and the refused ones."""

    records: dict[str, list[NotifiedRecord]]
    refused: tuple[RefusedRecord, ...] = ()


def parse_payload(body: bytes) -> Notification:
    """The notification's records; raises :class:`NotificationRejected` (400) when the
    body is not JSON or not of the notification's shape (:func:`checked_payload`).

    Strict JSON (:mod:`maestrano_integration.strict_input`): a value we could not store
    or query (NaN, NUL, lone surrogates, deep nesting) refuses the record that holds it,
    not the body (the body is read again with :func:`strict_input.decode` to tell which).
    """
    try:
        return checked_payload(strict_input.loads(body), checked=True)
    except strict_input.InputRefused as error:
        # Not JSON, or one of its values breaks a rule: refused whole unless each value
        # that does is in a record (which is then refused alone).
        refused = NotificationRejected(f"The body is refused: {error}", status=400)
    try:
        return checked_payload(strict_input.decode(body), checked=False)
    except (strict_input.InputRefused, NotificationRejected):
        raise refused from None


def checked_payload(payload: Any, *, checked: bool = False) -> Notification:
    """The records of ``payload`` (decoded JSON), valid or refused; raises
    :class:`NotificationRejected` (400) when it is not ``{"<entity>": [{...}, ...]}``.

    That shape is the envelope: an object whose values are lists. Each element is
    checked on its own: one that is not an object, or of a name that is no Connec!
    entity (:func:`~maestrano_sync.registry.known_entities`), or whose record breaks
    :func:`check_record`, is refused, never the others. A valid record is kept as
    :func:`normalized_record` makes it.
    ``checked``: ``payload`` already passed :func:`strict_input.loads`'s rules.
    """
    if not isinstance(payload, dict):
        raise NotificationRejected(
            'The body must be an object: {"<entity>": [{"id": ..., "group_id": ...}, ...]}',
            status=400,
        )
    entities = known_entities()
    records: dict[str, list[NotifiedRecord]] = {}
    refused: list[RefusedRecord] = []
    for entity, values in payload.items():
        if not checked and (problem := strict_input.text_problem(entity)):
            raise NotificationRejected(f"An entity's name {problem}", status=400)
        if not isinstance(values, list):
            raise NotificationRejected(f"{entity} must be a list of records", status=400)
        if entity not in entities:
            # Not an entity we know: each record parked (under no Connec! id: a retry
            # never fetches an unknown entity's path), the other entities' records kept.
            # The name as parked (cut as the entity column keeps it), also in the reason
            # and the log: a name of any length is repeated for each of its records.
            name = entity if len(entity) <= _ENTITY_CHARS else entity[: _ENTITY_CHARS - 1] + "…"
            reason = f"unknown entity {name!r}"
            refused.extend(
                _refused(entity=name, record=record, reason=reason, connec_id="")
                for record in values
            )
            continue
        kept = records[entity] = []
        for index, record in enumerate(values):
            if not isinstance(record, dict):
                reason = f"$.{entity}[{index}] must be an object, not {_shown(record)}"
                refused.append(_refused(entity=entity, record=record, reason=reason, connec_id=""))
                continue
            check = check_record(record, where=f"$.{entity}[{index}]", checked=checked)
            if check.problem is None:
                kept.append(
                    NotifiedRecord(
                        connec_id=check.connec_id,
                        data=normalized_record(record, connec_id=check.connec_id),
                    )
                )
            else:
                refused.append(
                    _refused(
                        entity=entity,
                        record=record,
                        reason=check.problem,
                        connec_id=check.connec_id,
                    )
                )
    return Notification(records=records, refused=tuple(refused))


#: How much of an unknown entity's name a parked record keeps (``SyncRecordError.entity``).
_ENTITY_CHARS: int = SyncRecordError._meta.get_field("entity").max_length or 64


@dataclass(frozen=True)
class RecordCheck:
    """A notified record's Connec! id (``""``: none usable) and why it cannot be stored or
    applied (``problem``; ``None``: it can)."""

    connec_id: str
    problem: str | None


def check_record(record: Mapping[str, Any], *, where: str, checked: bool) -> RecordCheck:
    """The record's Connec! id, read once (:func:`record_connec_id`), and its problem.

    ``where`` (``$.organizations[1]``) starts the reason. Its values must be text and
    numbers a database stores (:func:`strict_input.check_value`; skipped when
    ``checked``), its ``group_id`` a non-empty string, its ``id`` a Connec! id, its
    ``updated_at`` a string; the first rule broken is the problem. The id is read even
    when another rule is broken: a refused record is parked under it.
    """
    try:
        connec_id, id_problem = record_connec_id(record), None
    except ValueError as error:
        connec_id, id_problem = "", f"{where}.id {error}"
    if not checked:
        try:
            strict_input.check_value(record, root=where, depth=2)
        except strict_input.InputRefused as error:
            return RecordCheck(connec_id=connec_id, problem=str(error))
    group_id = record.get("group_id")
    if not isinstance(group_id, str) or not group_id.strip():
        problem = f"{where}.group_id must be a non-empty string"
        return RecordCheck(connec_id=connec_id, problem=problem)
    if id_problem is not None:
        return RecordCheck(connec_id=connec_id, problem=id_problem)
    updated_at = record.get("updated_at")
    if updated_at is not None and not isinstance(updated_at, str):
        return RecordCheck(connec_id=connec_id, problem=f"{where}.updated_at must be a string")
    return RecordCheck(connec_id=connec_id, problem=None)


def _refused(*, entity: str, record: Any, reason: str, connec_id: str) -> RefusedRecord:
    """``record`` refused, with the group and Connec! id it names when they are usable."""
    group_id = record.get("group_id") if isinstance(record, dict) else None
    return RefusedRecord(
        entity=entity,
        record=record,
        reason=reason,
        group_id=group_id if _usable_text(group_id) else "",
        connec_id=connec_id if _usable_text(connec_id) else "",
    )


def _shown(value: Any) -> str:
    """A value in a reason: its JSON, cut."""
    return payload_excerpt(value, limit=40)


def _usable_text(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip()) and strict_input.is_safe_text(value)


def record_connec_id(record: Mapping[str, Any]) -> str:
    """The Connec! id of a notified record; raises ``ValueError`` saying what is wrong.

    A string is the Connec! id. A list holds ``{provider, realm, id}`` entries; Connec!'s
    own is chosen by the pipeline's one rule (:func:`maestrano_sync.values.connec_entry_id`:
    provider ``connec``, and when several, the one in the record's realm), so the webhook
    and the import, reconciliation and inbox read the same id of a record.
    """
    value = record.get("id")
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("must be a non-empty string or a list of {provider, realm, id}")
        chosen = value
    elif isinstance(value, list):
        chosen = connec_entry_id(value, record=record)
        if chosen is None:
            raise ValueError(f"has no entry with provider {CONNEC_PROVIDER!r} and a string id")
    else:
        raise ValueError("must be a non-empty string or a list of {provider, realm, id}")
    if problem := connec_id_problem(chosen):
        raise ValueError(f"is {problem}")
    return chosen


def notified_connec_id(record: Any) -> str:
    """The Connec! id of a stored notified record (:func:`record_connec_id`), ``""`` when it
    has none (a reader of the inbox, ``maestrano_sync.status``, skips it)."""
    if not isinstance(record, Mapping):
        return ""
    try:
        return record_connec_id(record)
    except ValueError:
        return ""


def normalized_record(record: Mapping[str, Any], *, connec_id: str) -> dict[str, Any]:
    """``record`` with only its Connec! entry ``connec_id`` (:func:`record_connec_id`'s
    choice) left among its ``connec`` entries: every reader of the stored record (the
    inbox, :func:`notified_connec_id`) finds that one.

    The entries of other providers stay: a record carrying *our* external id is
    recognised as ours when applied (a push whose answer was lost).
    """
    value = record.get("id")
    if not isinstance(value, list):
        return dict(record)
    chosen = connec_id
    ids = [
        entry
        for entry in value
        if not (isinstance(entry, Mapping) and entry.get("provider") == CONNEC_PROVIDER)
        or entry.get("id") == chosen
    ]
    # Connec!'s own entry first, so every reader of the list finds the same id.
    ids.sort(key=lambda entry: not (isinstance(entry, Mapping) and entry.get("id") == chosen))
    return {**record, "id": ids}


@dataclass(frozen=True)
class CompanyRef:
    """A company the notification's records belong to: its id and its group."""

    pk: int
    group_uid: str


class _KnownCompanies:
    """``(preset, group uid)`` → company id, as found by this process's webhook calls.

    A company's preset and group never change (``maestrano_accounts.models.Company``, one row per
    platform group), so the lookup's answer stays right as long as the row exists; the
    query it saves was about a fifth of a notification's CPU (0.6 ms, docs/performance.md).
    Only what a committed read returned is kept (never inside a transaction, which may
    roll back), never an unknown group (a company may be created at any time), and it is
    used only in autocommit, where the ``INSERT``'s foreign key is checked at once. A
    deleted company is forgotten by this process's signals (``maestrano_sync.receivers``), and by
    every other process when its ``INSERT`` fails on the foreign key
    (:func:`receive_notification` then looks up again).
    """

    max_size = 10_000

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def get(self, preset: str, group_uid: str) -> int | None:
        return self._ids.get((preset, group_uid))

    def remember(self, preset: str, group_uid: str, company_id: int) -> None:
        with self._lock:
            if len(self._ids) >= self.max_size:
                self._ids.clear()
            self._ids[(preset, group_uid)] = company_id

    def forget(self, preset: str | None = None) -> None:
        """Forget one preset's companies, or all (``None``)."""
        with self._lock:
            if preset is None:
                self._ids.clear()
            else:
                self._ids = {key: pk for key, pk in self._ids.items() if key[0] != preset}


known_companies = _KnownCompanies()


def companies_of_groups(*, preset: Preset, groups: set[str]) -> dict[str, CompanyRef]:
    """The preset's companies of ``groups`` (tenant isolation: preset and group both
    match), from :data:`known_companies` when it knows them all, else in one query."""
    # Only in autocommit: there a foreign key is checked when the INSERT runs, so a deleted
    # company fails at once (checks are deferred to COMMIT inside a transaction).
    cached = not connections[Company.objects.db].in_atomic_block
    found = {group: known_companies.get(preset.name, group) for group in groups}
    known = {group: pk for group, pk in found.items() if pk is not None}
    if cached and len(known) == len(found):
        return {group: CompanyRef(pk=pk, group_uid=group) for group, pk in known.items()}
    rows = Company.objects.filter(preset=preset.name, group_uid__in=groups).values_list(
        "pk", "group_uid"
    )
    companies = {group_uid: CompanyRef(pk=pk, group_uid=group_uid) for pk, group_uid in rows}
    if cached:
        for company in companies.values():
            known_companies.remember(preset.name, company.group_uid, company.pk)
    return companies


def split_by_company(
    *,
    preset: Preset,
    payload: Mapping[str, list[NotifiedRecord]],
    refused: Sequence[RefusedRecord] = (),
) -> tuple[
    dict[CompanyRef, dict[str, list[NotifiedRecord]]],
    dict[CompanyRef, list[RefusedRecord]],
    dict[str, int],
]:
    """The payload's records per company of the preset, the ``refused`` records to park per
    company (those naming a group, of an entity with a mapper), and the unknown groups'
    record counts.

    ``payload``: records as :func:`checked_payload` keeps them (valid, normalized). At most
    one query for every group of the payload (:func:`companies_of_groups`); each
    company's part keeps the payload's order of entities and records.
    """
    groups = {record.data["group_id"] for records in payload.values() for record in records}
    groups |= {bad.group_id for bad in refused if bad.group_id}
    companies = companies_of_groups(preset=preset, groups=groups) if groups else {}
    parts: dict[CompanyRef, dict[str, list[NotifiedRecord]]] = {}
    refused_parts: dict[CompanyRef, list[RefusedRecord]] = {}
    unknown: dict[str, int] = {}
    for entity, records in payload.items():
        for record in records:
            group_id = record.data["group_id"]
            company = companies.get(group_id)
            if company is None:
                unknown[group_id] = unknown.get(group_id, 0) + 1
                continue
            parts.setdefault(company, {}).setdefault(entity, []).append(record)
    if not refused:
        return parts, refused_parts, unknown
    parking = _parking_rule(companies=companies, groups=groups)
    for bad in refused:
        company, skipped_group = parking(bad)
        if company is not None:
            refused_parts.setdefault(company, []).append(bad)
        elif skipped_group:
            unknown[skipped_group] = unknown.get(skipped_group, 0) + 1
    return parts, refused_parts, unknown


def _parking_rule(
    *, companies: Mapping[str, CompanyRef], groups: set[str]
) -> Callable[[RefusedRecord], tuple[CompanyRef | None, str]]:
    """Where a refused record is parked: ``(company, "")``, or ``(None, group)`` when it is
    skipped (``group``: the unknown group it names, counted as such; ``""`` otherwise).

    Its own group's company; a record naming no usable group (or not an object at all)
    goes to the notification's company when every record of the notification names that
    one group, and is skipped otherwise (no company to show it to). A record of a Connec!
    entity without a mapper is skipped (never applied); one of an entity that is not a
    Connec! entity at all is parked, so that the company's operators see what was sent.
    """
    mapped, known = set(registry.entities()), known_entities()
    sole = companies.get(next(iter(groups))) if len(groups) == 1 else None

    def rule(bad: RefusedRecord) -> tuple[CompanyRef | None, str]:
        if bad.entity in known and bad.entity not in mapped:
            return None, ""  # never applied: logged and skipped
        if not bad.group_id:
            return sole, ""
        company = companies.get(bad.group_id)
        return company, "" if company is not None else bad.group_id

    return rule


@dataclass(frozen=True)
class StoredEntry:
    """An inbox row the webhook inserted (:class:`~maestrano_sync.models.InboxEntry`'s ``pk``)."""

    pk: int
    company_id: int
    record_count: int
    entities: tuple[str, ...]


@dataclass(frozen=True)
class Accepted:
    """What was stored: one inbox entry per company (``entry``: the first, or ``None``),
    and how many refused records were parked."""

    entries: tuple[StoredEntry, ...]
    record_count: int
    skipped_groups: tuple[str, ...] = ()
    parked: int = 0

    @property
    def entry(self) -> StoredEntry | None:
        return self.entries[0] if self.entries else None


def receive_notification(*, preset: Preset, body: bytes | Any) -> Accepted:
    """Validate and store a notification, one inbox entry per company; enqueue their processing.

    ``body``: the raw bytes (the webhook passes them), or a decoded JSON value.
    A body that is not JSON, or not ``{"<entity>": [{...}, ...]}``, is refused whole
    (:class:`NotificationRejected`, nothing stored). Otherwise each element stands on
    its own: one that cannot be applied (:func:`checked_payload`) is parked for
    its company with its reason and the whole record (a ``SyncRecordError``, listed by
    ``maestrano_sync.status.problems``; once per company however often it is delivered),
    and the others are stored. Records of a group that is not a company of the preset,
    and refused ones of no company (:func:`_parking_rule`) or of a Connec! entity without
    a mapper (never applied), are logged and skipped: the platform must not redeliver
    them forever, and the other companies' records are applied. Each company's part is
    applied in its own tenant by its own task.
    """
    notification = parse_payload(body) if isinstance(body, bytes) else checked_payload(body)
    try:
        unknown, entries, parked = _store(preset=preset, notification=notification)
    except IntegrityError:
        if connections[InboxEntry.objects.db].in_atomic_block:
            raise  # the caller's transaction: nothing remembered was used (known_companies)
        # A company this process remembered, or had just read, was deleted (its foreign key
        # failed, nothing was stored): look the preset's companies up again.
        known_companies.forget(preset.name)
        unknown, entries, parked = _store(preset=preset, notification=notification)
    for group_uid, count in sorted(unknown.items()):
        logger.warning(
            "Connec! notification: %s records of group %r skipped: not a company of preset %r",
            count,
            group_uid,
            preset.name,
            extra={"preset": preset.name, "group": group_uid},
        )
    _log_refused(preset=preset, refused=notification.refused, parked=parked)
    for company, entry in entries:
        logger.info(
            "Connec! notification %s stored: %s records of %s",
            entry.pk,
            entry.record_count,
            ", ".join(entry.entities),
            extra={"preset": preset.name, "group": company.group_uid},
        )
    return Accepted(
        entries=tuple(entry for _, entry in entries),
        record_count=sum(entry.record_count for _, entry in entries),
        skipped_groups=tuple(sorted(unknown)),
        parked=len(parked),
    )


#: Refused records of one notification logged one line each; the rest in one line.
LOGGED_REFUSALS = 20


def _log_refused(
    *, preset: Preset, refused: Sequence[RefusedRecord], parked: Sequence[RefusedRecord]
) -> None:
    """A WARNING for each of the first :data:`LOGGED_REFUSALS` refused records (parked or
    skipped), then one for the others together: a body of a million bad elements is not a
    million log lines (each of them parked, or skipped, all the same)."""
    parked_ids = {id(bad) for bad in parked}
    for bad in refused[:LOGGED_REFUSALS]:
        logger.warning(
            "Connec! notification: a record of %s %s: %s; the record: %s",
            bad.entity,
            "parked" if id(bad) in parked_ids else "skipped",
            strict_input.escape_unsafe(bad.reason),
            payload_excerpt(bad.record),
            extra={"preset": preset.name, "group": bad.group_id or "?"},
        )
    others = refused[LOGGED_REFUSALS:]
    if others:
        others_parked = sum(id(bad) in parked_ids for bad in others)
        logger.warning(
            "Connec! notification: %s more records refused (%s parked, %s skipped), "
            "not logged one by one",
            len(others),
            others_parked,
            len(others) - others_parked,
            extra={"preset": preset.name},
        )


def _store(
    *, preset: Preset, notification: Notification
) -> tuple[dict[str, int], list[tuple[CompanyRef, StoredEntry]], list[RefusedRecord]]:
    """Each company's part stored and its processing enqueued, its refused records parked;
    the unknown groups' counts and the records parked."""
    parts, refused, unknown = split_by_company(
        preset=preset, payload=notification.records, refused=notification.refused
    )
    entries = []
    # Stored all or nothing: each inbox row with its index of records (InboxRecord), the
    # other companies' rows and the parked records. One company's part alone is atomic on
    # its own (on PostgreSQL one statement, no BEGIN and COMMIT: see insert_inbox_entry), as
    # are parked records alone (park_records's own transaction).
    writes = len(parts) + (1 if any(refused.values()) else 0)
    with transaction.atomic() if writes > 1 else nullcontext():
        for company, part in parts.items():
            count = sum(len(records) for records in part.values())
            pk = insert_inbox_entry(preset=preset.name, company_id=company.pk, records=part)
            entries.append(
                (company, StoredEntry(pk, company.pk, count, entities=tuple(sorted(part))))
            )
            enqueue_inbox(company_id=company.pk)
        parked = [bad for records in refused.values() for bad in records]
        if parked:
            park_records(
                rows=[
                    parked_record(
                        company_id=company.pk,
                        entity=bad.entity,
                        connec_id=bad.connec_id,
                        reason=REFUSED_REASON + bad.reason,
                        data=bad.record,
                        whole=True,
                    )
                    for company, records in refused.items()
                    for bad in records
                ]
            )
    return unknown, entries, parked


#: The values each inbox row is given (the others are the fields' defaults).
_INBOX_FIELDS = ("preset", "company_id", "payload", "record_count")


def insert_inbox_entry(
    *, preset: str, company_id: int, records: Mapping[str, Sequence[NotifiedRecord]]
) -> int:
    """Insert one :class:`~maestrano_sync.models.InboxEntry` holding ``records`` (by entity,
    as :func:`checked_payload` kept them) with its index of records
    (:class:`~maestrano_sync.models.InboxRecord`: the Connec! ids the records carry, read
    once, by the webhook's rule), all or nothing; the new row's primary key.

    :func:`maestrano_integration.bulk_insert.insert_row_with_children`, its statements built
    once per process (docs/performance.md, webhook round 5: ``InboxEntry.objects.create()``
    ran ``save()``'s machinery and compiled the statement on every call): each value adapted
    by its field, the other fields' defaults (``auto_now``: now), and the database checks
    the rest (the company's foreign key, ``record_count >= 0``), with Django's
    ``IntegrityError`` as from ``create()``. On PostgreSQL both rows are one statement,
    atomic without a transaction; elsewhere two, in a transaction.
    """
    payload = {entity: [record.data for record in part] for entity, part in records.items()}
    record_count = sum(len(part) for part in records.values())
    pk = insert_row_with_children(
        InboxEntry,
        fields=_INBOX_FIELDS,
        row=(preset, company_id, payload, record_count),
        children=InboxRecord,
        link="entry_id",
        child_fields=_INDEX_FIELDS,
        child_rows=[
            (company_id, entity, record.connec_id, record.updated_at)
            for entity, part in records.items()
            for record in part
        ],
    )
    return int(pk)


def notified_records(payload: Any) -> list[tuple[str, str, Any]]:
    """``(entity, Connec! id, Connec!'s updated_at or None)`` of each record of a stored
    notification's ``payload`` (``{entity: [records]}``) that has a Connec! id
    (:func:`notified_connec_id`), in the payload's order."""
    found = []
    for entity, records in payload.items() if isinstance(payload, Mapping) else ():
        for record in records if isinstance(records, list) else ():
            if connec_id := notified_connec_id(record):
                found.append((entity, connec_id, connec_time_or_none(record.get("updated_at"))))
    return found


def index_inbox_entry(*, entry_id: int, company_id: int, payload: Any) -> None:
    """Write the :class:`~maestrano_sync.models.InboxRecord` rows of an inbox row created
    through the ORM (one ``INSERT``, none without records), its records' Connec! ids read
    from the stored payload (:func:`notified_records`), so readers (``maestrano_sync.status``)
    find a record's notifications without decoding payloads. Call it in the transaction
    that inserts the inbox row."""
    _insert_index(entry_id=entry_id, company_id=company_id, rows=notified_records(payload))


#: The values of each index row but its inbox row's key.
_INDEX_FIELDS = ("company_id", "entity", "connec_id", "updated_at")


def _insert_index(*, entry_id: int, company_id: int, rows: list[tuple[str, str, Any]]) -> None:
    insert_rows(
        InboxRecord,
        fields=("entry_id", *_INDEX_FIELDS),
        rows=[
            (entry_id, company_id, entity, connec_id, updated_at)
            for entity, connec_id, updated_at in rows
        ],
    )
