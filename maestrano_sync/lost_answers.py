"""Our own records in notifications that do not say so.

A push whose answer never came back (a timeout, a worker killed mid-drain)
leaves a record in Connec! with our external id and nothing in the IdMap; its
outbox row is still due. A notification of that record (another app edited
it) in the list form of ids carries our external id, and :mod:`maestrano_sync.inbox`
links it. In the plain form (``"id": "<connec id>"``) nothing says it is ours,
and applying it would create a second local object.

So, while the company has such unanswered pushes of an entity, an unknown
record notified with a plain id is looked up in Connec! with its external ids
(the sync client asks for them) before it is applied: one GET per such record,
and none at all while every push of the entity has its answer. The import asks
:func:`has_unanswered_pushes` once per entity and run, and reads that entity's pages with
their external ids when it holds (:mod:`maestrano_sync.importer`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from maestrano_accounts.models import Company
from maestrano_integration.connec import ConnecClient, ConnecNotFoundError

from . import idmap
from .models import OutboxEntry
from .pipeline import ParsedRecord
from .values import foreign_group_problem


def has_unanswered_pushes(*, company: Company, content_type_id: int) -> bool:
    """Whether a due outbox row of this model belongs to an object the IdMap does not know
    (a first push not sent yet, or sent without an answer); one query."""
    due = OutboxEntry.objects.filter(
        company=company, content_type_id=content_type_id, status=OutboxEntry.Status.PENDING
    )
    return idmap.exclude_mapped(due, company=company, content_type_id=content_type_id).exists()


def with_external_ids(
    *,
    company: Company,
    entity: str,
    content_type_id: int,
    parsed: list[ParsedRecord],
    client: ConnecClient,
) -> list[ParsedRecord]:
    """``parsed``, where an unknown record notified with a plain id carries the ``id`` list
    Connec! answers for it now (its data and time stay the notified ones).

    Only while the company has unanswered pushes of the entity. A transient
    Connec! error propagates (the notification is applied later); a record
    Connec! no longer knows is left as notified; one answered as another group's takes
    the notified version's place, for the caller to park.
    """
    plain = [connec_id for connec_id, data, _ in parsed if not isinstance(data.get("id"), list)]
    if not plain or not has_unanswered_pushes(company=company, content_type_id=content_type_id):
        return parsed
    known = idmap.bulk_lookup(company=company, entity=entity, connec_ids=plain)
    wanted = sorted(set(plain) - set(known))
    ids: dict[str, list[Any]] = {}
    foreign: dict[str, Mapping[str, Any]] = {}
    for connec_id in wanted:
        try:
            record = client.retrieve(entity, connec_id)
        except ConnecNotFoundError:
            continue
        if not isinstance(record, Mapping):
            continue
        if foreign_group_problem(record, group_uid=company.group_uid):
            # Answered as another group's: it takes the notified version's place, so that
            # the caller parks the record (pipeline.park_foreign_records), never links it.
            foreign[connec_id] = record
        elif isinstance(record.get("id"), list):
            ids[connec_id] = record["id"]
    if not ids and not foreign:
        return parsed
    refreshed = []
    for connec_id, data, updated_at in parsed:
        if connec_id in foreign:
            data = foreign[connec_id]
        elif connec_id in ids:
            data = {**data, "id": ids[connec_id]}
        refreshed.append((connec_id, data, updated_at))
    return refreshed
