"""One sync status per record, and the list of sync problems, derived from the sync's tables.

The only place that decides what a person is told about a record's sync:

- **queued**: a local change waits in the outbox, not tried yet;
- **held**: a local change waits in the outbox because the company's sync, or the export of
  its kind of record, is off (:mod:`maestrano_sync.company_settings`); ``reason`` says which;
- **retrying**: Connec! failed transiently; the outbox tries again at ``at``;
- **parked**: Connec! refused the change; retry by hand;
- **not sent**: Connec! kept failing (or its answers were lost) until the outbox gave up;
  it may or may not hold the change; retry by hand (a retry never duplicates the record);
- **not applied**: a change from Connec! could not be applied here (a record error last
  seen, or a failed notification, after our last successful exchange for the record:
  :func:`error_is_current`);
- **incoming**: a newer version from Connec! waits in the inbox (a notification not applied
  yet, e.g. while the company's sync is off, or held while the import of its kind of record
  is off); ``reason`` says why it waits, when it is held;
- **synced**: Connec! acknowledged the record (an IdMap row) and nothing is outstanding
  either way; ``at`` is the last exchange, ``updated_from_connec`` its direction (Connec!'s
  version applied here, or ours accepted by Connec!); ``reason``: Connec!'s changes are not
  applied here while the sync settings keep them out;
- **local**: never sent and nothing queued (e.g. saved while the sync was off).

``reason`` is what a person is told, in plain words (:data:`PLAIN_REASONS`, or why the
sync settings hold the record); ``detail`` is the stored technical reason (Connec!'s
answer, the exception), kept for the pages' collapsed details, the admin and the logs.

"Synced" is only said with an IdMap row, no pending or parked outbox row and no newer
version of the record waiting in the inbox: a change is never "synced" before Connec!
answered it, nor while Connec!'s newer one is not applied here. Reads are bulk (a handful
of queries for a whole list page), always filtered by the company.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models.functions import Coalesce
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from maestrano_accounts.models import Company
from maestrano_integration.connec import ConnecNotFoundError, connec_client_for

from . import idmap, inbox, push
from .company_settings import SyncPolicy, policy_for
from .inbox_plan import entity_never_applied
from .models import IdMap, InboxEntry, InboxRecord, OutboxEntry, SyncRecordError
from .registry import NotRegistered, registry
from .scheduling import enqueue_inbox, enqueue_reapply

#: ``SyncRecordError.last_seen`` in SQL.
_LAST_SEEN = Coalesce("last_seen_at", "created_at")


SYNCED, QUEUED, HELD, RETRYING, PARKED, NOT_SENT, NOT_APPLIED, INCOMING, LOCAL = (
    "synced",
    "queued",
    "held",
    "retrying",
    "parked",
    "not_sent",
    "not_applied",
    "incoming",
    "local",
)
LABELS = {
    SYNCED: _("Synced"),
    QUEUED: _("Queued"),
    HELD: _("On hold"),
    RETRYING: _("Retrying"),
    PARKED: _("Refused by Connec!"),
    NOT_SENT: _("Not sent"),
    NOT_APPLIED: _("Not applied from Connec!"),
    INCOMING: _("Update from Connec! waiting"),
    LOCAL: _("Not in Connec!"),
}
#: Badge colour class of each state (static/css/app.css).
TONES = {
    SYNCED: "ok",
    QUEUED: "",
    HELD: "warn",
    RETRYING: "warn",
    PARKED: "bad",
    NOT_SENT: "bad",
    NOT_APPLIED: "bad",
    INCOMING: "warn",
    LOCAL: "",
}
#: Worst first: the state shown when several apply.
SEVERITY = [PARKED, NOT_SENT, NOT_APPLIED, RETRYING, HELD, INCOMING, QUEUED, SYNCED, LOCAL]
#: The states a person can retry by hand (the dashboard's problems).
PROBLEMS = (PARKED, NOT_SENT, NOT_APPLIED)
#: What a person is told of a state whose stored reason is technical (``detail``): what
#: happened and what they can do, in plain words.
#: Lazy translations: ``str()`` gives them in the language active then (a status is built
#: per request, :func:`_row_state`).
PLAIN_REASONS = {
    RETRYING: _(
        "Connec! did not answer, or could not take the change just now. Nothing to do: "
        "it is tried again automatically."
    ),
    PARKED: _(
        "Connec! does not accept a value of this record: correct it and save it again "
        "(the technical details may say which). An admin can also retry it as it is."
    ),
    NOT_SENT: _(
        "Nothing is lost: an admin can retry it once Connec! works again, and a retry never "
        "makes a second record."
    ),
    NOT_APPLIED: _(
        "Its values do not fit here, or a record it refers to is missing: correct it in "
        "Connec!, or ask an admin to retry it."
    ),
}


@dataclass(frozen=True)
class RecordSyncStatus:
    """What one record's page, list row and the dashboard say about its sync."""

    state: str
    connec_id: str = ""
    #: synced: last exchange with Connec!; retrying: next attempt; parked/not applied: since;
    #: incoming: when the waiting version was changed in Connec! (else received).
    at: dt.datetime | None = None
    reason: str = ""
    #: The stored technical reason (Connec!'s answer, an exception), for those who need it.
    detail: str = ""
    #: synced: the last exchange brought Connec!'s version here (a notification, the import)
    #: rather than sending ours to Connec!.
    updated_from_connec: bool = False

    @property
    def label(self) -> str:
        return str(LABELS[self.state])

    @property
    def tone(self) -> str:
        return TONES[self.state]

    @property
    def is_problem(self) -> bool:
        return self.state in PROBLEMS

    @property
    def can_retry(self) -> bool:
        return self.is_problem

    @property
    def changes_soon(self) -> bool:
        """Whether the status moves on by itself soon (a page follows it): a change on its
        way, or Connec!'s version waiting for the worker, not held by the settings."""
        return self.state in (QUEUED, RETRYING) or (self.state == INCOMING and not self.reason)

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "label": self.label,
            "connec_id": self.connec_id,
            "at": self.at.isoformat() if self.at else None,
            "reason": self.reason,
            "detail": self.detail,
            "updated_from_connec": self.updated_from_connec,
        }


def _outbox_state(*, status: str, attempts: int, gave_up: bool) -> str:
    """The state of one outbox row (the one rule; :func:`_row_state`, :func:`state_counts`)."""
    if status == OutboxEntry.Status.PARKED:
        return NOT_SENT if gave_up else PARKED
    return RETRYING if attempts else QUEUED


def _row_state(row: OutboxEntry) -> RecordSyncStatus:
    state = _outbox_state(status=row.status, attempts=row.attempts, gave_up=row.gave_up)
    if state in (PARKED, NOT_SENT):
        return RecordSyncStatus(
            state=state, at=row.updated_at, reason=str(PLAIN_REASONS[state]), detail=row.last_error
        )
    if state == RETRYING:
        return RecordSyncStatus(
            state=RETRYING,
            at=row.next_attempt_at,
            reason=str(PLAIN_REASONS[RETRYING]),
            detail=row.last_error,
        )
    return RecordSyncStatus(state=QUEUED, at=row.created_at)


#: The words every reason the sync settings give names them by (a page may link them to its
#: settings page: the example project's ``sync_reason`` tag). Lazy: ``str(SETTINGS_WORDS)``
#: is what the reasons hold in the active language.
SETTINGS_WORDS = _("sync settings")


def held_reason(*, policy: SyncPolicy, entity: str) -> str:
    """Why local changes of ``entity`` wait in the outbox, or ``""`` when they are sent."""
    if policy.exports(entity):
        return ""
    words = {"entity": entity, "settings": SETTINGS_WORDS}
    if not policy.enabled:
        # Translators: %(settings)s is the translation of "sync settings" (linked on pages).
        return (
            gettext(
                "Sync with Connec! is switched off for this company: the change is sent once an "
                "Admin switches it on again (%(settings)s)."
            )
            % words
        )
    if policy.imports(entity):
        # Translators: %(settings)s is the translation of "sync settings" (linked on pages).
        return (
            gettext(
                "Changes of %(entity)s are not sent to Connec! (the %(settings)s import them "
                "only): the change is sent once an Admin lets them out again."
            )
            % words
        )
    # Translators: %(settings)s is the translation of "sync settings" (linked on pages).
    return (
        gettext(
            "Changes of %(entity)s are not sent to Connec! (the %(settings)s turn them off): "
            "the change is sent once an Admin lets them out again."
        )
        % words
    )


def incoming_held_reason(*, policy: SyncPolicy, entity: str) -> str:
    """Why Connec!'s changes of ``entity`` are not applied here, or ``""`` when they are."""
    if policy.imports(entity):
        return ""
    words = {"records": _plural_label(entity), "settings": SETTINGS_WORDS}
    if not policy.enabled:
        # Translators: %(settings)s is the translation of "sync settings" (linked on pages).
        return (
            gettext(
                "Sync with Connec! is switched off for this company: the change made in Connec! "
                "is applied here once an Admin switches it on again (%(settings)s)."
            )
            % words
        )
    # Translators: %(settings)s is the translation of "sync settings" (linked on pages).
    return (
        gettext(
            "The import of %(records)s from Connec! is off (%(settings)s): Connec!'s newer "
            "version is kept, and applied here once an Admin turns the import on again."
        )
        % words
    )


def _plural_label(entity: str) -> str:
    """``people``'s records as a person names them (the model's plural name)."""
    try:
        return str(registry.for_entity(entity).model._meta.verbose_name_plural)
    except NotRegistered:
        return entity


def _held(state: RecordSyncStatus, reason: str) -> RecordSyncStatus:
    """``state`` as a held change when its kind of record is not sent (``reason``)."""
    if reason and state.state in (QUEUED, RETRYING):
        return RecordSyncStatus(state=HELD, at=state.at, reason=reason, detail=state.detail)
    return state


def _replaces(state: str, known: str | None) -> bool:
    """Whether a later outbox row's ``state`` replaces the ``known`` one of the same record:
    the newest change decides over a parked one; among pending rows the worst wins."""
    return (
        known is None
        or known in (PARKED, NOT_SENT)
        or SEVERITY.index(state) < SEVERITY.index(known)
    )


def _outbox_states(rows: Iterable[OutboxEntry]) -> dict[str, RecordSyncStatus]:
    """The outstanding outbox state per object id (``rows`` in id order).

    The newest change decides: a record refused once (parked) and saved again
    since is on its way again (its push sends the current state, and supersedes
    the parked row when Connec! accepts it). Among pending rows the worst wins.
    """
    states: dict[str, RecordSyncStatus] = {}
    for row in rows:
        state = _row_state(row)
        known = states.get(row.object_id)
        if _replaces(state.state, known.state if known else None):
            states[row.object_id] = state
    return states


@dataclass(frozen=True)
class _Notified:
    """The newest version of a record found in the company's inbox rows of one status."""

    entry: InboxEntry
    updated_at: dt.datetime | None


def _notified_records(
    *, company: Company, entity: str, connec_ids: Iterable[str]
) -> tuple[dict[str, InboxEntry], dict[str, _Notified]]:
    """({Connec! id: newest failed notification carrying it}, {Connec! id: newest version
    waiting in the inbox}) for records of ``entity`` among ``connec_ids`` (one query).

    Read from the index of the inbox rows' records (:class:`InboxRecord`, by company,
    entity and Connec! id): only the rows of these records, and no payload decoded.
    """
    wanted = set(connec_ids)
    failed: dict[str, InboxEntry] = {}
    waiting: dict[str, _Notified] = {}
    if not wanted:
        return failed, waiting
    records = (
        InboxRecord.objects.filter(
            company=company,
            entity=entity,
            connec_id__in=wanted,
            entry__status__in=[
                InboxEntry.Status.PENDING,
                InboxEntry.Status.PROCESSING,
                InboxEntry.Status.HELD,
                InboxEntry.Status.FAILED,
            ],
        )
        .select_related("entry")
        .defer("entry__payload")
        .order_by("entry__updated_at", "entry_id", "pk")
    )
    for record in records:
        entry = record.entry
        if entry.status == InboxEntry.Status.FAILED:
            failed[record.connec_id] = entry
            continue
        known = waiting.get(record.connec_id)
        if known is None or (
            record.updated_at is not None
            and (known.updated_at is None or record.updated_at > known.updated_at)
        ):
            waiting[record.connec_id] = _Notified(entry=entry, updated_at=record.updated_at)
    return failed, waiting


def record_statuses(
    *, company: Company, model: type[models.Model], pks: Iterable[Any]
) -> dict[str, RecordSyncStatus]:
    """{str(pk): status} for records of one model of ``company`` (a few queries in all)."""
    object_ids = {str(pk) for pk in pks if pk is not None}
    if not object_ids:
        return {}
    try:
        entity = registry.for_model(model).entity
    except NotRegistered:
        return {}
    content_type = ContentType.objects.get_for_model(model)
    policy = policy_for(company_id=company.pk)
    held = held_reason(policy=policy, entity=entity)
    id_maps = idmap.maps_for_objects(
        company=company, content_type=content_type, object_ids=object_ids
    )
    outbox = _outbox_states(
        OutboxEntry.objects.filter(
            company=company,
            content_type=content_type,
            object_id__in=object_ids,
            status__in=[OutboxEntry.Status.PENDING, OutboxEntry.Status.PARKED],
        ).order_by("pk")
    )
    connec_ids = {row.connec_id: object_id for object_id, row in id_maps.items()}
    not_applied: dict[str, RecordSyncStatus] = {}
    errors = SyncRecordError.objects.filter(
        company=company, entity=entity, connec_id__in=list(connec_ids)
    ).order_by(_LAST_SEEN, "pk")
    for error in errors:  # the last seen wins
        object_id = connec_ids[error.connec_id]
        if error_is_current(error=error, id_map=id_maps[object_id]):
            not_applied[object_id] = RecordSyncStatus(
                state=NOT_APPLIED,
                at=error.last_seen,
                reason=str(PLAIN_REASONS[NOT_APPLIED]),
                detail=error.reason,
            )
    failed, waiting = _notified_records(company=company, entity=entity, connec_ids=connec_ids)
    for connec_id, entry in failed.items():
        object_id = connec_ids[connec_id]
        if entry.updated_at > id_maps[object_id].updated_at:
            not_applied[object_id] = RecordSyncStatus(
                state=NOT_APPLIED,
                at=entry.updated_at,
                reason=str(PLAIN_REASONS[NOT_APPLIED]),
                detail=entry.last_error,
            )
    incoming_reason = incoming_held_reason(policy=policy, entity=entity)
    incoming: dict[str, RecordSyncStatus] = {}
    # Connec!'s versions the inbox ignores whatever the settings (e.g. an entity the preset
    # does not subscribe to) never wait to be applied: no such state.
    if entity_never_applied(company=company, entity=entity) is not None:
        waiting = {}
    for connec_id, notified in waiting.items():
        object_id = connec_ids[connec_id]
        if not idmap.is_stale(id_maps[object_id], notified.updated_at):
            incoming[object_id] = RecordSyncStatus(
                state=INCOMING,
                at=notified.updated_at or notified.entry.received_at,
                reason=incoming_reason,
                detail=notified.entry.last_error,
            )
    statuses = {}
    for object_id in object_ids:
        id_map = id_maps.get(object_id)
        connec_id = id_map.connec_id if id_map else ""
        pending = outbox.get(object_id)
        candidates = [
            s
            for s in (
                pending and _held(pending, held),
                not_applied.get(object_id),
                incoming.get(object_id),
            )
            if s
        ]
        if candidates:
            worst = min(candidates, key=lambda s: SEVERITY.index(s.state))
            statuses[object_id] = replace(worst, connec_id=connec_id)
        elif id_map is not None:
            statuses[object_id] = RecordSyncStatus(
                state=SYNCED,
                connec_id=connec_id,
                at=id_map.updated_at,
                reason=incoming_reason,
                updated_from_connec=_last_change_from_connec(id_map),
            )
        else:
            statuses[object_id] = RecordSyncStatus(state=LOCAL)
    return statuses


def _last_change_from_connec(id_map: Any) -> bool:
    """Whether the record's last exchange brought Connec!'s version here (pulled after, or
    without, any push of ours)."""
    pulled, pushed = id_map.last_pulled_updated_at, id_map.last_pushed_updated_at
    return pulled is not None and (pushed is None or pulled > pushed)


def record_status(*, company: Company, obj: models.Model) -> RecordSyncStatus:
    """The status of one record (see :func:`record_statuses`)."""
    return record_statuses(company=company, model=type(obj), pks=[obj.pk]).get(
        str(obj.pk), RecordSyncStatus(state=LOCAL)
    )


# --- the problems panel -------------------------------------------------------------------


#: What the problems panel calls each kind of problem.
PROBLEM_TITLES = {
    "outbox": _("Change refused by Connec!"),
    "record": _("Connec! record not applied"),
    "notification": _("Notification not applied"),
}


@dataclass(frozen=True)
class SyncProblem:
    """A parked push, a Connec! record not applied, or a failed notification."""

    kind: str  # "outbox", "record", "notification"
    pk: int
    entity: str
    reason: str
    at: dt.datetime
    object_id: str = ""
    connec_id: str = ""
    records: int = 0
    #: An outbox row parked because Connec! kept failing, not because it refused the change.
    gave_up: bool = False
    #: A Connec! record not applied: how many times it was parked or delivered (``at``: the
    #: first), and when last (``SyncRecordError.times_seen``, ``.last_seen``).
    times_seen: int = 1
    last_seen_at: dt.datetime | None = None

    @property
    def latest(self) -> dt.datetime:
        """When it last happened (problems are listed newest first by it)."""
        return self.last_seen_at or self.at

    @property
    def title(self) -> str:
        if self.kind == "outbox" and self.gave_up:
            return gettext("Change not sent: Connec! kept failing")
        return str(PROBLEM_TITLES[self.kind])

    @property
    def advice(self) -> str:
        """What a person is told of it, in plain words (``reason`` is the technical one)."""
        if self.kind == "outbox":
            return str(PLAIN_REASONS[NOT_SENT if self.gave_up else PARKED])
        return str(PLAIN_REASONS[NOT_APPLIED])


def error_is_current(*, error: SyncRecordError, id_map: IdMap | None) -> bool:
    """Whether a parked Connec! record is still a problem: no exchange of the record
    succeeded since it was last seen (its IdMap row, if any, is older than that). A record
    applied after it was parked hides it, until it is parked or delivered again."""
    return id_map is None or error.last_seen > id_map.updated_at


def problems(*, company: Company) -> list[SyncProblem]:
    """Every parked outbox row, current record error (:func:`error_is_current`: the last
    seen of each record) and failed notification, the latest first."""
    found: list[SyncProblem] = [
        SyncProblem(
            kind="outbox",
            pk=row.pk,
            entity=row.entity,
            reason=row.last_error or "parked",
            at=row.updated_at,
            object_id=row.object_id,
            gave_up=row.gave_up,
        )
        for row in OutboxEntry.objects.filter(company=company, status=OutboxEntry.Status.PARKED)
    ]
    errors = list(
        SyncRecordError.objects.filter(company=company).order_by(_LAST_SEEN.desc(), "-pk")
    )
    maps = idmap.maps_for_keys(
        company=company, connec_ids={error.connec_id for error in errors if error.connec_id}
    )
    seen: set[tuple[str, str]] = set()
    for error in errors:
        key = (error.entity, error.connec_id)
        id_map = maps.get(key)
        if (error.connec_id and key in seen) or not error_is_current(error=error, id_map=id_map):
            continue
        seen.add(key)
        found.append(
            SyncProblem(
                kind="record",
                pk=error.pk,
                entity=error.entity,
                reason=error.reason,
                at=error.created_at,
                object_id=id_map.object_id if id_map else "",
                connec_id=error.connec_id,
                times_seen=error.times_seen,
                last_seen_at=error.last_seen,
            )
        )
    found.extend(
        SyncProblem(
            kind="notification",
            pk=entry.pk,
            entity=", ".join(entry.entities),
            reason=entry.last_error or "failed",
            at=entry.updated_at,
            records=entry.record_count,
        )
        for entry in InboxEntry.objects.filter(company=company, status=InboxEntry.Status.FAILED)
    )
    return sorted(found, key=lambda problem: problem.latest, reverse=True)


def state_counts(*, company: Company) -> dict[str, dict[str, int]]:
    """Per entity: records queued, held, retrying, parked and not sent in the outbox, and
    records not applied."""
    counts: dict[str, dict[str, int]] = defaultdict(
        lambda: {QUEUED: 0, HELD: 0, RETRYING: 0, PARKED: 0, NOT_SENT: 0, NOT_APPLIED: 0}
    )
    rows = (
        OutboxEntry.objects.filter(
            company=company, status__in=[OutboxEntry.Status.PENDING, OutboxEntry.Status.PARKED]
        )
        .order_by("pk")
        .values_list("entity", "content_type_id", "object_id", "status", "attempts", "gave_up")
    )
    per_object: dict[tuple[str, int, str], str] = {}
    for entity, content_type_id, object_id, status, attempts, gave_up in rows:
        state = _outbox_state(status=status, attempts=attempts, gave_up=gave_up)
        key = (entity, content_type_id, object_id)
        known = per_object.get(key)
        if _replaces(state, known):
            per_object[key] = state
    policy = policy_for(company_id=company.pk)
    for (entity, _pk, _kind), state in per_object.items():
        if state in (QUEUED, RETRYING) and held_reason(policy=policy, entity=entity):
            state = HELD
        counts[entity][state] += 1
    for problem in problems(company=company):
        if problem.kind == "record":
            counts[problem.entity][NOT_APPLIED] += 1
    return dict(counts)


# --- retrying a problem ---------------------------------------------------------------------


def retry_problem(*, company: Company, kind: str, pk: int) -> int:
    """Queue one problem of ``company`` again; the number of items queued (0: none found).

    Parked pushes go back to the outbox and failed notifications back to the inbox;
    a Connec! record not applied is fetched again and applied like a notification
    (task ``maestrano_sync.reapply_record``), so a fix made in Connec! or in our mapper heals it.
    """
    if kind == "outbox":
        return push.retry_parked(queryset=OutboxEntry.objects.filter(company=company, pk=pk))
    if kind == "notification":
        return inbox.retry_failed_entries(
            queryset=InboxEntry.objects.filter(company=company, pk=pk)
        )
    if kind == "record":
        error = SyncRecordError.objects.filter(company=company, pk=pk).first()
        if error is None or not error.connec_id:
            return 0
        enqueue_reapply(company_id=company.pk, entity=error.entity, connec_id=error.connec_id)
        return 1
    raise ValueError(f"Unknown kind of sync problem: {kind!r}")


def reapply_record(*, company: Company, entity: str, connec_id: str) -> str:
    """Fetch a record Connec! sent but we could not apply, and store it as a notification.

    The inbox applies it in order with the other notifications, under the
    company's lock. The record's errors are cleared once it is fetched: if it
    fails again, applying it records a new error with the new reason.
    """
    errors = SyncRecordError.objects.filter(company=company, entity=entity, connec_id=connec_id)
    try:
        with connec_client_for(company) as client:
            record = client.retrieve(entity, connec_id)
    except ConnecNotFoundError:
        errors.delete()
        return "gone"
    with transaction.atomic():
        errors.delete()
        InboxEntry.objects.create(
            preset=company.preset, company=company, payload={entity: [record]}, record_count=1
        )
        enqueue_inbox(company_id=company.pk)
    return "queued"
