"""Writes of the sync's state outside the record pipeline: parked records, each once per
company (:func:`park_records`).

IdMap rows are written by :mod:`maestrano_sync.idmap` only; ``link_record`` (map one record) is
re-exported here for adopters and tests.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_integration.strict_input import Unreadable, escape_unsafe

from .fingerprints import record_fingerprint
from .idmap import link_record
from .models import SyncRecordError, SyncRun

__all__ = ["link_record", "park_records", "parked_record", "payload_excerpt"]

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
    whole: bool = True,
) -> SyncRecordError:
    """An unsaved :class:`SyncRecordError` of ``company`` (or ``company_id``), every value
    fit for its column; save it with :func:`park_records`.

    The id is cut to the column, the reason bounded, and text a database
    refuses (NUL, lone surrogates, which a reason may quote) escaped: parking
    a bad record must never fail itself. The record (``data``) is kept whole, as the
    row's fingerprint reads it (:mod:`maestrano_sync.fingerprints`: an excerpt would make
    two long records that begin alike one record); ``whole=False``: an excerpt of
    :data:`PAYLOAD_EXCERPT_CHARS`, for a row saved otherwise.
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


def park_records(*, rows: Sequence[SyncRecordError]) -> None:
    """Save parked records (:func:`parked_record`'s rows), each record once per company,
    whoever parks it (the webhook, the inbox, the import), known by its entity, Connec! id
    and record (``fingerprint``, :func:`maestrano_sync.fingerprints.record_fingerprint`).

    A record parked before counts one more on its row (``times_seen``, ``last_seen_at``)
    instead of being parked again, also when that parking is still being stored (the
    unique constraint makes this one wait for it, then count on its row). The row then
    says what the latest parking said: its ``reason`` (a mapping fixed meanwhile, or a
    reference missing now, changes it), and its ``run`` when it has one (the import run
    that parked it last: that run lists it; an earlier run keeps its count,
    ``SyncRunEntity.failed``); when it was first parked stays (``created_at``). All or
    nothing, in the caller's transaction when there is one.

    Rows are locked and inserted in one order, by company then fingerprint, whatever order
    ``rows`` came in: two workers parking overlapping records (a notification and an
    import, in different orders) then wait for each other at their first common record
    instead of each holding one the other needs (a deadlock on PostgreSQL, one of them
    failed)."""
    now = timezone.now()
    unique: dict[tuple[int, str], SyncRecordError] = {}
    for row in rows:
        row.fingerprint = record_fingerprint(
            entity=row.entity, connec_id=row.connec_id, payload_excerpt=row.payload_excerpt
        )
        if (first := unique.setdefault((row.company_id, row.fingerprint), row)) is not row:
            first.times_seen += 1  # the same record twice in one notification or page
            first.last_seen_at = now
    unique = {key: unique[key] for key in sorted(unique)}
    with transaction.atomic():
        for attempt in range(1, _PARKING_ATTEMPTS + 1):
            unique = _count_parked_again(unique, now=now)
            try:
                with transaction.atomic():
                    SyncRecordError.objects.bulk_create(list(unique.values()))
                return
            except IntegrityError:
                # Another worker parked some of them since they were looked up (or a
                # company is gone: raised once the attempts are spent).
                if attempt == _PARKING_ATTEMPTS:
                    raise


def park_outcome_errors(
    *,
    company: Company,
    entity: str,
    errors: Sequence[tuple[str | None, str, Any]],
    run: SyncRun | None = None,
    logger: logging.Logger,
    message: str,
    extra: Mapping[str, Any],
) -> None:
    """Park the records of ``entity`` the record pipeline could not apply for ``company``
    (``errors``: Connec! id, reason and record, :class:`maestrano_sync.pipeline.Outcome`),
    with the import ``run`` that met them if any, and log a warning for each on the
    caller's ``logger``: ``message`` formatted with the entity, Connec! id and reason,
    with ``extra``.

    The inbox and the import park their records alike; the webhook's refusals are other
    records (several companies', a reason of their own: :mod:`maestrano_sync.notifications`).
    """
    park_records(
        rows=[
            parked_record(
                company=company,
                run=run,
                entity=entity,
                connec_id=connec_id,
                reason=reason,
                data=data,
            )
            for connec_id, reason, data in errors
        ]
    )
    for connec_id, reason, _ in errors:
        # Logged from the caller's line (stacklevel): the inbox's or the import's, not this one.
        logger.warning(message, entity, connec_id, reason, extra=extra, stacklevel=2)


#: How often :func:`park_records` looks its records up again after a concurrent worker
#: parked some of them.
_PARKING_ATTEMPTS = 3
#: Rows per ``UPDATE`` of :func:`_count_parked_again`.
_UPDATE_BATCH = 500


def _count_parked_again(
    unique: dict[tuple[int, str], SyncRecordError], *, now: datetime.datetime
) -> dict[tuple[int, str], SyncRecordError]:
    """Count the records of ``unique`` parked already on their rows, with the run of this
    parking where it has one (a few ``UPDATE`` statements, one per batch of rows seen as
    often), and its reason where it changed (one statement per batch of those rows: a
    record parked again for the same reason changes only its counts); the ones that are
    not parked yet, in ``unique``'s order.

    The rows are locked as they are looked up, in the order of the unique constraint
    (company, fingerprint): the ``UPDATE`` statements that follow, grouped by what they
    write, would otherwise lock them in an order that depends on this parking's counts,
    runs and reasons, another for a concurrent worker parking the same records."""
    earlier = (
        SyncRecordError.objects.filter(
            company_id__in={company_id for company_id, _ in unique},
            fingerprint__in={fingerprint for _, fingerprint in unique},
        )
        .select_for_update(no_key=True)  # the lock the UPDATE takes; foreign keys unblocked
        .order_by("company_id", "fingerprint")
        .values_list("company_id", "fingerprint", "pk", "reason", "run_id")
    )
    by_change: dict[tuple[int, int | None], list[int]] = {}  # (times seen, new run or None)
    reasons: list[SyncRecordError] = []  # the rows this parking gives another reason
    seen: set[tuple[int, str]] = set()
    for company_id, fingerprint, pk, reason, run_id in earlier:
        if (key := (company_id, fingerprint)) in unique:  # not another company's record
            seen.add(key)
            row = unique[key]
            moved = row.run_id is not None and row.run_id != run_id
            by_change.setdefault((row.times_seen, row.run_id if moved else None), []).append(pk)
            if row.reason != reason:
                reasons.append(SyncRecordError(pk=pk, reason=row.reason))
    for (count, new_run_id), pks in by_change.items():
        values: dict[str, Any] = {"times_seen": F("times_seen") + count, "last_seen_at": now}
        if new_run_id is not None:
            values["run_id"] = new_run_id
        for start in range(0, len(pks), _UPDATE_BATCH):
            SyncRecordError.objects.filter(pk__in=pks[start : start + _UPDATE_BATCH]).update(
                **values
            )
    SyncRecordError.objects.bulk_update(reasons, ["reason"], batch_size=_UPDATE_BATCH)
    return {key: row for key, row in unique.items() if key not in seen}
