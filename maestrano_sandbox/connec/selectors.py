"""Reading Connec! records, always scoped to one group and entity."""

from __future__ import annotations

import datetime
import uuid
from typing import Any, NamedTuple

from django.db.models import QuerySet

from maestrano_sandbox.models import ConnecRecord, Group, RegisteredApp

from .errors import ConnecApiError
from .queries import FILTER_BACKENDS, ConnecPagination
from .references import RecordIndex


def group_for_app(*, group_uid: str, app: RegisteredApp | None) -> Group:
    """The group, if ``app`` is one of its apps (``app=None``: the sandbox itself).

    An unknown group and a group that does not use the app answer the same 404,
    so an app cannot probe which groups exist.
    """
    groups = Group.objects.filter(uid=group_uid)
    if app is not None:
        groups = groups.filter(apps=app)
    group = groups.first()
    if group is None:
        raise ConnecApiError.single(
            404, f"Group {group_uid!r} not found, or not shared with this application"
        )
    return group


def records_of(*, group: Group, entity: str) -> QuerySet[ConnecRecord]:
    return ConnecRecord.objects.filter(group=group, entity=entity)


class ListedRecord(NamedTuple):
    """The columns of a record that a list answer renders (see ``references.render_records``).

    A page holds up to 500 records: reading these columns as tuples instead of
    building model instances saves a fifth of the list endpoint's time.
    """

    uid: uuid.UUID
    entity: str
    data: dict[str, Any]
    created_at: datetime.datetime
    updated_at: datetime.datetime


def list_records(
    *, group: Group, entity: str, request: Any
) -> tuple[list[ListedRecord], ConnecPagination]:
    """One page of records (``$filter``, ``$orderby``, ``$top``, ``$skip`` of ``request``, a DRF
    request or a batch op) and the paginator that read it (total, links)."""
    matching = records_of(group=group, entity=entity)
    for backend in FILTER_BACKENDS:
        matching = backend().filter_queryset(request, matching)
    paginator = ConnecPagination()
    rows = paginator.paginate_queryset(matching.values_list(*ListedRecord._fields), request)
    return [ListedRecord._make(row) for row in rows], paginator


def get_record(
    *,
    group: Group,
    entity: str,
    record_id: str,
    provider: str | None = None,
    realm: str | None = None,
) -> ConnecRecord:
    """A record by Connec! id, or by an external id when ``provider`` is given (docs/protocol.md,
    'External ids')."""
    return RecordIndex(lock=False).lookup(
        group=group, entity=entity, record_id=record_id, provider=provider, realm=realm
    )
