"""What a push round learnt from Connec!'s answers: each op's outcome (done, retried with
backoff, parked), then the IdMap rows and outbox statuses written in one transaction.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_integration.connec import NO_STATUS
from maestrano_integration.http import backoff_delay, document_reason
from maestrano_integration.lookups import among
from maestrano_integration.times import excerpt

from . import children, idmap, outbox, sync_state
from .conf import sync_settings
from .mappers import MappingError, connec_time_or_none, record_connec_id
from .models import IdMap, OutboxEntry
from .payloads import values_to_clear
from .registry import registry
from .retries import may_try_again
from .values import our_entry_ids

logger = logging.getLogger(__name__)

#: HTTP statuses of an op that are worth retrying later.
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def retry_delay(attempts: int, *, retry_after: float | None = None) -> float:
    sync = sync_settings()
    delay = backoff_delay(
        attempt=attempts - 1,
        base=sync.push_retry_backoff,
        cap=sync.push_retry_backoff_max,
    )
    return max(delay, retry_after or 0.0)


@dataclass
class DrainResult:
    """What a drain did; ``locked`` when another worker held the company's lock."""

    locked: bool = False
    paused: bool = False  # the company's sync is off: its changes wait in the outbox
    sent: int = 0
    skipped: int = 0
    done: int = 0
    retried: int = 0
    parked: int = 0
    requests: int = 0
    next_due_in: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Op:
    """The coalesced changes of one local object."""

    entity: str
    content_type_id: int
    object_id: str
    operation: str
    row_ids: list[int]
    attempts: int
    first_row_id: int
    # Filled while building the request:
    id_map: IdMap | None = None
    payload: dict[str, Any] | None = None
    hash: str = ""
    unmapped_references: bool = False
    request: dict[str, Any] | None = None
    outcome: str = ""
    error: str = ""
    retry_after: float | None = None
    result_record: dict[str, Any] | None = None
    sent_children: children.SentChildren | None = None
    #: Dotted paths a first push left out as blank (``payloads.leave_out_blanks``).
    left_out: tuple[str, ...] = ()
    #: The HTTP status of Connec!'s answer to the op, once answered.
    status: int | None = None
    #: Our external id of the object, as the request carries it (``payloads.external_id_entry``).
    external_id: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def judge(op: Op, *, status: int, body: Any) -> None:
    """``op``'s outcome from Connec!'s result for it (its HTTP ``status`` and ``body``).

    A success is the op's only when its body is the record the op wrote
    (:func:`_not_its_record`): a result answered for another op (results in another order),
    or without the record, links nothing and is tried again, as a result with no status at
    all; the op is an upsert by our external id or an update by its Connec! id, so sending
    it again never duplicates the record.
    """
    op.status = status
    if status == NO_STATUS:
        op.outcome = "retry"
        op.error = f"Connec! answered no HTTP status for it: {excerpt(body)}"
        return
    if 200 <= status < 300:
        record = body.get(op.entity) if isinstance(body, Mapping) else None
        record = record if isinstance(record, dict) else None
        if (problem := _not_its_record(op, status=status, body=body, record=record)) is not None:
            op.outcome, op.error = "retry", problem
            return
        op.outcome = "done"
        op.result_record = record
        return
    if op.operation == OutboxEntry.Operation.DELETE and status == 404:
        op.outcome = "done"  # never reached Connec!: nothing to delete
        return
    if status in TRANSIENT_STATUSES:
        op.outcome, op.error = "retry", _answered(status, body)
        return
    if op.unmapped_references and status in (400, 404, 422):
        # A referenced record of ours has not reached Connec! yet: wait for it.
        op.outcome, op.error = "retry", _answered(status, body, waiting=True)
        return
    op.outcome, op.error = "parked", _answered(status, body)


def _not_its_record(op: Op, *, status: int, body: Any, record: dict[str, Any] | None) -> str | None:
    """Why the record of a success answered for ``op`` (``record``, from ``body``) is not
    the one ``op`` wrote, or ``None`` when it is: there is a record; it carries our
    external id of this object if it carries ours at all (another's: the result of another
    op); an update's (``op.id_map``) has the Connec! id it addressed; a create's has a
    Connec! id (the one to link)."""
    answered = _result_connec_id(record)
    if record is None or (
        answered is None and op.id_map is None and op.operation == OutboxEntry.Operation.UPSERT
    ):
        return _answered(status, body, missing=True)
    if op.external_id is not None:
        ours = our_entry_ids(
            record.get("id"), provider=op.external_id["provider"], realm=op.external_id["realm"]
        )
        if ours and op.object_id not in ours:
            return (
                f"Connec! answered with another record (our external id {ours[0]!r}, not "
                f"{op.object_id!r})"
            )
    if op.id_map is not None and answered is not None and answered != op.id_map.connec_id:
        return (
            f"Connec! answered with another record ({op.entity}/{answered}, not "
            f"{op.entity}/{op.id_map.connec_id})"
        )
    return None


def _answered(status: int, body: Any, *, waiting: bool = False, missing: bool = False) -> str:
    """An op's refusal as its row's ``last_error`` shows it: the status and what Connec!
    said, by the rule of every answer a person reads (``http.document_reason``).
    ``missing``: a success without the op's record."""
    reason = document_reason(body)
    said = f"HTTP {status} (waiting for a reference)" if waiting else f"HTTP {status}"
    if missing:
        said += " without the record"
    return f"{said}: {reason}" if reason else said


def record_outcomes(*, company: Company, ops: list[Op], result: DrainResult) -> None:
    """Write IdMaps and row statuses in one transaction (bulk)."""
    now = timezone.now()
    done_ids: list[int] = []
    parked: dict[str, list[int]] = defaultdict(list)
    gave_up: dict[str, list[int]] = defaultdict(list)
    retries: list[tuple[Op, int]] = []
    new_maps: list[IdMap] = []
    changed_maps: list[IdMap] = []
    pushed_entities: set[str] = set()
    _park_merges_into_mapped_records(company=company, ops=ops)
    follow_ups = _blanks_to_clear(ops)
    for op in follow_ups:
        op.hash = ""  # their IdMap keeps no payload hash: the update that follows is sent
    for op in ops:
        if op.outcome == "done":
            done_ids.extend(op.row_ids)
            if op.request is not None:
                pushed_entities.add(op.entity)
                _update_id_map(company=company, op=op, new_maps=new_maps, changed=changed_maps)
        elif op.outcome == "retry":
            attempts = op.attempts + 1
            if not may_try_again(attempts=attempts):
                gave_up[f"gave up after {attempts} attempts: {op.error}"[:4000]].extend(op.row_ids)
            else:
                retries.append((op, attempts))
        else:
            parked[op.error[:4000] or "parked"].extend(op.row_ids)
    with transaction.atomic():
        idmap.save_pushed(new=new_maps, changed=changed_maps, now=now)
        if done_ids:
            OutboxEntry.objects.filter(
                among("pk", done_ids), status=OutboxEntry.Status.PENDING
            ).update(status=OutboxEntry.Status.DONE, last_error="", updated_at=now)
            _supersede_parked(company=company, ops=[op for op in ops if op.outcome == "done"])
        for refused, reasons in ((True, parked), (False, gave_up)):
            for error, ids in reasons.items():
                OutboxEntry.objects.filter(
                    among("pk", ids), status=OutboxEntry.Status.PENDING
                ).update(
                    status=OutboxEntry.Status.PARKED,
                    last_error=error,
                    gave_up=not refused,
                    updated_at=now,
                )
        for op, attempts in retries:
            delay = retry_delay(attempts, retry_after=op.retry_after)
            OutboxEntry.objects.filter(
                among("pk", op.row_ids), status=OutboxEntry.Status.PENDING
            ).update(
                attempts=attempts,
                next_attempt_at=now + datetime.timedelta(seconds=delay),
                last_error=op.error[:4000],
                updated_at=now,
            )
        _apply_children_answers(company=company, ops=ops)
        for op in follow_ups:
            # Pushed again in the drain's next round, as an update (a PUT sends the blanks).
            outbox.record_changes(
                model=registry.for_entity(op.entity).model,
                operation=OutboxEntry.Operation.UPSERT,
                entity=op.entity,
                changes=[(op.object_id, company.pk)],
            )
        sync_state.record_times(
            company=company, entities=pushed_entities, times={"last_push_at": now}
        )
    result.done += len(done_ids)
    result.retried += sum(len(op.row_ids) for op, _ in retries)
    # Given up after its attempts: a person retries it, as a refused one ("refused or given
    # up" in the sync history), never counted as sent and fine.
    result.parked += sum(len(ids) for ids in (*parked.values(), *gave_up.values()))
    for error, ids in parked.items():
        logger.warning(
            "Connec! push parked %s outbox rows: %s",
            len(ids),
            error[:300],
            extra={"preset": company.preset, "group": company.group_uid},
        )


def _blanks_to_clear(ops: list[Op]) -> list[Op]:
    """The first pushes that landed on a record Connec! had, holding values where ours are
    blank (``payloads.values_to_clear``: a retry after a lost answer, a smart merge)."""
    found = []
    for op in ops:
        if op.outcome != "done" or not op.left_out or op.status is None:
            continue
        paths = values_to_clear(left_out=op.left_out, status=op.status, record=op.result_record)
        if paths:
            logger.info(
                "Connec! kept values of %s %s the push left out as blank (%s): clearing them",
                op.entity,
                op.object_id,
                ", ".join(paths),
            )
            found.append(op)
    return found


def _apply_children_answers(*, company: Company, ops: list[Op]) -> None:
    """Line ids and values from Connec!'s answers
    (:func:`maestrano_sync.children.apply_answers`)."""
    answers: dict[str, list[tuple[children.SentChildren, Any]]] = defaultdict(list)
    for op in ops:
        if op.outcome == "done" and op.sent_children is not None and op.sent_children.lines:
            answers[op.entity].append((op.sent_children, op.result_record))
    for entity, pairs in answers.items():
        children.apply_answers(company=company, mapper=registry.for_entity(entity), answers=pairs)


def _park_merges_into_mapped_records(*, company: Company, ops: list[Op]) -> None:
    """A first push that Connec! merged (matching fields) into a record already linked
    to another local object is parked: two local records are one in Connec! now, and
    only a person can tell which one to keep (or change the matching value)."""
    firsts = [
        (op, connec_id)
        for op in ops
        if op.outcome == "done"
        and op.id_map is None
        and op.request is not None
        and op.request["method"] == "post"
        and (connec_id := _result_connec_id(op.result_record)) is not None
    ]
    if not firsts:
        return
    linked = idmap.owners_of(company=company, connec_ids={connec_id for _, connec_id in firsts})
    for op, connec_id in firsts:
        owner = linked.setdefault((op.entity, connec_id), op.object_id)
        if owner != op.object_id:
            op.outcome = "parked"
            fields = ", ".join(registry.for_entity(op.entity).matching_fields) or "ids"
            op.error = (
                f"Connec! merged this record into {op.entity}/{connec_id} (equal {fields}), "
                f"which is already linked to local object {owner}: change the value or "
                "merge the two"
            )


def _result_connec_id(record: Mapping[str, Any] | None) -> str | None:
    """The Connec! id of an answered record (:func:`record_connec_id`), ``None`` when it
    has no usable one."""
    try:
        return record_connec_id(record or {})
    except MappingError:
        return None


def _supersede_parked(*, company: Company, ops: list[Op]) -> None:
    """Older parked rows of objects whose current state Connec! just accepted are done.

    A push sends the object as it is now, so it carries every earlier change: a
    record refused once (parked) and fixed since is in sync, not "parked" forever.
    """
    parked = OutboxEntry.objects.filter(company=company, status=OutboxEntry.Status.PARKED)
    if not ops or not parked.exists():
        return
    newest = {(op.content_type_id, op.object_id): max(op.row_ids) for op in ops}
    rows = parked.filter(object_id__in={object_id for _, object_id in newest}).values_list(
        "pk", "content_type_id", "object_id"
    )
    superseded = [
        pk
        for pk, content_type_id, object_id in rows
        if pk < newest.get((content_type_id, object_id), 0)
    ]
    if superseded:
        parked.filter(pk__in=superseded).update(
            status=OutboxEntry.Status.DONE, last_error="", updated_at=timezone.now()
        )


def _update_id_map(
    *, company: Company, op: Op, new_maps: list[IdMap], changed: list[IdMap]
) -> None:
    record = op.result_record or {}
    raw_updated_at = record.get("updated_at")
    updated_at = connec_time_or_none(raw_updated_at)
    connec_id = _result_connec_id(record)
    if op.id_map is not None:
        op.id_map.last_pushed_updated_at = updated_at or op.id_map.last_pushed_updated_at
        if op.operation == OutboxEntry.Operation.UPSERT:
            op.id_map.last_pushed_hash = op.hash
        else:
            op.id_map.last_pushed_hash = ""
        if connec_id:
            op.id_map.connec_id = connec_id
        changed.append(op.id_map)
    elif connec_id:
        new_maps.append(
            idmap.new_pushed(
                company=company,
                entity=op.entity,
                content_type_id=op.content_type_id,
                object_id=op.object_id,
                connec_id=connec_id,
                updated_at=updated_at,
                digest=op.hash if op.operation == OutboxEntry.Operation.UPSERT else "",
            )
        )
