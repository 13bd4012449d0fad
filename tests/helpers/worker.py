"""A real Celery worker (``celery -A config worker``) on Redis, on the test databases.

Use the ``real_worker`` fixture (tests marked ``@pytest.mark.worker``): it
points the pytest process's ``.delay`` at the worker's broker, starts the
worker as a subprocess with the same databases and ``MAESTRANO`` settings,
and can kill it (SIGKILL) and start it again mid-test.

Redis: ``redis://127.0.0.1:6379/<n>``, ``n`` derived from
``TEST_DATABASE_SUFFIX`` (or the pid), and every fixture's keys under a prefix of
its own, so parallel runs never take each other's tasks. When Redis is
unreachable the test fails on CI (``CI=true``) and is skipped locally.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 60.0


def redis_db_number() -> int:
    key = os.environ.get("TEST_DATABASE_SUFFIX") or str(os.getpid())
    return 1 + zlib.crc32(key.encode()) % 15


def redis_url() -> str:
    host = os.environ.get("TEST_REDIS_HOST", "127.0.0.1")
    return f"redis://{host}:6379/{redis_db_number()}"


def require_redis(url: str) -> None:
    """Check that Redis answers; fail on CI, skip locally, when it is down."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError as error:
        message = f"Redis is not reachable at {url}: {error}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)


def database_url(alias: str) -> str:
    """A URL for the *test* database of ``alias`` (as the pytest process uses it)."""
    from django.db import connections

    settings_dict = connections[alias].settings_dict
    engine = settings_dict["ENGINE"]
    name = settings_dict["NAME"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{name}"
    user = quote(settings_dict.get("USER") or "")
    password = quote(settings_dict.get("PASSWORD") or "")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{name}"


class WorkerProcess:
    """One ``celery worker`` subprocess; ``start()``, ``kill()``, ``stop()``."""

    def __init__(
        self,
        *,
        broker_url: str,
        maestrano: dict[str, Any],
        log_path: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.broker_url = broker_url
        self.extra_env = extra_env or {}
        self.maestrano = maestrano
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "tests.helpers.worker_settings",
                "DATABASE_URL": database_url("default"),
                "SANDBOX_DATABASE_URL": database_url("sandbox"),
                "CELERY_BROKER_URL": self.broker_url,
                "WORKER_MAESTRANO_JSON": json.dumps(self.maestrano, default=str),
                "PYTHONPATH": str(ROOT),
                "LOG_LEVEL": "INFO",
                **self.extra_env,
            }
        )
        return env

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        marker = f"--- worker start {self.starts} ---\n"
        with self.log_path.open("a") as log:
            log.write(marker)
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=prefork",
                "--concurrency=2",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                f"--hostname=test-{os.getpid()}-{self.starts}@%h",
            ],
            cwd=ROOT,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._wait_ready(marker)

    def _wait_ready(self, marker: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            if " ready." in text.rsplit(marker, 1)[-1]:
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited:\n{text[-4000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"celery worker not ready after {READY_TIMEOUT}s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children (no graceful shutdown, tasks lost mid-way)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """End the worker once its test is over: its process group is killed.

        Nothing is left for it to finish (a test that needs the worker's tasks done
        waits for them before it ends), and each fixture has a broker of its own. A
        warm or cold shutdown first waits for the consumer's loop, which polls the
        broker for up to 2 s, then for the pool: 5-6 s per test, and 15 s when the
        pool's children got the signal too (they never answered the main process).
        """
        self.kill()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def reset_connections(app: Any) -> None:
    """Forget the app's broker connections so the next publish uses ``broker_url`` again."""
    from kombu import pools

    pools.reset()  # kombu's global producer pools are keyed by broker URL
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def real_worker(platform, settings, tmp_path):
    """A started worker on Redis; ``.delay`` in this process publishes to its broker.

    Configure ``settings.MAESTRANO`` before requesting it: the worker gets a copy.
    """
    from config.celery import app

    url = redis_url()
    require_redis(url)
    # Every worker fixture has keys of its own: runs that share a Redis database (other
    # checkouts, CI beside a session) never take each other's tasks.
    prefix = f"maestrano-test-{uuid.uuid4().hex}:"
    previous = {
        "broker_url": app.conf.broker_url,
        "broker_transport_options": app.conf.broker_transport_options,
        "task_always_eager": app.conf.task_always_eager,
    }
    settings.CELERY_BROKER_URL = url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.update(
        broker_url=url,
        broker_transport_options={"global_keyprefix": prefix},
        task_always_eager=False,
    )
    reset_connections(app)
    worker = WorkerProcess(
        broker_url=url,
        maestrano=settings.MAESTRANO,
        log_path=tmp_path / "celery-worker.log",
        extra_env={"CELERY_BROKER_KEYPREFIX": prefix},
    )
    try:
        worker.start()
        yield worker
    finally:
        worker.stop()
        app.conf.update(**previous)
        reset_connections(app)


@pytest.fixture
def demo_worker(platform, settings, tmp_path):
    """A started worker on the demo's broker (kombu's filesystem transport, no service).

    As ``manage.py run_demo`` runs it: ``.delay`` in this process (the live
    server's threads included) writes message files that the worker picks up.
    """
    from config.broker import TRANSPORT
    from config.celery import app

    folder = tmp_path / "broker"
    for name in ("queue", "control"):
        (folder / name).mkdir(parents=True)
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
    previous = {
        "broker_url": app.conf.broker_url,
        "broker_transport": app.conf.broker_transport,
        "broker_transport_options": app.conf.broker_transport_options,
        "task_always_eager": app.conf.task_always_eager,
    }
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.update(
        broker_url="filesystem://",
        broker_transport=TRANSPORT,
        broker_transport_options=options,
        task_always_eager=False,
    )
    reset_connections(app)
    worker = WorkerProcess(
        broker_url="filesystem://",
        maestrano=settings.MAESTRANO,
        log_path=tmp_path / "celery-worker.log",
        extra_env={"CELERY_BROKER_FOLDER": str(folder)},
    )
    try:
        worker.start()
        yield worker
    finally:
        worker.stop()
        app.conf.update(**previous)
        reset_connections(app)
