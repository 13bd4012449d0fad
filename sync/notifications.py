"""Receiving Connec! notifications (docs/protocol.md, 'Connec! notifications'): validate, store
raw, answer fast.

The webhook only checks what it can check without Connec!: the JSON shape,
the entities and the ids. A valid payload is stored as one
:class:`~sync.models.InboxEntry` per company of the preset the URL names, and
applied later by a task (:func:`sync.inbox.process_inbox`); a refused one
stores nothing.

Decisions (documented in ``docs/sync.md``):

* an entity that is not a Connec! entity at all is a 400 (the payload is
  malformed); a Connec! entity we do not map, subscribe to or import is
  accepted and ignored when applied, with a log line (the platform must not
  redeliver it forever);
* a record's ``id`` is a string or a list of ``{provider, realm, id}``
  entries, of which the Connec! one is taken (:func:`record_connec_id`);
* a payload may carry records of several groups: each company's records are
  stored as its own inbox entry and applied in its own tenant; the records of
  a group that is not a company of this preset are logged and skipped, and the
  answer is still a 202 (the platform must not redeliver them forever).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connections, transaction

from accounts.models import Company
from maestrano_integration import strict_input
from maestrano_integration.bulk_insert import insert_rows
from maestrano_integration.conf import Preset

from .conf import sync_settings
from .models import InboxEntry
from .registry import known_entities
from .scheduling import enqueue_inbox

#: The provider of Connec!'s own entry in an external-ids list.
CONNEC_PROVIDER = "connec"

logger = logging.getLogger(__name__)


class NotificationRejected(Exception):
    """The payload is refused as a whole; ``status`` is the HTTP answer."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def max_body_bytes() -> int:
    return sync_settings().notification_max_body_bytes


def parse_payload(body: bytes) -> dict[str, list[dict[str, Any]]]:
    """The notification as ``{entity: [records]}``; raises :class:`NotificationRejected`.

    Strict JSON (:mod:`maestrano_integration.strict_input`): a payload we could
    not store or query (NaN, NUL, lone surrogates, deep nesting) is refused
    whole with a 400, before anything is stored. A record's ``id`` is a string
    or a list of ``{provider, realm, id}`` entries (:func:`record_connec_id`).
    """
    try:
        payload = strict_input.loads(body)
    except strict_input.InputRefused as error:
        raise NotificationRejected(f"The body is refused: {error}", status=400) from None
    return checked_payload(payload)


def checked_payload(payload: Any) -> dict[str, list[dict[str, Any]]]:
    """``payload``, already decoded by :func:`strict_input.loads` (the webhook's parser
    did it), if it has the notification's shape; raises :class:`NotificationRejected`."""
    if not isinstance(payload, dict):
        raise NotificationRejected(
            'The body must be an object: {"<entity>": [{"id": ..., "group_id": ...}, ...]}',
            status=400,
        )
    entities = known_entities()
    for entity, records in payload.items():
        if entity not in entities:
            raise NotificationRejected(f"Unknown Connec! entity {entity!r}", status=400)
        if not isinstance(records, list):
            raise NotificationRejected(f"{entity} must be a list of records", status=400)
        for index, record in enumerate(records):
            where = f"{entity}[{index}]"
            if not isinstance(record, Mapping):
                raise NotificationRejected(f"{where} must be an object", status=400)
            group_id = record.get("group_id")
            if not isinstance(group_id, str) or not group_id.strip():
                raise NotificationRejected(
                    f"{where}.group_id must be a non-empty string", status=400
                )
            try:
                record_connec_id(record)
            except ValueError as error:
                raise NotificationRejected(f"{where}.id {error}", status=400) from None
            updated_at = record.get("updated_at")
            if updated_at is not None and not isinstance(updated_at, str):
                raise NotificationRejected(f"{where}.updated_at must be a string", status=400)
    return payload


def record_connec_id(record: Mapping[str, Any]) -> str:
    """The Connec! id of a notified record; raises ``ValueError`` saying what is wrong.

    The rule (docs/protocol.md, 'External ids'): a string is the Connec! id. A
    list holds ``{provider, realm, id}`` entries, one per application that
    knows the record; Connec!'s own has provider ``connec``. When several have
    provider ``connec``, the one whose realm is the record's ``channel_id`` or
    ``group_id`` is taken; entries of other providers (ours included) are never
    the Connec! id.
    """
    value = record.get("id")
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("must be a non-empty string or a list of {provider, realm, id}")
        return value
    if not isinstance(value, list):
        raise ValueError("must be a non-empty string or a list of {provider, realm, id}")
    candidates = [
        entry
        for entry in value
        if isinstance(entry, Mapping)
        and entry.get("provider") == CONNEC_PROVIDER
        and isinstance(entry.get("id"), str)
        and entry["id"].strip()
    ]
    if not candidates:
        raise ValueError(f"has no entry with provider {CONNEC_PROVIDER!r} and a string id")
    if len(candidates) > 1:
        # Only text can be a realm (a list here would not even compare: unhashable).
        realms = {
            realm
            for realm in (record.get("channel_id"), record.get("group_id"))
            if isinstance(realm, str)
        }
        candidates = [
            entry
            for entry in candidates
            if isinstance(entry.get("realm"), str) and entry["realm"] in realms
        ]
        if len(candidates) != 1:
            raise ValueError(
                f"has several entries with provider {CONNEC_PROVIDER!r} and not exactly one "
                "of them in the record's realm (channel_id or group_id)"
            )
    return candidates[0]["id"]


def normalized_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with only the chosen Connec! entry left among its ``connec`` entries.

    The entries of other providers stay: a record carrying *our* external id is
    recognised as ours when applied (a push whose answer was lost).
    """
    value = record.get("id")
    if not isinstance(value, list):
        return dict(record)
    chosen = record_connec_id(record)
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

    A company's preset and group never change (``accounts.models.Company``, one row per
    platform group), so the lookup's answer stays right as long as the row exists; the
    query it saves was about a fifth of a notification's CPU (0.6 ms, docs/performance.md).
    Only what a committed read returned is kept (never inside a transaction, which may
    roll back), never an unknown group (a company may be created at any time), and it is
    used only in autocommit, where the ``INSERT``'s foreign key is checked at once. A
    deleted company is forgotten by this process's signals (``sync.receivers``), and by
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
    if cached and all(pk is not None for pk in found.values()):
        return {group: CompanyRef(pk=pk, group_uid=group) for group, pk in found.items()}
    rows = Company.objects.filter(preset=preset.name, group_uid__in=groups).values_list(
        "pk", "group_uid"
    )
    companies = {group_uid: CompanyRef(pk=pk, group_uid=group_uid) for pk, group_uid in rows}
    if cached:
        for company in companies.values():
            known_companies.remember(preset.name, company.group_uid, company.pk)
    return companies


def split_by_company(
    *, preset: Preset, payload: Mapping[str, list[Mapping[str, Any]]]
) -> tuple[dict[CompanyRef, dict[str, list[dict[str, Any]]]], dict[str, int]]:
    """The payload's records per company of the preset, and the unknown groups' record counts.

    At most one query for every group of the payload (:func:`companies_of_groups`); each
    company's part keeps the payload's order of entities and records.
    """
    groups = {record["group_id"] for records in payload.values() for record in records}
    companies = companies_of_groups(preset=preset, groups=groups)
    parts: dict[CompanyRef, dict[str, list[dict[str, Any]]]] = {}
    unknown: dict[str, int] = {}
    for entity, records in payload.items():
        for record in records:
            company = companies.get(record["group_id"])
            if company is None:
                unknown[record["group_id"]] = unknown.get(record["group_id"], 0) + 1
                continue
            parts.setdefault(company, {}).setdefault(entity, []).append(normalized_record(record))
    return parts, unknown


@dataclass(frozen=True)
class StoredEntry:
    """An inbox row the webhook inserted (:class:`~sync.models.InboxEntry`'s ``pk``)."""

    pk: int
    company_id: int
    record_count: int
    entities: tuple[str, ...]


@dataclass(frozen=True)
class Accepted:
    """What was stored: one inbox entry per company (``entry``: the first, or ``None``)."""

    entries: tuple[StoredEntry, ...]
    record_count: int
    skipped_groups: tuple[str, ...] = ()

    @property
    def entry(self) -> StoredEntry | None:
        return self.entries[0] if self.entries else None


def receive_notification(*, preset: Preset, body: bytes | Any) -> Accepted:
    """Validate and store a notification, one inbox entry per company; enqueue their processing.

    ``body``: the raw bytes, or the JSON value :func:`strict_input.loads` already
    decoded from them (the webhook's parser does, so the body is parsed once).
    Records of a group that is not a company of the preset are logged and
    skipped: the platform must not redeliver them forever, and the other
    companies' records are applied. Each company's part is applied in its own
    tenant by its own task.
    """
    payload = parse_payload(body) if isinstance(body, bytes) else checked_payload(body)
    try:
        unknown, entries = _store(preset=preset, payload=payload)
    except IntegrityError:
        if connections[InboxEntry.objects.db].in_atomic_block:
            raise  # the caller's transaction: nothing remembered was used (known_companies)
        # A company this process remembered, or had just read, was deleted (its foreign key
        # failed, nothing was stored): look the preset's companies up again.
        known_companies.forget(preset.name)
        unknown, entries = _store(preset=preset, payload=payload)
    for group_uid, count in sorted(unknown.items()):
        logger.warning(
            "Connec! notification: %s records of group %r skipped: not a company of preset %r",
            count,
            group_uid,
            preset.name,
            extra={"preset": preset.name, "group": group_uid},
        )
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
    )


def _store(
    *, preset: Preset, payload: Mapping[str, list[Mapping[str, Any]]]
) -> tuple[dict[str, int], list[tuple[CompanyRef, StoredEntry]]]:
    """Each company's part stored and its processing enqueued; the unknown groups' counts."""
    parts, unknown = split_by_company(preset=preset, payload=payload)
    entries = []
    # One company (the usual case): its single INSERT is atomic on its own, so no
    # BEGIN/COMMIT round trips; several companies are stored all or nothing.
    with transaction.atomic() if len(parts) > 1 else nullcontext():
        for company, part in parts.items():
            count = sum(len(records) for records in part.values())
            pk = insert_inbox_entry(
                preset=preset.name, company_id=company.pk, payload=part, record_count=count
            )
            entries.append(
                (company, StoredEntry(pk, company.pk, count, entities=tuple(sorted(part))))
            )
            enqueue_inbox(company_id=company.pk)
    return unknown, entries


#: The values each inbox row is given (the others are the fields' defaults).
_INBOX_FIELDS = ("preset", "company_id", "payload", "record_count")


def insert_inbox_entry(
    *, preset: str, company_id: int, payload: dict[str, Any], record_count: int
) -> int:
    """Insert one :class:`~sync.models.InboxEntry`; the new row's primary key.

    One statement of :func:`maestrano_integration.bulk_insert.insert_rows`, built once per
    process (docs/performance.md, webhook round 5: ``InboxEntry.objects.create()`` ran
    ``save()``'s machinery and compiled the statement on every call): each value adapted
    by its field, the other fields' defaults (``auto_now``: now), and the database checks
    the rest (the company's foreign key, ``record_count >= 0``), with Django's
    ``IntegrityError`` as from ``create()``. No transaction of its own: in autocommit the
    one ``INSERT`` is atomic.
    """
    (pk,) = insert_rows(
        InboxEntry,
        fields=_INBOX_FIELDS,
        rows=[(preset, company_id, payload, record_count)],
        returning=True,
    )
    return int(pk)
