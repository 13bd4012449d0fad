"""Initial import of a company's Connec! data (docs/protocol.md,
'Integration duties'), page by page, resumable.

For every entity whose mapper has import enabled, in dependency order, each
page fetched from Connec! is applied in ONE transaction together with the
entity's cursor: one bulk IdMap lookup, one bulk lookup per referenced entity,
``bulk_create`` / ``bulk_update`` of the models and their children, one
statement for the IdMap rows. A crash or a retry therefore continues at the
next page and never applies a page twice. Records that cannot be mapped are
parked as ``SyncRecordError`` and the rest of the page is imported. No database
transaction is open while waiting on Connec!: the next page (of the same entity
or the next one) is fetched in a thread while the current one is written.
"""

from __future__ import annotations

import contextlib
import datetime
import gc
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    connections,
    models,
    router,
    transaction,
)
from django.utils import timezone

from accounts.models import Company
from maestrano_integration.conf import maestrano_settings
from maestrano_integration.connec import (
    ConnecAuthenticationError,
    ConnecClient,
    ConnecError,
    Page,
    connec_client_for,
)

from .company_settings import policy_for
from .mappers import (
    ChildMapping,
    Mapper,
    MappingError,
    ReferenceResolver,
    connec_id_of,
    connec_time,
)
from .models import IdMap, SyncRecordError, SyncRun, SyncRunEntity
from .outbox import applying_remote_changes
from .registry import registry
from .selectors import bulk_lookup, local_pks_for, resumable_run
from .services import parked_record

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
    or keeps failing (retryable: call again later, it resumes from the cursor).
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
            f"{company.group_uid}: check the api id and key. {'; '.join(error.details)}".strip()
        )
        _fail(run, message)
        logger.error("Connec! import stopped: %s", message, extra=log_context)
        raise ImportFailed(message, run=run, retryable=False) from error
    except ConnecError as error:
        retryable = error.is_transient
        message = f"{error}{': ' + '; '.join(error.details) if error.details else ''}"
        if retryable:
            message += " (transient: the import resumes from its cursor when retried)"
        _fail(run, message)
        logger.warning("Connec! import interrupted: %s", message, extra=log_context)
        raise ImportFailed(message, run=run, retryable=retryable) from error
    except ConcurrentImport as error:
        raise ImportFailed(str(error), run=run, retryable=False) from error
    except Exception as error:
        _fail(run, f"{error.__class__.__name__}: {error}")
        raise
    finally:
        if owns_client:
            client.close()
    failed = sum(run.entities.values_list("failed", flat=True))
    status = SyncRun.Status.PARTIAL if failed else SyncRun.Status.SUCCEEDED
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
    """A new run with one cursor per entity, in import order."""
    with transaction.atomic():
        run = SyncRun.objects.create(company=company, kind=SyncRun.Kind.IMPORT, attempts=1)
        SyncRunEntity.objects.bulk_create(
            SyncRunEntity(run=run, entity=entity, position=position)
            for position, entity in enumerate(entities)
        )
    return run


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
    size = page_size or int(maestrano_settings.SYNC["PAGE_SIZE"])
    # Cursors read here, in this thread: the prefetching thread never touches the database.
    plan = [(run_entity, run_entity.next_skip) for run_entity in run_entities]
    since = policy_for(company_id=run.company_id).import_filter()  # import_since, if any

    def pages() -> Iterator[tuple[SyncRunEntity, Page | None]]:
        for run_entity, skip in plan:
            for page in client.iter_pages(
                run_entity.entity, page_size=size, skip=skip, filter=since
            ):
                yield run_entity, page
            yield run_entity, None  # this entity has no more pages

    enabled = bool(maestrano_settings.SYNC["PREFETCH"])
    statistics = _IdMapStatistics()
    with PagePrefetcher(pages(), enabled=enabled) as prefetched:
        for run_entity, page in prefetched:
            if page is None:
                SyncRunEntity.objects.filter(pk=run_entity.pk).update(done=True)
                run_entity.done = True
            else:
                mapper = registry.for_entity(run_entity.entity)
                apply_page(run=run, run_entity=run_entity, mapper=mapper, page=page)
                statistics.imported(run_entity.entity, run_entity.created)
            if progress is not None:
                progress(run_entity)


class _IdMapStatistics:
    """Keeps PostgreSQL's statistics of the IdMap table in step with a large import.

    Every page looks its ids up in IdMap by (company, entity, Connec! id). While
    the statistics still say the company has (almost) no rows of an entity,
    PostgreSQL reads all of them and filters, instead of probing the unique
    index for each id: a cost that grows with every page (at 100k records, a
    fifth of the import's time went there). As advised after bulk loads,
    the table is analyzed (a sample: tens of milliseconds) each time an
    entity's imported rows have doubled, from ``MIN_ROWS`` on. Without
    ownership of the table PostgreSQL only warns; other databases need none of it.
    """

    MIN_ROWS = 5000

    def __init__(self) -> None:
        self._connection = connections[router.db_for_write(IdMap)]
        self._analyzed_at: dict[str, int] = {}

    def imported(self, entity: str, rows: int) -> None:
        if self._connection.vendor != "postgresql":
            return
        if rows < max(self.MIN_ROWS, 2 * self._analyzed_at.get(entity, 0)):
            return
        self._analyzed_at[entity] = rows
        table = self._connection.ops.quote_name(IdMap._meta.db_table)
        with self._connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")


class PagePrefetcher:
    """Fetch item n+1 (a page) in a thread while item n is written: hides Connec!'s latency.

    At most one page waits in memory. The thread only does HTTP (never the
    database); its errors are raised in the consumer, in order.
    """

    def __init__(self, pages: Iterator[Any], *, enabled: bool = True) -> None:
        self._pages = pages
        self._enabled = enabled
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
        try:
            for page in self._pages:
                if not self._put(("page", page)):
                    return
            self._put(("end", None))
        except BaseException as error:  # handed to the consumer
            self._put(("error", error))

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
            yield value
            del value  # not kept alive while waiting for the next page

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._enabled:
            self._thread.join()


# --- one page ---------------------------------------------------------------------------


@dataclass
class _Prepared:
    """One mapped record, ready to be saved."""

    connec_id: str
    data: Mapping[str, Any]
    updated_at: datetime.datetime | None
    instance: models.Model
    is_new: bool
    id_map: IdMap | None
    children: dict[type[ChildMapping], list[models.Model]] = field(default_factory=dict)


@dataclass
class _PageOutcome:
    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[tuple[str | None, str, Any]] = field(default_factory=list)


def apply_page(
    *, run: SyncRun, run_entity: SyncRunEntity, mapper: Mapper, page: Page
) -> SyncRunEntity:
    """Apply one page and advance the cursor, in one transaction."""
    company = run.company
    entity = run_entity.entity
    outcome = _PageOutcome()
    parsed = _parse_records(page.records, outcome)
    # Writes that apply Connec! data must not enter the push outbox (no echo).
    with transaction.atomic(), applying_remote_changes():
        locked = SyncRunEntity.objects.select_for_update().get(pk=run_entity.pk)
        if locked.next_skip != page.skip or locked.done:
            raise ConcurrentImport(
                f"{entity} cursor of run {run.pk} moved to {locked.next_skip} while this worker "
                f"applied the page at {page.skip}: another import is running"
            )
        prepared = _prepare(company=company, mapper=mapper, parsed=parsed, outcome=outcome)
        try:
            with transaction.atomic():
                _save_bulk(company=company, mapper=mapper, prepared=prepared)
        except (IntegrityError, DataError) as error:
            # One bad row fails the whole statement: redo record by record to
            # find it, keeping the others.
            logger.info(
                "Bulk write of %s page %s failed (%s); retrying one by one",
                entity,
                page.skip,
                error.__class__.__name__,
            )
            prepared = _save_one_by_one(
                company=company, mapper=mapper, prepared=prepared, outcome=outcome
            )
        for item in prepared:
            if item.is_new:
                outcome.created += 1
            else:
                outcome.updated += 1
        if outcome.errors:
            SyncRecordError.objects.bulk_create(
                parked_record(
                    company=company,
                    run=run,
                    entity=entity,
                    connec_id=connec_id,
                    reason=reason,
                    data=data,
                )
                for connec_id, reason, data in outcome.errors
            )
            for connec_id, reason, _ in outcome.errors:
                logger.warning(
                    "Connec! %s record %s skipped: %s",
                    entity,
                    connec_id,
                    reason,
                    extra={"group": company.group_uid, "run": run.pk},
                )
        last = parsed[-1] if parsed else None
        locked.created += outcome.created
        locked.updated += outcome.updated
        locked.skipped += outcome.skipped
        locked.failed += len(outcome.errors)
        locked.pages += 1
        locked.next_skip = page.next_skip
        if page.total is not None:
            locked.total = page.total
        if last is not None:
            locked.last_connec_id = last[0][:64]
            locked.last_updated_at = str(last[1].get("updated_at") or "")[:40]
        locked.save()
    # The caller's object follows the committed cursor.
    for name in (
        "created",
        "updated",
        "skipped",
        "failed",
        "pages",
        "next_skip",
        "total",
        "last_connec_id",
        "last_updated_at",
    ):
        setattr(run_entity, name, getattr(locked, name))
    return run_entity


def _parse_records(
    records: list[Any], outcome: _PageOutcome
) -> list[tuple[str, Mapping[str, Any], datetime.datetime | None]]:
    """(connec id, record, updated_at) for well-formed records; the others become errors.

    A Connec! id seen twice in one page keeps its last occurrence.
    """
    by_id: dict[str, tuple[str, Mapping[str, Any], datetime.datetime | None]] = {}
    for data in records:
        if not isinstance(data, Mapping):
            outcome.errors.append((None, "malformed record: not a JSON object", data))
            continue
        try:
            connec_id = connec_id_of(data.get("id"))
        except MappingError as error:
            outcome.errors.append((None, f"malformed record: id: {error}", data))
            continue
        if not connec_id:
            outcome.errors.append((None, "malformed record: no id", data))
            continue
        try:
            updated_at = connec_time(data.get("updated_at"))
        except MappingError as error:
            outcome.errors.append((connec_id, f"malformed record: updated_at: {error}", data))
            continue
        by_id.pop(connec_id, None)
        by_id[connec_id] = (connec_id, data, updated_at)
    return list(by_id.values())


def _prepare(
    *,
    company: Company,
    mapper: Mapper,
    parsed: list[tuple[str, Mapping[str, Any], datetime.datetime | None]],
    outcome: _PageOutcome,
) -> list[_Prepared]:
    """Map every record onto a new or existing instance (bulk reads only)."""
    model = mapper.model
    entity = mapper.entity
    known = bulk_lookup(company=company, entity=entity, connec_ids=[p[0] for p in parsed])
    wanted: dict[str, set[str]] = {}
    for _, data, _ in parsed:
        for ref_entity, ids in mapper.referenced_ids(data).items():
            wanted.setdefault(ref_entity, set()).update(ids)
    resolver = ReferenceResolver(
        local_pks={
            ref_entity: local_pks_for(company=company, entity=ref_entity, connec_ids=ids)
            for ref_entity, ids in wanted.items()
        }
    )
    existing = mapper.for_company(company).in_bulk(
        [model._meta.pk.to_python(id_map.object_id) for id_map in known.values()]
    )
    new_instance = _instance_factory(mapper=mapper, company=company)
    prepared: list[_Prepared] = []
    for connec_id, data, updated_at in parsed:
        id_map = known.get(connec_id)
        instance = None
        if id_map is not None:
            last = id_map.last_pulled_updated_at
            if updated_at is not None and last is not None and updated_at <= last:
                outcome.skipped += 1
                continue
            instance = existing.get(model._meta.pk.to_python(id_map.object_id))
        is_new = instance is None
        if instance is None:
            instance = new_instance()
        try:
            instance = mapper.to_local(data, instance=instance, references=resolver)
            children = mapper.children_to_local(data, company=company, references=resolver)
        except MappingError as error:
            outcome.errors.append((connec_id, str(error), data))
            continue
        except DatabaseError:
            raise  # the transaction is broken: the page (or notification) is retried whole
        except Exception as error:
            # A mapper's own code failed on this record's data: park it with the reason
            # (retried from the parked list once the mapper is fixed); the others go on.
            logger.exception("Connec! %s mapper failed on record %s", entity, connec_id)
            outcome.errors.append(
                (connec_id, f"mapper error: {error.__class__.__name__}: {error}", data)
            )
            continue
        prepared.append(
            _Prepared(
                connec_id=connec_id,
                data=data,
                updated_at=updated_at,
                instance=instance,
                is_new=is_new,
                id_map=id_map,
                children=children,
            )
        )
    return prepared


def _instance_factory(*, mapper: Mapper, company: Company) -> Callable[[], models.Model]:
    """New instances of the mapper's model for ``company``, as ``mapper.new_instance`` makes them.

    Without going through the foreign key's descriptor for each record: its
    type and router checks (the same for every row of the page) took half the
    time of creating an instance.
    """
    model = mapper.model
    field = mapper.tenant().first
    tenant_object = mapper.tenant_object_for(company)
    db = router.db_for_write(model, instance=tenant_object)
    kwargs = {field.attname: tenant_object.pk}

    def new_instance() -> models.Model:
        instance = model(**kwargs)
        field.set_cached_value(instance, tenant_object)
        instance._state.db = db
        return instance

    # The descriptor's router check, once per page instead of once per record.
    if not router.allow_relation(tenant_object, new_instance()):
        raise ValueError(
            f'Cannot assign "{tenant_object!r}": the current database router prevents this '
            "relation."
        )
    return new_instance


def _save_bulk(*, company: Company, mapper: Mapper, prepared: list[_Prepared]) -> None:
    model = mapper.model
    manager = model._default_manager
    new = [item.instance for item in prepared if item.is_new]
    changed = [item.instance for item in prepared if not item.is_new]
    if new:
        manager.bulk_create(new)
        if any(obj.pk is None for obj in new):  # backends that cannot return ids
            raise DatabaseError(f"{model._meta.label}: bulk_create returned no primary keys")
    if changed:
        manager.bulk_update(changed, mapper.update_field_names())
    _replace_children(company=company, mapper=mapper, prepared=prepared)
    _write_id_maps(company=company, mapper=mapper, prepared=prepared)


def _replace_children(*, company: Company, mapper: Mapper, prepared: list[_Prepared]) -> None:
    for child in mapper.children:
        parents = [item for item in prepared if child in item.children]
        if not parents:
            continue
        updated_parent_pks = [item.instance.pk for item in parents if not item.is_new]
        if updated_parent_pks:
            child.for_company(company).filter(
                **{f"{child.parent_field}__in": updated_parent_pks}
            ).delete()
        rows = []
        for item in parents:
            for obj in item.children[child]:
                setattr(obj, child.parent_field, item.instance)
                rows.append(obj)
        if rows:
            child.model._default_manager.bulk_create(rows)


def _write_id_maps(*, company: Company, mapper: Mapper, prepared: list[_Prepared]) -> None:
    content_type = ContentType.objects.get_for_model(mapper.model)
    now = timezone.now()
    new_rows: list[tuple[str, str, datetime.datetime | None]] = []
    changed_maps: list[IdMap] = []
    for item in prepared:
        object_id = str(item.instance.pk)
        if item.id_map is None:
            new_rows.append((object_id, item.connec_id, item.updated_at))
        else:
            item.id_map.object_id = object_id
            item.id_map.last_pulled_updated_at = item.updated_at
            item.id_map.updated_at = now
            changed_maps.append(item.id_map)
    if new_rows:
        _insert_id_maps(
            company=company,
            entity=mapper.entity,
            content_type=content_type,
            rows=new_rows,
            now=now,
        )
    if changed_maps:
        _update_id_maps(changed_maps)


# IdMap rows are written with one statement per page (PostgreSQL: the rows as
# arrays, through UNNEST; other databases: ``executemany``) rather than with
# ``bulk_create`` / ``bulk_update``: there is one per imported row, and the ORM's
# per-value work (``pre_save`` and ``get_db_prep_save`` of every field of every
# row, CASE WHEN chains for updates) cost more than writing the models themselves
# (profile of benchmarks/initial_import.py: 4x less time on SQLite, 2-3x on
# PostgreSQL). Values are still adapted by the model's fields; SQL identifiers come
# from the model's options, quoted, and every value is a parameter.


def _insert_id_maps(
    *,
    company: Company,
    entity: str,
    content_type: ContentType,
    rows: list[tuple[str, str, datetime.datetime | None]],
    now: datetime.datetime,
) -> None:
    """INSERT new IdMap rows, given as (object id, Connec! id, Connec! updated_at)."""
    connection = connections[router.db_for_write(IdMap)]
    quote = connection.ops.quote_name
    opts = IdMap._meta
    fields = [f for f in opts.local_concrete_fields if not f.primary_key]
    per_row = [opts.get_field(n) for n in ("object_id", "connec_id", "last_pulled_updated_at")]
    shared_values = {
        "company": company.pk,
        "entity": entity,
        "content_type": content_type.pk,
        "created_at": now,
        "updated_at": now,
    }
    shared = {
        f.name: f.get_db_prep_save(shared_values.get(f.name, f.get_default()), connection)
        for f in fields
        if f not in per_row
    }
    pulled = per_row[2]
    columns = [
        [object_id for object_id, _, _ in rows],
        [connec_id for _, connec_id, _ in rows],
        [pulled.get_db_prep_save(updated_at, connection) for _, _, updated_at in rows],
    ]
    table = quote(opts.db_table)
    names = ", ".join(quote(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # As Django's bulk_create does there: array types without their length.
            def cast(field: models.Field) -> str:
                return field.db_type(connection).split("(")[0]

            values = ", ".join(
                f"r.{quote(f.column)}" if f in per_row else f"%s::{cast(f)}" for f in fields
            )
            arrays = ", ".join(f"%s::{cast(f)}[]" for f in per_row)
            aliases = ", ".join(quote(f.column) for f in per_row)
            sql = (
                f"INSERT INTO {table} ({names}) SELECT {values} "  # noqa: S608
                f"FROM UNNEST({arrays}) AS r({aliases})"
            )
            params = [shared[f.name] for f in fields if f not in per_row] + columns
            cursor.execute(sql, params)
        else:
            # Per column: the index of its per-row value, or the value every row shares.
            template = [
                (per_row.index(f), None) if f in per_row else (None, shared[f.name]) for f in fields
            ]
            params = [
                [value if slot is None else row[slot] for slot, value in template]
                for row in zip(*columns, strict=True)
            ]
            placeholders = ", ".join(["%s"] * len(fields))
            sql = f"INSERT INTO {table} ({names}) VALUES ({placeholders})"  # noqa: S608
            cursor.executemany(sql, params)


def _update_id_maps(id_maps: list[IdMap]) -> None:
    """UPDATE the object id, last pulled and updated times of known IdMap rows."""
    connection = connections[router.db_for_write(IdMap)]
    quote = connection.ops.quote_name
    opts = IdMap._meta
    fields = [opts.get_field(n) for n in ("object_id", "last_pulled_updated_at", "updated_at")]
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    where = f"{quote(opts.pk.column)} = %s"
    sql = f"UPDATE {quote(opts.db_table)} SET {assignments} WHERE {where}"  # noqa: S608
    params = [
        [f.get_db_prep_save(getattr(id_map, f.attname), connection) for f in fields] + [id_map.pk]
        for id_map in id_maps
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _save_one_by_one(
    *, company: Company, mapper: Mapper, prepared: list[_Prepared], outcome: _PageOutcome
) -> list[_Prepared]:
    """Slow path after a failed bulk write: each record in its own savepoint."""
    saved = []
    for item in prepared:
        if item.is_new:
            # The rolled-back bulk_create may have assigned primary keys.
            item.instance.pk = None
            item.instance._state.adding = True
            for objects in item.children.values():
                for obj in objects:
                    obj.pk = None
                    obj._state.adding = True
        try:
            with transaction.atomic():
                _save_bulk(company=company, mapper=mapper, prepared=[item])
        except (IntegrityError, DataError) as error:
            reason = f"rejected by the database: {str(error).splitlines()[0][:300]}"
            outcome.errors.append((item.connec_id, reason, item.data))
            continue
        saved.append(item)
    return saved
