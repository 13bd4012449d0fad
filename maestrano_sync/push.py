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
   (:mod:`maestrano_sync.children`);
5. each op's result is applied on its own: 2xx stores the Connec! id in the
   IdMap with the pushed ``updated_at`` and payload hash; 429/5xx and
   network errors back off (exponential, jittered) and park after
   ``MAX_ATTEMPTS``; other 4xx park the row with Connec!'s error at once.

Payloads (deletes included) are built by :mod:`maestrano_sync.payloads`; the answers are recorded
by :mod:`maestrano_sync.push_outcomes`. The names adopters and tests import from here
(``drain_outbox``, ``retry_parked``, ``DrainResult``, ``delete_payload``, ``blank_to_null``
...) stay importable from ``maestrano_sync.push``.
"""

from __future__ import annotations

import contextvars
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_integration.conf import get_preset
from maestrano_integration.connec import ConnecClient, ConnecError
from maestrano_integration.connec_wire import record_path
from maestrano_integration.lookups import in_bulk

from . import children, history, idmap
from .company_settings import policy_for
from .conf import sync_settings
from .keys import key_reader, local_keys
from .locks import company_run, renew_lock
from .mappers import MappingError
from .models import OutboxEntry, SyncRun
from .payloads import (
    blank_to_null,
    clear_empty_references,
    delete_payload,
    export_resolver,
    external_id_entry,
    leave_out_blanks,
    live_payload,
    payload_hash,
    status_is_data,
)
from .push_outcomes import DrainResult, Op, judge, record_outcomes, retry_delay
from .registry import registry
from .scheduling import schedule_drain

logger = logging.getLogger(__name__)

# The push's public names, some of them defined by maestrano_sync.payloads and
# maestrano_sync.push_outcomes.
__all__ = [
    "DrainResult",
    "blank_to_null",
    "delete_payload",
    "drain_outbox",
    "external_id_entry",
    "live_payload",
    "next_due_in",
    "payload_hash",
    "retry_delay",
    "retry_parked",
    "status_is_data",
]


# --- one drain ------------------------------------------------------------------------


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
    """One window of due rows; ``False`` when there was nothing due.

    The window's ops go ``ops_per_batch`` at a time through three steps: build the
    requests (``_prepare_ops``), send them (one batch request), record the answers
    (``record_outcomes``). With ``PUSH_PIPELINE`` (default) the request of batch n is
    in flight, in a thread that only does HTTP, while this thread records batch n-1
    and builds batch n+1: Connec!'s time and ours overlap. One request at a time, in
    the window's dependency order, as without it; a batch's rows are marked done
    only from its own answer, so a crash anywhere leaves the unanswered rows pending
    (sent again as upserts by external id: never duplicated).
    """
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
    batch_size = sync_settings().ops_per_batch
    with _Sender(client=client, pipelined=sync_settings().push_pipeline) as sender:
        for start in range(0, len(ops), batch_size):
            chunk = ops[start : start + batch_size]
            _prepare_ops(company=company, ops=chunk, result=result)
            answered = sender.wait()
            if sender.sent_any and not renew_lock(company_id=company.pk, token=token):
                # This drain lost the lock: what it did not send stays pending, for the
                # drain that holds the lock now.
                unsent = [op for op in chunk if op.request is None]
                record_outcomes(company=company, ops=answered + unsent, result=result)
                return True
            sender.send(chunk, result=result)
            if answered:
                record_outcomes(company=company, ops=answered, result=result)
        answered = sender.wait()
        if answered:
            record_outcomes(company=company, ops=answered, result=result)
    return True


class _Sender:
    """Sends a chunk's requests as one batch request, in a thread (``pipelined``) or inline.

    ``send`` starts the request of a chunk; ``wait`` returns the previous chunk's ops
    with their outcomes set (those that needed no request included). One request at
    a time; the thread only does HTTP and sets its own ops' outcomes, never the
    database nor ``DrainResult``.
    """

    def __init__(self, *, client: ConnecClient, pipelined: bool) -> None:
        self._client = client
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="connec-push")
            if pipelined
            else None
        )
        self._pending: tuple[Future[None] | None, list[Op]] | None = None
        self.sent_any = False

    def send(self, chunk: list[Op], *, result: DrainResult) -> None:
        assert self._pending is None, "wait() for the previous chunk first"
        to_send = [op for op in chunk if op.request is not None]
        future: Future[None] | None = None
        if to_send:
            self.sent_any = True
            result.requests += 1
            result.sent += len(to_send)
            if self._executor is None:
                _answer(client=self._client, ops=to_send)
            else:
                context = contextvars.copy_context()  # the log context goes with the request
                future = self._executor.submit(
                    context.run, _answer, client=self._client, ops=to_send
                )
        self._pending = (future, chunk)

    def wait(self) -> list[Op]:
        if self._pending is None:
            return []
        future, chunk = self._pending
        self._pending = None
        if future is not None:
            future.result()
        return chunk

    def __enter__(self) -> _Sender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Left on an error: the request in flight ends first; its rows stay pending.
        if self._executor is not None:
            self._executor.shutdown(wait=True)


def _coalesce(rows: Sequence[Mapping[str, Any]]) -> list[Op]:
    """One op per object (its last operation wins), in dependency order then age."""
    by_object: dict[tuple[int, str], Op] = {}
    for row in rows:
        key = (row["content_type_id"], row["object_id"])
        op = by_object.get(key)
        if op is None:
            by_object[key] = Op(
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


def _prepare_ops(*, company: Company, ops: list[Op], result: DrainResult) -> None:
    """Build each op's batch request (bulk reads: objects, IdMaps, references)."""
    by_entity: dict[str, list[Op]] = defaultdict(list)
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
            in_bulk(
                mapper.for_company(company), local_keys(model, [op.object_id for op in upserts])
            )
            if upserts
            else {}
        )
        read_key = key_reader(model)
        resolver = export_resolver(company=company, mapper=mapper, instances=instances.values())
        links = children.load_links(company=company, mapper=mapper, parents=instances.values())
        for op in entity_ops:
            op.id_map = id_maps.get(op.object_id)
            try:
                entry = external_id_entry(company=company, object_id=op.object_id)
            except MappingError as error:
                op.outcome, op.error = "parked", f"cannot push the record: {error}"
                continue
            op.external_id = entry
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
            instance = instances.get(read_key(op.object_id))
            if instance is None:
                # Deleted since: its delete row follows (or it never existed): nothing to send.
                op.outcome = "done"
                result.skipped += 1
                continue
            try:
                data = blank_to_null(mapper.to_connec(instance, references=resolver))
                clear_empty_references(mapper, instance, data)
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
            data, op.left_out = leave_out_blanks(
                mapper=mapper, data=data, known=op.id_map is not None
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


def _path(preset: Any, company: Company, entity: str, record_id: str | None = None) -> str:
    return record_path(
        base_path=preset.connec_base_path,
        group_id=company.group_uid,
        entity=entity,
        record_id=record_id,
    )


def _answer(*, client: ConnecClient, ops: list[Op]) -> None:
    """Send ``ops`` as one batch request and set each op's outcome from its own result."""
    try:
        answers = client.batch([op.request for op in ops if op.request], idempotent=True)
    except ConnecError as error:
        for op in ops:
            op.outcome = "retry" if error.is_transient else "parked"
            op.error = f"batch failed: {error}" + (f": {error.reason}" if error.reason else "")
            if error.is_authentication_failure:
                op.error += " (Connec! refused our credentials: check the preset's api id and key)"
            op.retry_after = error.retry_after
        return
    if len(answers) != len(ops):
        for op in ops:
            op.outcome, op.error = "retry", f"batch answered {len(answers)} results for {len(ops)}"
        return
    for op, answer in zip(ops, answers, strict=True):
        judge(op, status=answer.status, body=answer.body)


# --- admin / operator actions ---------------------------------------------------------------


def retry_parked(*, queryset: models.QuerySet[OutboxEntry]) -> int:
    """Put parked rows back in the queue (attempts reset) and enqueue their companies' drains."""
    rows = queryset.filter(status=OutboxEntry.Status.PARKED)
    companies = set(rows.values_list("company_id", flat=True))
    with transaction.atomic():
        count = rows.update(
            status=OutboxEntry.Status.PENDING,
            gave_up=False,
            attempts=0,
            next_attempt_at=timezone.now(),
            updated_at=timezone.now(),
        )
        for company_id in companies:
            schedule_drain(company_id=company_id)
    return count
