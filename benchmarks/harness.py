"""What every benchmark shares: arguments, fresh databases, the served site, timing, output.

A benchmark script builds its parser with :func:`parser`, calls :func:`setup`
(temporary directory, environment, fresh SQLite files or PostgreSQL databases,
Django, migrations; :func:`setup_webhook` for the benchmarks of the notifications
webhook, with its caller's credentials, throttle, broker and company), starts the
site with :class:`Server` when it needs HTTP, keeps the times of its repeated runs
in :class:`Runs` (best and median), prints its table with :func:`print_table` and
ends with :func:`emit` (one JSON line, always last).

Servers (``--server``): ``gunicorn`` is the production recipe of
``config/gunicorn.py`` (gthread workers, persistent database connections with
health checks, see ``docs/deploy.md``); ``runserver`` is Django's development
server, a thread and a database connection per request.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_SERVER = "postgres://postgres@127.0.0.1:5432"
SERVERS = ("gunicorn", "runserver")
GUNICORN_CONFIG = ROOT / "config" / "gunicorn.py"


# --- arguments ---------------------------------------------------------------------------


def parser(
    doc: str | None,
    *,
    records: int | None = 10_000,
    repeat: int | None = 1,
    server: str | None = None,
) -> argparse.ArgumentParser:
    """The common options: ``--records`` and ``--repeat`` (unless ``None``), ``--db`` and,
    with ``server`` (the default kind), ``--server`` and ``--server-threads``."""
    result = argparse.ArgumentParser(description=(doc or "").split("\n")[0])
    if records is not None:
        result.add_argument("--records", type=int, default=records)
    result.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    if repeat is not None:
        result.add_argument(
            "--repeat",
            type=int,
            default=repeat,
            help="run the measured phases N times; best and median reported (noisy machines)",
        )
    if server is not None:
        result.add_argument(
            "--server",
            choices=SERVERS,
            default=server,
            help="gunicorn: the production recipe (config/gunicorn.py); "
            "runserver: Django's thread-per-request server, a connection per request",
        )
        result.add_argument(
            "--server-threads",
            type=int,
            default=0,
            help="threads per gunicorn worker (0: the recipe's default); with runserver, "
            "N > 0 serves from a pool of N threads keeping their connections",
        )
    result.add_argument("--serve", help=argparse.SUPPRESS)
    return result


# --- databases and Django ----------------------------------------------------------------


#: PostgreSQL's prepared statements in the production environment (docs/deploy.md):
#: every benchmark on PostgreSQL runs with them unless ``DATABASE_PREPARE_THRESHOLD`` is
#: set (empty: none).
RECIPE_PREPARE_THRESHOLD = "5"


def configure_environment(
    *, db: str, var_dir: str, pg_name: str, extra: dict[str, str] | None = None
) -> None:
    os.environ["VAR_DIR"] = var_dir
    os.environ["LOG_LEVEL"] = "ERROR"
    # DEBUG keeps every SQL query in memory (connection.queries): off, as in production.
    os.environ["DEBUG"] = "false"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    # The sandbox is the benchmarks' platform: mounted on request only, and forced since
    # DEBUG is off (see config/settings.py and docs/deploy.md).
    os.environ["SANDBOX_ENABLED"] = "true"
    os.environ["SANDBOX_FORCE"] = "true"
    os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "k" * 40)
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    for name in ("SANDBOX_DATABASE_URL", "CELERY_BROKER_URL", "DATABASE_CONN_MAX_AGE"):
        os.environ.pop(name, None)
    if db == "sqlite":
        os.environ["DATABASE_URL"] = f"sqlite:///{var_dir}/bench.sqlite3"
    else:
        os.environ["DATABASE_URL"] = f"{PG_SERVER}/{pg_name}"
        # The production environment's prepared statements (docs/deploy.md), unless set.
        os.environ.setdefault("DATABASE_PREPARE_THRESHOLD", RECIPE_PREPARE_THRESHOLD)
    os.environ.update(extra or {})


def recreate_postgres_databases(pg_name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as connection:
        for name in (pg_name, f"{pg_name}_sandbox"):
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')


def setup(*, db: str, pg_name: str, prefix: str, extra_env: dict[str, str] | None = None) -> str:
    """Fresh databases (app and sandbox), Django set up and migrated; the temporary directory."""
    var_dir = tempfile.mkdtemp(prefix=prefix)
    # Two runs of one benchmark on one server: BENCH_PG_SUFFIX keeps their databases apart.
    pg_name += os.environ.get("BENCH_PG_SUFFIX", "")
    configure_environment(db=db, var_dir=var_dir, pg_name=pg_name, extra=extra_env)
    if db == "postgresql":
        recreate_postgres_databases(pg_name)
    import django

    django.setup()
    from django.core.management import call_command

    for alias in ("default", "sandbox"):
        call_command("migrate", database=alias, verbosity=0)
    return var_dir


def point_presets_at(
    url: str,
    *,
    api_id: str,
    api_key: str,
    sync: dict | None = None,
    connec: dict | None = None,
    throttle_rates: dict[str, str | None] | None = None,
) -> None:
    """This process's Maestrano settings: the platform (sandbox) served at ``url``;
    ``throttle_rates``: ``THROTTLE_RATES`` (else the defaults)."""
    from django.conf import settings

    from maestrano_integration.conf import maestrano_settings

    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {
            "maestrano": {
                "app": {"host": url},
                "api": {"id": api_id, "key": api_key, "host": f"{url}/sandbox"},
                "connec": {"host": f"{url}/sandbox/connec", "timeout": 120},
            }
        },
        "SYNC": sync or {},
        "CONNEC": connec or {},
        **({"THROTTLE_RATES": throttle_rates} if throttle_rates is not None else {}),
    }
    maestrano_settings.reload()


# --- the webhook's caller ----------------------------------------------------------------

#: The app's credentials (its preset's, and the sandbox's registered app) and its company's
#: group, for the benchmarks of Connec!'s notifications webhook (``sync.py``, ``webhook_cpu.py``).
WEBHOOK_API_ID = "bench-sync-app"
WEBHOOK_API_KEY = "bench-sync-key-" + "x" * 16
WEBHOOK_GROUP_UID = "cld-bench-sync"
WEBHOOK_PATH = "/maestrano/connec/notifications"
#: The webhook's throttle (``MAESTRANO["THROTTLE_RATES"]``), kept on (its cost is part of
#: every request): the default, 1200/minute per preset (per process with the example
#: project's local-memory cache), would refuse most of the ~4,000 requests ``sync.py``
#: sends in half a minute.
WEBHOOK_THROTTLE_RATES = {"maestrano_notifications": "60000/minute"}


@dataclass(frozen=True)
class WebhookSetup:
    """What :func:`setup_webhook` made: the temporary directory, the Celery broker the
    webhook publishes to, and the company (``maestrano_accounts.models.Company``) of
    :data:`WEBHOOK_GROUP_UID`."""

    var_dir: str
    broker: str
    company: Any


def setup_webhook(
    *, db: str, pg_name: str, prefix: str, extra_env: dict[str, str] | None = None
) -> WebhookSetup:
    """:func:`setup` for a benchmark of the webhook: the app's credentials
    (:data:`WEBHOOK_API_ID`) and throttle (:data:`WEBHOOK_THROTTLE_RATES`) in the
    environment (so a served app has them too), Celery publishing to a flushed Redis
    database (:func:`broker_url`), the company of :data:`WEBHOOK_GROUP_UID` created."""
    broker = broker_url()
    var_dir = setup(
        db=db,
        pg_name=pg_name,
        prefix=prefix,
        extra_env={
            "MAESTRANO_API_ID": WEBHOOK_API_ID,
            "MAESTRANO_API_KEY": WEBHOOK_API_KEY,
            "MAESTRANO_THROTTLE_RATES": json.dumps(WEBHOOK_THROTTLE_RATES),
            "CELERY_BROKER_URL": broker,
            **(extra_env or {}),
        },
    )
    from maestrano_accounts.models import Company

    company = Company.objects.create(preset="maestrano", group_uid=WEBHOOK_GROUP_UID, name="Bench")
    return WebhookSetup(var_dir=var_dir, broker=broker, company=company)


def point_webhook_presets_at(url: str, *, sync: dict | None = None) -> None:
    """:func:`point_presets_at` with the webhook's app credentials and throttle."""
    point_presets_at(
        url,
        api_id=WEBHOOK_API_ID,
        api_key=WEBHOOK_API_KEY,
        sync=sync,
        throttle_rates=WEBHOOK_THROTTLE_RATES,
    )


def webhook_authorization() -> str:
    """The ``Authorization`` header of the app's webhook calls (HTTP basic)."""
    credentials = f"{WEBHOOK_API_ID}:{WEBHOOK_API_KEY}".encode()
    return "Basic " + base64.b64encode(credentials).decode("ascii")


def notification(group_uid: str, size: int) -> dict:
    """A Connec! notification of ``size`` new organizations of ``group_uid``."""
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


# --- the served site ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_runserver(port_file: str) -> None:
    """Child process of ``--server runserver``: Django's thread-per-request server, or
    (``BENCH_SERVER_THREADS``) a fixed pool of threads keeping their connections."""
    import django

    django.setup()
    from concurrent.futures import ThreadPoolExecutor

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


@dataclass
class Server:
    """The whole site (app and sandbox) served from a child process on 127.0.0.1.

    ``script`` is the benchmark's own file: with ``runserver`` it is started again
    with ``--serve <port file>`` and must then call :func:`serve_runserver`.
    """

    kind: str
    script: str
    var_dir: str
    threads: int = 0
    env: dict[str, str] = field(default_factory=dict)
    startup_timeout: float = 120.0
    url: str = ""
    _process: subprocess.Popen | None = None

    def describe(self) -> str:
        if self.kind == "gunicorn":
            threads = self.threads or os.environ.get("GUNICORN_THREADS") or 8
            return f"gunicorn gthread ({self.workers} workers x {threads} threads), persistent"
        if self.threads:
            return f"runserver-like {self.threads}-thread pool, persistent connections"
        return "runserver (thread per request, connection per request)"

    @property
    def workers(self) -> int:
        # As the served recipe reads it: this process's environment, then ``env``.
        return int({**os.environ, **self.env}.get("WEB_CONCURRENCY") or os.cpu_count() or 1)

    def __enter__(self) -> Server:
        # Stopped with SIGTERM, the benchmark still stops its server (``__exit__``).
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        env = {**os.environ, **self.env}
        if self.kind == "gunicorn":
            port = free_port()
            env["GUNICORN_ACCESS_LOG"] = ""  # nothing: the benchmark's output stays readable
            env.setdefault("GUNICORN_THREADS", str(self.threads or 8))
            command = [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(GUNICORN_CONFIG),
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
                "config.wsgi",
            ]
            self._process = subprocess.Popen(command, env=env, cwd=ROOT)
            self.url = f"http://127.0.0.1:{port}"
            self._wait(lambda: self._answers())
        else:
            port_file = Path(self.var_dir) / "port"
            port_file.unlink(missing_ok=True)
            env["BENCH_SERVER_THREADS"] = str(self.threads)
            self._process = subprocess.Popen(
                [sys.executable, self.script, "--serve", str(port_file)], env=env
            )
            self._wait(port_file.exists)
            self.url = f"http://127.0.0.1:{int(port_file.read_text())}"
        return self

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server's processes (workers included): on a busy
        machine, a steadier measure of the server's own cost than wall time."""
        import psutil

        assert self._process is not None
        root = psutil.Process(self._process.pid)
        total = 0.0
        for process in (root, *root.children(recursive=True)):
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", int(self.url.rsplit(":", 1)[1])), 0.5):
                return True
        except OSError:
            return False

    def _wait(self, ready: Callable[[], bool]) -> None:
        deadline = time.time() + self.startup_timeout
        assert self._process is not None
        while not ready():
            if self._process.poll() is not None or time.time() > deadline:
                raise SystemExit(f"The {self.kind} server did not start")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)


def bench_redis_url(default_db: int) -> str:
    """The Redis database a benchmark may flush: ``BENCH_REDIS_URL`` when set, else ``default_db``.

    The test suite's worker tests use databases 1 to 15 (``tests/helpers/worker.py``);
    two benchmarks, or a benchmark and a test run, sharing one Redis server set
    ``BENCH_REDIS_URL`` apart so that one's flush does not drop the other's keys.
    """
    return os.environ.get("BENCH_REDIS_URL") or f"redis://127.0.0.1:6379/{default_db}"


def broker_url(redis_url: str | None = None) -> str:
    """A flushed Redis database for Celery to publish to, or ``memory://`` when Redis is down."""
    redis_url = redis_url or bench_redis_url(15)
    try:
        import redis

        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
        client.flushdb()
        client.close()
        return redis_url
    except Exception:
        return "memory://"


# --- timing and output -------------------------------------------------------------------


@dataclass
class Runs:
    """The values of one measure over the repeats: best (``min`` or ``max``) and median."""

    higher_is_better: bool = False
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> float:
        self.values.append(value)
        return value

    @property
    def best(self) -> float:
        return max(self.values) if self.higher_is_better else min(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """``with timed() as t: ...`` then ``t["seconds"]`` (wall) and ``t["cpu"]`` (this process)."""
    result: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield result
    finally:
        result["seconds"] = time.perf_counter() - wall
        result["cpu"] = time.process_time() - cpu


@contextmanager
def counted_queries(connection: Any) -> Iterator[dict[str, int]]:
    """``with counted_queries(connection) as c: ...`` then ``c["queries"]``: the statements
    the connection ran (an ``executemany`` once), counted by an execute wrapper.

    Not ``CaptureQueriesContext``, inside a timed phase: it turns the debug cursor on,
    which renders every statement with its parameters (``last_executed_query``), a sixth
    of a push's time for statements of a hundred rows, none of it the push's own.
    """
    counter = {"queries": 0}

    def count(execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        counter["queries"] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield counter


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def ratio(ours: float, other: float, digits: int = 3) -> str:
    """``ours / other`` as ``0.010x``, or ``-`` when ``other`` is zero."""
    return f"{ours / other:.{digits}f}x" if other else "-"


def print_table(
    title: str, columns: Sequence[tuple[str, int]], rows: Sequence[Sequence[Any]]
) -> None:
    """A title, a header and rows; ``columns`` are (header, width): the first column is
    left-aligned, the others right-aligned; cells are printed as given (format them)."""
    print(f"\n{title}" if title else "")
    (first, first_width), *rest = columns
    print(f"{first:<{first_width}}" + "".join(f"{h:>{w}}" for h, w in rest))
    for row in rows:
        cell, *cells = row
        line = "".join(f"{c!s:>{w}}" for c, (_, w) in zip(cells, rest, strict=True))
        print(f"{cell!s:<{first_width}}{line}")


def emit(result: dict[str, Any]) -> None:
    """The benchmark's last line: one JSON object."""
    print(json.dumps(result), flush=True)
