"""The records the webhook parks (``SyncRecordError``): which rows they are, and when two of
them are the same record.

Both rules are stored: the reason of such a row starts with :data:`REFUSED_REASON`, and its
``fingerprint`` column holds :func:`parked_fingerprint` of its entity and record, on which
the unique constraint ``sync_record_error_parked_once`` parks a record once per company.
So they are frozen by the data: the webhook (``maestrano_sync.services.park_notified``) and
migration ``0013_parked_fingerprints`` (which computes the fingerprint of rows parked before
``0012``) both call this module, which imports nothing of the app (no model, whose shape
a migration must not depend on). Changing a rule here changes what no stored row matches:
it comes with a migration that computes every row's fingerprint again, and the functions'
names and signatures stay, since a migration imports them.
"""

from __future__ import annotations

import hashlib

__all__ = ["REFUSED_REASON", "parked_fingerprint"]

#: What starts the reason of a record refused by the webhook (``SyncRecordError.reason``).
REFUSED_REASON = "Refused when notified: "


def parked_fingerprint(*, entity: str, payload_excerpt: str) -> str:
    """The fingerprint of a record the webhook parked: the SHA-256, in hex, of its entity
    and its whole record as stored (``SyncRecordError.entity`` and ``.payload_excerpt``,
    JSON with sorted keys: the same record in any key order is the same)."""
    text = f"{entity}\n{payload_excerpt}"
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()
