"""The company lock: one worker at a time applies or pushes a company's changes.

A row per company (:class:`~maestrano_sync.models.SyncLock`) with a token and a lease:
taking it is one conditional ``UPDATE``, so it works the same on every
database and across processes. Push, inbox and reconciliation hold it while
they work and renew the lease between batches; a worker that dies lets it
lapse after ``SYNC["LOCK_LEASE_SECONDS"]``. The initial import holds it for each
page it writes, waiting for it when another worker has it (:func:`waiting_company_lock`).
"""

from __future__ import annotations

import contextlib
import datetime
import secrets
import time
from collections.abc import Iterator
from typing import Any

from django.utils import timezone

from maestrano_accounts.models import Company
from maestrano_integration.connec import ConnecClient, connec_client_for
from maestrano_integration.kept_query import KeptUpdate, PreparedWrite
from maestrano_integration.transaction_settings import own_commit_without_flush

from .conf import sync_settings
from .models import SyncLock


def lock_lease() -> datetime.timedelta:
    return datetime.timedelta(seconds=sync_settings().lock_lease_seconds)


#: Take the lock when it is free or its lease lapsed; give it back (the holder's token).
_TAKE = KeptUpdate(
    SyncLock,
    fields=("token", "locked_until"),
    where=("company",),
    unset_or_before=("locked_until",),
)
_RELEASE = KeptUpdate(SyncLock, fields=("locked_until",), where=("company", "token"))


def acquire_lock(*, company_id: Any, relaxed: bool = False) -> str | None:
    """Take the company's sync lock for one lease; the token, or ``None`` when it is held.

    One conditional ``UPDATE`` once the company's lock row exists (every time but the
    first). When it takes nothing, the row is created unless it exists (one ``INSERT``
    that leaves a concurrent worker's row alone) and the ``UPDATE`` tried again.
    ``relaxed``: see :func:`_lock_write`."""
    token = secrets.token_hex(16)
    if _take(company_id=company_id, token=token, relaxed=relaxed):
        return token
    SyncLock.objects.bulk_create([SyncLock(company_id=company_id)], ignore_conflicts=True)
    return token if _take(company_id=company_id, token=token, relaxed=relaxed) else None


def _take(*, company_id: Any, token: str, relaxed: bool) -> bool:
    now = timezone.now()
    write = _TAKE.prepare(
        where={"company": company_id, "locked_until": now},
        values={"token": token, "locked_until": now + lock_lease()},
    )
    return bool(_lock_write(write, relaxed=relaxed))


def _lock_write(write: PreparedWrite, *, relaxed: bool) -> int:
    """Run ``write``; how many rows it updated. ``relaxed``: its commit does not wait for
    the disk (:mod:`maestrano_integration.transaction_settings`; a lock write lost in a
    server crash leaves the lock free, or held until its lease lapses), from inside the
    statement itself (one round trip, where ``BEGIN``, ``SET LOCAL``, the write and
    ``COMMIT`` are four), only when it is its own transaction: never a caller's."""
    return write.run(returning=own_commit_without_flush(using=write.alias) if relaxed else None)


def renew_lock(*, company_id: Any, token: str) -> bool:
    """Extend the lease; ``False`` if another worker took it over (stop working then)."""
    return bool(
        SyncLock.objects.filter(company_id=company_id, token=token).update(
            locked_until=timezone.now() + lock_lease()
        )
    )


def release_lock(*, company_id: Any, token: str, relaxed: bool = False) -> None:
    """Give the lock back (nothing when ``token`` no longer holds it). ``relaxed``: see
    :func:`_lock_write`."""
    write = _RELEASE.prepare(
        where={"company": company_id, "token": token}, values={"locked_until": None}
    )
    _lock_write(write, relaxed=relaxed)


@contextlib.contextmanager
def company_lock(*, company_id: Any) -> Iterator[str | None]:
    """``with company_lock(company_id=...) as token:`` — ``token`` is ``None`` if busy."""
    token = acquire_lock(company_id=company_id)
    try:
        yield token
    finally:
        if token is not None:
            release_lock(company_id=company_id, token=token)


@contextlib.contextmanager
def company_run(
    *, company: Company, client: ConnecClient | None = None
) -> Iterator[tuple[str, ConnecClient] | None]:
    """Hold ``company``'s lock with a Connec! client for one run of work.

    Yields ``(token, client)`` — the client given, or a new one closed at the
    end — or ``None`` when another worker holds the lock::

        with company_run(company=company) as held:
            if held is None:
                return  # busy: the holder looks for new work when it is done
            token, client = held
    """
    with company_lock(company_id=company.pk) as token:
        if token is None:
            yield None
        elif client is not None:
            yield token, client
        else:
            with connec_client_for(company, external_ids=True) as own:
                yield token, own


class CompanyLockBusy(Exception):
    """The company's lock stayed held by another worker for longer than one lease."""


@contextlib.contextmanager
def waiting_company_lock(*, company_id: Any, durable: bool = True) -> Iterator[str]:
    """Hold the company's lock, waiting while another worker holds it; the token.

    For work that cannot be put off as a busy worker's is (a page of the import): the
    lock is tried again, at growing intervals (up to half a second), for up to one lease
    (``LOCK_LEASE_SECONDS``: a holder that died has let it lapse by then), then
    :class:`CompanyLockBusy`. Released at the end of the block. ``durable=False``:
    taking and releasing it do not wait for the disk
    (:mod:`maestrano_integration.transaction_settings`; a lock write lost in a server crash leaves
    it free, or held until its lease lapses).
    """
    token = acquire_lock(company_id=company_id, relaxed=not durable)
    if token is None:
        deadline = time.monotonic() + lock_lease().total_seconds()
        pause = 0.01
        while token is None:
            if time.monotonic() >= deadline:
                raise CompanyLockBusy(
                    f"the sync lock of company {company_id} stayed held by another worker "
                    f"for {lock_lease().total_seconds():g} s"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
            token = acquire_lock(company_id=company_id, relaxed=not durable)
    try:
        yield token
    finally:
        release_lock(company_id=company_id, token=token, relaxed=not durable)
