"""Live sync benchmark: outbox push vs a naive per-record push, notification ingest and apply.

    python benchmarks/sync.py --records 10000 --db postgresql
    python benchmarks/sync.py --records 2000 --db sqlite

Sets up fresh databases (SQLite files in a temporary directory, or PostgreSQL
databases ``bench_sync`` and ``bench_sync_sandbox`` on 127.0.0.1) and serves
the whole site (our webhook and the sandbox's Connec!) from a child process on
127.0.0.1, with Celery publishing to Redis (``memory://`` when Redis is down)
and no worker, so the webhook's cost is measured alone. The server is Django's
thread-per-request one, which opens a database connection per request (the
default ``CONN_MAX_AGE = 0``); ``--server-threads N`` serves from a pool of N
threads that keep their connections, as a production server with persistent
connections would (on PostgreSQL, starting a backend per request dominates the
webhook's latency). Then, in one run:

* push, ours: N changed records (20% organizations, 80% people referencing
  them) drained from the outbox: HTTP requests and SQL queries per record;
* push, ours, updates: every record changed once more and drained (the PUT
  path, with known Connec! ids);
* push, naive: one POST per record and one IdMap lookup per reference, like
  the historical connectors (on ``--naive-records`` records; rates per record),
  measured in the same run; the table shows ours / naive per record;
* ingest: notifications of 50 records POSTed to the webhook from 4 threads as
  fast as it answers (records/s), then single-record notifications at a fixed
  rate (``--rate``, default 100 req/s) for p50/p99 latency;
* apply: the stored notifications applied by ``process_inbox`` (records/s).

SQL queries are those of the drain (the pushing process); the outbox row
itself is one INSERT in the caller's transaction per save, not counted here
(nor in the naive figure, which has no outbox).

Prints a table; the last line is one JSON object with exactly the keys
``requests_per_record``, ``queries_per_record`` (the push of new records),
``ingest_records_per_s``, ``webhook_p99_ms`` and ``apply_records_per_s``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_SERVER = "postgres://postgres@127.0.0.1:5432"
PG_NAME = "bench_sync"
API_ID = "bench-sync-app"
API_KEY = "bench-sync-key-" + "x" * 16
GROUP_UID = "cld-bench-sync"
NAIVE_GROUP_UID = "cld-bench-naive"
REDIS_URL = "redis://127.0.0.1:6379/15"
NOTIFICATION_SIZE = 50


def configure_environment(db: str, var_dir: str) -> None:
    os.environ["VAR_DIR"] = var_dir
    os.environ["LOG_LEVEL"] = "ERROR"
    # As in production: DEBUG would log every SQL query in memory (and cap the count).
    os.environ["DEBUG"] = "false"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    # The sandbox is the benchmark's platform (mounted on request only, see config/settings.py).
    os.environ["SANDBOX_ENABLED"] = "true"
    os.environ["SANDBOX_FORCE"] = "true"  # DEBUG is off
    os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "k" * 40)
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    os.environ.pop("SANDBOX_DATABASE_URL", None)
    os.environ.pop("CELERY_BROKER_URL", None)
    os.environ["MAESTRANO_API_ID"] = API_ID
    os.environ["MAESTRANO_API_KEY"] = API_KEY
    if db == "sqlite":
        os.environ["DATABASE_URL"] = f"sqlite:///{var_dir}/bench.sqlite3"
    else:
        os.environ["DATABASE_URL"] = f"{PG_SERVER}/{PG_NAME}"


def recreate_postgres_databases() -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as connection:
        for name in (PG_NAME, f"{PG_NAME}_sandbox"):
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')


def broker_url() -> str:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.flushdb()
        client.close()
        return REDIS_URL
    except Exception:
        return "memory://"


# --- child process: the site ------------------------------------------------------------


def serve(port_file: str) -> None:
    """Serve the site: Django's thread-per-request server, or (``BENCH_SERVER_THREADS``)
    a fixed pool of threads that keep their database connections between requests,
    as a production server (gunicorn ``gthread``) with ``CONN_MAX_AGE`` would."""
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler, WSGIServer
    from django.db import connections

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    class PooledWSGIServer(WSGIServer):
        """Requests handled by a fixed thread pool (one request per TCP connection)."""

        def __init__(self, *args: Any, threads: int, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.pool = ThreadPoolExecutor(max_workers=threads)

        def process_request(self, request: Any, client_address: Any) -> None:
            self.pool.submit(self._handle, request, client_address)

        def _handle(self, request: Any, client_address: Any) -> None:
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    threads = int(os.environ.get("BENCH_SERVER_THREADS") or 0)
    if threads:
        for alias in connections.settings:
            connections.settings[alias]["CONN_MAX_AGE"] = 600
        server = PooledWSGIServer(
            ("127.0.0.1", 0), QuietHandler, allow_reuse_address=True, threads=threads
        )
    else:
        server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=True)
    server.set_app(WSGIHandler())
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


# --- parent process ----------------------------------------------------------------------


def create_local_records(company, count: int) -> list:
    """``count`` organizations and people, saved one by one (one outbox row each)."""
    from django.db import transaction

    from crm.models import Organization, Person

    organizations = max(1, count // 5)
    orgs = []
    with transaction.atomic():
        for n in range(organizations):
            orgs.append(
                Organization.objects.create(
                    company=company,
                    name=f"Organization {n}",
                    email=f"org{n}@example.com",
                    phone=f"+61 2 9000 {n:04d}",
                    address_line1=f"{n} George St",
                    city="Sydney",
                    postal_code="2000",
                    country="AU",
                )
            )
        for n in range(count - organizations):
            Person.objects.create(
                company=company,
                title="Mx",
                first_name=f"First{n}",
                last_name=f"Last{n}",
                job_title="Engineer",
                email=f"person{n}@example.com",
                organization=orgs[n % len(orgs)],
            )
    return orgs


def counting_client(company):
    """A Connec! client whose HTTP requests (transport retries included) are counted."""
    from maestrano_integration.connec import ConnecClient

    client = ConnecClient(preset=None, group_id=company.group_uid, external_ids=True)
    counter = {"requests": 0, "http_seconds": 0.0}

    def count(response, *args, **kwargs):
        retries = getattr(response.raw, "retries", None)
        counter["requests"] += 1 + len(retries.history if retries is not None else ())
        counter["http_seconds"] += response.elapsed.total_seconds()
        return response

    for session in (client._session, client._session_for("POST", idempotent=True)):
        session.hooks["response"].append(count)
    return client, counter


def phase_push(company, records: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from sync.models import IdMap, OutboxEntry
    from sync.push import drain_outbox

    create_local_records(company, records)
    client, counter = counting_client(company)
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = drain_outbox(company=company, client=client)
        elapsed = time.perf_counter() - started
    client.close()
    pending = OutboxEntry.objects.filter(company=company).exclude(status="done").count()
    mapped = IdMap.objects.filter(company=company).count()
    assert pending == 0 and mapped == records, (pending, mapped, result)
    return {
        "seconds": elapsed,
        "records": records,
        "requests": counter["requests"],
        "queries": len(queries),
        "http_seconds": counter["http_seconds"],
    }


def phase_push_updates(company) -> dict:
    """Every pushed record changed once more and drained: the update (PUT) path."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from crm.models import Organization, Person
    from sync.models import OutboxEntry
    from sync.push import drain_outbox

    records = 0
    with transaction.atomic():
        for model, field in ((Organization, "name"), (Person, "last_name")):
            for obj in model.objects.filter(company=company).order_by("pk").iterator():
                setattr(obj, field, f"{getattr(obj, field)} (changed)")
                obj.save()
                records += 1
    client, counter = counting_client(company)
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = drain_outbox(company=company, client=client)
        elapsed = time.perf_counter() - started
    client.close()
    pending = OutboxEntry.objects.filter(company=company).exclude(status="done").count()
    assert pending == 0 and result.done == records, (pending, result)
    return {
        "seconds": elapsed,
        "records": records,
        "requests": counter["requests"],
        "queries": len(queries),
        "http_seconds": counter["http_seconds"],
    }


def phase_naive_push(company, records: int) -> dict:
    """Per record: a payload with one IdMap query per reference, one POST, one IdMap insert."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from crm.models import Organization, Person
    from sync.mappers import ReferenceResolver, connec_id_of
    from sync.models import IdMap
    from sync.push import blank_to_null
    from sync.registry import registry

    create_local_records(company, records)
    client, counter = counting_client(company)
    done = 0
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        for model in (Organization, Person):
            mapper = registry.for_model(model)
            content_type = ContentType.objects.get_for_model(model)
            for obj in model.objects.filter(company=company).order_by("pk").iterator():
                references = {}
                for local_name, (_, entity) in mapper.references.items():
                    value = getattr(obj, obj._meta.get_field(local_name).attname)
                    if value is not None:
                        target = IdMap.objects.filter(
                            company=company,
                            content_type=ContentType.objects.get_for_model(
                                registry.for_entity(entity).model
                            ),
                            object_id=str(value),
                        ).first()
                        if target is not None:
                            references[entity] = {str(value): target.connec_id}
                data = blank_to_null(
                    mapper.to_connec(obj, references=ReferenceResolver(connec_ids=references))
                )
                created = client.create(mapper.entity, data)
                IdMap.objects.create(
                    company=company,
                    entity=mapper.entity,
                    content_type=content_type,
                    object_id=str(obj.pk),
                    connec_id=connec_id_of(created["id"]),
                )
                done += 1
        elapsed = time.perf_counter() - started
    client.close()
    return {
        "seconds": elapsed,
        "records": done,
        "requests": counter["requests"],
        "queries": len(queries),
        "http_seconds": counter["http_seconds"],
    }


def notification(group_uid: str, size: int) -> dict:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000000Z"
    return {
        "organizations": [
            {
                "id": str(uuid.uuid4()),
                "group_id": group_uid,
                "channel_id": "org-bench",
                "resource_type": "organizations",
                "name": f"Notified {n}",
                "status": "ACTIVE",
                "is_customer": True,
                "is_supplier": False,
                "email": {"address": f"n{n}@example.com"},
                "address": {"billing": {"city": "Sydney", "country": "AU"}},
                "created_at": stamp,
                "updated_at": stamp,
            }
            for n in range(size)
        ]
    }


def phase_ingest(url: str, records: int) -> dict:
    import requests

    bodies = [
        json.dumps(notification(GROUP_UID, NOTIFICATION_SIZE))
        for _ in range(max(1, records // NOTIFICATION_SIZE))
    ]
    local = threading.local()

    def post(body: str) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.auth = (API_ID, API_KEY)
        response = session.post(
            url, data=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        assert response.status_code == 202, response.text
        return NOTIFICATION_SIZE

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        ingested = sum(pool.map(post, bodies))
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "records": ingested}


def phase_latency(url: str, rate: float, seconds: float) -> dict:
    """Open loop: one single-record notification every 1/rate s, latency of each."""
    import requests

    total = int(rate * seconds)
    bodies = [json.dumps(notification(GROUP_UID, 1)) for _ in range(total)]
    latencies: list[float] = []
    lock = threading.Lock()
    local = threading.local()

    def post(index: int, due: float) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.auth = (API_ID, API_KEY)
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent = time.perf_counter()
        response = session.post(
            url, data=bodies[index], headers={"Content-Type": "application/json"}, timeout=30
        )
        took = time.perf_counter() - sent
        assert response.status_code == 202, response.text
        with lock:
            latencies.append(took)

    start = time.perf_counter() + 0.2
    with ThreadPoolExecutor(max_workers=32) as pool:
        for index in range(total):
            pool.submit(post, index, start + index / rate)
    latencies.sort()
    return {
        "requests": total,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def phase_apply(company) -> dict:
    from sync.inbox import process_inbox
    from sync.models import InboxEntry

    pending = InboxEntry.objects.filter(company=company, status="pending")
    records = sum(pending.values_list("record_count", flat=True))
    started = time.perf_counter()
    run = process_inbox(company=company)
    elapsed = time.perf_counter() - started
    assert run.failed == 0 and run.result.created == records, (run, records)
    return {"seconds": elapsed, "records": records}


def run_benchmark(args: argparse.Namespace) -> dict:
    var_dir = tempfile.mkdtemp(prefix="bench-sync-")
    configure_environment(args.db, var_dir)
    if args.db == "postgresql":
        recreate_postgres_databases()
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from accounts.models import Company
    from maestrano_integration.conf import maestrano_settings
    from sandbox.models import Group, RegisteredApp

    for alias in ("default", "sandbox"):
        call_command("migrate", database=alias, verbosity=0)
    app = RegisteredApp.objects.create(
        api_id=API_ID, api_key=API_KEY, app_host="http://127.0.0.1:9", subscriptions={"none": True}
    )
    for uid in (GROUP_UID, NAIVE_GROUP_UID):
        Group.objects.create(uid=uid, name=uid).apps.add(app)
    company = Company.objects.create(preset="maestrano", group_uid=GROUP_UID, name="Bench")
    naive_company = Company.objects.create(
        preset="maestrano", group_uid=NAIVE_GROUP_UID, name="Naive"
    )

    port_file = Path(var_dir) / "port"
    broker = broker_url()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port_file)],
        env={
            **os.environ,
            "CELERY_BROKER_URL": broker,
            "BENCH_SERVER_THREADS": str(args.server_threads),
        },
    )
    try:
        deadline = time.time() + 120
        while not port_file.exists():
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit("The server did not start")
            time.sleep(0.1)
        url = f"http://127.0.0.1:{int(port_file.read_text())}"
        settings.MAESTRANO = {
            "DEFAULT_PRESET": "maestrano",
            "PRESETS": {
                "maestrano": {
                    "app": {"host": url},
                    "api": {"id": API_ID, "key": API_KEY, "host": f"{url}/sandbox"},
                    "connec": {"host": f"{url}/sandbox/connec", "timeout": 120},
                }
            },
            "SYNC": {
                "PUSH_ON_COMMIT": False,
                "BATCH_SIZE": args.batch_size,
                "IMPORT_ON_COMPANY_CREATED": False,
            },
        }
        maestrano_settings.reload()
        print(f"push of {args.records} records...", file=sys.stderr)
        push = phase_push(company, args.records)
        print(f"push of {args.records} updated records...", file=sys.stderr)
        updates = phase_push_updates(company)
        naive_records = min(args.naive_records, args.records)
        print(f"naive push of {naive_records} records...", file=sys.stderr)
        naive = phase_naive_push(naive_company, naive_records)
        webhook = f"{url}/maestrano/connec/notifications"
        print(f"ingest of {args.records} notified records...", file=sys.stderr)
        ingest = phase_ingest(webhook, args.records)
        print(f"webhook latency at {args.rate:g} req/s...", file=sys.stderr)
        latency = phase_latency(webhook, args.rate, args.latency_seconds)
        print("apply...", file=sys.stderr)
        applied = phase_apply(company)
    finally:
        server.terminate()
        server.wait(timeout=30)

    result = {
        "requests_per_record": round(push["requests"] / push["records"], 4),
        "queries_per_record": round(push["queries"] / push["records"], 3),
        "ingest_records_per_s": round(ingest["records"] / ingest["seconds"], 1),
        "webhook_p99_ms": round(latency["p99_ms"], 2),
        "apply_records_per_s": round(applied["records"] / applied["seconds"], 1),
    }
    rows = [
        ("push, ours (outbox + batch)", push),
        ("push, ours, updates (PUT)", updates),
        ("push, naive (1 POST per record)", naive),
    ]
    server_kind = (
        f"{args.server_threads}-thread pool, persistent connections"
        if args.server_threads
        else "thread per request, connection per request"
    )
    print(
        f"\nLive sync, {args.db}, {args.records} records, batch size {args.batch_size}, "
        f"broker {broker.split('://')[0]}, server: {server_kind}"
    )
    print(
        f"{'push':<34}{'records':>9}{'seconds':>9}{'in HTTP':>9}{'req/rec':>9}"
        f"{'SQL/rec':>9}{'rec/s':>9}{'ms/rec*':>9}"
    )

    def local_ms(row: dict) -> float:
        return (row["seconds"] - row["http_seconds"]) / row["records"] * 1000

    for name, row in rows:
        print(
            f"{name:<34}{row['records']:>9}{row['seconds']:>9.2f}{row['http_seconds']:>9.2f}"
            f"{row['requests'] / row['records']:>9.3f}{row['queries'] / row['records']:>9.2f}"
            f"{row['records'] / row['seconds']:>9.0f}{local_ms(row):>9.2f}"
        )
    ours_rate = push["records"] / push["seconds"]
    naive_rate = naive["records"] / naive["seconds"]
    naive_requests = naive["requests"] / naive["records"]
    naive_queries = naive["queries"] / naive["records"]
    print(
        f"{'ours / naive (per record)':<34}{'':>9}{'':>9}{'':>9}"
        f"{ratio(result['requests_per_record'], naive_requests):>9}"
        f"{ratio(result['queries_per_record'], naive_queries):>9}"
        f"{ratio(ours_rate, naive_rate):>9}{ratio(local_ms(push), local_ms(naive)):>9}"
    )
    print("* ms/rec: time per record outside HTTP calls (ours; Connec!'s time excluded)")
    print(f"{'notifications':<34}{'records':>9}{'seconds':>9}{'rec/s':>9}")
    print(
        f"{'ingest (webhook, 50/notification)':<34}{ingest['records']:>9}"
        f"{ingest['seconds']:>9.2f}{result['ingest_records_per_s']:>9.0f}"
    )
    print(
        f"{'apply (process_inbox)':<34}{applied['records']:>9}"
        f"{applied['seconds']:>9.2f}{result['apply_records_per_s']:>9.0f}"
    )
    print(
        f"webhook latency at {args.rate:g} req/s ({latency['requests']} requests): "
        f"p50 {latency['p50_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms"
    )
    checks = [
        ("requests/record <= 0.02", result["requests_per_record"] <= 0.02),
        ("queries/record <= 3", result["queries_per_record"] <= 3),
        ("ingest >= 1000 records/s", result["ingest_records_per_s"] >= 1000),
        (f"webhook p99 < 50 ms at {args.rate:g} req/s", result["webhook_p99_ms"] < 50),
    ]
    print(
        "targets (set for PostgreSQL): "
        + ", ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in checks)
    )
    return result


def ratio(ours: float, naive: float) -> str:
    """``ours / naive`` as ``0.010x``: below 1 is fewer (requests, queries), above is faster."""
    return f"{ours / naive:.3f}x" if naive else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--naive-records", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="webhook requests per second")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument(
        "--server-threads",
        type=int,
        default=0,
        help="0: Django's thread-per-request server, a database connection per request "
        "(the default settings); N: a pool of N threads keeping their connections",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    result = run_benchmark(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
