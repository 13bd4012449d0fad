"""The conflict rule: a record changed locally and in Connec! at once.

**Last writer wins, by time.** The local change time is when the newest
still-pending outbox row of the object was written (the local side's last
write, not yet pushed); the remote time is the record's Connec! ``updated_at``.
The later one is kept, except that a pending local delete always wins (a
record deleted here is never recreated by a conflict):

* remote later: the record's current Connec! version is fetched and applied
  (our pending change may already be in it, pushed but its answer lost: see
  :func:`maestrano_sync.inbox._current_versions_of_conflicts`) and the pending outbox
  rows of the object the decision read are closed as superseded (the local version is
  not pushed; a row written since, a later local change, still is);
* local later (or equal): the Connec! version is not applied, the outbox row
  stays and pushes the local version over it.

Either way the losing version is stored in a :class:`~maestrano_sync.models.SyncConflict`
row (visible in the admin) so nothing is silently lost.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_integration.lookups import among

from .models import IdMap, OutboxEntry, SyncConflict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalChange:
    """The last pending (not yet pushed) local change of one object."""

    changed_at: datetime.datetime
    deleted: bool
    #: The newest pending outbox row read: what a remote win supersedes (rows written
    #: after it are later changes, not part of what lost).
    last_row: int


def pending_local_changes(
    *, company: Company, content_type_id: int, object_ids: Iterable[str]
) -> dict[str, LocalChange]:
    """{object id: its last pending local change} (one query)."""
    ids = [object_id for object_id in object_ids if object_id]
    if not ids:
        return {}
    rows = (
        OutboxEntry.objects.filter(
            among("object_id", ids),
            company=company,
            content_type_id=content_type_id,
            status=OutboxEntry.Status.PENDING,
        )
        .order_by("pk")
        .values_list("pk", "object_id", "created_at", "operation")
    )
    changes: dict[str, LocalChange] = {}
    for pk, object_id, created_at, operation in rows:
        changes[object_id] = LocalChange(
            changed_at=created_at, deleted=operation == OutboxEntry.Operation.DELETE, last_row=pk
        )
    return changes


def deleted_locally(
    *, company: Company, content_type_id: int, object_ids: Iterable[str]
) -> set[str]:
    """Those of ``object_ids`` whose delete is waiting in the company's outbox (one query)."""
    ids = [object_id for object_id in object_ids if object_id]
    if not ids:
        return set()
    return set(
        OutboxEntry.objects.filter(
            among("object_id", ids),
            company=company,
            content_type_id=content_type_id,
            operation=OutboxEntry.Operation.DELETE,
            status=OutboxEntry.Status.PENDING,
        ).values_list("object_id", flat=True)
    )


def remote_wins(*, local: LocalChange, remote_updated_at: datetime.datetime | None) -> bool:
    """The rule: the later writer wins; a tie keeps the local version (it is about to be
    pushed). A pending local delete always wins: a record is never brought back to life
    locally by a conflict (local references to it are gone with it)."""
    if remote_updated_at is None or local.deleted:
        return False
    return remote_updated_at > local.changed_at


def conflict_record(
    id_map: IdMap,
    winner: str,
    local_changed_at: datetime.datetime,
    remote_updated_at: datetime.datetime | None,
    losing_data: Mapping[str, Any],
) -> dict[str, Any]:
    """What :func:`record_conflict` stores about one conflict over ``id_map``'s record
    (the keyword arguments of :func:`settle_conflicts`' ``conflicts``)."""
    return {
        "connec_id": id_map.connec_id,
        "object_id": id_map.object_id,
        "winner": winner,
        "local_changed_at": local_changed_at,
        "remote_updated_at": remote_updated_at,
        "losing_data": dict(losing_data),
    }


def record_conflict(
    *,
    company: Company,
    entity: str,
    connec_id: str,
    object_id: str,
    winner: str,
    local_changed_at: datetime.datetime | None,
    remote_updated_at: datetime.datetime | None,
    losing_data: Mapping[str, Any] | None,
) -> SyncConflict:
    conflict = SyncConflict.objects.create(
        company=company,
        entity=entity,
        connec_id=connec_id,
        object_id=object_id,
        winner=winner,
        local_changed_at=local_changed_at,
        remote_updated_at=remote_updated_at,
        losing_data=_jsonable(losing_data or {}),
    )
    logger.info(
        "Sync conflict on %s %s: %s version kept",
        entity,
        connec_id or object_id,
        winner,
        extra={"preset": company.preset, "group": company.group_uid, "entity": entity},
    )
    return conflict


def supersede_local_changes(
    *, company: Company, content_type_id: int, superseded: Mapping[str, int]
) -> int:
    """Close the pending outbox rows of objects whose Connec! version won.

    ``superseded``: {object id: the newest pending row the decision read}
    (:attr:`LocalChange.last_row`). A row written since is a later local change (a delete
    made while the remote version was being applied): it stays pending, and is pushed."""
    if not superseded:
        return 0
    rows = OutboxEntry.objects.filter(
        company=company, content_type_id=content_type_id, status=OutboxEntry.Status.PENDING
    )
    lost = [
        pk
        for pk, object_id in rows.filter(among("object_id", list(superseded))).values_list(
            "pk", "object_id"
        )
        if pk <= superseded[object_id]
    ]
    if not lost:
        return 0
    return rows.filter(among("pk", lost)).update(
        status=OutboxEntry.Status.DONE,
        last_error="superseded by a later change in Connec! (see sync conflicts)",
        updated_at=timezone.now(),
    )


def settle_conflicts(
    *,
    company: Company,
    entity: str,
    content_type_id: int,
    superseded: Mapping[str, int],
    conflicts: Iterable[Mapping[str, Any]],
) -> int:
    """Write what the rule decided for a batch of records (notifications, reconciliation,
    the import): the pending outbox rows of the objects whose Connec! version won are
    closed, every conflict is stored (:func:`record_conflict`); the number of conflicts.
    Call inside the batch's transaction, after its records are written."""
    supersede_local_changes(company=company, content_type_id=content_type_id, superseded=superseded)
    count = 0
    for conflict in conflicts:
        record_conflict(company=company, entity=entity, **conflict)
        count += 1
    return count


def _jsonable(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))
