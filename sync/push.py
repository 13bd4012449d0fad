"""Draining a company's outbox to Connec! through the batch endpoint.

One drain round:

1. read the due rows (pending, ``next_attempt_at`` passed), oldest first;
2. coalesce the rows of one object into one operation (the last one wins: a
   delete after updates is a delete);
3. order the operations by the registry's dependency order (an organization
   before the person referencing it) and send ``BATCH_SIZE`` per request;
4. every op carries our external id ``{"id": <local pk>, "provider": <api id>,
   "realm": <group uid>}`` (docs/protocol.md, 'External ids') with ``CONNEC-EXTERNAL-IDS: true``: a
   create is an upsert, so repeating it after a timeout never duplicates;
   records known to Connec! are updated by their Connec! id; a record's first push
   carries its mapper's ``matching_fields`` (``opts``), so that Connec! merges it into
   an equal record instead of duplicating it; invoice lines carry their Connec! ids
   (:mod:`sync.children`);
5. each op's result is applied on its own: 2xx stores the Connec! id in the
   IdMap with the pushed ``updated_at`` and payload hash; 429/5xx and
   network errors back off (exponential, jittered) and park after
   ``MAX_ATTEMPTS``; other 4xx park the row with Connec!'s error at once.

Deletes: Connec! v2 has no DELETE; a deleted record is pushed as
``{"status": "INACTIVE"}`` (``{"status": "VOIDED"}`` for invoices), or what
the mapper's ``connec_delete_payload`` says.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from accounts.models import Company
from maestrano_integration.conf import get_preset
from maestrano_integration.connec import ConnecClient, ConnecError
from maestrano_integration.http import backoff_delay

from . import children, history, idmap
from .company_settings import policy_for
from .conf import sync_settings
from .locks import company_run, renew_lock
from .mappers import (
    Mapper,
    MappingError,
    ReferenceResolver,
    connec_id_of,
    connec_time_or_none,
    set_path,
)
from .models import IdMap, OutboxEntry, SyncRun, SyncState
from .registry import registry
from .scheduling import schedule_drain

logger = logging.getLogger(__name__)

#: How a deleted record is pushed, per entity (Connec! v2 has no DELETE).
DEFAULT_DELETE_PAYLOADS: dict[str, dict[str, Any]] = {"invoices": {"status": "VOIDED"}}
INACTIVE_PAYLOAD: dict[str, Any] = {"status": "INACTIVE"}

#: HTTP statuses of an op that are worth retrying later.
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def delete_payload(mapper: Mapper) -> dict[str, Any]:
    """What a local delete sends: the mapper's ``connec_delete_payload`` or the entity default."""
    custom = getattr(mapper, "connec_delete_payload", None)
    if custom is not None:
        return dict(custom)
    return dict(DEFAULT_DELETE_PAYLOADS.get(mapper.entity, INACTIVE_PAYLOAD))


def status_is_data(mapper: Mapper) -> bool:
    """When the mapper maps the delete marker's fields, the marker is plain data (invoice
    ``VOIDED``): a delete is only pushed, and Connec!'s value is applied like any other."""
    mapped_paths = set(mapper.fields.values())
    return all(key in mapped_paths for key in delete_payload(mapper))


def live_payload(mapper: Mapper) -> dict[str, Any]:
    """What every upsert of a live record adds: ``{"status": "ACTIVE"}`` when deletes are
    pushed as ``INACTIVE`` and the mapper does not map ``status`` itself.

    A local update made after another app deactivated the record is the later
    write, so it brings the record back (last writer wins, both sides alive).
    """
    custom = getattr(mapper, "connec_live_payload", None)
    if custom is not None:
        return dict(custom)
    if status_is_data(mapper) or delete_payload(mapper) != INACTIVE_PAYLOAD:
        return {}
    return {"status": "ACTIVE"}


def external_id_entry(*, company: Company, object_id: Any) -> dict[str, str]:
    """Our id of a local object in Connec!'s external-id form (docs/protocol.md, 'External ids')."""
    return {
        "id": str(object_id),
        "provider": get_preset(company.preset).api_id,
        "realm": company.group_uid,
    }


def payload_hash(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def blank_to_null(data: Any) -> Any:
    """Empty strings as ``null``: Connec! validates a present value (``""`` is no currency),
    and ``null`` clears a field, which is what an empty local field means."""
    if isinstance(data, dict):
        return {key: blank_to_null(value) for key, value in data.items()}
    if isinstance(data, list):
        return [blank_to_null(value) for value in data]
    return None if data == "" else data


def retry_delay(attempts: int, *, retry_after: float | None = None) -> float:
    sync = sync_settings()
    delay = backoff_delay(
        attempt=attempts - 1,
        base=sync.push_retry_backoff,
        cap=sync.push_retry_backoff_max,
    )
    return max(delay, retry_after or 0.0)


# --- one drain ------------------------------------------------------------------------


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
class _Op:
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
    extra: dict[str, Any] = field(default_factory=dict)


def drain_outbox(
    *, company: Company, client: ConnecClient | None = None, max_rounds: int | None = None
) -> DrainResult:
    """Send every due outbox row of ``company``; safe to call concurrently (one wins the lock)."""
    result = DrainResult()
    if not policy_for(company_id=company.pk).enabled:
        result.paused = True
        return result
    started_at = timezone.now()
    with company_run(company=company, client=client) as held:
        if held is None:
            result.locked = True
            return result
        token, client = held
        rounds = 0
        # A row is tried at most once per drain: its retry waits for the next one.
        attempted: set[int] = set()
        while max_rounds is None or rounds < max_rounds:
            rounds += 1
            if not renew_lock(company_id=company.pk, token=token):
                logger.warning("Lost the sync lock of %s; stopping the drain", company)
                break
            if rounds > 1 and not policy_for(company_id=company.pk).enabled:
                result.paused = True  # switched off meanwhile: the rest waits
                break
            if not _drain_round(
                company=company, client=client, result=result, token=token, attempted=attempted
            ):
                break
    result.next_due_in = next_due_in(company=company)
    history.record_run(
        company=company,
        kind=SyncRun.Kind.PUSH,
        counts={
            "sent": result.sent,
            "done": result.done,
            "skipped": result.skipped,
            "retried": result.retried,
            "parked": result.parked,
            "requests": result.requests,
        },
        failed=result.parked,
        started_at=started_at,
    )
    return result


def next_due_in(*, company: Company) -> float | None:
    """Seconds until the next pending row of ``company`` is due (``None``: nothing pending).

    Rows held by the company's sync settings (export off) are not due.
    """
    next_at = (
        OutboxEntry.objects.filter(company=company, status=OutboxEntry.Status.PENDING)
        .exclude(entity__in=policy_for(company_id=company.pk).held_entities())
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if next_at is None:
        return None
    return max((next_at - timezone.now()).total_seconds(), 0.0)


def _drain_round(
    *,
    company: Company,
    client: ConnecClient,
    result: DrainResult,
    token: str,
    attempted: set[int],
) -> bool:
    """One window of due rows; ``False`` when there was nothing due."""
    window = sync_settings().drain_window
    now = timezone.now()
    rows = list(
        OutboxEntry.objects.filter(
            company=company, status=OutboxEntry.Status.PENDING, next_attempt_at__lte=now
        )
        .exclude(pk__in=attempted)
        # Export off for the company (sync settings): held until it is on again.
        .exclude(entity__in=policy_for(company_id=company.pk).held_entities())
        .order_by("pk")
        .values("pk", "entity", "content_type_id", "object_id", "operation", "attempts")[:window]
    )
    if not rows:
        return False
    attempted.update(row["pk"] for row in rows)
    ops = _coalesce(rows)
    _prepare_ops(company=company, ops=ops, result=result)
    batch_size = max(sync_settings().batch_size, 1)
    to_send = [op for op in ops if op.request is not None]
    for start in range(0, len(to_send), batch_size):
        if start and not renew_lock(company_id=company.pk, token=token):
            break
        chunk = to_send[start : start + batch_size]
        _send(client=client, ops=chunk, result=result)
    _record_outcomes(company=company, ops=ops, result=result)
    return True


def _coalesce(rows: list[dict[str, Any]]) -> list[_Op]:
    """One op per object (its last operation wins), in dependency order then age."""
    by_object: dict[tuple[int, str], _Op] = {}
    for row in rows:
        key = (row["content_type_id"], row["object_id"])
        op = by_object.get(key)
        if op is None:
            by_object[key] = _Op(
                entity=row["entity"],
                content_type_id=row["content_type_id"],
                object_id=row["object_id"],
                operation=row["operation"],
                row_ids=[row["pk"]],
                attempts=row["attempts"],
                first_row_id=row["pk"],
            )
        else:
            op.operation = row["operation"]
            op.row_ids.append(row["pk"])
            op.attempts = max(op.attempts, row["attempts"])
    order = {entity: index for index, entity in enumerate(registry.dependency_order())}
    return sorted(
        by_object.values(),
        key=lambda op: (
            # Deletes last: what references a deleted record is updated first.
            op.operation == OutboxEntry.Operation.DELETE,
            order.get(op.entity, len(order)),
            op.first_row_id,
        ),
    )


def _prepare_ops(*, company: Company, ops: list[_Op], result: DrainResult) -> None:
    """Build each op's batch request (bulk reads: objects, IdMaps, references)."""
    by_entity: dict[str, list[_Op]] = defaultdict(list)
    for op in ops:
        by_entity[op.entity].append(op)
    preset = get_preset(company.preset)
    for entity, entity_ops in by_entity.items():
        try:
            mapper = registry.for_entity(entity)
        except LookupError:
            for op in entity_ops:
                op.outcome, op.error = "parked", f"no mapper is registered for {entity!r}"
            continue
        model = mapper.model
        content_type = ContentType.objects.get_for_model(model)
        id_maps = idmap.maps_for_objects(
            company=company,
            content_type=content_type,
            object_ids=[op.object_id for op in entity_ops],
        )
        upserts = [op for op in entity_ops if op.operation == OutboxEntry.Operation.UPSERT]
        instances = (
            mapper.for_company(company).in_bulk(
                [model._meta.pk.to_python(op.object_id) for op in upserts]
            )
            if upserts
            else {}
        )
        resolver = _export_resolver(company=company, mapper=mapper, instances=instances.values())
        links = children.load_links(company=company, mapper=mapper, parents=instances.values())
        for op in entity_ops:
            op.id_map = id_maps.get(op.object_id)
            entry = external_id_entry(company=company, object_id=op.object_id)
            if op.operation == OutboxEntry.Operation.DELETE:
                payload = {**delete_payload(mapper), "id": [entry]}
                if op.id_map is not None:
                    url = _path(preset, company, entity, op.id_map.connec_id)
                else:
                    # Never mapped: address it by our external id (404 = nothing to delete).
                    url = (
                        _path(preset, company, entity, op.object_id)
                        + f"?opts[provider]={entry['provider']}&opts[realm]={entry['realm']}"
                    )
                op.request = {"method": "put", "url": url, "params": {entity: payload}}
                continue
            instance = instances.get(model._meta.pk.to_python(op.object_id))
            if instance is None:
                # Deleted since: its delete row follows (or it never existed): nothing to send.
                op.outcome = "done"
                result.skipped += 1
                continue
            try:
                data = blank_to_null(mapper.to_connec(instance, references=resolver))
                _clear_empty_references(mapper, instance, data)
                data.update(live_payload(mapper))
            except MappingError as error:
                op.outcome, op.error = "parked", f"cannot map the record: {error}"
                continue
            op.unmapped_references = resolver.unmapped_used(instance)
            op.hash = payload_hash(data)
            if op.id_map is not None and op.id_map.last_pushed_hash == op.hash:
                op.outcome = "done"  # unchanged since our last push (or its echo)
                result.skipped += 1
                continue
            # Each line carries its Connec! id; lines unchanged since both sides agreed
            # go as a bare id, so that Connec! keeps its own values for them.
            op.sent_children = children.mark_lines(
                mapper=mapper, parent=instance, data=data, links=links
            )
            data["id"] = [entry]
            if op.id_map is not None:
                op.request = {
                    "method": "put",
                    "url": _path(preset, company, entity, op.id_map.connec_id),
                    "params": {entity: data},
                }
            else:
                if mapper.matching_fields:
                    # First push: Connec! merges it into an equal record rather than
                    # adding a duplicate (its answer's id is then that record's).
                    data["opts"] = {"matching_fields": list(mapper.matching_fields)}
                op.request = {
                    "method": "post",
                    "url": _path(preset, company, entity),
                    "params": {entity: data},
                }


def _clear_empty_references(mapper: Mapper, instance: models.Model, data: dict[str, Any]) -> None:
    """An empty local reference is sent as ``null``: a PUT is a partial update, so an
    absent reference would keep the one Connec! has (set there by another app, or by us
    before the local one was cleared) and the two sides would disagree for good."""
    for local_name, (connec_field, _) in mapper.references.items():
        if getattr(instance, mapper.model._meta.get_field(local_name).attname) is None:
            set_path(data, connec_field, None)


def _path(preset: Any, company: Company, entity: str, record_id: str | None = None) -> str:
    path = f"{preset.connec_base_path}/{company.group_uid}/{entity}"
    return f"{path}/{record_id}" if record_id is not None else path


class _ExportResolver(ReferenceResolver):
    """Connec! ids of referenced records; our external id for those not pushed yet.

    A referenced record created in the same batch (earlier op) or pushed
    before under our external id is found by Connec! through that id.
    """

    def __init__(self, *, company: Company, connec_ids: dict[str, dict[str, str]]) -> None:
        super().__init__(connec_ids=connec_ids)
        self._company = company
        self._unmapped: set[tuple[str, str]] = set()

    def connec_id(self, entity: str, local_pk: Any) -> Any:
        known = super().connec_id(entity, local_pk)
        if known is not None:
            return known
        self._unmapped.add((entity, str(local_pk)))
        return [external_id_entry(company=self._company, object_id=local_pk)]

    def unmapped_used(self, instance: models.Model) -> bool:
        """Whether the last export used a not-yet-mapped reference (then a 4xx may be temporary)."""
        used = bool(self._unmapped)
        self._unmapped.clear()
        return used


def _export_resolver(*, company: Company, mapper: Mapper, instances: Any) -> _ExportResolver:
    """One IdMap query per referenced entity for the whole window."""
    instances = list(instances)
    wanted: dict[str, set[str]] = defaultdict(set)
    for mapping in (mapper, *mapper.children):
        for local_name, (_, entity) in mapping.references.items():
            attname = mapping.model._meta.get_field(local_name).attname
            if mapping is mapper:
                values = [getattr(obj, attname) for obj in instances]
            else:
                values = list(
                    mapping.model._default_manager.filter(
                        **{f"{mapping.parent_field}__in": [obj.pk for obj in instances]}
                    ).values_list(attname, flat=True)
                )
            wanted[entity].update(str(value) for value in values if value is not None)
    connec_ids: dict[str, dict[str, str]] = {}
    for entity, pks in wanted.items():
        if not pks or entity not in registry.entities():
            continue
        referenced = registry.for_entity(entity).model
        connec_ids[entity] = idmap.connec_ids_for_objects(
            company=company,
            content_type=ContentType.objects.get_for_model(referenced),
            object_ids=pks,
        )
    return _ExportResolver(company=company, connec_ids=connec_ids)


def _send(*, client: ConnecClient, ops: list[_Op], result: DrainResult) -> None:
    """One batch request; each op's outcome set from its own result."""
    result.requests += 1
    result.sent += len(ops)
    try:
        answers = client.batch([op.request for op in ops if op.request], idempotent=True)
    except ConnecError as error:
        for op in ops:
            op.outcome = "retry" if error.is_transient else "parked"
            op.error = f"batch failed: {error}"
            if error.is_authentication_failure:
                op.error += " (Connec! refused our credentials: check the preset's api id and key)"
            op.retry_after = error.retry_after
        return
    if len(answers) != len(ops):
        for op in ops:
            op.outcome, op.error = "retry", f"batch answered {len(answers)} results for {len(ops)}"
        return
    for op, answer in zip(ops, answers, strict=True):
        _judge(op, status=answer.status, body=answer.body)


def _judge(op: _Op, *, status: int, body: Any) -> None:
    if 200 <= status < 300:
        record = body.get(op.entity) if isinstance(body, Mapping) else None
        op.outcome = "done"
        op.result_record = record if isinstance(record, dict) else None
        return
    detail = _error_detail(body)
    if op.operation == OutboxEntry.Operation.DELETE and status == 404:
        op.outcome = "done"  # never reached Connec!: nothing to delete
        return
    if status in TRANSIENT_STATUSES:
        op.outcome, op.error = "retry", f"HTTP {status}: {detail}"
        return
    if op.unmapped_references and status in (400, 404, 422):
        # A referenced record of ours has not reached Connec! yet: wait for it.
        op.outcome, op.error = "retry", f"HTTP {status} (waiting for a reference): {detail}"
        return
    op.outcome, op.error = "parked", f"HTTP {status}: {detail}"


def _error_detail(body: Any) -> str:
    errors = body.get("errors") if isinstance(body, Mapping) else None
    if isinstance(errors, list):
        parts = [
            str(e.get("detail") or e.get("title") or e) for e in errors if isinstance(e, Mapping)
        ]
        if parts:
            return "; ".join(parts)[:1000]
    return str(body)[:1000]


def _record_outcomes(*, company: Company, ops: list[_Op], result: DrainResult) -> None:
    """Write IdMaps and row statuses in one transaction (bulk)."""
    now = timezone.now()
    max_attempts = sync_settings().max_attempts
    done_ids: list[int] = []
    parked: dict[str, list[int]] = defaultdict(list)
    retries: list[tuple[_Op, int]] = []
    new_maps: list[IdMap] = []
    changed_maps: list[IdMap] = []
    pushed_entities: set[str] = set()
    _park_merges_into_mapped_records(company=company, ops=ops)
    for op in ops:
        if op.outcome == "done":
            done_ids.extend(op.row_ids)
            if op.request is not None:
                pushed_entities.add(op.entity)
                _update_id_map(company=company, op=op, new_maps=new_maps, changed=changed_maps)
        elif op.outcome == "retry":
            attempts = op.attempts + 1
            if attempts >= max_attempts:
                parked[f"gave up after {attempts} attempts: {op.error}"[:4000]].extend(op.row_ids)
            else:
                retries.append((op, attempts))
        else:
            parked[op.error[:4000] or "parked"].extend(op.row_ids)
    with transaction.atomic():
        idmap.save_pushed(new=new_maps, changed=changed_maps, now=now)
        if done_ids:
            OutboxEntry.objects.filter(pk__in=done_ids, status=OutboxEntry.Status.PENDING).update(
                status=OutboxEntry.Status.DONE, last_error="", updated_at=now
            )
            _supersede_parked(company=company, ops=[op for op in ops if op.outcome == "done"])
        for error, ids in parked.items():
            OutboxEntry.objects.filter(pk__in=ids, status=OutboxEntry.Status.PENDING).update(
                status=OutboxEntry.Status.PARKED, last_error=error, updated_at=now
            )
        for op, attempts in retries:
            delay = retry_delay(attempts, retry_after=op.retry_after)
            OutboxEntry.objects.filter(pk__in=op.row_ids, status=OutboxEntry.Status.PENDING).update(
                attempts=attempts,
                next_attempt_at=now + datetime.timedelta(seconds=delay),
                last_error=op.error[:4000],
                updated_at=now,
            )
        _apply_children_answers(company=company, ops=ops)
        for entity in pushed_entities:
            SyncState.objects.update_or_create(
                company=company, entity=entity, defaults={"last_push_at": now}
            )
    result.done += len(done_ids)
    result.retried += sum(len(op.row_ids) for op, _ in retries)
    result.parked += sum(len(ids) for ids in parked.values())
    for error, ids in parked.items():
        logger.warning(
            "Connec! push parked %s outbox rows: %s",
            len(ids),
            error[:300],
            extra={"preset": company.preset, "group": company.group_uid},
        )


def _apply_children_answers(*, company: Company, ops: list[_Op]) -> None:
    """Line ids and values from Connec!'s answers (:func:`sync.children.apply_answers`)."""
    answers: dict[str, list[tuple[children.SentChildren, Any]]] = defaultdict(list)
    for op in ops:
        if op.outcome == "done" and op.sent_children is not None and op.sent_children.lines:
            answers[op.entity].append((op.sent_children, op.result_record))
    for entity, pairs in answers.items():
        children.apply_answers(company=company, mapper=registry.for_entity(entity), answers=pairs)


def _park_merges_into_mapped_records(*, company: Company, ops: list[_Op]) -> None:
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
        and (connec_id := _result_connec_id(op)) is not None
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


def _result_connec_id(op: _Op) -> str | None:
    try:
        return connec_id_of((op.result_record or {}).get("id"))
    except MappingError:
        return None


def _supersede_parked(*, company: Company, ops: list[_Op]) -> None:
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
    *, company: Company, op: _Op, new_maps: list[IdMap], changed: list[IdMap]
) -> None:
    record = op.result_record or {}
    raw_updated_at = record.get("updated_at")
    updated_at = connec_time_or_none(raw_updated_at)
    try:
        connec_id = connec_id_of(record.get("id"))
    except MappingError:
        connec_id = None
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


# --- admin / operator actions ---------------------------------------------------------------


def retry_parked(*, queryset: models.QuerySet[OutboxEntry]) -> int:
    """Put parked rows back in the queue (attempts reset) and enqueue their companies' drains."""
    rows = queryset.filter(status=OutboxEntry.Status.PARKED)
    companies = set(rows.values_list("company_id", flat=True))
    with transaction.atomic():
        count = rows.update(
            status=OutboxEntry.Status.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            updated_at=timezone.now(),
        )
        for company_id in companies:
            schedule_drain(company_id=company_id)
    return count
