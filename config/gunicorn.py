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
``WEB_CONCURRENCY``, ``GUNICORN_THREADS``, ``GUNICORN_TIMEOUT``) or on the
command line (which wins over this file).
"""

from __future__ import annotations

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
errorlog = "-"
# The garbage collector: Python's default (a collection every 700 new container
# objects, the oldest generation scanning everything loaded) took 16% of the CPU of
# the sandbox's batch writes, whose requests each build tens of thousands of dicts
# and lists. Everything loaded by the time the worker serves (Django, the apps) is
# moved out of the collector's sight (``gc.freeze``), and the youngest generation is
# collected ten times less often (``GUNICORN_GC_THRESHOLD``; ``0`` keeps Python's).
_gc_threshold = int(os.environ.get("GUNICORN_GC_THRESHOLD", "7000"))


def post_worker_init(worker: object) -> None:
    import gc

    if _gc_threshold:
        gc.collect()
        gc.freeze()
        gc.set_threshold(_gc_threshold, *gc.get_threshold()[1:])
