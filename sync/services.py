"""Writes of the sync's state outside the record pipeline: parked records.

IdMap rows are written by :mod:`sync.idmap` only; ``link_record`` (map one record) is
re-exported here for adopters and tests.
"""

from __future__ import annotations

import json
from typing import Any

from accounts.models import Company
from maestrano_integration.strict_input import escape_unsafe

from .idmap import link_record
from .models import SyncRecordError, SyncRun

__all__ = ["link_record", "parked_record", "payload_excerpt"]

PAYLOAD_EXCERPT_CHARS = 2000
PARKED_REASON_CHARS = 2000


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
