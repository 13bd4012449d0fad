"""Initial import benchmark: our paged bulk import vs a naive per-record import vs bare bulk_create.

    python benchmarks/initial_import.py --records 10000 --db sqlite [--repeat 3]
    python benchmarks/initial_import.py --records 100000 --db postgresql

Sets up fresh databases (SQLite files in a temporary directory, or PostgreSQL
databases ``bench_initial_import`` and ``..._sandbox`` on 127.0.0.1), seeds one
sandbox group with N Connec! records (``manage.py sandbox_seed`` when the sandbox
provides it, otherwise organizations and people written straight into the
sandbox database) from a child process, so that the measured process holds only
the importer's memory, and serves the sandbox from another one on 127.0.0.1
(``--server``: the production recipe by default, see ``benchmarks/harness.py``;
``runserver`` to compare). ``DEBUG`` is off (with
it on, Django keeps every query in memory) and the sandbox answers one untimed
request per entity first (its first requests load its code). Then, in one run:

* ours: ``maestrano_sync.importer.run_import`` (HTTP pages, one transaction per page, bulk writes);
* naive: the historical connector's style: pages fetched, then per record one
  IdMap lookup, one ``save()`` and one IdMap save, each in its own transaction
  (the saves are not pushed back to Connec!, as in ours);
* bulk_create: the same model rows, invoice lines included, written with
  ``bulk_create`` in page-sized batches, no HTTP, no IdMap, no validation (only
  the writes are timed).

Tables are emptied between phases; the naive and bulk_create phases run with the
same garbage collector conditions as ours (see ``same_gc_conditions_as_ours``), and
the naive one keeps PostgreSQL's IdMap statistics up to date as ours does.
Peak RSS is sampled in this process only, during our import; the peak of Python
allocations (tracemalloc) comes from one more, untimed, import (``--memory-only``:
that alone, to compare 10k with 100k records). Prints a table
(best of ``--repeat`` runs, and medians); the last line is one JSON object, with
``ratio_vs_bulk_create`` from the best runs and ``ratio_vs_bulk_create_median``, and
``ratio_cpu``: this process's CPU time in ours against that of the bare ``bulk_create``
calls (best runs; it leaves out the sandbox server's and PostgreSQL's CPU, and moves
less with the machine's load than the wall times).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import subprocess
import sys
import threading
import time

import harness

PG_NAME = "bench_initial_import"
API_ID = "bench-app"
API_KEY = "bench-key-" + "x" * 16
GROUP_UID = "cld-bench"


# --- child process: seed and serve the sandbox ---------------------------------------------


def seed_sandbox(records: int) -> None:
    """N Connec! records in the bench group: the sandbox's seed command, or a direct write."""
    from django.core.management import call_command, get_commands

    if "sandbox_seed" in get_commands():
        call_command("sandbox_seed", "--group", GROUP_UID, "--records", str(records))
        return
    from maestrano_sandbox.connec.clock import next_timestamp
    from maestrano_sandbox.models import ConnecRecord, Group

    group = Group.objects.get(uid=GROUP_UID)
    organizations = max(1, records // 5)
    org_uids: list[str] = []
    batch: list[ConnecRecord] = []

    def flush() -> None:
        ConnecRecord.objects.bulk_create(batch, batch_size=2000)
        batch.clear()

    for n in range(organizations):
        stamp = next_timestamp()
        record = ConnecRecord(
            group=group,
            entity="organizations",
            created_at=stamp,
            updated_at=stamp,
            data={
                "code": f"OR{n + 1}",
                "name": f"Organization {n}",
                "status": "ACTIVE",
                "is_customer": True,
                "is_supplier": n % 3 == 0,
                "email": {"address": f"org{n}@example.com"},
                "phone": {"landline": f"+61 2 9000 {n:04d}"},
                "address": {
                    "billing": {
                        "line1": f"{n} George St",
                        "city": "Sydney",
                        "postal_code": "2000",
                        "country": "AU",
                    }
                },
            },
        )
        org_uids.append(str(record.uid))
        batch.append(record)
        if len(batch) >= 2000:
            flush()
    for n in range(records - organizations):
        stamp = next_timestamp()
        batch.append(
            ConnecRecord(
                group=group,
                entity="people",
                created_at=stamp,
                updated_at=stamp,
                data={
                    "code": f"PE{n + 1}",
                    "status": "ACTIVE",
                    "title": "Mx",
                    "first_name": f"First{n}",
                    "last_name": f"Last{n}",
                    "job_title": "Engineer",
                    "email": {"address": f"person{n}@example.com"},
                    "organization_id": org_uids[n % len(org_uids)],
                },
            )
        )
        if len(batch) >= 2000:
            flush()
    flush()


def seed(records: int) -> None:
    """Child process: seed the sandbox (then exit; the server starts afterwards)."""
    import django

    django.setup()
    seed_sandbox(records)


# --- parent process: the three phases ---------------------------------------------------


class PeakRss:
    """Samples this process's RSS in a thread; ``peak_mb`` after ``stop()``."""

    def __init__(self, interval: float = 0.02) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.start = self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self._interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def peak_mb(self) -> float:
        return self.peak / 1024 / 1024

    @property
    def start_mb(self) -> float:
        return self.start / 1024 / 1024


def empty_tables() -> None:
    from django.db import connection, transaction

    from maestrano_sync.models import (
        IdMap,
        InboxEntry,
        OutboxEntry,
        SyncConflict,
        SyncRecordError,
        SyncRun,
        SyncRunEntity,
        SyncState,
    )
    from maestrano_sync.registry import registry

    models = [
        IdMap,
        SyncRecordError,
        SyncRunEntity,
        SyncRun,
        OutboxEntry,
        InboxEntry,
        SyncConflict,
        SyncState,
    ]
    for mapper in reversed([registry.for_entity(e) for e in registry.dependency_order()]):
        models.extend(child.model for child in mapper.children)
        models.append(mapper.model)
    with transaction.atomic(), connection.cursor() as cursor:
        for model in models:
            cursor.execute(f'DELETE FROM "{model._meta.db_table}"')


def new_company(name: str):
    from maestrano_accounts.models import Company

    Company.objects.filter(group_uid=GROUP_UID).delete()  # the previous phase's (emptied)
    return Company.objects.create(preset="maestrano", group_uid=GROUP_UID, name=name)


@contextlib.contextmanager
def same_gc_conditions_as_ours():
    """Our importer freezes the objects that predate it (no full garbage collections over
    them, see maestrano_sync.importer); the other phases get the same, so that the ratios compare
    the ways of writing rows, not the garbage collector's settings."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def warm_up_sandbox() -> None:
    """One small list request per entity, untimed: the sandbox server process loads its
    views and opens its database on its first requests, which would otherwise be counted
    in whichever phase comes first (ours)."""
    from maestrano_integration.connec import connec_client_for
    from maestrano_sync.registry import registry

    company = new_company("warm-up")
    with connec_client_for(company) as client:
        for entity in registry.import_order():
            next(client.iter_pages(entity, page_size=1))


def phase_ours(page_size: int) -> tuple[float, float, PeakRss, int]:
    """(wall seconds, CPU seconds of this process, peak RSS, records imported)."""
    from maestrano_sync.importer import run_import

    company = new_company("ours")
    with PeakRss() as rss, harness.timed() as took:
        run = run_import(company=company, page_size=page_size)
    imported = sum(e.created for e in run.entities.all())
    assert run.status == "succeeded", (run.status, run.error)
    return took["seconds"], took["cpu"], rss, imported


def phase_memory(page_size: int) -> float:
    """Our import once more, untimed, under tracemalloc: the peak of Python allocations (MB).

    tracemalloc slows every allocation down, so this run is not one of the timed ones.
    """
    import tracemalloc

    from maestrano_sync.importer import run_import

    company = new_company("memory")
    gc.collect()
    tracemalloc.start()
    try:
        run = run_import(company=company, page_size=page_size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.status == "succeeded", (run.status, run.error)
    return peak / 1024 / 1024


def phase_naive(page_size: int, limit: int | None) -> tuple[float, int]:
    """One IdMap lookup, one save() and one IdMap save per record, each in its own transaction."""
    from maestrano_integration.connec import connec_client_for
    from maestrano_sync.outbox import applying_remote_changes

    company = new_company("naive")
    # Like ours, the imported rows must not be pushed back to Connec! (the live-sync
    # outbox would otherwise add a push per record and map each object twice).
    with connec_client_for(company) as client, applying_remote_changes():
        return _naive_import(company, client, page_size, limit)


def _naive_import(company, client, page_size: int, limit: int | None) -> tuple[float, int]:
    from django.contrib.contenttypes.models import ContentType
    from django.db import transaction
    from django.utils.dateparse import parse_datetime

    from maestrano_sync.idmap import TableStatistics
    from maestrano_sync.mappers import ReferenceResolver, connec_id_of
    from maestrano_sync.models import IdMap
    from maestrano_sync.registry import registry
    from maestrano_sync.selectors import local_pks_for

    # The same planner statistics as ours (PostgreSQL; a no-op elsewhere): without them,
    # on a server without autovacuum, every IdMap lookup would read all the company's rows.
    statistics = TableStatistics()
    done = 0
    started = time.perf_counter()
    for entity in registry.import_order():
        mapper = registry.for_entity(entity)
        content_type = ContentType.objects.get_for_model(mapper.model)
        entity_done = 0
        for page in client.iter_pages(entity, page_size=page_size):
            statistics.imported(entity, entity_done)
            for data in page.records:
                if limit is not None and done >= limit:
                    return time.perf_counter() - started, done
                connec_id = connec_id_of(data["id"])
                with transaction.atomic():
                    known = IdMap.objects.filter(
                        company=company, entity=entity, connec_id=connec_id
                    ).first()
                if known is not None:
                    continue
                resolver = ReferenceResolver(
                    local_pks={
                        ref: local_pks_for(company=company, entity=ref, connec_ids=ids)
                        for ref, ids in mapper.referenced_ids(data).items()
                    }
                )
                instance = mapper.model(company=company)
                mapper.to_local(data, instance=instance, references=resolver)
                children = mapper.children_to_local(data, company=company, references=resolver)
                with transaction.atomic():
                    instance.save()
                    for child, objects in children.items():
                        for obj in objects:
                            setattr(obj, child.parent_field, instance)
                            obj.save()
                with transaction.atomic():
                    IdMap.objects.create(
                        company=company,
                        entity=entity,
                        content_type=content_type,
                        object_id=str(instance.pk),
                        connec_id=connec_id,
                        last_pulled_updated_at=parse_datetime(data["updated_at"]),
                    )
                done += 1
                entity_done += 1
    return time.perf_counter() - started, done


def phase_bulk_create(page_size: int) -> tuple[float, float, int]:
    """The same rows (children included) with bulk_create, read from the sandbox database.

    Only the ``bulk_create`` calls are timed: no HTTP, no mapping, no IdMap.
    Returns (wall seconds, CPU seconds of this process, rows written).
    """
    from maestrano_sandbox.connec.clock import format_timestamp
    from maestrano_sandbox.models import ConnecRecord
    from maestrano_sync.mappers import ReferenceResolver
    from maestrano_sync.registry import registry

    company = new_company("bulk_create")
    resolver = ReferenceResolver()
    timed = 0.0
    cpu = 0.0
    written = 0
    for entity in registry.import_order():
        mapper = registry.for_entity(entity)
        records = (
            ConnecRecord.objects.filter(group__uid=GROUP_UID, entity=entity)
            .order_by("updated_at", "id")
            .iterator(chunk_size=page_size)
        )
        batch: list = []

        def write(batch=batch, mapper=mapper, entity=entity) -> tuple[float, float]:
            started, cpu_started = time.perf_counter(), time.process_time()
            mapper.model.objects.bulk_create([instance for _, instance, _ in batch])
            children: dict = {}
            for _, instance, kids in batch:
                for child, objects in kids.items():
                    for obj in objects:
                        setattr(obj, child.parent_field, instance)
                    children.setdefault(child, []).extend(objects)
            for child, objects in children.items():
                child.model.objects.bulk_create(objects)
            elapsed = time.perf_counter() - started, time.process_time() - cpu_started
            for uid, instance, _ in batch:
                resolver.add_local(entity, uid, instance.pk)
            return elapsed

        for record in records:
            data = {
                "id": str(record.uid),
                **record.data,
                "updated_at": format_timestamp(record.updated_at),
            }
            instance = mapper.model(company=company)
            mapper.to_local(data, instance=instance, references=resolver)
            kids = mapper.children_to_local(data, company=company, references=resolver)
            batch.append((str(record.uid), instance, kids))
            if len(batch) >= page_size:
                seconds, cpu_seconds = write()
                timed, cpu = timed + seconds, cpu + cpu_seconds
                written += len(batch)
                batch.clear()
        if batch:
            seconds, cpu_seconds = write()
            timed, cpu = timed + seconds, cpu + cpu_seconds
            written += len(batch)
    return timed, cpu, written


def profile_phases(page_size: int, output: str | None = None) -> None:
    """Developer aid: HTTP-only fetch time, then a cProfile of our import."""
    import cProfile
    import pstats

    from maestrano_integration.connec import connec_client_for
    from maestrano_sync.registry import registry

    company = new_company("fetch")
    started = time.perf_counter()
    with connec_client_for(company) as client:
        count = sum(
            len(page.records)
            for entity in registry.import_order()
            for page in client.iter_pages(entity, page_size=page_size)
        )
    print(f"fetch only: {count} records in {time.perf_counter() - started:.2f}s", file=sys.stderr)
    empty_tables()
    profiler = cProfile.Profile()
    profiler.enable()
    phase_ours(page_size)
    profiler.disable()
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    if output:
        profiler.dump_stats(output)


def run_benchmark(args: argparse.Namespace) -> dict:
    var_dir = harness.setup(db=args.db, pg_name=PG_NAME, prefix="bench-import-")
    from maestrano_sandbox.models import Group, RegisteredApp

    app = RegisteredApp.objects.create(
        api_id=API_ID, api_key=API_KEY, app_host="http://127.0.0.1:9"
    )
    group = Group.objects.create(uid=GROUP_UID, name="Benchmark")
    group.apps.add(app)

    harness.progress(f"Seeding {args.records} records and starting the sandbox...")
    subprocess.run([sys.executable, __file__, "--seed", "--records", str(args.records)], check=True)
    server = harness.Server(
        kind=args.server, script=__file__, var_dir=var_dir, threads=args.server_threads
    )
    ours_runs = harness.Runs()
    naive_runs = harness.Runs()
    bulk_runs = harness.Runs()
    ours_cpu = harness.Runs()
    bulk_cpu = harness.Runs()
    peaks: list[PeakRss] = []
    with server:
        harness.point_presets_at(
            server.url, api_id=API_ID, api_key=API_KEY, connec={"PAGE_SIZE": args.page_size}
        )
        warm_up_sandbox()
        if args.profile:
            profile_phases(args.page_size, args.profile_output)
            return {}
        if args.memory_only:
            empty_tables()
            harness.progress("ours under tracemalloc...")
            peak = phase_memory(args.page_size)
            print(
                f"\nInitial import, {args.db}, {args.records} records: "
                f"tracemalloc peak {peak:.1f} MB"
            )
            return {"records": args.records, "db": args.db, "tracemalloc_peak_mb": round(peak, 1)}
        for attempt in range(1, args.repeat + 1):
            of = f" ({attempt}/{args.repeat})" if args.repeat > 1 else ""
            empty_tables()
            harness.progress(f"ours{of}...")
            seconds, cpu_seconds, rss, imported = phase_ours(args.page_size)
            harness.progress(f"  {seconds:.2f}s (CPU {cpu_seconds:.2f}s)")
            ours_runs.add(seconds)
            ours_cpu.add(cpu_seconds)
            peaks.append(rss)
            empty_tables()
            harness.progress(f"naive{of}...")
            with same_gc_conditions_as_ours():
                seconds, naive_count = phase_naive(args.page_size, args.naive_limit)
            harness.progress(f"  {seconds:.2f}s")
            naive_runs.add(seconds)
            empty_tables()
            harness.progress(f"bulk_create{of}...")
            with same_gc_conditions_as_ours():
                seconds, cpu_seconds, bulk_count = phase_bulk_create(args.page_size)
            harness.progress(f"  {seconds:.2f}s (CPU {cpu_seconds:.2f}s)")
            bulk_runs.add(seconds)
            bulk_cpu.add(cpu_seconds)
        empty_tables()
        harness.progress("ours under tracemalloc (untimed)...")
        tracemalloc_peak = phase_memory(args.page_size)
        empty_tables()

    # Best of the repeats for every phase alike (other processes only ever add time);
    # the medians too, the machine being noisy.
    # Memory: the first run's peak, the process being then in the same state whatever
    # --repeat says (later runs start with what the other phases left in memory).
    ours, naive, bulk = ours_runs.best, naive_runs.best, bulk_runs.best
    rss = peaks[0]
    # Per-record rates, so a naive phase limited to a sample compares fairly.
    ours_rate = ours / imported
    naive_rate = naive / naive_count
    bulk_rate = bulk / bulk_count
    result = {
        "records": imported,
        "db": args.db,
        "ours_seconds": round(ours, 3),
        "naive_seconds": round(naive, 3),
        "naive_records": naive_count,
        "bulk_create_seconds": round(bulk, 3),
        "speedup_vs_naive": round(naive_rate / ours_rate, 2),
        "ratio_vs_bulk_create": round(ours_rate / bulk_rate, 2),
        "peak_rss_mb": round(rss.peak_mb, 1),
        "rss_before_import_mb": round(rss.start_mb, 1),
        "tracemalloc_peak_mb": round(tracemalloc_peak, 1),
        "repeat": args.repeat,
        "ours_seconds_median": round(ours_runs.median, 3),
        "bulk_create_seconds_median": round(bulk_runs.median, 3),
        "ratio_vs_bulk_create_median": round(
            (ours_runs.median / imported) / (bulk_runs.median / bulk_count), 2
        ),
        "server": args.server,
        # This process's CPU (the importer and its prefetch thread; SQLite's work, being
        # in-process, included; not the sandbox server's nor PostgreSQL's): moves less
        # with the load than the wall times.
        "ours_cpu_seconds": round(ours_cpu.best, 3),
        "bulk_create_cpu_seconds": round(bulk_cpu.best, 3),
        "ratio_cpu": round((ours_cpu.best / imported) / (bulk_cpu.best / bulk_count), 2),
    }
    rows = [
        ("ours (HTTP + bulk, per page)", ours_runs, imported),
        ("naive (per record, 3 transactions)", naive_runs, naive_count),
        ("bare bulk_create (no HTTP)", bulk_runs, bulk_count),
    ]
    best = f", best of {args.repeat} runs" if args.repeat > 1 else ""
    print(f"\nInitial import, {args.db}, {imported} records, page size {args.page_size}{best}")
    print(f"{'phase':<38}{'records':>9}{'seconds':>10}{'µs/record':>11}{'median s':>10}")
    for name, runs, count in rows:
        print(
            f"{name:<38}{count:>9}{runs.best:>10.2f}{runs.best / count * 1e6:>11.0f}"
            f"{runs.median:>10.2f}"
        )
    print(
        f"speedup vs naive: {result['speedup_vs_naive']}x (target >= 10x); "
        f"ours / bulk_create: {result['ratio_vs_bulk_create']}x "
        f"(median {result['ratio_vs_bulk_create_median']}x; target <= 2x); "
        f"peak RSS during our import: {result['peak_rss_mb']} MB "
        f"({result['rss_before_import_mb']} MB before it); tracemalloc peak of our import: "
        f"{result['tracemalloc_peak_mb']} MB; sandbox server: {server.describe()}; "
        f"CPU of this process, ours / bulk_create: {result['ratio_cpu']}x"
    )
    return result


def main() -> None:
    parser = harness.parser(__doc__, repeat=1, server="gunicorn")
    parser.add_argument("--page-size", type=int, default=500)
    parser.add_argument(
        "--naive-limit",
        type=int,
        default=None,
        help="Stop the naive phase after this many records (rates are per record)",
    )
    parser.add_argument("--profile", action="store_true", help="Profile our import instead")
    parser.add_argument(
        "--profile-output", help="with --profile: also write the cProfile stats to this file"
    )
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="Only the tracemalloc peak of our import (memory from 10k to 100k records)",
    )
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        harness.serve_runserver(args.serve)
        return
    if args.seed:
        seed(args.records)
        return
    result = run_benchmark(args)
    if result:
        harness.emit(result)


if __name__ == "__main__":
    main()
