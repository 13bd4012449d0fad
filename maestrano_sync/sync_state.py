"""Every write of a company's per-entity sync state (:class:`~maestrano_sync.models.SyncState`).

Each step of the sync keeps its own columns of the row of (company, entity): the inbox
the time of the last notification applied, the push the time of the last push Connec!
accepted, the reconciliation its watermark and the time of its last run. A step writes its
columns alone, in one upsert (``INSERT ... ON CONFLICT (company, entity) DO UPDATE``,
:func:`maestrano_integration.bulk_insert.insert_rows`) that makes the row when missing and
leaves the other columns as they are; atomic on its own, so it needs no transaction (the
push writes it inside the transaction of its outcomes). ``update_or_create`` spent a
savepoint, a ``SELECT ... FOR UPDATE`` and an ``UPDATE`` of every time column (a new row: a
second savepoint, the ``INSERT`` and two releases) and wrote back what another step had
written meanwhile; ``get_or_create`` made a new row in a transaction of its own.

The reads for display are in :mod:`maestrano_sync.selectors` and :mod:`maestrano_sync.metrics`.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import TypedDict

from maestrano_accounts.models import Company
from maestrano_integration.bulk_insert import insert_rows

from .models import SyncState


class Times(TypedDict, total=False):
    """The times of a :class:`SyncState` row a step writes (each by one step alone)."""

    last_notification_at: datetime.datetime
    last_push_at: datetime.datetime
    last_reconcile_at: datetime.datetime
    reconcile_watermark: datetime.datetime


#: The columns :func:`record_times` writes.
TIME_FIELDS: frozenset[str] = frozenset(Times.__annotations__)
_UNIQUE = ("company", "entity")


def record_times(*, company: Company, entities: Iterable[str], times: Times) -> None:
    """Keep ``times`` in the :class:`SyncState` rows of ``entities`` of ``company``: the
    rows made when missing, their other columns left as they are.

    One statement for all the entities, an upsert atomic on its own: no transaction around
    it, nor a read before it. The rows are written in the entities' order (sorted), so two
    transactions writing some of the same rows wait for each other instead of deadlocking.
    """
    unknown = set(times) - TIME_FIELDS
    if unknown or not times:
        raise ValueError(f"record_times writes some of {sorted(TIME_FIELDS)}, not {sorted(times)}")
    columns = sorted(times.items())  # one statement shape per set of columns
    names = tuple(name for name, _ in columns)
    values = tuple(value for _, value in columns)
    rows = [(company.pk, entity, *values) for entity in sorted(set(entities))]
    if not rows:
        return
    insert_rows(
        SyncState,
        fields=("company_id", "entity", *names),
        rows=rows,
        update_conflicts=True,
        update_fields=names,
        unique_fields=_UNIQUE,
    )


def reconcile_watermark(*, company: Company, entity: str) -> datetime.datetime | None:
    """The reconciliation watermark of ``entity`` of ``company`` (``None``: never
    reconciled), its :class:`SyncState` row made when missing.

    One ``SELECT`` when the row is there; else one ``INSERT ... ON CONFLICT DO NOTHING``
    more, atomic on its own (``get_or_create`` made the row in a transaction of its own).
    A row made meanwhile by another step has no watermark: only the reconciliation writes
    it, under the company's lock (:func:`maestrano_sync.locks.company_run`).
    """
    found = list(
        SyncState.objects.filter(company=company, entity=entity).values_list(
            "reconcile_watermark", flat=True
        )[:1]
    )
    if found:
        return found[0]
    insert_rows(
        SyncState,
        fields=("company_id", "entity"),
        rows=[(company.pk, entity)],
        ignore_conflicts=True,
    )
    return None
