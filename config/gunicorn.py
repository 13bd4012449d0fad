"""gunicorn settings of the example project: the production application server recipe.

    pip install "django-maestrano[server]"
    DATABASE_CONN_MAX_AGE=600 python -m gunicorn -c config/gunicorn.py config.wsgi

``gthread`` workers: each worker process serves requests from a pool of
threads. A thread keeps its database connections between requests when
``DATABASE_CONN_MAX_AGE`` is set (this file sets 600 s unless the environment
says otherwise), and ``CONN_HEALTH_CHECKS`` (on in ``config/settings.py``)
replaces a connection the server closed. Without persistent connections,
opening one per request dominates the latency of the short requests
(notifications webhook, Connec! calls): see ``docs/deploy.md``.

Every value can be overridden from the environment (``GUNICORN_BIND``,
``WEB_CONCURRENCY``, ``GUNICORN_THREADS``, ``GUNICORN_TIMEOUT``,
``GUNICORN_GC_THRESHOLD``) or on the command line (which wins over this file).
"""

from __future__ import annotations

import gc
import os

os.environ.setdefault("DATABASE_CONN_MAX_AGE", "600")

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "gthread"
# One process per core is enough: the threads cover the time spent waiting on I/O.
workers = int(os.environ.get("WEB_CONCURRENCY", str(os.cpu_count() or 1)))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Long enough for the largest Connec! batch (500 ops) and an import page.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Not preloaded: each worker opens its own database connections after the fork.
preload_app = False
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None  # empty: no access log
# gunicorn's own format but the request line's query string: the SSO completion's URL
# carries a login ticket (single use, but a credential until used), and a query string may
# carry what a person typed. The path (%(U)s) is enough to read the log by.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'
errorlog = "-"
# The youngest generation of the garbage collector is collected every
# ``GUNICORN_GC_THRESHOLD`` new container objects (Python's default, 700, when 0):
# a sandbox batch request builds tens of thousands of dicts and lists, and with
# Python's default the collector took 13-16% of its CPU (docs/performance.md,
# "Sandbox writes").
_gc_threshold = int(os.environ.get("GUNICORN_GC_THRESHOLD", "7000"))


def post_worker_init(worker: object) -> None:
    """Freeze what the worker holds once loaded, so the garbage collector stops scanning it.

    A loaded worker holds some hundred thousand long-lived objects (Django, DRF, the
    URLconf and the views it imports, imported here rather than on the first request);
    each full collection walked them all, 90-100 ms with every request in flight stalled
    behind it: most of the webhook's p99 at 100 req/s (``docs/performance.md``, "Live sync").
    ``gc.freeze()`` moves them to a generation the collector never scans (Python's advice
    for servers); garbage made by requests is collected as before, its youngest generation
    every ``GUNICORN_GC_THRESHOLD`` new objects.
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports the URLconf and every view now)
    gc.collect()
    gc.freeze()
    if _gc_threshold:
        gc.set_threshold(_gc_threshold, *gc.get_threshold()[1:])
