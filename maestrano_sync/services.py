"""Writes of the sync's state outside the record pipeline: parked records.

IdMap rows are written by :mod:`maestrano_sync.idmap` only; ``link_record`` (map one record) is
re-exported here for adopters and tests.
"""

from __future__ import annotations

import json
from typing import Any

from maestrano_accounts.models import Company
from maestrano_integration.strict_input import escape_unsafe

from .idmap import link_record
from .models import SyncRecordError, SyncRun

__all__ = ["link_record", "parked_record", "payload_excerpt"]

PAYLOAD_EXCERPT_CHARS = 2000
PARKED_REASON_CHARS = 2000


def payload_excerpt(data: Any, *, limit: int | None = PAYLOAD_EXCERPT_CHARS) -> str:
    """A JSON rendering of a record for error reports, bounded by ``limit`` (``None``:
    whole). ASCII only: NUL and lone surrogates are written as escapes (``\\u0000``)."""
    try:
        text = json.dumps(data, default=str, sort_keys=True)
    except (TypeError, ValueError):
        text = escape_unsafe(repr(data))
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


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
        entity=entity,
        connec_id=escape_unsafe(connec_id or "")[:64],
        reason=escape_unsafe(reason)[:PARKED_REASON_CHARS],
        payload_excerpt=(
            payload_excerpt(data, limit=None if whole else PAYLOAD_EXCERPT_CHARS)
            if data is not None
            else ""
        ),
    )
