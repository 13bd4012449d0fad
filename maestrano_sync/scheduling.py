"""Enqueueing the sync's tasks, by their registered names.

Services (outbox, inbox, push, status) schedule background work through these
functions; the tasks (:mod:`maestrano_sync.tasks`) call the services. Looking a task up by
name keeps that one-way: no service imports the tasks module. Every enqueue
waits for the current transaction to commit, so a worker never sees a change
before it exists.

One queued ``process_inbox`` task per company (Redis brokers): a busy webhook
stores hundreds of notifications a second for one company, and one task applies
them all. :func:`enqueue_inbox` publishes only when it sets the company's
*queued* key in the broker's Redis (``SET NX``), and the task deletes the key
before it reads the pending notifications (:func:`inbox_task_started`). A
notification whose publish is skipped was committed before the key was found
set, so before the queued task deletes it and reads: that task applies it (or,
finding the company locked, the lock holder's follow-up does, see
``maestrano_sync.tasks._follow_up``). The key expires after
:data:`INBOX_QUEUED_SECONDS`, so a lost message delays the company's
notifications at most that long (the beat's ``drain_all`` is the other safety
net). Other brokers, and eager mode, publish every time.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import redis
from celery import current_app
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from .conf import sync_settings

#: Registered names of the tasks (stable: they are what a broker's queue holds).
DRAIN_OUTBOX = "maestrano_sync.drain_outbox"
PROCESS_INBOX = "maestrano_sync.process_inbox"
REAPPLY_RECORD = "maestrano_sync.reapply_record"
CATCH_UP = "maestrano_sync.catch_up"


def _task(name: str) -> Any:
    return current_app.tasks[name]


def schedule_drain(*, company_id: Any, using: str = DEFAULT_DB_ALIAS) -> None:
    """Enqueue the company's drain once the current transaction commits (once per company)."""
    if not sync_settings().push_on_commit:
        return
    connection = connections[using]
    if connection.in_atomic_block:
        # Django drops the callbacks of a rolled-back (sub)transaction from this list,
        # so it is the exact set of drains still to enqueue.
        # (savepoints, callback, robust) since Django 4.2; django-stubs still says pairs.
        for _, callback, _ in connection.run_on_commit:  # type: ignore[misc]
            if getattr(callback, "maestrano_drain_company", None) == company_id:
                return

    def enqueue() -> None:
        _task(DRAIN_OUTBOX).delay(company_id)

    enqueue.maestrano_drain_company = company_id  # type: ignore[attr-defined]
    transaction.on_commit(enqueue, using=using)


#: How long a company's *queued* key lives (seconds): while it is set, its notifications
#: publish no further ``process_inbox`` task.
INBOX_QUEUED_SECONDS = 60

_redis_clients: dict[str, Any] = {}
_redis_clients_lock = threading.Lock()


def _queued_key_client() -> Any | None:
    """A client of the broker's Redis (one per process and URL), or ``None`` when the
    broker is not one Redis server or tasks run eagerly."""
    conf = current_app.conf
    url = conf.broker_url
    if conf.task_always_eager or not isinstance(url, str) or ";" in url:
        return None
    if urlsplit(url).scheme not in ("redis", "rediss"):
        return None
    client = _redis_clients.get(url)
    if client is None:
        with _redis_clients_lock:
            client = _redis_clients.setdefault(url, redis.Redis.from_url(url))
    return client


def _queued_key(company_id: Any) -> str:
    # Under the broker's key prefix, as the queues are (tests and shared servers set one).
    prefix = (current_app.conf.broker_transport_options or {}).get("global_keyprefix", "")
    return f"{prefix}maestrano:inbox-queued:{company_id}"


def enqueue_inbox(*, company_id: Any) -> None:
    """Apply the company's notifications once the current transaction commits (one task
    queued per company at a time on Redis brokers: see the module's docstring)."""
    transaction.on_commit(lambda: _publish_inbox(company_id))


def _publish_inbox(company_id: Any) -> None:
    client = _queued_key_client()
    if client is None:
        _task(PROCESS_INBOX).delay(company_id)
        return
    key = _queued_key(company_id)
    if not client.set(key, b"1", nx=True, ex=INBOX_QUEUED_SECONDS):
        return  # a queued task, not started yet, will read what was just committed
    try:
        _task(PROCESS_INBOX).delay(company_id)
    except BaseException:
        client.delete(key)
        raise


def inbox_task_started(*, company_id: Any) -> None:
    """Called by the ``process_inbox`` task before it reads anything: notifications
    committed from now on publish a task of their own again."""
    client = _queued_key_client()
    if client is not None:
        client.delete(_queued_key(company_id))


def enqueue_reapply(*, company_id: Any, entity: str, connec_id: str) -> None:
    """Fetch a Connec! record again and apply it, once the current transaction commits."""
    transaction.on_commit(lambda: _task(REAPPLY_RECORD).delay(company_id, entity, connec_id))


def start_now(name: str, company_id: Any) -> None:
    """Enqueue the task ``name`` for ``company_id`` now (callers run it after their commit)."""
    _task(name).delay(company_id)
