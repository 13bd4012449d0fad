"""Initial import of a company's Connec! data (docs/protocol.md,
'Integration duties'), page by page, resumable.

For every entity whose mapper has import enabled, in dependency order, each
page fetched from Connec! goes through the record pipeline (:mod:`maestrano_sync.pipeline`)
in ONE transaction together with the entity's cursor: one bulk IdMap lookup,
one bulk lookup per referenced entity, ``bulk_create`` / ``bulk_update`` of
the models and their children, one statement for the IdMap rows. A crash or a
retry therefore continues at the next page and never applies a page twice.
Records that cannot be mapped are parked as ``SyncRecordError`` (once per record, however
often imported: :func:`maestrano_sync.services.park_records`) and the rest of
the page is imported. A record whose local object has a change not pushed yet follows
the notifications' conflict rule (:func:`maestrano_sync.inbox_plan.plan_records_changed_here`,
:mod:`maestrano_sync.conflicts`): a pending local delete is never undone. No database
transaction is open while waiting on Connec!: the next page (of the same entity
or the next one) is fetched in a thread while the current one is written.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import connections, transaction
from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_integration.connec import (
    ConnecAuthenticationError,
    ConnecClient,
    ConnecError,
    Page,
    connec_client_for,
)
from maestrano_integration.transaction_settings import (
    commit_without_flush,
    plan_as_configured,
    plan_each_statement,
)

from . import history, idmap, lost_answers, matching, pipeline
from .company_settings import policy_for
from .conf import sync_settings
from .conflicts import settle_conflicts
from .inbox import has_pending_notifications, process_inbox
from .inbox_plan import ApplyResult, link_our_own_records, plan_records_changed_here
from .inbox_references import drop_dangling_references
from .locks import CompanyLockBusy, waiting_company_lock
from .mappers import Mapper
from .models import SyncRun, SyncRunEntity
from .outbox import applying_remote_changes
from .registry import registry
from .retries import (
    CONCURRENT_WRITE_ERRORS,
    WriteRefused,
    refusal_reason,
    retrying_refused_writes,
)
from .selectors import resumable_run
from .services import park_outcome_errors

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[SyncRunEntity], None]


class ImportFailed(Exception):
    """The run stopped; ``run.error`` says why. ``retryable`` for transient causes."""

    def __init__(self, message: str, *, run: SyncRun, retryable: bool) -> None:
        super().__init__(message)
        self.run = run
        self.retryable = retryable


class ConcurrentImport(Exception):
    """Another worker moved this entity's cursor meanwhile: stop rather than duplicate."""


# --- entry point ----------------------------------------------------------------------


def run_import(
    *,
    company: Company,
    entities: list[str] | None = None,
    restart: bool = False,
    page_size: int | None = None,
    client: ConnecClient | None = None,
    progress: ProgressCallback | None = None,
) -> SyncRun:
    """Import (or resume importing) ``company``'s Connec! records; return the run.

    Resumes the latest unfinished run unless ``restart``. Raises
    :class:`ImportFailed` when Connec! refuses the credentials (not retryable)
    or keeps failing, or the database refuses a page's write because a concurrent
    write won a race (both retryable: call again later, it resumes from the cursor).
    """
    policy = policy_for(company_id=company.pk)
    # What the company's sync settings let in (docs/sync.md, 'Per-company sync settings').
    order = [entity for entity in registry.import_order(entities) if policy.imports(entity)]
    run = None if restart else resumable_run(company=company, entities=entities)
    if run is None:
        run = start_run(company=company, entities=order)
    else:
        SyncRun.objects.filter(pk=run.pk).update(
            status=SyncRun.Status.RUNNING, error="", finished_at=None, attempts=run.attempts + 1
        )
        run.refresh_from_db()
    log_context = {"preset": company.preset, "group": company.group_uid, "run": run.pk}
    logger.info("Connec! import of %s: run %s, attempt %s", company, run.pk, run.attempts)
    owns_client = client is None
    client = client or connec_client_for(company)
    try:
        with _long_lived_objects_frozen():
            import_entities(
                run=run,
                run_entities=list(run.entities.filter(done=False).order_by("position")),
                client=client,
                page_size=page_size,
                progress=progress,
            )
    except ConnecAuthenticationError as error:
        message = (
            f"Connec! refused the credentials of preset {company.preset!r} (HTTP 401) for group "
            f"{company.group_uid}: check the api id and key. {error.reason}".strip()
        )
        _fail(run, message)
        logger.error("Connec! import stopped: %s", message, extra=log_context)
        raise ImportFailed(message, run=run, retryable=False) from error
    except ConnecError as error:
        retryable = error.is_transient
        message = f"{error}{': ' + error.reason if error.reason else ''}"
        if retryable:
            message += " (transient: the import resumes from its cursor when retried)"
        _fail(run, message)
        logger.warning("Connec! import interrupted: %s", message, extra=log_context)
        raise ImportFailed(message, run=run, retryable=retryable) from error
    except ConcurrentImport as error:
        raise ImportFailed(str(error), run=run, retryable=False) from error
    except CompanyLockBusy as error:
        message = f"{error} (the import resumes from its cursor when retried)"
        _fail(run, message)
        logger.warning("Connec! import interrupted: %s", message, extra=log_context)
        raise ImportFailed(message, run=run, retryable=True) from error
    except (WriteRefused, *CONCURRENT_WRITE_ERRORS) as error:
        # A page's transaction kept losing races with concurrent writes (a lock, a deadlock),
        # or lost one inside a caller's transaction: nothing of the page was written.
        reason = error.reason if isinstance(error, WriteRefused) else refusal_reason(error)
        message = f"{reason} (the import resumes from its cursor when retried)"
        _fail(run, message)
        logger.warning("Connec! import interrupted: %s", message, extra=log_context)
        raise ImportFailed(message, run=run, retryable=True) from error
    except Exception as error:
        _fail(run, f"{error.__class__.__name__}: {error}")
        raise
    finally:
        if owns_client:
            client.close()
    # Every record parked (nothing imported) is a failed run, as for the other kinds.
    status = history.run_status(counts=history.run_counts(run))
    SyncRun.objects.filter(pk=run.pk).update(status=status, finished_at=timezone.now())
    run.refresh_from_db()
    logger.info("Connec! import of %s finished: %s", company, status, extra=log_context)
    return run


@contextlib.contextmanager
def _long_lived_objects_frozen() -> Iterator[None]:
    """Keep the garbage collector's full collections off the objects that predate the import.

    Every page allocates tens of thousands of objects (records, model instances)
    that live until the page is written, so they reach the oldest generation and
    trigger full collections, each of which also walks the whole process
    (Django, the app, the worker): 10-15% of an import's time in profiles.
    Frozen objects are skipped by collections and given back to the oldest
    generation afterwards; the page objects are still collected as usual.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def start_run(*, company: Company, entities: list[str]) -> SyncRun:
    """A new run with one cursor per entity, in import order. An earlier run still waiting
    for its task's retry is not continued by anyone now: it ends ``failed``."""
    with transaction.atomic():
        SyncRun.objects.filter(
            company=company, kind=SyncRun.Kind.IMPORT, status=SyncRun.Status.RETRYING
        ).update(status=SyncRun.Status.FAILED)
        run = SyncRun.objects.create(company=company, kind=SyncRun.Kind.IMPORT, attempts=1)
        SyncRunEntity.objects.bulk_create(
            SyncRunEntity(run=run, entity=entity, position=position)
            for position, entity in enumerate(entities)
        )
    return run


def mark_retrying(*, run: SyncRun) -> None:
    """A run stopped by a transient failure that its task tries again later: ``retrying``
    (it resumes from its cursors), not ``failed``, for whoever looks meanwhile."""
    SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.FAILED).update(
        status=SyncRun.Status.RETRYING
    )


def _fail(run: SyncRun, message: str) -> None:
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.FAILED, error=message, finished_at=timezone.now()
    )
    run.refresh_from_db()


def import_entity(
    *,
    run: SyncRun,
    run_entity: SyncRunEntity,
    client: ConnecClient,
    page_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> None:
    """Fetch and apply the pages of one entity from its cursor on."""
    import_entities(
        run=run, run_entities=[run_entity], client=client, page_size=page_size, progress=progress
    )


def import_entities(
    *,
    run: SyncRun,
    run_entities: list[SyncRunEntity],
    client: ConnecClient,
    page_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> None:
    """Fetch and apply the pages of several entities, in order, each from its cursor on.

    One prefetcher spans the entities, so that the first page of the next entity
    is fetched while the last page of the current one is written.
    """
    # Cursors read here, in this thread: the prefetching thread never touches the database.
    plan = [
        (run_entity, run_entity.next_skip, _links_lost_answers(run=run, entity=run_entity.entity))
        for run_entity in run_entities
    ]
    # Whether each entity's pages may meet local rows linked to no record (one EXISTS each).
    matches = {
        run_entity.entity: _matches_unlinked_rows(run=run, entity=run_entity.entity)
        for run_entity in run_entities
    }
    since = policy_for(company_id=run.company_id).import_filter()  # import_since, if any

    def pages() -> Iterator[tuple[SyncRunEntity, Page | None, bool]]:
        for run_entity, skip, link_ours in plan:
            for page in client.iter_pages(
                run_entity.entity,
                page_size=page_size,
                skip=skip,
                filter=since,
                external_ids=link_ours,
            ):
                yield run_entity, page, link_ours
            yield run_entity, None, link_ours  # this entity has no more pages

    enabled = sync_settings().prefetch
    statistics = idmap.TableStatistics()
    # An entity's end (no page) rides along with the next entity's first page.
    with PagePrefetcher(
        pages(), enabled=enabled, rides_along=lambda item: item[1] is None
    ) as prefetched:
        for run_entity, page, link_ours in prefetched:
            if page is None:
                SyncRunEntity.objects.filter(pk=run_entity.pk).update(done=True)
                run_entity.done = True
            else:
                mapper = registry.for_entity(run_entity.entity)
                _apply_page_retrying(
                    run=run,
                    run_entity=run_entity,
                    mapper=mapper,
                    page=page,
                    link_ours=link_ours,
                    match_unlinked=matches[run_entity.entity],
                )
                statistics.imported(run_entity.entity, run_entity.created)
            if progress is not None:
                progress(run_entity)


def _links_lost_answers(*, run: SyncRun, entity: str) -> bool:
    """Whether ``entity``'s pages are read with their external ids, so that our own records
    whose push answer was lost are linked rather than imported a second time (docs/sync.md,
    'Notifications: the inbox'): only while the company has unanswered pushes of it
    (:func:`maestrano_sync.lost_answers.has_unanswered_pushes`, one query per entity and run);
    otherwise the pages are read, and applied, as they always were."""
    model = registry.for_entity(entity).model
    return lost_answers.has_unanswered_pushes(
        company=run.company, content_type_id=ContentType.objects.get_for_model(model).pk
    )


def _matches_unlinked_rows(*, run: SyncRun, entity: str) -> bool:
    """Whether ``entity``'s records are compared with the company's local rows linked to no
    Connec! record, to be linked to them rather than imported a second time (docs/sync.md,
    'Matching fields'): only when its mapper has matching fields and the company has such
    rows (:func:`maestrano_sync.matching.has_unlinked_rows`, one look per entity and run,
    made before its first page); otherwise its pages cost nothing more. The rows the run
    creates are linked: the answer holds for the whole run."""
    mapper = registry.for_entity(entity)
    return matching.has_unlinked_rows(
        company=run.company,
        mapper=mapper,
        content_type_id=ContentType.objects.get_for_model(mapper.model).pk,
    )


class PagePrefetcher:
    """Fetch item n+1 (a page) in a thread while item n is written: hides Connec!'s latency.

    At most two pages wait in memory: one in the queue, and the next one, which the thread
    fetches meanwhile and holds until the queue has room (so a consumer may still get two
    pages fetched before Connec! started failing). The thread only does HTTP (never the
    database); its errors are raised in the consumer, in order.

    An item for which ``rides_along`` is true (an entity's end: no page) takes no place in
    the queue: it waits in the thread and goes with the item after it, so the thread
    fetches the next entity's first page while the consumer still writes the page before
    the end, not only once the end is taken (docs/performance.md, "twenty-eighth session").
    Before an error or the end of the items, it goes alone.
    """

    def __init__(
        self,
        pages: Iterator[Any],
        *,
        enabled: bool = True,
        rides_along: Callable[[Any], bool] = lambda item: False,
    ) -> None:
        self._pages = pages
        self._enabled = enabled
        self._rides_along = rides_along
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fetch, name="connec-prefetch", daemon=True)

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _fetch(self) -> None:
        waiting: list[Any] = []  # items riding along with the next one
        try:
            for item in self._pages:
                waiting.append(item)
                if self._rides_along(item):
                    continue
                if not self._put(("items", waiting)):
                    return
                waiting = []
            last: tuple[str, Any] = ("end", None)
        except BaseException as error:  # handed to the consumer
            last = ("error", error)
        if waiting and not self._put(("items", waiting)):
            return
        self._put(last)

    def __enter__(self) -> PagePrefetcher:
        if self._enabled:
            self._thread.start()
        return self

    def __iter__(self) -> Iterator[Any]:
        if not self._enabled:
            yield from self._pages
            return
        while True:
            kind, value = self._queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            while value:
                yield value.pop(0)  # not kept alive while waiting for the next page
            del value

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._enabled:
            self._thread.join()


# --- one page ---------------------------------------------------------------------------


def _commit_without_flush() -> None:
    """Let the page's transaction commit before PostgreSQL flushes it to disk, unless
    ``IMPORT_SYNCHRONOUS_COMMIT`` (docs/settings.md).

    ``SET LOCAL`` ends with the transaction: only this page's commit is relaxed. The
    page's rows and its cursor commit or vanish together, so a server crash loses at
    most the last pages, which the resumed import applies again; a later synchronous
    commit (the run's status at the end) makes them durable. Only for the outermost
    transaction (never a caller's own around the import); other databases: nothing.
    """
    if not sync_settings().import_synchronous_commit:
        commit_without_flush()


def _apply_page_retrying(
    *,
    run: SyncRun,
    run_entity: SyncRunEntity,
    mapper: Mapper,
    page: Page,
    link_ours: bool = False,
    match_unlinked: bool = False,
) -> SyncRunEntity:
    """:func:`apply_page` under the company's lock (the one notifications, drains and
    reconciliation take: none of them writes the company's records meanwhile; waited
    for, :class:`~maestrano_sync.locks.CompanyLockBusy` after a lease), applied again at once when
    the database refuses its commit (:func:`maestrano_sync.retries.retrying_refused_writes`;
    :class:`~maestrano_sync.retries.WriteRefused` when it keeps refusing), the references to rows
    deleted meanwhile emptied first; then the notifications put off meanwhile are applied.

    A record refers to a local row through its IdMap row, which outlives the row until
    the delete is pushed: the foreign key is refused only at commit. Checking every
    page's references beforehand cost a query with an ``IN`` of every referenced id (a
    fifth of the import on PostgreSQL, docs/performance.md); after a refusal only.
    """
    tries = 0

    def write() -> SyncRunEntity:
        nonlocal tries
        tries += 1
        return apply_page(
            run=run,
            run_entity=run_entity,
            mapper=mapper,
            page=page,
            check_references=tries > 1,
            link_ours=link_ours,
            match_unlinked=match_unlinked,
        )

    company = run.company
    durable = sync_settings().import_synchronous_commit
    with waiting_company_lock(company_id=company.pk, durable=durable):
        written = retrying_refused_writes(
            write, what=f"Connec! {run_entity.entity} page at {page.skip} for {company}"
        )
    apply_waiting_notifications(company=company)
    return written


def _storable_total(total: int | None) -> int | None:
    """Connec!'s count of the entity's records, when the cursor's column holds it: only
    progress is shown from it, and a count no column holds (``2**31`` on PostgreSQL) must
    not refuse the page's write."""
    if total is None:
        return None
    field = SyncRunEntity._meta.get_field("total")
    low, high = connections[SyncRunEntity.objects.db].ops.integer_field_range(
        field.get_internal_type()
    )
    return total if (low is None or total >= low) and (high is None or total <= high) else None


def apply_waiting_notifications(*, company: Company) -> None:
    """Apply the notifications a page's lock put off, now that it is released.

    A notification's worker that finds the company locked leaves it pending for the lock
    holder to pick up (docs/sync.md, 'Notifications: the inbox'); applied here, between
    two pages, it is not put off until the import ends. One query when none waits.
    """
    if has_pending_notifications(company=company):
        process_inbox(company=company)


def apply_page(
    *,
    run: SyncRun,
    run_entity: SyncRunEntity,
    mapper: Mapper,
    page: Page,
    check_references: bool = False,
    link_ours: bool = False,
    match_unlinked: bool = False,
) -> SyncRunEntity:
    """Apply one page and advance the cursor, in one transaction.

    ``check_references``: a reference to a local row deleted meanwhile is emptied
    (:func:`maestrano_sync.inbox_references.drop_dangling_references`) rather than refused by the
    foreign key at commit. ``link_ours``: the page was read with its external ids, and an
    unknown record carrying ours is linked to our object first
    (:func:`maestrano_sync.inbox_plan.link_our_own_records`, as for notifications).
    ``match_unlinked``: the company has local rows linked to no Connec! record, and an
    unknown record equal to one of them (matching fields) is linked to it
    (:func:`maestrano_sync.matching.link_matching_records`, one query for the page).
    """
    company = run.company
    entity = run_entity.entity
    outcome = pipeline.Outcome()
    parsed = pipeline.parse_records(page.records, outcome, group_uid=company.group_uid)
    outermost = not transaction.get_connection().in_atomic_block
    # Writes that apply Connec! data must not enter the push outbox (no echo).
    with transaction.atomic(), applying_remote_changes():
        if outermost:
            _commit_without_flush()
            # The IdMap grows page after page: no plan kept from the first pages.
            plan_each_statement()
        locked = SyncRunEntity.objects.select_for_update().get(pk=run_entity.pk)
        if locked.next_skip != page.skip or locked.done:
            raise ConcurrentImport(
                f"{entity} cursor of run {run.pk} moved to {locked.next_skip} while this worker "
                f"applied the page at {page.skip}: another import is running"
            )
        content_type = ContentType.objects.get_for_model(mapper.model)
        if link_ours:
            # Our own records whose push answer was lost: linked, never created again.
            link_our_own_records(
                company=company, mapper=mapper, content_type=content_type, parsed=parsed
            )
        known = idmap.bulk_lookup(company=company, entity=entity, connec_ids=[p[0] for p in parsed])
        matched = parsed
        if match_unlinked:
            # Existing local rows equal to unknown records: linked, never imported twice;
            # those equal to several rows are parked.
            matched, known = matching.link_matching_records(
                company=company,
                mapper=mapper,
                content_type=content_type,
                parsed=parsed,
                known=known,
                outcome=outcome,
            )
        # Records with a local change not pushed yet follow the conflict rule, as in a
        # notification (none on a first import: nothing is mapped yet).
        content_type_id = content_type.pk
        planned = ApplyResult()
        to_apply, plan = plan_records_changed_here(
            company=company,
            mapper=mapper,
            content_type_id=content_type_id,
            parsed=matched,
            known=known,
            result=planned,
        )
        prepared = pipeline.prepare(
            company=company, mapper=mapper, parsed=to_apply, outcome=outcome, known=known
        )
        if check_references:
            drop_dangling_references(company=company, mapper=mapper, prepared=prepared)
        prepared = pipeline.save(company=company, mapper=mapper, prepared=prepared, outcome=outcome)
        for item in prepared:
            if item.is_new:
                outcome.created += 1
            else:
                outcome.updated += 1
        if outcome.updated:
            # As for notifications: our last push no longer describes these records.
            idmap.forget_pushed_hash(
                company=company,
                entity=entity,
                connec_ids=[item.connec_id for item in prepared if not item.is_new],
            )
        # Records Connec! marks deleted: none created, as notifications have it.
        deleted = outcome.set_aside + len(plan.delete)
        parked = len(outcome.errors)
        pipeline.apply_deleted(
            company=company, mapper=mapper, outcome=outcome, delete=plan.delete, bump=plan.bump
        )
        deleted -= len(outcome.errors) - parked  # local objects a foreign key keeps: parked
        settle_conflicts(
            company=company,
            entity=entity,
            content_type_id=content_type_id,
            superseded=plan.superseded,
            conflicts=[*plan.conflicts, *outcome.conflicts],
        )
        # Stale versions, and those a pending local change wins over (pushed over them).
        outcome.skipped += planned.skipped + len(plan.bump)
        if outcome.errors:
            # Once per record: one parked by an earlier run (an import run again) counts on
            # its row, which moves to this run (maestrano_sync.services.park_records).
            park_outcome_errors(
                company=company,
                entity=entity,
                errors=outcome.errors,
                run=run,
                logger=logger,
                message="Connec! %s record %s skipped: %s",
                extra={"group": company.group_uid, "run": run.pk},
            )
        last = parsed[-1] if parsed else None
        locked.created += outcome.created
        locked.updated += outcome.updated
        locked.skipped += outcome.skipped
        locked.deleted += deleted
        locked.failed += len(outcome.errors)
        locked.pages += 1
        locked.next_skip = page.next_skip
        if (total := _storable_total(page.total)) is not None:
            locked.total = total
        if last is not None:
            locked.last_connec_id = last[0][:64]
            locked.last_updated_at = str(last[1].get("updated_at") or "")[:40]
        locked.save()
        if outermost:
            plan_as_configured()  # the commit's foreign key checks keep their plans
    # The caller's object follows the committed cursor.
    for name in (
        "created",
        "updated",
        "skipped",
        "deleted",
        "failed",
        "pages",
        "next_skip",
        "total",
        "last_connec_id",
        "last_updated_at",
    ):
        setattr(run_entity, name, getattr(locked, name))
    return run_entity
