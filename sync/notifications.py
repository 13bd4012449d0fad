"""Receiving Connec! notifications (docs/protocol.md, 'Connec! notifications'): validate, store
raw, answer fast.

The webhook only checks what it can check without Connec!: the JSON shape,
the entities and that every record belongs to one company of the preset the
URL names. A valid payload is stored as one :class:`~sync.models.InboxEntry`
and applied later by a task (:func:`sync.inbox.process_inbox`); a refused one
stores nothing.

Decisions (documented in ``docs/sync.md``):

* an entity that is not a Connec! entity at all is a 400 (the payload is
  malformed); a Connec! entity we do not map, subscribe to or import is
  accepted and ignored when applied, with a log line (the platform must not
  redeliver it forever);
* the records of one payload must all carry the same ``group_id`` (422
  otherwise, the whole payload refused); a group that is not a company of
  this preset is a 404, like the account webhooks' unknown ids.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from accounts.models import Company
from maestrano_integration import strict_input
from maestrano_integration.conf import Preset, maestrano_settings

from .models import InboxEntry
from .registry import known_entities
from .scheduling import enqueue_inbox

logger = logging.getLogger(__name__)


class NotificationRejected(Exception):
    """The payload is refused as a whole; ``status`` is the HTTP answer."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


def max_body_bytes() -> int:
    return int(maestrano_settings.SYNC["NOTIFICATION_MAX_BODY_BYTES"])


def parse_payload(body: bytes) -> dict[str, list[dict[str, Any]]]:
    """The notification as ``{entity: [records]}``; raises :class:`NotificationRejected`.

    Strict JSON (:mod:`maestrano_integration.strict_input`): a payload we could
    not store or query (NaN, NUL, lone surrogates, deep nesting) is refused
    whole with a 400, before anything is stored.
    """
    try:
        payload = strict_input.loads(body)
    except strict_input.InputRefused as error:
        raise NotificationRejected(f"The body is refused: {error}", status=400) from None
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
            for key in ("id", "group_id"):
                value = record.get(key)
                if not isinstance(value, str) or not value.strip():
                    raise NotificationRejected(
                        f"{where}.{key} must be a non-empty string", status=400
                    )
            updated_at = record.get("updated_at")
            if updated_at is not None and not isinstance(updated_at, str):
                raise NotificationRejected(f"{where}.updated_at must be a string", status=400)
    return payload


def company_of(*, preset: Preset, payload: Mapping[str, list[Mapping[str, Any]]]) -> Company | None:
    """The one company every record belongs to (``None`` for an empty payload)."""
    groups = {record["group_id"] for records in payload.values() for record in records}
    if not groups:
        return None
    if len(groups) > 1:
        raise NotificationRejected(
            f"The records belong to {len(groups)} groups; one notification carries one group",
            status=422,
        )
    group_uid = groups.pop()
    company = Company.objects.filter(preset=preset.name, group_uid=group_uid).first()
    if company is None:
        raise NotificationRejected(
            f"Group {group_uid!r} is not a company of preset {preset.name!r}", status=404
        )
    return company


@dataclass(frozen=True)
class Accepted:
    entry: InboxEntry | None
    record_count: int


def receive_notification(*, preset: Preset, body: bytes) -> Accepted:
    """Validate and store a notification; enqueue its processing once committed."""
    payload = parse_payload(body)
    company = company_of(preset=preset, payload=payload)
    count = sum(len(records) for records in payload.values())
    if company is None:
        return Accepted(entry=None, record_count=0)
    with transaction.atomic():
        entry = InboxEntry.objects.create(
            preset=preset.name, company=company, payload=payload, record_count=count
        )
        enqueue_inbox(company_id=company.pk)
    logger.info(
        "Connec! notification %s stored: %s records of %s",
        entry.pk,
        count,
        ", ".join(sorted(payload)),
        extra={"preset": preset.name, "group": company.group_uid},
    )
    return Accepted(entry=entry, record_count=count)
