"""Writes of the sync's state outside the record pipeline: parked records.

IdMap rows are written by :mod:`maestrano_sync.idmap` only; ``link_record`` (map one record) is
re-exported here for adopters and tests.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_integration.strict_input import Unreadable, escape_unsafe

from .fingerprints import parked_fingerprint
from .idmap import link_record
from .models import SyncRecordError, SyncRun

__all__ = ["link_record", "park_notified", "parked_record", "payload_excerpt"]

PAYLOAD_EXCERPT_CHARS = 2000
PARKED_REASON_CHARS = 2000


def payload_excerpt(data: Any, *, limit: int | None = PAYLOAD_EXCERPT_CHARS) -> str:
    """A JSON rendering of a record for error reports, bounded by ``limit`` (``None``:
    whole). ASCII only: NUL and lone surrogates are written as escapes (``\\u0000``). A record
    no parser could read (:class:`~maestrano_integration.strict_input.Unreadable`): its text."""
    text = escape_unsafe(data.text) if isinstance(data, Unreadable) else _json_text(data)
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def _json_text(data: Any) -> str:
    try:
        text = json.dumps(data, default=str, sort_keys=True)
    except (TypeError, ValueError):
        return escape_unsafe(repr(data))
    return text


def parked_record(
    *,
    company: Company | None = None,
    company_id: int | None = None,
    entity: str,
    connec_id: str | None,
    reason: str,
    data: Any = None,
    run: SyncRun | None = None,
    whole: bool = False,
) -> SyncRecordError:
    """An unsaved :class:`SyncRecordError` of ``company`` (or ``company_id``), every value
    fit for its column.

    The id is cut to the column, the reason bounded, and text a database
    refuses (NUL, lone surrogates, which a reason may quote) escaped: parking
    a bad record must never fail itself. The record (``data``) is kept as an excerpt,
    or ``whole`` when nothing else keeps it (a notified record Connec! never sends again).
    """
    if (company is None) == (company_id is None):
        raise TypeError("parked_record() takes company or company_id")
    owner: dict[str, Any] = (
        {"company": company} if company is not None else {"company_id": company_id}
    )
    return SyncRecordError(
        **owner,
        run=run,
        entity=escape_unsafe(entity)[:64],
        connec_id=escape_unsafe(connec_id or "")[:64],
        reason=escape_unsafe(reason)[:PARKED_REASON_CHARS],
        payload_excerpt=(
            payload_excerpt(data, limit=None if whole else PAYLOAD_EXCERPT_CHARS)
            if data is not None
            else ""
        ),
    )


def park_notified(*, rows: Sequence[SyncRecordError]) -> None:
    """Save the parked records of a notification (:func:`parked_record`'s rows, ``whole``),
    each record once per company, known by its entity and content (``fingerprint``): one
    parked by an earlier delivery counts one more (``times_seen``, ``last_seen_at``) instead
    of being parked again, also when that delivery is still being stored (the unique
    constraint makes this one wait for it, then count on its row). All or nothing."""
    now = timezone.now()
    unique: dict[tuple[int, str], SyncRecordError] = {}
    for row in rows:
        row.fingerprint = parked_fingerprint(entity=row.entity, payload_excerpt=row.payload_excerpt)
        if (first := unique.setdefault((row.company_id, row.fingerprint), row)) is not row:
            first.times_seen += 1  # the same record twice in one notification
            first.last_seen_at = now
    with transaction.atomic():
        for attempt in range(1, _PARKING_ATTEMPTS + 1):
            unique = _count_parked_again(unique, now=now)
            try:
                with transaction.atomic():
                    SyncRecordError.objects.bulk_create(list(unique.values()))
                return
            except IntegrityError:
                # Another delivery parked some of them since they were looked up (or a
                # company is gone: raised once the attempts are spent).
                if attempt == _PARKING_ATTEMPTS:
                    raise


#: How often :func:`park_notified` looks its records up again after a concurrent delivery
#: parked some of them.
_PARKING_ATTEMPTS = 3
#: Rows per ``UPDATE`` of :func:`_count_parked_again`.
_UPDATE_BATCH = 500


def _count_parked_again(
    unique: dict[tuple[int, str], SyncRecordError], *, now: datetime.datetime
) -> dict[tuple[int, str], SyncRecordError]:
    """Count the records of ``unique`` parked already on their rows (a few ``UPDATE``
    statements, one per batch of rows seen as often); the ones that are not."""
    earlier = SyncRecordError.objects.filter(
        company_id__in={company_id for company_id, _ in unique},
        fingerprint__in={fingerprint for _, fingerprint in unique},
    ).values_list("company_id", "fingerprint", "pk")
    by_count: dict[int, list[int]] = {}
    seen: set[tuple[int, str]] = set()
    for company_id, fingerprint, pk in earlier:
        if (key := (company_id, fingerprint)) in unique:  # not another company's record
            seen.add(key)
            by_count.setdefault(unique[key].times_seen, []).append(pk)
    for count, pks in by_count.items():
        for start in range(0, len(pks), _UPDATE_BATCH):
            SyncRecordError.objects.filter(pk__in=pks[start : start + _UPDATE_BATCH]).update(
                times_seen=F("times_seen") + count, last_seen_at=now
            )
    return {key: row for key, row in unique.items() if key not in seen}
