"""Applying Connec! records to local models: notifications and reconciliation
(docs/protocol.md, 'Connec! notifications').

:func:`apply_records` is idempotent and order-insensitive:

* unknown Connec! id → create the local object and map it; known →
  update it; a record carrying *our* external id is ours (a push
  whose answer was lost) and is linked, never duplicated;
* a version whose ``updated_at`` is not newer than the last one pulled or
  pushed is stale (a redelivery, an out-of-order delivery, the echo of our own
  push) and is skipped, so nothing is pushed back (no ping-pong);
* a record changed locally and remotely at once follows :mod:`maestrano_sync.conflicts`;
* a record in its deleted state (``status: INACTIVE``, see
  :func:`maestrano_sync.push.delete_payload`) deletes the local object when the mapper
  does not map ``status`` itself; a record we deleted stays deleted unless
  Connec! brings it back to life with a newer change;
* references are resolved through the IdMap; a referenced record we do not
  know is fetched from Connec! and applied first.

Local writes happen inside :func:`maestrano_sync.outbox.applying_remote_changes`: they
never enter the outbox. The bulk writes go through the record pipeline
(:mod:`maestrano_sync.pipeline`).

What to do with each record is decided first (:mod:`maestrano_sync.inbox_plan`), references are
fetched or emptied by :mod:`maestrano_sync.inbox_references`; this module applies the plan and
runs the inbox of stored notifications.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Case, Max, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_integration.connec import ConnecClient, ConnecError
from maestrano_integration.lookups import among

from . import idmap, lost_answers, pipeline, sync_state
from .company_settings import SyncPolicy, policies_for, policy_for
from .conf import sync_settings
from .conflicts import pending_local_changes, settle_conflicts
from .inbox_plan import (
    SYNC_OFF,
    ApplyResult,
    SyncPaused,
    attach_losing_local_versions,
    current_versions_of_conflicts,
    entity_is_applicable,
    entity_never_applied,
    existing_object_ids,
    link_our_own_records,
    parse_updated_at,
    plan_batch,
)
from .inbox_references import (
    MAX_REFERENCE_DEPTH,
    drop_dangling_references,
    fetch_missing_references,
    null_dead_references,
)
from .locks import company_run, renew_lock
from .matching import link_matching_records
from .models import (
    InboxEntry,
    InboxRecord,
    InboxSummary,
    RemoteTombstone,
)
from .notifications import notified_connec_id
from .outbox import applying_remote_changes
from .registry import registry
from .retries import CONCURRENT_WRITE_ERRORS, may_try_again, refusal_reason
from .scheduling import enqueue_inbox
from .services import park_outcome_errors
from .values import MappingError, connec_time

logger = logging.getLogger(__name__)


def apply_records(
    *,
    company: Company,
    entity: str,
    records: list[Any],
    client: ConnecClient | None = None,
    depth: int = 0,
    policy: SyncPolicy | None = None,
) -> ApplyResult:
    """Apply Connec! records of one entity to ``company``'s local models (see module doc).

    ``policy``: the company's sync settings when the caller has read them (an inbox run),
    for the referenced entities fetched first; else they are read when needed."""
    result = ApplyResult()
    mapper = registry.for_entity(entity)
    model = mapper.model
    content_type = ContentType.objects.get_for_model(model)
    outcome = pipeline.Outcome()
    # Newest last, so that the pipeline's de-duplication keeps the latest version.
    ordered = sorted(
        (r for r in records if isinstance(r, Mapping)),
        key=lambda r: parse_updated_at(r) or datetime.datetime.min.replace(tzinfo=datetime.UTC),
    )
    ordered += [r for r in records if not isinstance(r, Mapping)]
    parsed = pipeline.parse_records(ordered, outcome, group_uid=company.group_uid)
    if not parsed and not outcome.errors:
        return result
    if client is not None:
        parsed = lost_answers.with_external_ids(
            company=company,
            entity=entity,
            content_type_id=content_type.pk,
            parsed=parsed,
            client=client,
        )
        parsed = pipeline.park_foreign_records(parsed, outcome, group_uid=company.group_uid)
    link_our_own_records(company=company, mapper=mapper, content_type=content_type, parsed=parsed)
    known = idmap.bulk_lookup(company=company, entity=entity, connec_ids=[p[0] for p in parsed])
    unknown = [connec_id for connec_id, _, _ in parsed if connec_id not in known]
    tombstones = (
        dict(
            RemoteTombstone.objects.filter(
                among("connec_id", unknown), company=company, entity=entity
            ).values_list("connec_id", "updated_at")
        )
        if unknown
        else {}
    )
    # A new record equal to a local row linked to no record (matching fields) is that row;
    # not an older version of a record Connec! deleted since (plan_batch skips it).
    parsed, known = link_matching_records(
        company=company,
        mapper=mapper,
        content_type=content_type,
        parsed=parsed,
        known=known,
        outcome=outcome,
        dead=tombstones,
    )
    pending = pending_local_changes(
        company=company,
        content_type_id=content_type.pk,
        object_ids=[m.object_id for m in known.values()],
    )
    dead: dict[str, set[str]] = {}
    if client is not None:
        parsed = current_versions_of_conflicts(
            group_uid=company.group_uid,
            entity=entity,
            parsed=parsed,
            known=known,
            pending=pending,
            client=client,
        )
        # A version fetched in the notified one's place is checked as a notified one is.
        parsed = pipeline.park_foreign_records(parsed, outcome, group_uid=company.group_uid)
        if depth < MAX_REFERENCE_DEPTH:
            fetched, dead = fetch_missing_references(
                company=company,
                mapper=mapper,
                parsed=parsed,
                client=client,
                apply=partial(
                    apply_records, company=company, client=client, depth=depth + 1, policy=policy
                ),
                policy=policy,
            )
            result.add(fetched)
    existing_pks = existing_object_ids(
        company=company, mapper=mapper, object_ids=[m.object_id for m in known.values()]
    )
    plan = plan_batch(
        mapper=mapper,
        parsed=parsed,
        known=known,
        existing_pks=existing_pks,
        pending=pending,
        result=result,
        tombstones=tombstones,
    )
    attach_losing_local_versions(company=company, mapper=mapper, plan=plan)
    if any(dead.values()):
        plan.apply = [
            (connec_id, null_dead_references(mapper, data, dead), updated_at)
            for connec_id, data, updated_at in plan.apply
        ]
    with transaction.atomic(), applying_remote_changes():
        prepared = pipeline.prepare(
            company=company, mapper=mapper, parsed=plan.apply, outcome=outcome
        )
        drop_dangling_references(company=company, mapper=mapper, prepared=prepared)
        prepared = pipeline.save(company=company, mapper=mapper, prepared=prepared, outcome=outcome)
        for item in prepared:
            if item.is_new:
                result.created += 1
            else:
                result.updated += 1
        if prepared:
            # The local record now holds Connec!'s version: our last push no longer describes
            # it, so a later local save of those old values must be pushed again.
            idmap.forget_pushed_hash(
                company=company, entity=entity, connec_ids=[i.connec_id for i in prepared]
            )
        result.skipped += outcome.skipped
        # plan_batch applied the rule of deleted records first; prepare sets aside only
        # what changed meanwhile (a local object deleted since), applied with the plan.
        result.deleted += pipeline.apply_deleted(
            company=company,
            mapper=mapper,
            outcome=outcome,
            delete=plan.delete,
            bump=plan.bump,
            tombstones=plan.tombstones,
        )
        result.conflicts += settle_conflicts(
            company=company,
            entity=entity,
            content_type_id=content_type.pk,
            superseded=plan.superseded,
            conflicts=[*plan.conflicts, *outcome.conflicts],
        )
        if outcome.errors:
            # Once per record: a notification retried, or the same record notified or
            # reconciled again, counts on its row (times_seen).
            park_outcome_errors(
                company=company,
                entity=entity,
                errors=outcome.errors,
                logger=logger,
                message="Connec! %s record %s not applied: %s",
                extra={"preset": company.preset, "group": company.group_uid},
            )
            result.failed += len(outcome.errors)
    return result


# --- the inbox ----------------------------------------------------------------------------


def apply_notification(*, entry: InboxEntry, client: ConnecClient | None = None) -> ApplyResult:
    """Apply one stored notification."""
    return apply_payloads(company=entry.company, payloads=[entry.payload], client=client)


def apply_payloads(
    *,
    company: Company,
    payloads: list[Any],
    client: ConnecClient | None = None,
    policy: SyncPolicy | None = None,
) -> ApplyResult:
    """Apply notifications of one company together, entity by entity in dependency order.

    Several versions of one record across the payloads are fine: the newest
    ``updated_at`` wins, as if they had been applied one after the other. ``policy``: the
    company's sync settings as the inbox run read them; else read here, once.
    """
    merged: dict[str, list[Any]] = defaultdict(list)
    for payload in payloads:
        if isinstance(payload, dict):
            for entity, records in payload.items():
                if isinstance(records, list):
                    merged[entity].extend(records)
    result = ApplyResult()
    order = {entity: index for index, entity in enumerate(registry.dependency_order())}
    now = timezone.now()
    if merged and policy is None:
        policy = policy_for(company_id=company.pk)
    for entity in sorted(merged, key=lambda e: (order.get(e, len(order)), e)):
        records = merged[entity]
        reason = entity_is_applicable(company=company, entity=entity, policy=policy)
        if reason == SYNC_OFF:
            raise SyncPaused  # never ignored: kept until the sync is on again
        if reason is not None:
            result.ignored += len(records)
            logger.info(
                "Connec! notifications: %s records of %r ignored: %s",
                len(records),
                entity,
                reason,
                extra={"preset": company.preset, "group": company.group_uid, "entity": entity},
            )
            continue
        result.add(
            apply_records(
                company=company, entity=entity, records=records, client=client, policy=policy
            )
        )
        sync_state.record_times(
            company=company, entities=[entity], times={"last_notification_at": now}
        )
    return result


@dataclass
class InboxRun:
    locked: bool = False
    paused: bool = False  # the company's sync is off: its notifications wait
    processed: int = 0
    failed: int = 0
    deferred: int = 0
    result: ApplyResult = field(default_factory=ApplyResult)


#: Notifications applied together (up to this many records) when several are waiting.
GROUP_RECORDS = 1000

#: A local write committed while notifications are applied can make the database refuse
#: their transaction (:data:`maestrano_sync.retries.CONCURRENT_WRITE_ERRORS`): a foreign key checked
#: at commit (PostgreSQL: a contact linked to an organization whose deletion is being
#: applied, or an organization deleted here while a contact linked to it is being applied),
#: a deadlock, a locked database (SQLite). The notifications stay pending and are applied
#: again, from what is committed then (:func:`maestrano_sync.retries.may_try_again`).
RETRIED_AFTER_CONCURRENT_WRITE = "as when a local change is committed meanwhile; applied again"


def _next_group(company: Company) -> list[InboxEntry]:
    waiting = InboxEntry.objects.filter(
        company=company,
        status__in=[InboxEntry.Status.PENDING, InboxEntry.Status.PROCESSING],
    ).order_by("pk")[:200]
    group: list[InboxEntry] = []
    records = 0
    for entry in waiting:
        if group and records + entry.record_count > GROUP_RECORDS:
            break
        group.append(entry)
        records += entry.record_count
    return group


def process_inbox(*, company: Company, client: ConnecClient | None = None) -> InboxRun:
    """Apply the company's pending notifications in arrival order, under the company lock.

    One worker at a time per company, so two versions of a record are never
    applied concurrently; waiting notifications are applied together (one
    bulk write per entity). A transient Connec! error (fetching a missing
    reference) or a database refusal a concurrent local write can cause
    (:data:`CONCURRENT_WRITE_ERRORS`) leaves them pending for a later try; an
    unexpected error marks the notification failed (retry it from the admin),
    the others go on.

    The company's sync settings are read once per group of notifications and passed to
    every step of its apply (one query per group), and again before the run ends when it
    holds records: a change made meanwhile counts from the next group on.
    """
    run = InboxRun()
    policy = policy_for(company_id=company.pk)
    if not policy.enabled:
        run.paused = True  # kept in the inbox; applied when the sync is switched on again
        return run
    with company_run(company=company, client=client) as held:
        if held is None:
            run.locked = True
            return run
        token, client = held
        release_held(company=company, policy=policy)
        first_group = True
        while renew_lock(company_id=company.pk, token=token):
            group = _next_group(company)
            if not group:
                # An import switched on while this run held records: applied now, not held
                # until the company's next notification (the settings read again for it).
                if holds_records(company=company) and _release(
                    company=company, policy=policy_for(company_id=company.pk)
                ):
                    continue
                break
            if not first_group:
                # Read again for each later group: a change during the run counts at once.
                policy = policy_for(company_id=company.pk)
            first_group = False
            if not _process_group(
                company=company, group=group, client=client, run=run, policy=policy
            ):
                break
    return run


def _process_group(
    *,
    company: Company,
    group: list[InboxEntry],
    client: ConnecClient,
    run: InboxRun,
    policy: SyncPolicy,
) -> bool:
    """Apply ``group`` under the company's sync settings ``policy``; ``False`` when
    processing must stop for now (transient error, the sync switched off)."""
    ids = [entry.pk for entry in group]
    context = {"preset": company.preset, "group": company.group_uid, "notifications": ids}
    InboxEntry.objects.filter(among("pk", ids)).update(
        status=InboxEntry.Status.PROCESSING, attempts=models.F("attempts") + 1
    )
    payloads, held = split_held_records(
        company=company,
        payloads=[entry.payload for entry in group],
        received_at=[entry.received_at for entry in group],
        policy=policy,
    )
    try:
        run.result.add(
            apply_payloads(company=company, payloads=payloads, client=client, policy=policy)
        )
    except SyncPaused:
        InboxEntry.objects.filter(among("pk", ids)).update(
            status=InboxEntry.Status.PENDING, attempts=models.F("attempts") - 1
        )
        run.paused = True
        return False  # what was applied is applied again later (idempotent)
    except ConnecError as error:
        attempts = max(entry.attempts for entry in group) + 1
        status = (
            InboxEntry.Status.PENDING
            if error.is_transient and may_try_again(attempts=attempts)
            else InboxEntry.Status.FAILED
        )
        InboxEntry.objects.filter(among("pk", ids)).update(
            status=status, last_error=str(error)[:4000]
        )
        if status == InboxEntry.Status.PENDING:
            run.deferred += len(ids)
        else:
            run.failed += len(ids)
        logger.warning("Connec! notifications not applied yet: %s", error, extra=context)
        return False  # keep arrival order: later notifications wait for these
    except CONCURRENT_WRITE_ERRORS as error:
        attempts = max(entry.attempts for entry in group) + 1
        if not may_try_again(attempts=attempts):
            return _failed(
                company=company, group=group, client=client, run=run, error=error, policy=policy
            )
        reason = f"{refusal_reason(error)} ({RETRIED_AFTER_CONCURRENT_WRITE})"
        InboxEntry.objects.filter(among("pk", ids)).update(
            status=InboxEntry.Status.PENDING, last_error=reason[:4000]
        )
        run.deferred += len(ids)
        logger.warning("Connec! notifications not applied yet: %s", reason, extra=context)
        return False  # keep arrival order: later notifications wait for these
    except Exception as error:
        return _failed(
            company=company, group=group, client=client, run=run, error=error, policy=policy
        )
    with transaction.atomic():
        run.result.held += hold_records(company=company, records=held)
        InboxEntry.objects.filter(among("pk", ids)).update(
            status=InboxEntry.Status.DONE, processed_at=timezone.now(), last_error=""
        )
    if any(pk % PRUNE_EVERY == 0 for pk in ids):
        prune_done_entries()
    run.processed += len(ids)
    return True


# --- records the sync settings keep out ------------------------------------------------------


@dataclass(frozen=True)
class HeldRecord:
    """A notified record of an entity whose import the company's settings turned off."""

    entity: str
    connec_id: str
    updated_at: datetime.datetime | None
    data: Any
    #: When the notification that carried it arrived (its held row keeps that time).
    received_at: datetime.datetime | None = None


def split_held_records(
    *,
    company: Company,
    payloads: list[Any],
    received_at: list[datetime.datetime] | None = None,
    policy: SyncPolicy | None = None,
) -> tuple[list[Any], list[HeldRecord]]:
    """``payloads`` without the records the company's sync settings keep out (its import of
    their entity is off), and those records (the ones with a Connec! id; one query).

    Records of an entity never applied whatever the settings (no mapper, not subscribed)
    stay in the payloads (ignored when applied), and nothing is held while the whole sync is
    off (the notifications then wait as they are, :class:`SyncPaused`). ``policy``: the
    company's sync settings as the inbox run read them; else read here.
    """
    if policy is None:
        policy = policy_for(company_id=company.pk)
    if not policy.enabled:
        return payloads, []
    held_entities: dict[str, bool] = {}

    def is_held(entity: str) -> bool:
        if entity not in held_entities:
            held_entities[entity] = entity_never_applied(
                company=company, entity=entity
            ) is None and not policy.imports(entity)
        return held_entities[entity]

    kept: list[Any] = []
    held: list[HeldRecord] = []
    arrivals = received_at if received_at is not None else [None] * len(payloads)
    for payload, arrived in zip(payloads, arrivals, strict=True):
        if not isinstance(payload, dict) or not any(is_held(entity) for entity in payload):
            kept.append(payload)
            continue
        rest: dict[str, Any] = {}
        for entity, records in payload.items():
            if not is_held(entity) or not isinstance(records, list):
                rest[entity] = records
                continue
            others = []
            for record in records:
                connec_id = notified_connec_id(record)
                updated_at = _held_version(record)
                if connec_id and updated_at is not _UNREADABLE:
                    held.append(HeldRecord(entity, connec_id, updated_at, record, arrived))
                else:
                    # No id to hold it by, or a time no version can be ordered by: applied
                    # as it is (ignored, or refused with its reason), never held over a
                    # version that can be read.
                    others.append(record)
            if others:
                rest[entity] = others
        kept.append(rest)
    return kept, held


#: What :func:`_held_version` answers for an ``updated_at`` that is there but unreadable.
_UNREADABLE: Any = object()


def _held_version(record: Any) -> Any:
    """The record's ``updated_at``: a datetime, ``None`` when it has none, or
    :data:`_UNREADABLE` when it has one that is no date-time (the pipeline refuses it)."""
    try:
        return connec_time(record.get("updated_at")) if isinstance(record, dict) else None
    except MappingError:
        return _UNREADABLE


def _newer_or_equal(first: datetime.datetime | None, second: datetime.datetime | None) -> bool:
    """Whether a version changed at ``first`` supersedes one changed at ``second`` (a
    version without ``updated_at`` is taken as the newer: the later delivery)."""
    return first is None or second is None or first >= second


def hold_records(*, company: Company, records: list[HeldRecord]) -> int:
    """Keep ``records`` in the inbox as held (one row per record); the number kept.

    Only the newest version of a record is kept: a held row of an older (or the same)
    version is deleted, a version older than the held one is not kept. So the held rows
    never outnumber the records of the company in Connec!. Call it in a transaction.
    """
    newest: dict[tuple[str, str], HeldRecord] = {}
    for record in records:
        key = (record.entity, record.connec_id)
        known = newest.get(key)
        if known is None or _newer_or_equal(record.updated_at, known.updated_at):
            newest[key] = record
    if not newest:
        return 0
    superseded: set[int] = set()
    for entity in {entity for entity, _ in newest}:
        rows = InboxRecord.objects.filter(
            among("connec_id", [connec_id for e, connec_id in newest if e == entity]),
            company=company,
            entity=entity,
            entry__status=InboxEntry.Status.HELD,
        ).values_list("entry_id", "connec_id", "updated_at")
        for entry_id, connec_id, updated_at in rows:
            held = newest.get((entity, connec_id))
            if held is None:
                continue
            if _newer_or_equal(held.updated_at, updated_at):
                superseded.add(entry_id)
            else:
                del newest[(entity, connec_id)]  # an even newer version is held already
    if superseded:
        InboxEntry.objects.filter(among("pk", superseded)).delete()  # with their InboxRecord rows
    now = timezone.now()
    kept = list(newest.values())
    entries = InboxEntry.objects.bulk_create(
        InboxEntry(
            preset=company.preset,
            company=company,
            payload={record.entity: [record.data]},
            record_count=1,
            status=InboxEntry.Status.HELD,
            received_at=record.received_at or now,
            processed_at=now,
            last_error=_held_note(record.entity),
        )
        for record in kept
    )
    InboxRecord.objects.bulk_create(
        InboxRecord(
            entry_id=entry.pk,
            company=company,
            entity=record.entity,
            connec_id=record.connec_id,
            updated_at=record.updated_at,
        )
        for entry, record in zip(entries, kept, strict=True)
    )
    logger.info(
        "Connec! notifications: %s records held while the import of their entity is off",
        len(kept),
        extra={"preset": company.preset, "group": company.group_uid},
    )
    return len(kept)


def _held_note(entity: str) -> str:
    """What a held record's row says of why it waits (the admin's inbox list)."""
    return f"Held: the company's import of {entity} is off (its sync settings)"


def release_held(*, company: Company, policy: SyncPolicy | None = None) -> int:
    """Put the held records of the entities the company imports again back in the queue
    (applied with the other notifications); the number released (one query when none).
    ``policy``: the company's sync settings, when the caller has read them."""
    if not holds_records(company=company):
        return 0  # the usual case: one query on the inbox's (company, status) index
    return _release(company=company, policy=policy)


def holds_records(*, company: Company) -> bool:
    """Whether the company's inbox holds records (one query)."""
    return InboxEntry.objects.filter(company=company, status=InboxEntry.Status.HELD).exists()


def _release(*, company: Company, policy: SyncPolicy | None) -> int:
    """:func:`release_held` once the company is known to hold records."""
    importing = _releasable_entities(company_id=company.pk, policy=policy)
    if not importing:
        return 0
    held = InboxRecord.objects.filter(company=company, entry__status=InboxEntry.Status.HELD)
    entry_ids = held.filter(entity__in=importing).values_list("entry_id", flat=True)
    return InboxEntry.objects.filter(
        among("pk", entry_ids), company=company, status=InboxEntry.Status.HELD
    ).update(status=InboxEntry.Status.PENDING, last_error="", processed_at=None)


def _releasable_entities(*, company_id: int, policy: SyncPolicy | None = None) -> list[str]:
    """The entities of the company's held records that its settings import again."""
    if policy is None:
        policy = policy_for(company_id=company_id)
    if not policy.enabled:
        return []
    entities = (
        InboxRecord.objects.filter(company_id=company_id, entry__status=InboxEntry.Status.HELD)
        .values_list("entity", flat=True)
        .distinct()
    )
    return [entity for entity in set(entities) if policy.imports(entity)]


def companies_with_releasable_held() -> set[int]:
    """Companies holding records of an entity they import again: the beat's safety net
    (``drain_all``) starts an inbox run for them, should the run a settings change enqueues
    be lost, or the settings be changed where nothing enqueues one (the admin site, a shell).
    Two queries whatever the number of companies holding records (one when none does)."""
    held: dict[int, set[str]] = defaultdict(set)
    rows = (
        InboxRecord.objects.filter(entry__status=InboxEntry.Status.HELD)
        .order_by()
        .values_list("company_id", "entity")
        .distinct()
    )
    for company_id, entity in rows:
        held[company_id].add(entity)
    policies = policies_for(company_ids=held)
    return {
        company_id
        for company_id, entities in held.items()
        if any(policies[company_id].imports(entity) for entity in entities)
    }


#: Done notifications are pruned every this many inbox rows, once older than
#: ``SYNC["HISTORY_DAYS"]`` (as the sync history)...
PRUNE_EVERY = 100
#: ...at most this many at a time (ten times as many as arrived meanwhile: a backlog, such
#: as the rows of the versions that kept every done row, goes in steps, never in one long
#: statement inside an inbox run).
PRUNE_BATCH = 1000


def prune_done_entries(*, limit: int = PRUNE_BATCH) -> int:
    """Delete up to ``limit`` of the notifications applied more than ``SYNC["HISTORY_DAYS"]``
    days ago, oldest first (``0`` days keeps them); the number deleted. Held, pending and
    failed rows are never pruned.

    When each company's newest pruned notification was received is kept
    (:class:`~maestrano_sync.models.InboxSummary`, :func:`remember_pruned`): its "last
    notification received" does not go blank when its rows go."""
    days = sync_settings().history_days
    if days <= 0:
        return 0
    cutoff = timezone.now() - datetime.timedelta(days=days)
    oldest = list(
        InboxEntry.objects.filter(status=InboxEntry.Status.DONE, processed_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    if not oldest:
        return 0
    with transaction.atomic():
        pruned = InboxEntry.objects.filter(among("pk", oldest), status=InboxEntry.Status.DONE)
        remember_pruned(
            newest=dict(
                pruned.order_by()
                .values("company_id")
                .annotate(at=Max("received_at"))
                .values_list("company_id", "at")
            )
        )
        _, deleted = pruned.delete()
    return deleted.get(InboxEntry._meta.label, 0)


def remember_pruned(*, newest: Mapping[int, datetime.datetime]) -> None:
    """Keep ``{company id: when its newest pruned notification was received}`` in each
    company's :class:`~maestrano_sync.models.InboxSummary`, unless it has a later time
    already (two statements, whatever the number of companies; the later time is chosen by
    the database, so two prunes at once keep the later)."""
    newest = {company_id: at for company_id, at in newest.items() if at is not None}
    if not newest:
        return
    InboxSummary.objects.bulk_create(
        [InboxSummary(company_id=company_id) for company_id in newest], ignore_conflicts=True
    )
    received = Case(
        *(When(company_id=company_id, then=Value(at)) for company_id, at in newest.items()),
        output_field=models.DateTimeField(),
    )
    InboxSummary.objects.filter(company_id__in=list(newest)).update(
        pruned_received_at=Greatest(Coalesce("pruned_received_at", received), received)
    )


def _failed(
    *,
    company: Company,
    group: list[InboxEntry],
    client: ConnecClient,
    run: InboxRun,
    error: Exception,
    policy: SyncPolicy,
) -> bool:
    """Mark the culprit of an unexpected error failed (applied one by one to find it)."""
    if len(group) > 1:
        InboxEntry.objects.filter(among("pk", [entry.pk for entry in group])).update(
            status=InboxEntry.Status.PENDING
        )
        for entry in group:
            entry.refresh_from_db()
            if not _process_group(
                company=company, group=[entry], client=client, run=run, policy=policy
            ):
                return False
        return True
    context = {"preset": company.preset, "group": company.group_uid, "notifications": [group[0].pk]}
    logger.exception("Connec! notification %s failed", group[0].pk, extra=context)
    InboxEntry.objects.filter(pk=group[0].pk).update(
        status=InboxEntry.Status.FAILED,
        last_error=(
            refusal_reason(error)
            if isinstance(error, CONCURRENT_WRITE_ERRORS)
            else f"{error.__class__.__name__}: {error}"
        )[:4000],
    )
    run.failed += 1
    return True


def has_pending_notifications(*, company: Company) -> bool:
    return InboxEntry.objects.filter(
        company=company, status__in=[InboxEntry.Status.PENDING, InboxEntry.Status.PROCESSING]
    ).exists()


def retry_failed_entries(*, queryset: models.QuerySet[InboxEntry]) -> int:
    """Put failed notifications back in the queue and enqueue their processing."""
    rows = queryset.filter(status=InboxEntry.Status.FAILED)
    companies = set(rows.values_list("company_id", flat=True))
    count = rows.update(status=InboxEntry.Status.PENDING, attempts=0)
    for company_id in companies:
        enqueue_inbox(company_id=company_id)
    return count
