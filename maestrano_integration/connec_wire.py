"""Connec! API v2 wire constants: one home for the client and the sandbox's emulation.

The client (:mod:`maestrano_integration.connec`) and the emulated Connec! of the
sandbox (``maestrano_sandbox/connec/``) both speak this protocol; reading the same values
here keeps them from drifting apart (docs/protocol.md, "Connec! API").
"""

from __future__ import annotations

from .http import path_segment

#: The media type of requests and answers (JSON is accepted as well).
MEDIA_TYPE = "application/vnd.api+json"
#: Request header: ``true`` asks Connec! to answer with every external id of the records.
EXTERNAL_IDS_HEADER = "CONNEC-EXTERNAL-IDS"
#: Largest ``$top`` a collection GET honours (larger is cut to it).
MAX_PAGE_SIZE = 500
#: Most ops one ``/batch`` request may carry; a larger batch is refused whole (400).
MAX_BATCH_OPS = 500


def record_path(*, base_path: str, group_id: str, entity: str, record_id: str | None = None) -> str:
    """``{base_path}/{group_id}/{entity}``, or one record's path under it.

    The group uid and the record's id are one path segment each
    (:func:`~maestrano_integration.http.path_segment`; ``ValueError`` for an empty id,
    ``.`` or ``..``): besides Connec!'s own ids (UUIDs), a record is addressed by our
    external id, a local key, which may hold ``/``, ``?``, ``#``, ``%`` or spaces (a text
    primary key: ``INV/2024/001``), and an id from the data never names another group's
    path (``../../cld-2/people/…``)."""
    path = f"{base_path}/{path_segment(group_id)}/{entity}"
    return f"{path}/{path_segment(record_id)}" if record_id is not None else path
