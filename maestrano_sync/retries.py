"""When a sync step that failed is tried again, and what a database refusal is (docs/sync.md,
'Refused writes').

One rule for every path that writes Connec! data or calls Connec!: a step is tried at most
``MAESTRANO["SYNC"]["MAX_ATTEMPTS"]`` times (:func:`may_try_again`). The inbox counts its
attempts on the stored notifications, the import and catch-up tasks in Celery's retries,
the reconciliation and the catch-up import try a refused page again at once
(:func:`retrying_refused_writes`).

A *refused write* is what the database answers when a concurrent write won a race
(:data:`CONCURRENT_WRITE_ERRORS`): a foreign key checked at commit that another
transaction's delete broke, a deadlock, a lock timeout, a locked SQLite file. Applying the
same records again, from what is committed then, usually succeeds: the records are applied
idempotently and a reference to a row deleted meanwhile is emptied
(:func:`maestrano_sync.inbox_references.drop_dangling_references`). :func:`refusal_reason` words it
the same way everywhere (inbox entry, run summary and history, import run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.db import IntegrityError, OperationalError, transaction

from .conf import sync_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: What the database answers when a concurrent write won a race. (A refusal of one record
#: by its own data, a unique value or a value too long, is caught earlier by the pipeline,
#: which parks that record: :func:`maestrano_sync.pipeline.save`.)
CONCURRENT_WRITE_ERRORS = (IntegrityError, OperationalError)


def may_try_again(*, attempts: int) -> bool:
    """Whether one more try is allowed after ``attempts`` tries (the failed one included)."""
    return attempts < sync_settings().max_attempts


def celery_max_retries() -> int:
    """The same rule in Celery's words: retries after the first attempt."""
    return max(sync_settings().max_attempts - 1, 0)


def refusal_reason(error: BaseException) -> str:
    """``Refused by the database: IntegrityError: <first line of its message>``."""
    message = str(error).strip()
    first_line = message.splitlines()[0] if message else ""
    return f"Refused by the database: {error.__class__.__name__}: {first_line}"[:1000]


class WriteRefused(Exception):
    """A write the database still refused after the allowed attempts; ``reason`` says why."""

    def __init__(self, reason: str, *, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


def retrying_refused_writes(write: Callable[[], T], *, what: str) -> T:
    """``write()``, called again at once while the database refuses it and
    :func:`may_try_again` allows; then :class:`WriteRefused`.

    ``write`` must own its transaction and be idempotent (a page of records applied by
    :func:`maestrano_sync.inbox.apply_records`). Inside a caller's transaction that the refusal
    broke, nothing can be tried again: the error is raised as it is.
    """
    attempts = 0
    while True:
        attempts += 1
        try:
            return write()
        except CONCURRENT_WRITE_ERRORS as error:
            if transaction.get_connection().needs_rollback:
                raise
            if not may_try_again(attempts=attempts):
                raise WriteRefused(refusal_reason(error), attempts=attempts) from error
            logger.info("%s: %s; tried again (attempt %s)", what, refusal_reason(error), attempts)
