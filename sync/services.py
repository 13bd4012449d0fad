"""Writes of the sync's state that are not the bulk import: linking one record at a time.

Push and notification processing use these; the importer writes IdMap rows in
bulk itself (same rules: one row per (company, entity, connec id) and per
local object).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from accounts.models import Company
from maestrano_integration.strict_input import escape_unsafe

from .models import IdMap, SyncRecordError, SyncRun

PAYLOAD_EXCERPT_CHARS = 2000
PARKED_REASON_CHARS = 2000


def link_record(
    *,
    company: Company,
    entity: str,
    obj: models.Model,
    connec_id: str,
    pulled_updated_at: datetime.datetime | None = None,
    pushed_updated_at: datetime.datetime | None = None,
) -> IdMap:
    """Map ``obj`` to a Connec! record (idempotent; updates the timestamps given)."""
    content_type = ContentType.objects.get_for_model(type(obj))
    defaults: dict[str, Any] = {"content_type": content_type, "object_id": str(obj.pk)}
    if pulled_updated_at is not None:
        defaults["last_pulled_updated_at"] = pulled_updated_at
    if pushed_updated_at is not None:
        defaults["last_pushed_updated_at"] = pushed_updated_at
    id_map, _ = IdMap.objects.update_or_create(
        company=company, entity=entity, connec_id=connec_id, defaults=defaults
    )
    return id_map


def payload_excerpt(data: Any, *, limit: int = PAYLOAD_EXCERPT_CHARS) -> str:
    """A bounded JSON rendering of a record for error reports."""
    try:
        text = json.dumps(data, default=str, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(data)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parked_record(
    *,
    company: Company,
    entity: str,
    connec_id: str | None,
    reason: str,
    data: Any = None,
    run: SyncRun | None = None,
) -> SyncRecordError:
    """An unsaved :class:`SyncRecordError`, every value fit for its column.

    The id is cut to the column, the reason bounded, and text a database
    refuses (NUL, lone surrogates, which a reason may quote) escaped: parking
    a bad record must never fail itself.
    """
    return SyncRecordError(
        company=company,
        run=run,
        entity=entity,
        connec_id=escape_unsafe(connec_id or "")[:64],
        reason=escape_unsafe(reason)[:PARKED_REASON_CHARS],
        payload_excerpt=payload_excerpt(data) if data is not None else "",
    )
