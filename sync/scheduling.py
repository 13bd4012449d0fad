"""Enqueueing the sync's tasks, by their registered names.

Services (outbox, inbox, push, status) schedule background work through these
functions; the tasks (:mod:`sync.tasks`) call the services. Looking a task up by
name keeps that one-way: no service imports the tasks module. Every enqueue
waits for the current transaction to commit, so a worker never sees a change
before it exists.
"""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from .conf import sync_settings

#: Registered names of the tasks (stable: they are what a broker's queue holds).
DRAIN_OUTBOX = "sync.drain_outbox"
PROCESS_INBOX = "sync.process_inbox"
REAPPLY_RECORD = "sync.reapply_record"
CATCH_UP = "sync.catch_up"


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
        for _, callback, _ in connection.run_on_commit:
            if getattr(callback, "maestrano_drain_company", None) == company_id:
                return

    def enqueue() -> None:
        _task(DRAIN_OUTBOX).delay(company_id)

    enqueue.maestrano_drain_company = company_id  # type: ignore[attr-defined]
    transaction.on_commit(enqueue, using=using)


def enqueue_inbox(*, company_id: Any) -> None:
    """Apply the company's notifications once the current transaction commits."""
    transaction.on_commit(lambda: _task(PROCESS_INBOX).delay(company_id))


def enqueue_reapply(*, company_id: Any, entity: str, connec_id: str) -> None:
    """Fetch a Connec! record again and apply it, once the current transaction commits."""
    transaction.on_commit(lambda: _task(REAPPLY_RECORD).delay(company_id, entity, connec_id))


def start_now(name: str, company_id: Any) -> None:
    """Enqueue the task ``name`` for ``company_id`` now (callers run it after their commit)."""
    _task(name).delay(company_id)
