"""The records the sync parks (``SyncRecordError``): when two of them are the same record,
and which rows the webhook parked.

Both rules are stored: the reason of a row the webhook parked starts with
:data:`REFUSED_REASON`, and every parked row's ``fingerprint`` column holds
:func:`record_fingerprint` of its entity, Connec! id and record as stored, on which the
unique constraint ``sync_record_error_parked_once`` parks a record once per company
(``maestrano_sync.services.park_records``: the webhook, the inbox and the import alike).
So they are frozen by the data: the code and the migrations that compute the fingerprints
of rows parked before them call this module, which imports nothing of the app (no model,
whose shape a migration must not depend on). Changing a rule here changes what no stored
row matches: it comes with a new function and a migration that computes every row's
fingerprint again by it (``0015_parked_records_once``), and the earlier functions' names,
signatures and results stay, since earlier migrations import them
(:func:`parked_fingerprint`, ``0013_parked_fingerprints``).

Why the entity, the Connec! id and the whole record: the record alone is its content (a
record delivered or imported again with other content is another version, parked on its
own row, and the version applied later clears it: ``maestrano_sync.status.error_is_current``),
but a row may keep no record at all (a local object a foreign key keeps from being deleted
is parked with ``{}``; an adopter's own parking may keep none), and two such rows of one
entity are two records only by their Connec! id. The record is the one stored whole: an
excerpt would make two long records that begin alike one, and a fingerprint computed from
more than the row keeps could not be computed again by a migration.
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["REFUSED_REASON", "parked_fingerprint", "record_fingerprint"]

#: What starts the reason of a record refused by the webhook (``SyncRecordError.reason``).
REFUSED_REASON = "Refused when notified: "


def record_fingerprint(*, entity: str, connec_id: str, payload_excerpt: str) -> str:
    """The fingerprint of a parked record: the SHA-256, in hex, of its entity, its Connec!
    id and its record as stored (``SyncRecordError.entity``, ``.connec_id`` and
    ``.payload_excerpt``: JSON with sorted keys, so the same record in any key order is the
    same), written as one JSON array so that no two of them read alike."""
    text = json.dumps([entity, connec_id, payload_excerpt])  # ASCII: every text encodes
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def parked_fingerprint(*, entity: str, payload_excerpt: str) -> str:
    """The fingerprint the webhook gave its parked records until ``0015``, which migration
    ``0013_parked_fingerprints`` computes (kept for it: :func:`record_fingerprint` is the
    rule now): the SHA-256, in hex, of the entity and the whole record as stored."""
    text = f"{entity}\n{payload_excerpt}"
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()
